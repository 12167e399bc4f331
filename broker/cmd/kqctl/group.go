package main

import (
	"fmt"
	"io"

	"github.com/kqstack/kqstack/broker/ops"
)

func groupList(e *env, args []string) error {
	if _, err := parseInterleaved(newFlags(e, "group list"), args); err != nil {
		return err
	}
	groups, err := e.client.Groups(e.ctx)
	if err != nil {
		return err
	}
	if groups == nil {
		groups = []ops.GroupSummary{}
	}
	return e.out.print(groups, func(w io.Writer) {
		row(w, "GROUP", "STATE", "PROTOCOL-TYPE", "MEMBERS", "LAG")
		for _, g := range groups {
			row(w, g.Group, g.State, g.ProtocolType, g.Members, g.Lag)
		}
	})
}

// groupDescribe prints what kafka-consumer-groups.sh --describe prints.
func groupDescribe(e *env, args []string) error {
	names, err := parseInterleaved(newFlags(e, "group describe"), args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return usageError{"group describe needs one group"}
	}
	d, err := e.client.Group(e.ctx, names[0])
	if err != nil {
		return err
	}
	return e.out.print(d, func(w io.Writer) {
		fmt.Fprintf(w, "Group %s is %s (%d members, total lag %d)\n\n", d.Group, d.State, len(d.Members), d.Lag)
		row(w, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID")
		for _, p := range d.Partitions {
			row(w, d.Group, p.Topic, p.Partition, offsetText(p.Committed), p.End, p.Lag, orDash(p.MemberID), orDash(p.Host), orDash(p.ClientID))
		}
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupResetOffsets plans the reset and, only with --execute, applies it.
func groupResetOffsets(e *env, args []string) error {
	flags := newFlags(e, "group reset-offsets")
	topic := flags.String("topic", "", "the topic whose offsets move (every partition)")
	to := flags.String("to", "", "earliest, latest, offset:N, shift:N (negative goes back), or a time (RFC 3339 or Unix ms)")
	execute := flags.Bool("execute", false, "apply the new offsets (without it: a dry run that only prints them)")
	names, err := parseInterleaved(flags, args)
	if err != nil {
		return err
	}
	if len(names) != 1 || *topic == "" || *to == "" {
		return usageError{"group reset-offsets needs a group, --topic and --to"}
	}
	target, err := ops.ParseResetTarget(*to)
	if err != nil {
		return usageError{err.Error()}
	}
	plan, err := e.client.PlanReset(e.ctx, names[0], *topic, target)
	if err != nil {
		return err
	}
	if *execute {
		if err := e.client.ApplyReset(e.ctx, names[0], plan); err != nil {
			return err
		}
	}
	result := map[string]any{"group": names[0], "executed": *execute, "offsets": plan}
	return e.out.print(result, func(w io.Writer) {
		row(w, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET")
		for _, r := range plan {
			row(w, names[0], r.Topic, r.Partition, offsetText(r.Current), r.New)
		}
		if !*execute {
			fmt.Fprintln(w, "\ndry run: nothing changed; add --execute to apply")
		} else {
			fmt.Fprintln(w, "\noffsets reset")
		}
	})
}

func groupDelete(e *env, args []string) error {
	names, err := parseInterleaved(newFlags(e, "group delete"), args)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return usageError{"group delete needs at least one group"}
	}
	if err := e.client.DeleteGroups(e.ctx, names...); err != nil {
		return err
	}
	return e.out.print(map[string]any{"deleted": names}, func(w io.Writer) {
		for _, n := range names {
			fmt.Fprintf(w, "deleted group %s\n", n)
		}
	})
}

func clusterDescribe(e *env, args []string) error {
	if _, err := parseInterleaved(newFlags(e, "cluster describe"), args); err != nil {
		return err
	}
	info, err := e.client.Cluster(e.ctx)
	if err != nil {
		return err
	}
	return e.out.print(info, func(w io.Writer) {
		fmt.Fprintf(w, "Cluster %s: %d brokers, controller %d, %d topics, %d partitions (%d under-replicated, %d offline)\n\n",
			info.ClusterID, len(info.Brokers), info.ControllerID, info.Topics, info.Partitions, info.UnderReplicated, info.Offline)
		row(w, "NODE", "HOST", "PORT", "RACK", "STATE")
		for _, b := range info.Brokers {
			rack := "-"
			if b.Rack != nil {
				rack = *b.Rack
			}
			state := "in service"
			if b.Fenced {
				state = "fenced"
			}
			if b.NodeID == info.ControllerID {
				state += ", controller"
			}
			row(w, b.NodeID, b.Host, b.Port, rack, state)
		}
	})
}
