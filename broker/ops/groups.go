package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// GroupSummary is a row of group list.
type GroupSummary struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Members      int    `json:"members"`
	Lag          int64  `json:"lag"`
}

// GroupMember is a member and what it is assigned.
type GroupMember struct {
	MemberID   string   `json:"member_id"`
	InstanceID string   `json:"instance_id,omitempty"`
	ClientID   string   `json:"client_id"`
	Host       string   `json:"host"`
	Assigned   []string `json:"assigned"` // topic-partition, e.g. orders-3
}

// GroupPartition is a row of group describe, as kafka-consumer-groups.sh
// --describe prints it.
type GroupPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"current_offset"` // -1: nothing committed
	End       int64  `json:"log_end_offset"`
	Lag       int64  `json:"lag"`
	MemberID  string `json:"consumer_id,omitempty"`
	Host      string `json:"host,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
}

// GroupDetail is what group describe shows.
type GroupDetail struct {
	Group        string           `json:"group"`
	State        string           `json:"state"`
	ProtocolType string           `json:"protocol_type"`
	Protocol     string           `json:"protocol"`
	Members      []GroupMember    `json:"members"`
	Partitions   []GroupPartition `json:"partitions"`
	Lag          int64            `json:"lag"`
}

// Groups lists the consumer groups with their state and total lag.
func (c *Client) Groups(ctx context.Context) ([]GroupSummary, error) {
	listed, err := c.admin.ListGroups(ctx)
	if err != nil {
		return nil, c.explain(err)
	}
	var out []GroupSummary
	if groups := listed.Groups(); len(groups) > 0 {
		lags, err := c.admin.Lag(ctx, groups...)
		if err != nil {
			return nil, c.explain(err)
		}
		for _, l := range lags.Sorted() {
			out = append(out, GroupSummary{Group: l.Group, State: l.State, ProtocolType: l.ProtocolType, Members: len(l.Members), Lag: l.Lag.Total()})
		}
	}
	return out, nil
}

// Group describes a group: members, assignments, committed offsets, log
// end offsets and lag per partition.
func (c *Client) Group(ctx context.Context, group string) (GroupDetail, error) {
	lags, err := c.admin.Lag(ctx, group)
	if err != nil {
		return GroupDetail{}, c.explain(err)
	}
	l, ok := lags[group]
	if !ok {
		return GroupDetail{}, fmt.Errorf("group %q: no answer", group)
	}
	if err := l.Error(); err != nil {
		return GroupDetail{}, fmt.Errorf("group %s: %w", group, err)
	}
	if l.State == "Dead" && len(l.Lag) == 0 {
		return GroupDetail{}, fmt.Errorf("group %q does not exist; list groups with: kqctl group list", group)
	}
	d := GroupDetail{Group: group, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol, Lag: l.Lag.Total()}
	for _, m := range l.Members {
		gm := GroupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
		if m.InstanceID != nil {
			gm.InstanceID = *m.InstanceID
		}
		if assigned, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range assigned.Topics {
				for _, p := range t.Partitions {
					gm.Assigned = append(gm.Assigned, t.Topic+"-"+strconv.Itoa(int(p)))
				}
			}
		}
		d.Members = append(d.Members, gm)
	}
	for _, p := range l.Lag.Sorted() {
		gp := GroupPartition{Topic: p.Topic, Partition: p.Partition, Committed: p.Commit.At, End: p.End.Offset, Lag: p.Lag}
		if p.Member != nil {
			gp.MemberID, gp.Host, gp.ClientID = p.Member.MemberID, p.Member.ClientHost, p.Member.ClientID
		}
		d.Partitions = append(d.Partitions, gp)
	}
	return d, nil
}

// DeleteGroups deletes groups; a group with members cannot be deleted.
func (c *Client) DeleteGroups(ctx context.Context, groups ...string) error {
	resps, err := c.admin.DeleteGroups(ctx, groups...)
	if err != nil {
		return c.explain(err)
	}
	var errs []error
	for _, g := range groups {
		r := resps[g]
		switch {
		case errors.Is(r.Err, kerr.NonEmptyGroup):
			errs = append(errs, fmt.Errorf("group %s still has members; stop its consumers first", g))
		case errors.Is(r.Err, kerr.GroupIDNotFound):
			errs = append(errs, fmt.Errorf("group %q does not exist", g))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("deleting group %s: %w", g, r.Err))
		}
	}
	return errors.Join(errs...)
}

// ResetTarget says where reset-offsets moves a group's offsets: exactly
// one of the fields is set.
type ResetTarget struct {
	Earliest, Latest bool
	Time             time.Time // the first offset at or after it
	Offset           *int64
	ShiftBy          *int64 // from the committed offset
}

