package queue

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newPod(name string) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name)}}
}

func popName(t *testing.T, q *Queue) (QueuedPod, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	qp, err := q.Pop(ctx)
	if err != nil {
		t.Fatalf("Pop: %v", err)
	}
	return qp, qp.Pod.Name
}

func TestOrderByPriorityThenAge(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	q := New(c.now)
	q.Add(newPod("old-low"), 0)
	c.advance(time.Second)
	q.Add(newPod("new-high"), 100)
	c.advance(time.Second)
	q.Add(newPod("new-low"), 0)
	c.advance(time.Second)
	q.Add(newPod("old-high"), 100) // newest, but same priority as new-high
	var got []string
	for i := 0; i < 4; i++ {
		_, name := popName(t, q)
		got = append(got, name)
	}
	want := []string{"new-high", "old-high", "old-low", "new-low"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pop order (-want +got):\n%s", diff)
	}
}

func TestUnschedulableWaitsForEventAndBackoff(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	q := New(c.now)
	q.Add(newPod("p"), 0)
	qp, _ := popName(t, q)
	q.Requeue(qp, []string{"NodeResourcesFit"}, false)
	if diff := cmp.Diff([3]int{0, 0, 1}, lens(q)); diff != "" {
		t.Fatalf("after requeue (-want +got):\n%s", diff)
	}
	// Time alone does not move it (short of the 5 minute safety net).
	c.advance(time.Minute)
	q.Flush()
	if diff := cmp.Diff([3]int{0, 0, 1}, lens(q)); diff != "" {
		t.Fatalf("after a minute (-want +got):\n%s", diff)
	}
	// An event for another plugin does not move it.
	q.MoveOnEvent([]string{"InterPodAffinity"})
	if diff := cmp.Diff([3]int{0, 0, 1}, lens(q)); diff != "" {
		t.Fatalf("after unrelated event (-want +got):\n%s", diff)
	}
	// A relevant event does; its back-off (1s) is long over.
	q.MoveOnEvent([]string{"NodeResourcesFit"})
	if diff := cmp.Diff([3]int{1, 0, 0}, lens(q)); diff != "" {
		t.Fatalf("after relevant event (-want +got):\n%s", diff)
	}
	qp, _ = popName(t, q)
	if qp.Attempts != 2 {
		t.Errorf("attempts = %d, want 2", qp.Attempts)
	}
	// Second failure: back-off 2s; an event right away sends it to backoff.
	q.Requeue(qp, nil, false)
	q.MoveOnEvent(nil)
	if diff := cmp.Diff([3]int{0, 1, 0}, lens(q)); diff != "" {
		t.Fatalf("event during back-off (-want +got):\n%s", diff)
	}
	c.advance(1500 * time.Millisecond)
	q.Flush()
	if diff := cmp.Diff([3]int{0, 1, 0}, lens(q)); diff != "" {
		t.Fatalf("back-off not over (-want +got):\n%s", diff)
	}
	c.advance(time.Second)
	q.Flush()
	if diff := cmp.Diff([3]int{1, 0, 0}, lens(q)); diff != "" {
		t.Fatalf("back-off over (-want +got):\n%s", diff)
	}
}

func TestEventWhileInFlightGoesToBackoff(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	q := New(c.now)
	q.Add(newPod("p"), 0)
	qp, _ := popName(t, q)
	q.MoveOnEvent(nil) // e.g. a node was added while p was being scheduled
	q.Requeue(qp, []string{"NodeResourcesFit"}, false)
	if diff := cmp.Diff([3]int{0, 1, 0}, lens(q)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestDeleteInFlight(t *testing.T) {
	q := New(nil)
	q.Add(newPod("p"), 0)
	qp, _ := popName(t, q)
	q.Delete(qp.Pod.UID)
	q.Requeue(qp, nil, true)
	if diff := cmp.Diff([3]int{0, 0, 0}, lens(q)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestPopUnblocksOnClose(t *testing.T) {
	q := New(nil)
	done := make(chan error, 1)
	go func() {
		_, err := q.Pop(context.Background())
		done <- err
	}()
	q.Close()
	select {
	case err := <-done:
		if err != ErrClosed {
			t.Errorf("Pop = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pop did not return after Close")
	}
}

func lens(q *Queue) [3]int {
	a, b, u := q.Len()
	return [3]int{a, b, u}
}

func TestSpecUpdateRetriesAtOnce(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	q := New(c.now)
	q.Add(newPod("p"), 0)
	qp, _ := popName(t, q)
	q.Requeue(qp, []string{"TaintToleration"}, false)
	c.advance(2 * time.Second)

	status := qp.Pod.DeepCopy()
	status.Status.Conditions = []v1.PodCondition{{Type: v1.PodScheduled, Status: v1.ConditionFalse}}
	q.Update(status, 0) // our own status write: no reason to retry
	if diff := cmp.Diff([3]int{0, 0, 1}, lens(q)); diff != "" {
		t.Fatalf("after status update (-want +got):\n%s", diff)
	}
	tolerant := status.DeepCopy()
	tolerant.Spec.Tolerations = []v1.Toleration{{Operator: v1.TolerationOpExists}}
	q.Update(tolerant, 0)
	if diff := cmp.Diff([3]int{1, 0, 0}, lens(q)); diff != "" {
		t.Fatalf("after spec update (-want +got):\n%s", diff)
	}
}
