package replicaset

import (
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// pod builds a test pod; opts edit it.
func pod(name string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, UID: types.UID(name),
			CreationTimestamp: metav1.NewTime(now.Add(-time.Hour)),
		},
		Spec:   corev1.PodSpec{NodeName: "node-a"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func unassigned(p *corev1.Pod) { p.Spec.NodeName = "" }

func onNode(n string) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Spec.NodeName = n } }

func phase(ph corev1.PodPhase) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Status.Phase = ph } }

func readySince(d time.Duration) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
			Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-d)),
		})
	}
}

func restarts(n int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: "c", RestartCount: n})
	}
}

func createdAgo(d time.Duration) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(now.Add(-d)) }
}

func cost(c int) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Annotations = map[string]string{deletionCostAnnotation: strconv.Itoa(c)}
	}
}

func names(pods []*corev1.Pod) []string {
	out := []string{}
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func TestPodsToDelete(t *testing.T) {
	tests := []struct {
		name    string
		pods    []*corev1.Pod
		related []*corev1.Pod // nil: the pods themselves
		n       int
		want    []string
	}{
		{
			name: "unassigned before assigned",
			pods: []*corev1.Pod{pod("assigned", phase(corev1.PodPending)), pod("unassigned", unassigned, phase(corev1.PodPending))},
			n:    1, want: []string{"unassigned"},
		},
		{
			name: "pending before unknown before running",
			pods: []*corev1.Pod{pod("running"), pod("unknown", phase(corev1.PodUnknown)), pod("pending", phase(corev1.PodPending))},
			n:    2, want: []string{"pending", "unknown"},
		},
		{
			name: "not ready before ready",
			pods: []*corev1.Pod{pod("ready", readySince(time.Hour)), pod("not-ready")},
			n:    1, want: []string{"not-ready"},
		},
		{
			name: "lower deletion cost first, even if ready for less time",
			pods: []*corev1.Pod{pod("cheap-old", readySince(time.Hour), cost(-5)), pod("new", readySince(time.Second))},
			n:    1, want: []string{"cheap-old"},
		},
		{
			name: "doubled-up node first",
			pods: []*corev1.Pod{pod("alone", onNode("b"), readySince(time.Hour)), pod("crowded-1", readySince(time.Hour)), pod("crowded-2", readySince(time.Hour))},
			n:    1, want: []string{"crowded-1"},
		},
		{
			name: "ready for less time first",
			pods: []*corev1.Pod{pod("long", readySince(10*time.Hour), onNode("x")), pod("short", readySince(time.Minute), onNode("y"))},
			n:    1, want: []string{"short"},
		},
		{
			name: "more restarts first",
			pods: []*corev1.Pod{pod("calm", onNode("x"), restarts(0)), pod("flappy", onNode("y"), restarts(7))},
			n:    1, want: []string{"flappy"},
		},
		{
			name: "newer first",
			pods: []*corev1.Pod{pod("old", onNode("x"), createdAgo(100*time.Hour)), pod("new", onNode("y"), createdAgo(time.Minute))},
			n:    1, want: []string{"new"},
		},
		{
			name: "same log bucket: by uid",
			pods: []*corev1.Pod{pod("b", onNode("x"), createdAgo(time.Hour)), pod("a", onNode("y"), createdAgo(time.Hour+time.Second))},
			n:    1, want: []string{"a"},
		},
		{
			name: "all of them",
			pods: []*corev1.Pod{pod("x"), pod("y")},
			n:    5, want: []string{"x", "y"},
		},
		{
			name: "none",
			pods: []*corev1.Pod{pod("x")},
			n:    0, want: []string{},
		},
		{
			name: "full order",
			pods: []*corev1.Pod{
				pod("ready-old", readySince(50*time.Hour), onNode("n1")),
				pod("ready-new", readySince(time.Minute), onNode("n2")),
				pod("running-not-ready", onNode("n3")),
				pod("pending", phase(corev1.PodPending), onNode("n4")),
				pod("unassigned", unassigned),
			},
			n:    4,
			want: []string{"unassigned", "pending", "running-not-ready", "ready-new"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			related := tt.related
			if related == nil {
				related = tt.pods
			}
			got := names(podsToDelete(tt.pods, related, tt.n, now))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSlowStart(t *testing.T) {
	tests := []struct {
		name       string
		count      int
		failAt     int // the call number (1-based) that fails; 0: none
		wantOK     int
		wantCalled int
	}{
		{name: "all succeed", count: 10, wantOK: 10, wantCalled: 10},
		{name: "zero", count: 0, wantOK: 0, wantCalled: 0},
		{name: "first fails: one call", count: 10, failAt: 1, wantOK: 0, wantCalled: 1},
		{name: "fails in batch of two", count: 10, failAt: 2, wantOK: 2, wantCalled: 3},
		{name: "fails in batch of four", count: 10, failAt: 5, wantOK: 6, wantCalled: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			ok, err := slowStart(tt.count, 1, func() error {
				if int(calls.Add(1)) == tt.failAt {
					return errors.New("refused")
				}
				return nil
			})
			if (err != nil) != (tt.failAt != 0) {
				t.Errorf("err = %v, want error: %v", err, tt.failAt != 0)
			}
			if ok != tt.wantOK || int(calls.Load()) != tt.wantCalled {
				t.Errorf("succeeded %d of %d calls, want %d of %d", ok, calls.Load(), tt.wantOK, tt.wantCalled)
			}
		})
	}
}
