package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// capacityWorkload measures the broker's own produce capacity with a
// client that costs almost nothing: one produce request per partition is
// encoded once (a batch of batchRecords records of size bytes, no
// compression) and sent again and again to the partition's leader,
// pipelined (inFlight requests per connection); answers are counted from
// their frames, and one in a hundred is decoded to check its error code.
func capacityWorkload(size int, acks string, partitions int32, duration time.Duration) workload {
	const batchRecords, inFlight = 1000, 8
	return workload{
		name: fmt.Sprintf("capacity: pre-encoded produce %s acks=%s %s, %d-record batches", sizeName(size), acks, partitionsName(partitions), batchRecords),
		run: func(ctx context.Context, t *target) (measurement, error) {
			topic := uniqueTopic("capacity")
			if err := t.createTopic(ctx, topic, partitions); err != nil {
				return nil, err
			}
			defer t.deleteTopic(context.Background(), topic)
			leaders, err := partitionLeaderAddrs(ctx, t, topic, partitions)
			if err != nil {
				return nil, err
			}
			requiredAcks := int16(1)
			switch acks {
			case "all":
				requiredAcks = -1
			case "0":
				return nil, errors.New("capacity counts answers: acks 1 or all")
			}
			var acked, failed atomic.Int64
			runCtx, cancel := context.WithTimeout(ctx, duration)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, partitions)
			begin := time.Now()
			for p := range partitions {
				frame := encodeProduce(topic, p, requiredAcks, batchRecords, size)
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := pipeline(runCtx, leaders[p], frame, inFlight, &acked, &failed); err != nil && runCtx.Err() == nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(begin)
			select {
			case err := <-errs:
				return nil, err
			default:
			}
			if failed.Load() > 0 {
				return nil, fmt.Errorf("%d sampled answers carried an error", failed.Load())
			}
			return measurement{"records/s": float64(acked.Load()*batchRecords) / elapsed.Seconds()}, nil
		},
	}
}

// partitionLeaderAddrs finds each partition's leader once every broker
// knows the topic.
func partitionLeaderAddrs(ctx context.Context, t *target, topic string, partitions int32) (map[int32]string, error) {
	seeds := []string{t.addr}
	for _, p := range t.peers {
		seeds = append(seeds, p.addr)
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	admin := kadm.NewClient(client)
	for ctx.Err() == nil {
		meta, err := admin.Metadata(ctx, topic)
		if err == nil && len(meta.Topics[topic].Partitions) == int(partitions) {
			leaders := map[int32]string{}
			for _, p := range meta.Topics[topic].Partitions {
				for _, b := range meta.Brokers {
					if b.NodeID == p.Leader && p.Err == nil {
						leaders[p.Partition] = net.JoinHostPort(b.Host, fmt.Sprint(b.Port))
					}
				}
			}
			if len(leaders) == int(partitions) {
				return leaders, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, ctx.Err()
}

// encodeProduce is one whole Produce v9 request frame for partition p.
func encodeProduce(topic string, p int32, acks int16, records, size int) []byte {
	vals := values(records, size)
	var body []byte
	for i, v := range vals {
		r := kmsg.Record{OffsetDelta: int32(i), Value: v}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		body = r.AppendTo(body)
	}
	now := time.Now().UnixMilli()
	batch := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(records - 1), FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(records), Records: body}
	raw := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, acks, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = p, raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("kqbench-capacity")).AppendRequest(nil, req, 1)
}

// pipeline sends frame over one connection to addr, keeping inFlight
// requests outstanding, until ctx ends; each answer adds to acked.
func pipeline(ctx context.Context, addr string, frame []byte, inFlight int, acked, failed *atomic.Int64) error {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() { <-ctx.Done(); _ = conn.SetDeadline(time.Now()) }()
	slots := make(chan struct{}, inFlight)
	readErr := make(chan error, 1)
	go func() {
		reader := bufio.NewReaderSize(conn, 64<<10)
		var header [4]byte
		body := make([]byte, 0, 4096)
		for n := 0; ; n++ {
			if _, err := io.ReadFull(reader, header[:]); err != nil {
				readErr <- err
				return
			}
			size := int(binary.BigEndian.Uint32(header[:]))
			if cap(body) < size {
				body = make([]byte, size)
			}
			body = body[:size]
			if _, err := io.ReadFull(reader, body); err != nil {
				readErr <- err
				return
			}
			if n%100 == 0 { // sampled: the answer's error code
				resp := kmsg.NewPtrProduceResponse()
				resp.Version = 9
				if err := resp.ReadFrom(body[5:]); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
					failed.Add(1)
				}
			}
			acked.Add(1)
			<-slots
		}
	}()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			return err
		}
		if _, err := conn.Write(frame); err != nil {
			return err
		}
	}
}
