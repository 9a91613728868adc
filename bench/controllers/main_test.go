package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDeploymentDone(t *testing.T) {
	d := func(gen, observed int64, replicas, updated, available int32) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Generation: gen},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: replicas,
				UpdatedReplicas: updated, AvailableReplicas: available},
		}
	}
	tests := []struct {
		name string
		d    *appsv1.Deployment
		gen  int64
		all  bool
		want bool
	}{
		{"no deployment yet", nil, 1, false, false},
		{"done", d(2, 2, 10, 10, 10), 2, false, true},
		{"generation not observed", d(2, 1, 10, 10, 10), 2, false, false},
		{"older generation than the update", d(1, 1, 10, 10, 10), 2, false, false},
		{"not all updated", d(2, 2, 10, 9, 10), 2, false, false},
		{"not all available", d(2, 2, 10, 10, 9), 2, false, false},
		{"old pods left, all not asked", d(2, 2, 12, 10, 10), 2, false, true},
		{"old pods left, all asked", d(2, 2, 12, 10, 10), 2, true, false},
		{"no old pods, all asked", d(2, 2, 10, 10, 10), 2, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deploymentDone(tt.d, tt.gen, 10, tt.all); got != tt.want {
				t.Errorf("deploymentDone() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		p    int
		want time.Duration
	}{{0, 1}, {50, 5}, {90, 9}, {99, 10}, {100, 10}}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, percentile(ds, tt.p)); diff != "" {
			t.Errorf("percentile(%d) (-want +got):\n%s", tt.p, diff)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

// TestRunSmall runs the whole benchmark, in process, on a small
// Deployment, so that it keeps working as the controllers change.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	o := options{inProcess: true, replicas: 20, nodes: 2, kubeletWorkers: 8, timeout: 2 * time.Minute}
	if err := run(ctx, o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	for _, want := range []string{goalCreated, goalAvailable, goalComplete, goalOldGone, "fake kubelet"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
