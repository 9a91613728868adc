package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSchedulerFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		want    schedulerFlags
		wantErr string
	}{
		{
			name: "all flags",
			args: []string{"--kubeconfig", "/k", "--leader-elect", "--percentage-of-nodes-to-score", "30", "--log-format", "json", "-v"},
			want: schedulerFlags{kubeconfig: "/k", leaderElect: true, percentage: 30, schedulerName: "default-scheduler", log: logFlags{format: "json", verbose: true}},
		},
		{name: "kubeconfig required", args: nil, wantErr: "--kubeconfig is required"},
		{name: "percentage range", args: []string{"--kubeconfig", "/k", "--percentage-of-nodes-to-score", "101"}, wantErr: "within 0-100"},
		{name: "extra argument", args: []string{"--kubeconfig", "/k", "x"}, wantErr: `unexpected argument "x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr strings.Builder
			got, err := parseSchedulerFlags(tc.args, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, stderr.String())
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(schedulerFlags{}, logFlags{})); diff != "" {
				t.Errorf("flags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunSchedulerBadKubeconfig(t *testing.T) {
	t.Parallel()
	var stderr strings.Builder
	if code := runScheduler([]string{"--kubeconfig", "/does/not/exist"}, &stderr); code != exitError {
		t.Errorf("exit code = %d, want %d; stderr:\n%s", code, exitError, stderr.String())
	}
	if !strings.Contains(stderr.String(), "reading kubeconfig") {
		t.Errorf("stderr lacks the cause:\n%s", stderr.String())
	}
}