// ParseResetTarget reads "earliest", "latest", "offset:N", "shift:N" or a
// time (RFC 3339, or a Unix time in milliseconds).
func ParseResetTarget(s string) (ResetTarget, error) {
	switch {
	case s == "earliest":
		return ResetTarget{Earliest: true}, nil
	case s == "latest":
		return ResetTarget{Latest: true}, nil
	case strings.HasPrefix(s, "offset:"), strings.HasPrefix(s, "shift:"):
		kind, number, _ := strings.Cut(s, ":")
		n, err := strconv.ParseInt(number, 10, 64)
		if err != nil {
			return ResetTarget{}, fmt.Errorf("%q: %s needs a number, e.g. %s:100", s, kind, kind)
		}
		if kind == "offset" {
			return ResetTarget{Offset: &n}, nil
		}
		return ResetTarget{ShiftBy: &n}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return ResetTarget{Time: t}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ResetTarget{Time: time.UnixMilli(ms)}, nil
	}
	return ResetTarget{}, fmt.Errorf("reset target %q: use earliest, latest, offset:N, shift:N, or a time (2026-11-22T10:00:00Z or Unix milliseconds)", s)
}

// ResetRow is one partition's planned move.
type ResetRow struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Current   int64  `json:"current_offset"`
	New       int64  `json:"new_offset"`
}

// Position is where a target lands in one partition, clamped to the log.
type Position struct {
	Partition int32
	Start     int64 // the log start offset
	End       int64 // the log end offset
	Target    int64
}

// Positions resolves a target (earliest, latest, an offset, a time) in
// every partition of topic; ShiftBy is taken from the log start.
func (c *Client) Positions(ctx context.Context, topic string, to ResetTarget) ([]Position, error) {
	if err := c.RequireTopic(ctx, topic); err != nil {
		return nil, err
	}
	starts, err := c.admin.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, c.explainPartitions(topic, starts, err)
	}
	ends, err := c.admin.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, c.explainPartitions(topic, ends, err)
	}
	var atTime kadm.ListedOffsets
	if !to.Time.IsZero() {
		if atTime, err = c.admin.ListOffsetsAfterMilli(ctx, to.Time.UnixMilli(), topic); err != nil {
			return nil, c.explain(err)
		}
	}
	var out []Position
	ends.Each(func(end kadm.ListedOffset) {
		start, _ := starts.Lookup(topic, end.Partition)
		p := Position{Partition: end.Partition, Start: start.Offset, End: end.Offset}
		switch {
		case to.Earliest:
			p.Target = p.Start
		case to.Latest:
			p.Target = p.End
		case to.Offset != nil:
			p.Target = *to.Offset
		case to.ShiftBy != nil:
			p.Target = p.Start + *to.ShiftBy
		default:
			o, _ := atTime.Lookup(topic, end.Partition)
			p.Target = o.Offset
		}
		p.Target = min(max(p.Target, p.Start), p.End)
		out = append(out, p)
	})
	slices.SortFunc(out, func(a, b Position) int { return int(a.Partition - b.Partition) })
	return out, nil
}

// Committed returns a group's committed offsets on topic by partition
// (partitions with nothing committed are absent).
func (c *Client) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	committed, err := c.admin.FetchOffsets(ctx, group)
	if err != nil {
		return nil, c.explain(err)
	}
	out := map[int32]int64{}
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// PlanReset computes the new offsets of group on topic (every partition),
// clamped to the log's start and end, without changing anything.
func (c *Client) PlanReset(ctx context.Context, group, topic string, to ResetTarget) ([]ResetRow, error) {
	positions, err := c.Positions(ctx, topic, to)
	if err != nil {
		return nil, err
	}
	committed, err := c.Committed(ctx, group, topic)
	if err != nil {
		return nil, err
	}
	var rows []ResetRow
	for _, p := range positions {
		current, ok := committed[p.Partition]
		if !ok {
			current = -1
		}
		target := p.Target
		if to.ShiftBy != nil && ok {
			target = min(max(current+*to.ShiftBy, p.Start), p.End)
		}
		rows = append(rows, ResetRow{Topic: topic, Partition: p.Partition, Current: current, New: target})
	}
	return rows, nil
}

// ApplyReset commits the planned offsets. Kafka only lets a group with no
// members have its offsets set from outside, and so does this.
func (c *Client) ApplyReset(ctx context.Context, group string, rows []ResetRow) error {
	described, err := c.admin.DescribeGroups(ctx, group)
	if err != nil {
		return c.explain(err)
	}
	if d, ok := described[group]; ok && len(d.Members) > 0 {
		return fmt.Errorf("group %s has %d active members (state %s); stop its consumers, then reset", group, len(d.Members), d.State)
	}
	offsets := kadm.Offsets{}
	for _, r := range rows {
		offsets.AddOffset(r.Topic, r.Partition, r.New, -1)
	}
	resps, err := c.admin.CommitOffsets(ctx, group, offsets)
	if err != nil {
		return c.explain(err)
	}
	return resps.Error()
}
