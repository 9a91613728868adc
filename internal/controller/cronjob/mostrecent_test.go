package cronjob

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/controller/cronjob/schedule"
)

func TestMostRecent(t *testing.T) {
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name       string
		spec       string
		created    string
		last       string // status.lastScheduleTime; "" is nil
		deadline   *int64
		now        string
		want       string // "" is none
		wantMissed int    // -1: more than tooManyMissed
	}{
		{name: "none yet", spec: "*/5 * * * *", created: "2026-01-01T10:00:30Z", now: "2026-01-01T10:04:59Z", want: "", wantMissed: 0},
		{name: "exactly now", spec: "*/5 * * * *", created: "2026-01-01T10:00:30Z", now: "2026-01-01T10:05:00Z", want: "2026-01-01T10:05:00Z", wantMissed: 1},
		{name: "two missed, latest wins", spec: "*/5 * * * *", created: "2026-01-01T10:00:30Z", now: "2026-01-01T10:12:00Z", want: "2026-01-01T10:10:00Z", wantMissed: 2},
		{name: "since last schedule", spec: "*/5 * * * *", created: "2026-01-01T09:00:00Z", last: "2026-01-01T10:10:00Z", now: "2026-01-01T10:12:00Z", want: "", wantMissed: 0},
		{name: "starting deadline bounds the search", spec: "*/5 * * * *", created: "2026-01-01T09:00:00Z", deadline: ptr.To[int64](60), now: "2026-01-01T10:12:00Z", want: "", wantMissed: 0},
		{name: "within starting deadline", spec: "*/5 * * * *", created: "2026-01-01T09:00:00Z", deadline: ptr.To[int64](200), now: "2026-01-01T10:12:00Z", want: "2026-01-01T10:10:00Z", wantMissed: 1},
		{name: "too many missed", spec: "* * * * *", created: "2026-01-01T00:00:00Z", now: "2026-01-03T10:12:30Z", want: "2026-01-03T10:12:00Z", wantMissed: -1},
		// Gaps of one and three days: the skip-ahead must still find Friday.
		{name: "too many missed, weekdays", spec: "0 9 * * 1-5", created: "2025-01-01T00:00:00Z", now: "2026-01-05T08:00:00Z", want: "2026-01-02T09:00:00Z", wantMissed: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sched, err := schedule.Parse(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(ts(tt.created))}}
			cj.Spec.StartingDeadlineSeconds = tt.deadline
			if tt.last != "" {
				l := metav1.NewTime(ts(tt.last))
				cj.Status.LastScheduleTime = &l
			}
			got, missed := mostRecent(cj, sched, ts(tt.now))
			gotS := ""
			if !got.IsZero() {
				gotS = got.UTC().Format(time.RFC3339)
			}
			if diff := cmp.Diff(tt.want, gotS); diff != "" {
				t.Errorf("time (-want +got):\n%s", diff)
			}
			if tt.wantMissed == -1 {
				if missed <= tooManyMissed {
					t.Errorf("missed = %d, want > %d", missed, tooManyMissed)
				}
			} else if missed != tt.wantMissed {
				t.Errorf("missed = %d, want %d", missed, tt.wantMissed)
			}
		})
	}
}

func TestJobName(t *testing.T) {
	at := time.Date(2026, 1, 1, 10, 1, 0, 0, time.UTC)
	if diff := cmp.Diff("backup-29454361", jobName("backup", at)); diff != "" {
		t.Errorf("jobName (-want +got):\n%s", diff)
	}
	// The same instant in another zone gives the same name.
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(jobName("backup", at), jobName("backup", at.In(tokyo))); diff != "" {
		t.Errorf("jobName depends on the zone (-utc +tokyo):\n%s", diff)
	}
}
