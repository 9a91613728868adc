package endpoints

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTriggerTimes(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc", CreationTimestamp: metav1.NewTime(created)}}
	ready := func(name string, at time.Time) *corev1.Pod {
		p := testPod(name, "10.0.0.1", true, nil)
		p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(at)
		return p
	}
	tt := NewTriggerTimes()
	a := ready("a", created.Add(time.Minute))

	got, commit := tt.Observe("ns/svc", svc, []*corev1.Pod{a})
	if !got.Equal(created) {
		t.Fatalf("first observation: got %v, want the service's creation %v", got, created)
	}
	// The write failed: nothing committed, so the retry reports the same time.
	if again, _ := tt.Observe("ns/svc", svc, []*corev1.Pod{a}); !again.Equal(created) {
		t.Fatalf("retry after an uncommitted sync: got %v, want %v", again, created)
	}
	commit()
	if got, _ := tt.Observe("ns/svc", svc, []*corev1.Pod{a}); !got.IsZero() {
		t.Fatalf("nothing changed since the committed sync: got %v, want zero", got)
	}

	b := ready("b", created.Add(2*time.Minute))
	got, commit = tt.Observe("ns/svc", svc, []*corev1.Pod{a, b})
	if want := created.Add(2 * time.Minute); !got.Equal(want) {
		t.Fatalf("new pod: got %v, want its ready transition %v", got, want)
	}
	commit()

	tt.Forget("ns/svc")
	if got, _ := tt.Observe("ns/svc", svc, []*corev1.Pod{a, b}); !got.Equal(created) {
		t.Fatalf("after Forget: got %v, want %v", got, created)
	}
}
