package job

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackoffRemaining(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type rec struct{ succeeded, failed int }
	tests := []struct {
		name    string
		records []rec
		elapsed time.Duration
		want    time.Duration
	}{
		{name: "no failures", want: 0},
		{name: "one failure", records: []rec{{0, 1}}, want: 10 * time.Second},
		{name: "two failures", records: []rec{{0, 1}, {0, 1}}, want: 20 * time.Second},
		{name: "three at once", records: []rec{{0, 3}}, want: 40 * time.Second},
		{name: "capped", records: []rec{{0, 12}}, want: 6 * time.Minute},
		{name: "time passes", records: []rec{{0, 2}}, elapsed: 15 * time.Second, want: 5 * time.Second},
		{name: "success resets", records: []rec{{0, 3}, {1, 0}}, want: 0},
		{name: "failure after success", records: []rec{{0, 3}, {1, 1}}, want: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackoffs()
			for _, r := range tt.records {
				b.record("ns/j", r.succeeded, r.failed, t0)
			}
			got := b.remaining("ns/j", DefaultBackoff, DefaultMaxBackoff, t0.Add(tt.elapsed))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("remaining (-want +got):\n%s", diff)
			}
		})
	}
}
