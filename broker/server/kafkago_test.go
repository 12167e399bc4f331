package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/zeromicro/go-queue/kq"
)

// readN reads n records from the start of one partition with kafka-go's
// Reader (no group), returning their values.
func readN(t *testing.T, addr, topic string, partition, n int) []string {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: partition, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 500 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var values []string
	for len(values) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %d of %d: %v", len(values), n, err)
		}
		if m.Offset != int64(len(values)) {
			t.Fatalf("record %d has offset %d", len(values), m.Offset)
		}
		values = append(values, string(m.Value))
	}
	return values
}

func TestKafkaGoWriterAndReader(t *testing.T) {
	b := startBroker(t, nil)
	codecs := []struct {
		name  string
		codec compress.Compression
	}{{"none", 0}, {"gzip", kafka.Gzip}, {"snappy", kafka.Snappy}, {"lz4", kafka.Lz4}, {"zstd", kafka.Zstd}}
	acks := []kafka.RequiredAcks{kafka.RequireNone, kafka.RequireOne, kafka.RequireAll}
	for _, codec := range codecs {
		for _, ack := range acks {
			for _, async := range []bool{false, true} {
				name := fmt.Sprintf("%s-acks%d-async%v", codec.name, ack, async)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					topic := "kafkago-" + name
					errs := make(chan error, 100)
					w := &kafka.Writer{Addr: kafka.TCP(b.Addr), Topic: topic, RequiredAcks: ack, Async: async,
						Compression: codec.codec, AllowAutoTopicCreation: true, BatchTimeout: 10 * time.Millisecond,
						Completion: func(_ []kafka.Message, err error) {
							if err != nil {
								errs <- err
							}
						}}
					var msgs []kafka.Message
					for i := 0; i < 50; i++ {
						msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))})
					}
					ctx := testContext(t)
					if ack == kafka.RequireNone {
						// acks=0 gets no answer to retry on: on a cluster, a
						// batch sent while the new topic reaches its leader is
						// dropped, in Kafka too. Those topics exist first.
						if _, err := kadm.NewClient(newClient(t, b.Addr)).CreateTopic(ctx, 1, -1, nil, topic); err != nil {
							t.Fatal(err)
						}
						b.Sync(t)
					}
					// The first write creates the topic; kafka-go retries until it appears.
					if err := w.WriteMessages(ctx, msgs...); err != nil {
						t.Fatal(err)
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					close(errs)
					for err := range errs {
						t.Fatal(err)
					}
					values := readN(t, b.Addr, topic, 0, 50)
					if values[0] != "v0" || values[49] != "v49" {
						t.Fatalf("read back %q ... %q", values[0], values[49])
					}
				})
			}
		}
	}
}

// TestKqPusher: go-queue's Pusher sends acks=0, snappy-compressed batches;
// every push arrives.
func TestKqPusher(t *testing.T) {
	b := startBroker(t, nil)
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", sync), func(t *testing.T) {
			topic := fmt.Sprintf("kq-pusher-%v", sync)
			opts := []kq.PushOption{kq.WithAllowAutoTopicCreation()}
			if sync {
				opts = append(opts, kq.WithSyncPush())
			}
			pusher := kq.NewPusher([]string{b.Addr}, topic, opts...)
			// A sync push waits out kafka-go's 1 s batch timeout per message
			// in go-queue v1.2.2 (a client limitation), so sync sends few.
			n := 20
			if sync {
				n = 3
			}
			ctx := testContext(t)
			for i := 0; i < n; i++ {
				if err := pusher.PushWithKey(ctx, fmt.Sprintf("order-%d", i), fmt.Sprintf(`{"order":%d}`, i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := pusher.Close(); err != nil {
				t.Fatal(err)
			}
			values := readN(t, b.Addr, topic, 0, n)
			if want := fmt.Sprintf(`{"order":%d}`, n-1); values[n-1] != want {
				t.Fatalf("last value %q, want %q", values[n-1], want)
			}
		})
	}
}
