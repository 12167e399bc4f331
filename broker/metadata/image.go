package metadata

import (
	"fmt"
	"maps"
	"slices"
)

// Image is the metadata as of one point of the log. It is never changed
// once built: Apply returns a new image that shares what did not change,
// so readers hold an image without locks while the next one is built.
type Image struct {
	ClusterID string
	// NextProducerID is the first producer id no block holds yet.
	NextProducerID int64

	brokers map[int32]Broker
	topics  map[TopicID]*Topic
	names   map[string]TopicID
}

// Broker is a registered broker.
type Broker struct {
	ID          int32
	Epoch       int64
	Advertise   string
	InterBroker string
	Fenced      bool
}

// Topic is a topic and its partitions. Read-only.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions []Partition
	Configs    map[string]string // overrides of the broker defaults
}

// Partition is one partition's assignment and state. Read-only.
type Partition struct {
	Replicas       []int32
	ISR            []int32
	Leader         int32 // -1: none
	LeaderEpoch    int32
	PartitionEpoch int32
	// Adding and Removing: a reassignment in progress (see Reassignment).
	Adding, Removing []int32
}

// Target is the replicas a partition has once its reassignment, if any,
// is done.
func (p Partition) Target() []int32 {
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.Removing, r) })
}

// Empty is the image before the first record.
func Empty() *Image {
	return &Image{brokers: map[int32]Broker{}, topics: map[TopicID]*Topic{}, names: map[string]TopicID{}}
}

// Broker returns a registered broker.
func (img *Image) Broker(id int32) (Broker, bool) {
	b, ok := img.brokers[id]
	return b, ok
}

// Brokers returns the registered brokers, by id.
func (img *Image) Brokers() []Broker {
	brokers := slices.Collect(maps.Values(img.brokers))
	slices.SortFunc(brokers, func(a, b Broker) int { return int(a.ID - b.ID) })
	return brokers
}

// LowestInService is the lowest id of an unfenced broker. It allocates
// nothing: group requests ask for it on every call.
func (img *Image) LowestInService() (int32, bool) {
	lowest, found := int32(0), false
	for id, b := range img.brokers {
		if !b.Fenced && (!found || id < lowest) {
			lowest, found = id, true
		}
	}
	return lowest, found
}

// Topic returns a topic by name.
func (img *Image) Topic(name string) (*Topic, bool) {
	id, ok := img.names[name]
	if !ok {
		return nil, false
	}
	return img.topics[id], true
}

// TopicByID returns a topic by id.
func (img *Image) TopicByID(id TopicID) (*Topic, bool) {
	t, ok := img.topics[id]
	return t, ok
}

