package group

// OffsetsTopic is the internal topic that holds consumer groups and their
// committed offsets, as in Kafka.
const OffsetsTopic = "__consumer_offsets"

// PartitionFor is the partition of the offsets topic that holds group id:
// abs(Java's String.hashCode(id)) % partitions, as Kafka computes it
// (GroupCoordinator.partitionFor), so tools that read __consumer_offsets
// find a group where Kafka would put it. Kafka's abs maps MinInt32 to 0.
func PartitionFor(id string, partitions int32) int32 {
	h := javaStringHash(id)
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

// javaStringHash is java.lang.String.hashCode: s[0]*31^(n-1) + ... over
// the string's UTF-16 code units, in int32 arithmetic.
func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 { // a surrogate pair in UTF-16
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}
