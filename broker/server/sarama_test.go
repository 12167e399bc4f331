package server_test

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
)

func TestSaramaSyncProducerAndConsumer(t *testing.T) {
	b := startBroker(t, nil)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Consumer.Return.Errors = true
	producer, err := sarama.NewSyncProducer([]string{b.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	const topic, n = "sarama", 100
	for i := 0; i < n; i++ {
		partition, offset, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(fmt.Sprintf("v%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		if partition != 0 || offset != int64(i) {
			t.Fatalf("message %d went to partition %d offset %d", i, partition, offset)
		}
	}
	consumer, err := sarama.NewConsumer([]string{b.Addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx := testContext(t)
	for i := 0; i < n; i++ {
		select {
		case m := <-pc.Messages():
			if string(m.Value) != fmt.Sprintf("v%d", i) || m.Offset != int64(i) {
				t.Fatalf("message %d: %q at offset %d", i, m.Value, m.Offset)
			}
		case err := <-pc.Errors():
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("timed out after %d messages", i)
		}
	}
}
