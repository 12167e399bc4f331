package ops

import (
	"strings"
	"testing"
	"time"
)

func TestParseResetTarget(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in    string
		check func(ResetTarget) bool
	}{
		{"earliest", func(r ResetTarget) bool { return r.Earliest }},
		{"latest", func(r ResetTarget) bool { return r.Latest }},
		{"offset:42", func(r ResetTarget) bool { return r.Offset != nil && *r.Offset == 42 }},
		{"shift:-10", func(r ResetTarget) bool { return r.ShiftBy != nil && *r.ShiftBy == -10 }},
		{"2026-11-22T10:00:00Z", func(r ResetTarget) bool { return r.Time.Equal(at) }},
		{"1795341600000", func(r ResetTarget) bool { return r.Time.Equal(at) }},
	} {
		got, err := ParseResetTarget(tc.in)
		if err != nil || !tc.check(got) {
			t.Errorf("%q: %+v %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"", "sideways", "offset:x", "shift:"} {
		if _, err := ParseResetTarget(bad); err == nil || !strings.Contains(err.Error(), "earliest") && !strings.Contains(err.Error(), "needs a number") {
			t.Errorf("%q: want an error that says what to write, got %v", bad, err)
		}
	}
}

func TestValidTopicName(t *testing.T) {
	for _, ok := range []string{"orders", "payment-update-paystatus-topic.dlq", "A_1"} {
		if err := ValidTopicName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "bad name", "ü", strings.Repeat("x", 250)} {
		if err := ValidTopicName(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
