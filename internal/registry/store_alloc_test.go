package registry

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// recordingAllocator gives every config map a "slot" annotation and
// records what it reserves and releases, as a service allocator would.
type recordingAllocator struct {
	mu    sync.Mutex
	held  map[string]bool
	calls []string
}

func (a *recordingAllocator) Allocate(_ context.Context, obj, old runtime.Object, dryRun bool) (func(), error) {
	cm := obj.(*corev1.ConfigMap)
	if old != nil || cm.Annotations["slot"] != "" {
		return nil, nil
	}
	slot := "slot-" + cm.Name
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations["slot"] = slot
	if dryRun {
		return nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held[slot] = true
	a.calls = append(a.calls, "reserve "+slot)
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.held, slot)
		a.calls = append(a.calls, "undo "+slot)
	}, nil
}

func (a *recordingAllocator) Release(_ context.Context, old, obj runtime.Object) {
	slot := old.(*corev1.ConfigMap).Annotations["slot"]
	if obj != nil && obj.(*corev1.ConfigMap).Annotations["slot"] == slot {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.held, slot)
	a.calls = append(a.calls, "release "+slot)
}

func TestStoreCallsAllocator(t *testing.T) {
	e := newTestEnv(t)
	res := configMapsResource()
	alloc := &recordingAllocator{held: map[string]bool{}}
	res.Allocator = alloc
	cms := e.store(res, e.namespaces)

	// Dry runs fill in values and reserve nothing.
	got, err := cms.Create(e.ctx, "ns1", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dry"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatal(err)
	}
	if got.(*corev1.ConfigMap).Annotations["slot"] != "slot-dry" {
		t.Errorf("dry-run create: annotations %v, want the slot filled in", got.(*corev1.ConfigMap).Annotations)
	}
	// A create reserves; a failed create (taken name) undoes.
	if _, err := cms.Create(e.ctx, "ns1", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(e.ctx, "ns1", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{}); err == nil {
		t.Fatal("second create of a: no error")
	}
	// An update that keeps the value releases nothing; deletion releases.
	if _, _, err := cms.Update(e.ctx, "ns1", "a", Main, func(_ context.Context, cur runtime.Object) (runtime.Object, error) {
		cm := cur.(*corev1.ConfigMap)
		cm.Data = map[string]string{"k": "v"}
		return cm, nil
	}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cms.Delete(e.ctx, "ns1", "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"reserve slot-a", "reserve slot-a", "undo slot-a", "release slot-a"}
	if diff := cmp.Diff(want, alloc.calls); diff != "" {
		t.Errorf("allocator calls (-want +got):\n%s", diff)
	}
}
