package schedule

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	return loc
}

func TestNext(t *testing.T) {
	tests := []struct {
		name string
		spec string
		zone string // zone of from; "" is UTC
		from string // RFC 3339
		want []string
	}{
		{name: "every minute", spec: "* * * * *", from: "2026-01-01T10:00:30Z",
			want: []string{"2026-01-01T10:01:00Z", "2026-01-01T10:02:00Z"}},
		{name: "strictly after", spec: "0 * * * *", from: "2026-01-01T10:00:00Z",
			want: []string{"2026-01-01T11:00:00Z"}},
		{name: "step", spec: "*/15 * * * *", from: "2026-01-01T10:07:00Z",
			want: []string{"2026-01-01T10:15:00Z", "2026-01-01T10:30:00Z", "2026-01-01T10:45:00Z", "2026-01-01T11:00:00Z"}},
		{name: "start/step", spec: "5/20 * * * *", from: "2026-01-01T10:00:00Z",
			want: []string{"2026-01-01T10:05:00Z", "2026-01-01T10:25:00Z", "2026-01-01T10:45:00Z", "2026-01-01T11:05:00Z"}},
		{name: "range and list", spec: "0 9-10,17 * * *", from: "2026-01-01T09:30:00Z",
			want: []string{"2026-01-01T10:00:00Z", "2026-01-01T17:00:00Z", "2026-01-02T09:00:00Z"}},
		{name: "range with step", spec: "0 6-16/4 * * *", from: "2026-01-01T00:00:00Z",
			want: []string{"2026-01-01T06:00:00Z", "2026-01-01T10:00:00Z", "2026-01-01T14:00:00Z", "2026-01-02T06:00:00Z"}},
		{name: "weekdays by name", spec: "30 8 * * mon-fri", from: "2026-01-02T09:00:00Z", // a Friday
			want: []string{"2026-01-05T08:30:00Z", "2026-01-06T08:30:00Z"}},
		{name: "day of month or day of week", spec: "0 0 13 * 5", from: "2026-02-01T00:00:00Z",
			want: []string{"2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z"}},
		{name: "day of month with star weekday", spec: "0 0 31 * *", from: "2026-01-31T12:00:00Z",
			want: []string{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"}},
		{name: "month names", spec: "0 0 1 jan,jul ?", from: "2026-02-01T00:00:00Z",
			want: []string{"2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"}},
		{name: "leap day", spec: "0 0 29 2 *", from: "2026-01-01T00:00:00Z",
			want: []string{"2028-02-29T00:00:00Z"}},
		{name: "never", spec: "0 0 30 2 *", from: "2026-01-01T00:00:00Z",
			want: []string{"0001-01-01T00:00:00Z"}},
		{name: "hourly", spec: "@hourly", from: "2026-01-01T10:59:00Z",
			want: []string{"2026-01-01T11:00:00Z"}},
		{name: "weekly", spec: "@weekly", from: "2026-01-01T00:00:00Z",
			want: []string{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}},
		{name: "yearly", spec: "@yearly", from: "2026-06-01T00:00:00Z",
			want: []string{"2027-01-01T00:00:00Z"}},
		{name: "every", spec: "@every 90s", from: "2026-01-01T10:00:00.5Z",
			want: []string{"2026-01-01T10:01:30Z", "2026-01-01T10:03:00Z"}},
		{name: "zone of the time", spec: "0 9 * * *", zone: "Asia/Tokyo", from: "2026-01-01T10:00:00+09:00",
			want: []string{"2026-01-02T09:00:00+09:00"}},
		{name: "CRON_TZ prefix", spec: "CRON_TZ=Asia/Tokyo 0 9 * * *", from: "2026-01-01T00:30:00Z",
			want: []string{"2026-01-02T09:00:00+09:00"}},
		{name: "TZ prefix", spec: "TZ=America/New_York 0 9 * * *", from: "2026-01-01T00:30:00Z",
			want: []string{"2026-01-01T09:00:00-05:00"}},
		{name: "half-hour zone", spec: "0 * * * *", zone: "Asia/Kolkata", from: "2026-01-01T10:10:00+05:30",
			want: []string{"2026-01-01T11:00:00+05:30"}},
		// 2026-03-08 02:00 does not exist in New York: 02:30 is skipped that day.
		{name: "DST gap skips", spec: "30 2 * * *", zone: "America/New_York", from: "2026-03-07T03:00:00-05:00",
			want: []string{"2026-03-09T02:30:00-04:00"}},
		{name: "DST gap hourly", spec: "0 * * * *", zone: "America/New_York", from: "2026-03-08T00:30:00-05:00",
			want: []string{"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"}},
		// 2026-11-01 01:00-02:00 happens twice in New York: 01:30 runs twice.
		{name: "DST overlap repeats", spec: "30 1 * * *", zone: "America/New_York", from: "2026-11-01T00:00:00-04:00",
			want: []string{"2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-05:00"}},
		{name: "DST overlap other hour", spec: "0 2 * * *", zone: "America/New_York", from: "2026-11-01T01:10:00-05:00",
			want: []string{"2026-11-01T02:00:00-05:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.spec)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.spec, err)
			}
			loc := time.UTC
			if tt.zone != "" {
				loc = mustLoad(t, tt.zone)
			}
			from, err := time.Parse(time.RFC3339Nano, tt.from)
			if err != nil {
				t.Fatal(err)
			}
			at := from.In(loc)
			var got []string
			for range tt.want {
				at = s.Next(at)
				got = append(got, at.Format(time.RFC3339))
				if at.IsZero() {
					break
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Next from %s (-want +got):\n%s", tt.from, diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, spec string }{
		{"empty", ""},
		{"four fields", "* * * *"},
		{"six fields", "* * * * * *"},
		{"minute too big", "60 * * * *"},
		{"hour too big", "0 24 * * *"},
		{"day zero", "0 0 0 * *"},
		{"weekday seven", "0 0 * * 7"},
		{"bad name", "0 0 * foo *"},
		{"reversed range", "5-1 * * * *"},
		{"zero step", "*/0 * * * *"},
		{"two slashes", "*/2/3 * * * *"},
		{"bad descriptor", "@fortnightly"},
		{"bad every", "@every soon"},
		{"bad zone", "CRON_TZ=Mars/Olympus 0 0 * * *"},
		{"zone only", "TZ=UTC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.spec); err == nil {
				t.Errorf("Parse(%q) = nil error, want one", tt.spec)
			}
		})
	}
}
