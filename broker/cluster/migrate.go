package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"time"

	"github.com/kqstack/kqstack/broker/metadata"
	"github.com/kqstack/kqstack/broker/storage"
)

// legacyMetadataFile is where kqbroker kept its metadata before the
// metadata quorum: a JSON file, replaced atomically on each change.
const legacyMetadataFile = "kqbroker-metadata.json"

// legacyMetadata is that file.
type legacyMetadata struct {
	ClusterID      string        `json:"cluster_id"`
	NextProducerID int64         `json:"next_producer_id"`
	Topics         []legacyTopic `json:"topics"`
}

type legacyTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// bootstrap writes the first records of a new metadata log: the cluster
// id, and everything an earlier kqbroker's legacyMetadataFile held (topic
// ids, partitions, configs, the producer ids it had reserved), in one
// entry, so a crash leaves the old file in charge or the log, never half
// of each. Then, at every start, this broker registers with a new epoch.
func (c *Cluster) bootstrap(ctx context.Context) error {
	legacyPath := filepath.Join(c.cfg.DataDir, legacyMetadataFile)
	if c.quorum.Image().ClusterID == "" {
		records, legacy, err := c.firstRecords(legacyPath)
		if err != nil {
			return err
		}
		if err := c.proposeFirst(ctx, records); err != nil {
			return err
		}
		if legacy != nil {
			c.logger.Info("took over the metadata of an earlier kqbroker", "file", legacyPath, "topics", len(legacy.Topics),
				"next_producer_id", legacy.NextProducerID, "cluster_id", legacy.ClusterID)
		}
	}
	// The old file is kept beside the log, renamed, once the log has it.
	if storage.Exists(c.fs, legacyPath) {
		if err := c.fs.Rename(legacyPath, legacyPath+".migrated"); err != nil {
			return err
		}
	}
	epoch := int64(1)
	if b, ok := c.quorum.Image().Broker(c.cfg.NodeID); ok {
		epoch = b.Epoch + 1
	}
	// Registered fenced: in a cluster, the controller puts the broker in
	// service at its first heartbeat (Kafka's way); alone, it does so
	// itself.
	records := []metadata.Record{{RegisterBroker: &metadata.RegisterBrokerRecord{BrokerID: c.cfg.NodeID, Epoch: epoch, Advertise: c.cfg.AdvertisedAddress(), InterBroker: c.cfg.InterBrokerAddress()}}}
	if c.controllerState.controller == nil {
		records = append(records, metadata.Record{UnfenceBroker: &metadata.UnfenceBrokerRecord{BrokerID: c.cfg.NodeID, Epoch: epoch}})
	}
	if _, err := c.quorum.Propose(ctx, records...); err != nil {
		return fmt.Errorf("registering broker %d: %w", c.cfg.NodeID, err)
	}
	if c.controllerState.controller == nil {
		return nil
	}
	return c.waitInService(ctx)
}

// waitInService heartbeats until the controller has put this broker in
// service.
func (c *Cluster) waitInService(ctx context.Context) error {
	interval := time.Duration(c.cfg.BrokerHeartbeatIntervalMs) * time.Millisecond
	for {
		c.controllerTick(interval)
		if b, ok := c.quorum.Image().Broker(c.cfg.NodeID); ok && !b.Fenced {
			return nil
		}
		if err := c.sleep(ctx, min(interval, 100*time.Millisecond)); err != nil {
			return fmt.Errorf("broker %d was not put in service by the controller: %w", c.cfg.NodeID, err)
		}
	}
}

// proposeFirst writes the first records; when voters start together, one
// of them names the cluster first and the others' batches are refused:
// they wait until they have applied the winner's.
func (c *Cluster) proposeFirst(ctx context.Context, records []metadata.Record) error {
	_, err := c.quorum.Propose(ctx, records...)
	for err != nil && c.quorum.Image().ClusterID == "" {
		if c.sleep(ctx, 10*time.Millisecond) != nil {
			return fmt.Errorf("writing the first metadata records: %w", err)
		}
	}
	return nil
}

// firstRecords is the cluster record of a new log, with the contents of
// the legacy file when there is one.
func (c *Cluster) firstRecords(legacyPath string) ([]metadata.Record, *legacyMetadata, error) {
	data, err := storage.ReadFile(c.fs, legacyPath)
	if errors.Is(err, fs.ErrNotExist) {
		clusterID := c.cfg.ClusterID
		if clusterID == "" {
			clusterID = newClusterID()
		}
		return []metadata.Record{{Cluster: &metadata.ClusterRecord{ClusterID: clusterID}}}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if c.cfg.ControllerQuorumVoters != "" {
		return nil, nil, fmt.Errorf("%s is the metadata of a single kqbroker: start this broker alone once (without controller_quorum_voters) so it takes it over, then make it part of a cluster", legacyPath)
	}
	var legacy legacyMetadata
	if err := json.Unmarshal(data, &legacy); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", legacyPath, err)
	}
	if legacy.ClusterID == "" {
		legacy.ClusterID = newClusterID()
	}
	records := []metadata.Record{{Cluster: &metadata.ClusterRecord{ClusterID: legacy.ClusterID}}}
	if legacy.NextProducerID > 0 {
		// Ids below it may have been handed out: they stay taken.
		records = append(records, metadata.Record{ProducerIDs: &metadata.ProducerIDsRecord{BrokerID: c.cfg.NodeID, FirstID: 0, Size: legacy.NextProducerID}})
	}
	sort.Slice(legacy.Topics, func(i, j int) bool { return legacy.Topics[i].Name < legacy.Topics[j].Name })
	for _, t := range legacy.Topics {
		var id TopicID
		if err := id.UnmarshalText([]byte(t.ID)); err != nil {
			return nil, nil, fmt.Errorf("%s: topic %q: %w", legacyPath, t.Name, err)
		}
		records = append(records, metadata.Record{Topic: &metadata.TopicRecord{Name: t.Name, ID: id}})
		for i := range t.Partitions { // a single broker's: all of them here
			self := c.cfg.NodeID
			records = append(records, metadata.Record{Partition: &metadata.PartitionRecord{TopicID: id, Partition: i,
				Replicas: []int32{self}, ISR: []int32{self}, Leader: self}})
		}
		names := make([]string, 0, len(t.Configs))
		for name := range t.Configs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			value := t.Configs[name]
			records = append(records, metadata.Record{Config: &metadata.ConfigRecord{TopicID: id, Name: name, Value: &value}})
		}
	}
	return records, &legacy, nil
}
