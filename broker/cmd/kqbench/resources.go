package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// idleWorkload: the broker's resident memory after it has answered a
// client's metadata request and sat idle for a second.
func idleWorkload() workload {
	return workload{
		name: "broker RSS idle",
		run: func(ctx context.Context, t *target) (measurement, error) {
			client, err := kgo.NewClient(kgo.SeedBrokers(t.addr))
			if err != nil {
				return nil, err
			}
			err = client.Ping(ctx)
			client.Close()
			if err != nil {
				return nil, err
			}
			time.Sleep(time.Second)
			return measurement{"rss MB": megabytes(t.rss())}, nil
		},
	}
}

// partitionsWorkload: franz-go producing 100 B records (acks=1) spread
// over a new topic's partitions, then the broker's RSS with that topic.
func partitionsWorkload(partitions int32, records int) workload {
	produce := produceWorkload(100, "1", partitions, records)
	return workload{
		name: fmt.Sprintf("%s: produce and broker RSS", partitionsName(partitions)),
		run: func(ctx context.Context, t *target) (measurement, error) {
			m, err := produce.run(ctx, t)
			if err != nil {
				return nil, err
			}
			m["rss MB"] = m["peak rss MB"]
			return m, nil
		},
	}
}

// startupWorkload: the time from exec to accepting connections for a
// kqbroker whose data directory holds retainedBytes (16 KiB records over 4
// partitions), written once by setup. With unclean set, every run starts
// after a SIGKILL, so recovery checks the active segments' tails.
func startupWorkload(retainedBytes int64, unclean bool) workload {
	var dir string
	name := fmt.Sprintf("start-up with %s retained, after a clean stop", bytesName(retainedBytes))
	if unclean {
		name = fmt.Sprintf("start-up with %s retained, after SIGKILL during writes", bytesName(retainedBytes))
	}
	return workload{
		name: name,
		setup: func(ctx context.Context, t *target) error {
			if t.name != "kqbroker" {
				return fmt.Errorf("start-up is measured on kqbroker only (kfake keeps nothing on disk)")
			}
			var err error
			if dir, err = os.MkdirTemp(benchTempDir(), "kqbench-retained-"); err != nil {
				return err
			}
			broker, err := startKqbroker(dir)
			if err != nil {
				return err
			}
			topic := "retained"
			if err := broker.createTopic(ctx, topic, 4); err != nil {
				return err
			}
			opts, _ := produceOptions(broker.addr, topic, "1")
			client, err := kgo.NewClient(append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))...)
			if err != nil {
				return err
			}
			vals := values(64, 16<<10)
			for i := int64(0); i < retainedBytes/(16<<10); i++ {
				client.Produce(ctx, &kgo.Record{Value: vals[i%64]}, nil)
			}
			err = client.Flush(ctx)
			client.Close()
			if stopErr := broker.stop(true); err == nil {
				err = stopErr
			}
			return err
		},
		teardown: func(context.Context, *target) { _ = os.RemoveAll(dir) },
		run: func(ctx context.Context, _ *target) (measurement, error) {
			if unclean {
				if err := crashDuringWrites(ctx, dir); err != nil {
					return nil, err
				}
			}
			broker, err := startKqbroker(dir)
			if err != nil {
				return nil, err
			}
			startup := broker.startup
			if err := broker.stop(true); err != nil {
				return nil, err
			}
			return measurement{"ms": float64(startup) / float64(time.Millisecond)}, nil
		},
	}
}

// crashDuringWrites starts kqbroker on dir, keeps a producer writing to
// the retained topic, and kills the broker with SIGKILL mid-stream.
func crashDuringWrites(ctx context.Context, dir string) error {
	broker, err := startKqbroker(dir)
	if err != nil {
		return err
	}
	opts, _ := produceOptions(broker.addr, "retained", "1")
	client, err := kgo.NewClient(opts...)
	if err != nil {
		broker.kill()
		return err
	}
	defer client.Close()
	vals := values(64, 16<<10)
	for i := 0; i < 2000; i++ {
		client.Produce(ctx, &kgo.Record{Value: vals[i%64]}, nil)
	}
	time.Sleep(20 * time.Millisecond)
	broker.kill()
	return nil
}

func bytesName(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}
