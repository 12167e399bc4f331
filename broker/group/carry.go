package group

import "sort"

// CarryInto writes the live records of this store (a private offsets log
// of an earlier version) into the partitions of the offsets topic that
// hold their groups, through writers (the partitions this broker leads),
// in the order they were written, and waits until they are durable and
// replicated. It returns how many groups were carried and how many were
// left because no writer was given for their partition. Writing the same
// records twice changes nothing: the last record of each key is what
// counts.
func (s *OffsetStore) CarryInto(partitions int32, writers map[int32]Writer) (carried, left int, err error) {
	live, err := s.liveRecords(s.log.HighWatermark())
	if err != nil {
		return 0, 0, err
	}
	byPartition := map[int32][]liveRecord{}
	groups := map[string]int32{}
	for key, r := range live {
		if key.raw != "" {
			continue // a key this version does not read
		}
		p := PartitionFor(key.group, partitions)
		byPartition[p] = append(byPartition[p], r)
		groups[key.group] = p
	}
	for _, p := range groups {
		if writers[p] != nil {
			carried++
		} else {
			left++
		}
	}
	now := s.clock.Now().UnixMilli()
	for p, records := range byPartition {
		w := writers[p]
		if w == nil {
			continue
		}
		sort.Slice(records, func(i, j int) bool { return records[i].logOffset < records[j].logOffset })
		for len(records) > 0 {
			n := min(len(records), 1000)
			batch := make([]record, n)
			for i, r := range records[:n] {
				batch[i] = record{key: r.key, value: r.value}
			}
			_, wait, err := w.Append(encodeBatch(batch, now), true)
			if err == nil && wait != nil {
				err = wait()
			}
			if err != nil {
				return 0, 0, err
			}
			records = records[n:]
		}
	}
	return carried, left, nil
}
