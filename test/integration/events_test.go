package integration

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// TestEventsBothAPIs: events.k8s.io/v1 and core/v1 events are one
// collection, as upstream: what is written through one is read, selected
// by field and watched through the other, with the fields mapped
// (regarding = involvedObject, note = message).
func TestEventsBothAPIs(t *testing.T) {
	t.Parallel()
	cs := sharedServer.clientset(t)
	ns := newNamespace(t, cs)
	ctx := testContext(t, 60*time.Second)
	now := metav1.NewMicroTime(time.Now().Truncate(time.Microsecond))

	w, err := cs.EventsV1().Events(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "regarding.name=web-1"})
	if err != nil {
		t.Fatalf("watching events.k8s.io events: %v", err)
	}
	defer w.Stop()

	created, err := cs.EventsV1().Events(ns).Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "through-events"},
		EventTime:  now, ReportingController: "test-controller", ReportingInstance: "test-node",
		Action: "Testing", Reason: "Tested", Type: corev1.EventTypeNormal, Note: "written through events.k8s.io",
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-0"},
		Series:    &eventsv1.EventSeries{Count: 2, LastObservedTime: now},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating through events.k8s.io: %v", err)
	}
	core, err := cs.CoreV1().Events(ns).Get(ctx, "through-events", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading it through core/v1: %v", err)
	}
	if core.Message != "written through events.k8s.io" || core.InvolvedObject.Name != "web-0" || core.ReportingController != "test-controller" ||
		core.Series == nil || core.Series.Count != 2 || core.ResourceVersion != created.ResourceVersion || !core.EventTime.Equal(&now) {
		t.Errorf("through core/v1: %+v", core)
	}
	for sel, want := range map[string]int{"source=test-controller": 1, "involvedObject.name=web-0": 1, "reportingComponent=other": 0} {
		list, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil || len(list.Items) != want {
			t.Errorf("core/v1 list with %s: %d items, %v; want %d", sel, len(list.Items), err, want)
		}
	}

	if _, err := cs.CoreV1().Events(ns).Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "through-core"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-1"},
		Reason:         "Pulled", Message: "written through core", Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, Count: 3,
		FirstTimestamp: metav1.NewTime(now.Time), LastTimestamp: metav1.NewTime(now.Time),
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating through core/v1: %v", err)
	}
	ev, err := cs.EventsV1().Events(ns).Get(ctx, "through-core", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading it through events.k8s.io: %v", err)
	}
	if ev.Note != "written through core" || ev.Regarding.Name != "web-1" || ev.DeprecatedSource.Component != "kubelet" || ev.DeprecatedCount != 3 || ev.APIVersion != "" && ev.APIVersion != "events.k8s.io/v1" {
		t.Errorf("through events.k8s.io: %+v", ev)
	}
	for sel, want := range map[string]int{"regarding.name=web-1": 1, "reportingController=test-controller": 1, "regarding.kind=Pod": 2, "deprecatedSource=kubelet": 1} {
		list, err := cs.EventsV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil || len(list.Items) != want {
			t.Errorf("events.k8s.io list with %s: %d items, %v; want %d", sel, len(list.Items), err, want)
		}
	}

	// The watch selected on regarding.name sees the core event only.
	select {
	case e := <-w.ResultChan():
		got, ok := e.Object.(*eventsv1.Event)
		if e.Type != watch.Added || !ok || got.Name != "through-core" || got.Note != "written through core" {
			t.Errorf("watch event %s %#v, want ADDED through-core as events.k8s.io/v1", e.Type, e.Object)
		}
	case <-ctx.Done():
		t.Fatal("no watch event for the core event")
	}

	if err := cs.CoreV1().Events(ns).Delete(ctx, "through-events", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting through core/v1: %v", err)
	}
	if _, err := cs.EventsV1().Events(ns).Get(ctx, "through-events", metav1.GetOptions{}); !isNotFound(err) {
		t.Errorf("events.k8s.io get after the core delete: %v, want 404", err)
	}
}
