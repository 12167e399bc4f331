package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/storage"
)

func TestCompactionTopicConfigs(t *testing.T) {
	defaults := config.Default().Log
	cases := []struct {
		configs map[string]string
		want    error // from checkTopicConfigs
		check   func(storage.Config) bool
	}{
		{nil, nil, func(c storage.Config) bool {
			return c.Cleanup == storage.CleanupDelete && c.DeleteRetention == 24*time.Hour &&
				c.MinCleanableDirtyRatio == 0.5 && c.MinCompactionLag == 0 && c.MaxCompactionLag == 0
		}},
		{map[string]string{"cleanup.policy": "compact"}, nil, func(c storage.Config) bool { return c.Cleanup == storage.CleanupCompact }},
		{map[string]string{"cleanup.policy": "compact,delete"}, nil, func(c storage.Config) bool { return c.Cleanup == storage.CleanupCompactDelete }},
		{map[string]string{"cleanup.policy": "delete, compact"}, nil, func(c storage.Config) bool { return c.Cleanup == storage.CleanupCompactDelete }},
		{map[string]string{"cleanup.policy": "delete"}, nil, func(c storage.Config) bool { return c.Cleanup == storage.CleanupDelete }},
		{map[string]string{"cleanup.policy": ""}, kerr.InvalidConfig, nil},
		{map[string]string{"cleanup.policy": "compact,"}, kerr.InvalidConfig, nil},
		{map[string]string{"cleanup.policy": "archive"}, kerr.InvalidConfig, nil},
		{map[string]string{"delete.retention.ms": "60000", "min.compaction.lag.ms": "1000", "max.compaction.lag.ms": "3600000",
			"min.cleanable.dirty.ratio": "0.01"}, nil, func(c storage.Config) bool {
			return c.DeleteRetention == time.Minute && c.MinCompactionLag == time.Second && c.MaxCompactionLag == time.Hour &&
				c.MinCleanableDirtyRatio == 0.01
		}},
		{map[string]string{"max.compaction.lag.ms": "9223372036854775806"}, nil, func(c storage.Config) bool { return c.MaxCompactionLag > 290*365*24*time.Hour }},
		{map[string]string{"delete.retention.ms": "-1"}, kerr.InvalidConfig, nil},
		{map[string]string{"min.cleanable.dirty.ratio": "1.5"}, kerr.InvalidConfig, nil},
		{map[string]string{"min.cleanable.dirty.ratio": "NaN"}, kerr.InvalidConfig, nil},
		{map[string]string{"max.compaction.lag.ms": "0"}, kerr.InvalidConfig, nil},
		{map[string]string{"min.compaction.lag.ms": "7200000", "max.compaction.lag.ms": "3600000"}, kerr.InvalidConfig, nil},
	}
	for _, tt := range cases {
		err := checkTopicConfigs(tt.configs)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%v: %v, want %v", tt.configs, err, tt.want)
			continue
		}
		if err != nil {
			continue
		}
		c := settingsFor(tt.configs, defaults).log
		if err := c.Validate(); err != nil || !tt.check(c) {
			t.Errorf("%v: storage config %+v (%v)", tt.configs, c, err)
		}
	}
	described := map[string]ConfigEntry{}
	for _, e := range effectiveConfigs(nil, defaults) {
		described[e.Name] = e
	}
	for name, want := range map[string]string{"cleanup.policy": "delete", "delete.retention.ms": "86400000",
		"min.cleanable.dirty.ratio": "0.5", "min.compaction.lag.ms": "0", "max.compaction.lag.ms": "9223372036854775807"} {
		if e := described[name]; e.Value != want || !e.IsDefault || e.Synonym == "" {
			t.Errorf("%s described as %+v, want the default %s with its broker synonym", name, e, want)
		}
	}
}
