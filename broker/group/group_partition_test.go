package group

import "testing"

func TestPartitionForIsKafkas(t *testing.T) {
	// Hashes as Java 17 printed them ("x".hashCode()), and partitions as
	// Kafka's GroupCoordinator.partitionFor places the group among 50
	// (Utils.abs(hash) % 50).
	for _, tt := range []struct {
		id        string
		hash      int32
		partition int32
	}{
		{"", 0, 0},
		{"a", 97, 47},
		{"order-mq", 1234257027, 27},
		{"console-consumer-12345", 158455506, 6},
		{"payment-update-paystatus-group", -1092882385, 35},
		{"polygenelubricants", -2147483648, 0}, // Java's abs(MinInt32) is MinInt32; Kafka's Utils.abs maps it to 0
		{"é", 233, 33},
		{"😀", 1772899, 49}, // one code point, two UTF-16 units
	} {
		if h := javaStringHash(tt.id); h != tt.hash {
			t.Errorf("hash(%q) = %d, want %d", tt.id, h, tt.hash)
		}
		if p := PartitionFor(tt.id, 50); p != tt.partition {
			t.Errorf("PartitionFor(%q, 50) = %d, want %d", tt.id, p, tt.partition)
		}
	}
}