// Topics returns every topic, by name.
func (img *Image) Topics() []*Topic {
	topics := slices.Collect(maps.Values(img.topics))
	slices.SortFunc(topics, func(a, b *Topic) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return topics
}

// Apply applies a batch of records, all or nothing. The image it is called
// on does not change; on an error it is still the current one.
func (img *Image) Apply(records []Record) (*Image, error) {
	b := builder{next: &Image{ClusterID: img.ClusterID, NextProducerID: img.NextProducerID,
		brokers: img.brokers, topics: img.topics, names: img.names}, copied: map[TopicID]bool{}}
	for i, r := range records {
		if err := b.apply(r); err != nil {
			return img, fmt.Errorf("metadata record %d of %d: %w", i+1, len(records), err)
		}
	}
	return b.next, nil
}

// builder makes the next image, copying each map and topic the first time
// the batch changes it.
type builder struct {
	next                        *Image
	brokersCopied, topicsCopied bool
	copied                      map[TopicID]bool
}

func (b *builder) brokers() map[int32]Broker {
	if !b.brokersCopied {
		b.next.brokers, b.brokersCopied = maps.Clone(b.next.brokers), true
	}
	return b.next.brokers
}

func (b *builder) topics() (map[TopicID]*Topic, map[string]TopicID) {
	if !b.topicsCopied {
		b.next.topics, b.next.names, b.topicsCopied = maps.Clone(b.next.topics), maps.Clone(b.next.names), true
	}
	return b.next.topics, b.next.names
}

// topic returns a copy of the topic this batch may change.
func (b *builder) topic(id TopicID) (*Topic, error) {
	t, ok := b.next.topics[id]
	if !ok {
		return nil, fmt.Errorf("unknown topic id %s", id)
	}
	if b.copied[id] {
		return t, nil
	}
	c := *t
	c.Partitions = slices.Clone(t.Partitions)
	c.Configs = maps.Clone(t.Configs)
	topics, _ := b.topics()
	topics[id] = &c
	b.copied[id] = true
	return &c, nil
}

func (b *builder) apply(r Record) error {
	switch {
	case r.Cluster != nil:
		if b.next.ClusterID != "" && b.next.ClusterID != r.Cluster.ClusterID {
			return fmt.Errorf("the log belongs to cluster %q, not %q", b.next.ClusterID, r.Cluster.ClusterID)
		}
		b.next.ClusterID = r.Cluster.ClusterID
	case r.RegisterBroker != nil:
		rec := r.RegisterBroker
		if old, ok := b.next.brokers[rec.BrokerID]; ok && rec.Epoch <= old.Epoch {
			return fmt.Errorf("broker %d registers with epoch %d, not above its epoch %d", rec.BrokerID, rec.Epoch, old.Epoch)
		}
		b.brokers()[rec.BrokerID] = Broker{ID: rec.BrokerID, Epoch: rec.Epoch, Advertise: rec.Advertise, InterBroker: rec.InterBroker, Fenced: true}
	case r.FenceBroker != nil, r.UnfenceBroker != nil:
		id, epoch, fenced := int32(0), int64(0), r.FenceBroker != nil
		if fenced {
			id, epoch = r.FenceBroker.BrokerID, r.FenceBroker.Epoch
		} else {
			id, epoch = r.UnfenceBroker.BrokerID, r.UnfenceBroker.Epoch
		}
		broker, ok := b.next.brokers[id]
		if !ok || broker.Epoch != epoch {
			return fmt.Errorf("broker %d epoch %d is not registered", id, epoch)
		}
		broker.Fenced = fenced
		b.brokers()[id] = broker
	case r.Topic != nil:
		rec := r.Topic
		if rec.Name == "" {
			return fmt.Errorf("a topic needs a name")
		}
		if _, exists := b.next.names[rec.Name]; exists {
			return &TopicExistsError{Name: rec.Name}
		}
		if _, exists := b.next.topics[rec.ID]; exists {
			return fmt.Errorf("topic id %s is taken", rec.ID)
		}
		topics, names := b.topics()
		topics[rec.ID], names[rec.Name] = &Topic{Name: rec.Name, ID: rec.ID, Configs: map[string]string{}}, rec.ID
		b.copied[rec.ID] = true
	case r.Partition != nil:
		rec := r.Partition
		t, err := b.topic(rec.TopicID)
		if err != nil {
			return err
		}
		if rec.Partition != int32(len(t.Partitions)) {
			return fmt.Errorf("topic %q: partition %d created out of order (it has %d)", t.Name, rec.Partition, len(t.Partitions))
		}
		p := Partition{Replicas: slices.Clone(rec.Replicas), ISR: slices.Clone(rec.ISR), Leader: rec.Leader,
			LeaderEpoch: rec.LeaderEpoch, PartitionEpoch: rec.PartitionEpoch, Adding: slices.Clone(rec.Adding), Removing: slices.Clone(rec.Removing)}
		if err := p.check(); err != nil {
			return fmt.Errorf("topic %q partition %d: %w", t.Name, rec.Partition, err)
		}
		t.Partitions = append(t.Partitions, p)
	case r.PartitionChange != nil:
		rec := r.PartitionChange
		t, err := b.topic(rec.TopicID)
		if err != nil {
			return err
		}
		if rec.Partition < 0 || int(rec.Partition) >= len(t.Partitions) {
			return fmt.Errorf("topic %q has no partition %d", t.Name, rec.Partition)
		}
		p := t.Partitions[rec.Partition]
		if err := b.checkExpected(rec, p); err != nil {
			return fmt.Errorf("topic %q partition %d: %w", t.Name, rec.Partition, err)
		}
		if rec.Reassignment != nil {
			p.Replicas, p.Adding, p.Removing = slices.Clone(rec.Reassignment.Replicas), slices.Clone(rec.Reassignment.Adding), slices.Clone(rec.Reassignment.Removing)
		}
		if rec.ISR != nil {
			p.ISR = slices.Clone(rec.ISR)
		}
		if rec.Leader != nil {
			p.Leader = *rec.Leader
			p.LeaderEpoch++
		}
		p.PartitionEpoch++
		if err := p.check(); err != nil {
			return fmt.Errorf("topic %q partition %d: %w", t.Name, rec.Partition, err)
		}
		t.Partitions[rec.Partition] = p
	case r.Config != nil:
		rec := r.Config
		t, err := b.topic(rec.TopicID)
		if err != nil {
			return err
		}
		if rec.Value == nil {
			delete(t.Configs, rec.Name)
		} else {
			t.Configs[rec.Name] = *rec.Value
		}
	case r.RemoveTopic != nil:
		t, ok := b.next.topics[r.RemoveTopic.TopicID]
		if !ok {
			return fmt.Errorf("unknown topic id %s", r.RemoveTopic.TopicID)
		}
		topics, names := b.topics()
		delete(topics, t.ID)
		delete(names, t.Name)
	case r.ProducerIDs != nil:
		rec := r.ProducerIDs
		if rec.FirstID != b.next.NextProducerID || rec.Size < 1 {
			return fmt.Errorf("producer id block [%d, +%d) does not start at the next free id %d", rec.FirstID, rec.Size, b.next.NextProducerID)
		}
		b.next.NextProducerID += rec.Size
	default:
		return fmt.Errorf("a record of no known kind")
	}
	return nil
}

// checkExpected refuses a change decided on another state of p, or a
// leader's that adds a fenced broker to the ISR, in the order Kafka's
// controller checks an AlterPartition.
func (b *builder) checkExpected(rec *PartitionChangeRecord, p Partition) error {
	if rec.ExpectLeaderEpoch != nil && *rec.ExpectLeaderEpoch != p.LeaderEpoch {
		return &StaleChangeError{Reason: fmt.Sprintf("decided at leader epoch %d, the partition is at %d", *rec.ExpectLeaderEpoch, p.LeaderEpoch), Code: StaleLeaderEpoch}
	}
	if rec.FromLeader != nil && *rec.FromLeader != p.Leader {
		return &StaleChangeError{Reason: fmt.Sprintf("broker %d asked, but %d leads", *rec.FromLeader, p.Leader), Code: NotLeader}
	}
	if rec.ExpectPartitionEpoch != nil && *rec.ExpectPartitionEpoch != p.PartitionEpoch {
		return &StaleChangeError{Reason: fmt.Sprintf("decided at partition epoch %d, the partition is at %d", *rec.ExpectPartitionEpoch, p.PartitionEpoch), Code: StalePartitionEpoch}
	}
	if rec.FromLeader != nil {
		for _, r := range rec.ISR {
			if broker, ok := b.next.brokers[r]; !slices.Contains(p.ISR, r) && (!ok || broker.Fenced) {
				return &StaleChangeError{Reason: fmt.Sprintf("broker %d is fenced and cannot join the ISR", r), Code: IneligibleReplica}
			}
		}
	}
	return nil
}

// StaleChangeError is a partition change refused because the partition
// moved on since it was decided (or a replica may not join the ISR).
type StaleChangeError struct {
	Reason string
	Code   StaleCode
}

// StaleCode says why a change was stale, in Kafka's terms.
type StaleCode int

// Why a change is stale: FENCED_LEADER_EPOCH, INVALID_REQUEST (sender not
// the leader), INVALID_UPDATE_VERSION, INELIGIBLE_REPLICA.
const (
	StaleLeaderEpoch StaleCode = iota + 1
	NotLeader
	StalePartitionEpoch
	IneligibleReplica
)

func (e *StaleChangeError) Error() string { return "stale partition change: " + e.Reason }

// check applies the invariants of an assignment: replicas distinct, the
// ISR a subset of them, the leader in the ISR (or none).
func (p Partition) check() error {
	if len(p.Replicas) == 0 {
		return fmt.Errorf("no replicas")
	}
	seen := map[int32]bool{}
	for _, r := range p.Replicas {
		if seen[r] {
			return fmt.Errorf("replica %d listed twice in %v", r, p.Replicas)
		}
		seen[r] = true
	}
	for _, r := range p.ISR {
		if !seen[r] {
			return fmt.Errorf("ISR %v is not a subset of the replicas %v", p.ISR, p.Replicas)
		}
	}
	if p.Leader != -1 && !slices.Contains(p.ISR, p.Leader) {
		return fmt.Errorf("leader %d is not in the ISR %v", p.Leader, p.ISR)
	}
	for _, r := range append(slices.Clone(p.Adding), p.Removing...) {
		if !seen[r] {
			return fmt.Errorf("reassignment: broker %d (adding %v, removing %v) is not a replica %v", r, p.Adding, p.Removing, p.Replicas)
		}
	}
	for _, r := range p.Adding {
		if slices.Contains(p.Removing, r) {
			return fmt.Errorf("reassignment: broker %d is both added and removed", r)
		}
	}
	if len(p.Target()) == 0 {
		return fmt.Errorf("reassignment: no replica would be left")
	}
	return nil
}

// TopicExistsError is a TopicRecord for a name already taken.
type TopicExistsError struct{ Name string }

func (e *TopicExistsError) Error() string { return fmt.Sprintf("topic %q already exists", e.Name) }

// Records are the records that rebuild the image from Empty: a snapshot
// of the log up to it.
func (img *Image) Records() []Record {
	var records []Record
	if img.ClusterID != "" {
		records = append(records, Record{Cluster: &ClusterRecord{ClusterID: img.ClusterID}})
	}
	for _, b := range img.Brokers() {
		records = append(records, Record{RegisterBroker: &RegisterBrokerRecord{BrokerID: b.ID, Epoch: b.Epoch, Advertise: b.Advertise, InterBroker: b.InterBroker}})
		if !b.Fenced {
			records = append(records, Record{UnfenceBroker: &UnfenceBrokerRecord{BrokerID: b.ID, Epoch: b.Epoch}})
		}
	}
	if img.NextProducerID > 0 {
		records = append(records, Record{ProducerIDs: &ProducerIDsRecord{BrokerID: -1, FirstID: 0, Size: img.NextProducerID}})
	}
	for _, t := range img.Topics() {
		records = append(records, Record{Topic: &TopicRecord{Name: t.Name, ID: t.ID}})
		for i, p := range t.Partitions {
			records = append(records, Record{Partition: &PartitionRecord{TopicID: t.ID, Partition: int32(i), Replicas: p.Replicas, ISR: p.ISR,
				Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, Adding: p.Adding, Removing: p.Removing}})
		}
		for _, name := range slices.Sorted(maps.Keys(t.Configs)) {
			value := t.Configs[name]
			records = append(records, Record{Config: &ConfigRecord{TopicID: t.ID, Name: name, Value: &value}})
		}
	}
	return records
}
