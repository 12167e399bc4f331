package push_test

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/common/push"
)

// A kq producer switches by its import: MustNewPusher takes kq.NewPusher's
// arguments, and each push returns once the broker has the record
// (acks=all), or with the broker's error.
func ExampleMustNewPusher() {
	addr, stop, err := brokertest.StartForExample()
	if err != nil {
		panic(err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := mustClient(addr)
	defer client.Close()
	admin := kadm.NewClient(client)
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "orders"); err != nil {
		panic(err)
	}

	pusher := push.MustNewPusher([]string{addr}, "orders") // was kq.NewPusher(addrs, "orders")
	defer pusher.Close()
	fmt.Println(pusher.PushWithKey(ctx, "order-1", `{"state":"paid"}`))
	fmt.Println(pusher.Push(ctx, `{"state":"closed"}`))

	ends, err := admin.ListEndOffsets(ctx, "orders")
	if err != nil {
		panic(err)
	}
	end, _ := ends.Lookup("orders", 0)
	fmt.Println("records in orders:", end.Offset)
	// Output:
	// <nil>
	// <nil>
	// records in orders: 2
}

func mustClient(addr string) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		panic(err)
	}
	return cl
}
