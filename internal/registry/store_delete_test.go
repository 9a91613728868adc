package registry

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/storage"
)

func TestDelete(t *testing.T) {
	e := newTestEnv(t)
	pods := e.store(podsResource(), e.namespaces)
	cms := e.store(configMapsResource(), e.namespaces)

	pod := func(name, node string, finalizers ...string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: finalizers},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "i"}}},
		}
	}
	bg := metav1.DeletePropagationBackground
	orphan := metav1.DeletePropagationOrphan
	fg := metav1.DeletePropagationForeground

	tests := []struct {
		name        string
		pod         *corev1.Pod
		opts        metav1.DeleteOptions
		wantCode    int32
		wantDeleted bool
		// for objects kept: deletionGracePeriodSeconds and finalizers
		wantGrace      *int64
		wantFinalizers []string
	}{
		{name: "unscheduled pod goes at once", pod: pod("p1", ""), wantDeleted: true},
		{name: "bound pod is deleted gracefully", pod: pod("p2", "n1"), wantGrace: ptr(int64(30))},
		{name: "explicit grace", pod: pod("p3", "n1"), opts: metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(5))}, wantGrace: ptr(int64(5))},
		{name: "grace 0 deletes at once", pod: pod("p4", "n1"), opts: metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}, wantDeleted: true},
		{name: "finalizers hold the object", pod: pod("p5", "", "example.com/hold"), wantGrace: ptr(int64(0)), wantFinalizers: []string{"example.com/hold"}},
		{name: "orphan adds the orphan finalizer", pod: pod("p6", ""), opts: metav1.DeleteOptions{PropagationPolicy: &orphan}, wantGrace: ptr(int64(0)), wantFinalizers: []string{"orphan"}},
		{name: "foreground adds foregroundDeletion", pod: pod("p7", ""), opts: metav1.DeleteOptions{PropagationPolicy: &fg}, wantGrace: ptr(int64(0)), wantFinalizers: []string{"foregroundDeletion"}},
		{name: "background adds none", pod: pod("p8", ""), opts: metav1.DeleteOptions{PropagationPolicy: &bg}, wantDeleted: true},
		{name: "uid precondition", pod: pod("p9", ""), opts: metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr(types.UID("nope"))}}, wantCode: 409},
		{name: "resourceVersion precondition", pod: pod("p10", ""), opts: metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: ptr("1")}}, wantCode: 409},
		{name: "bad propagation policy", pod: pod("p11", ""), opts: metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletionPropagation("Sideways"))}, wantCode: 422},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := pods.Create(e.ctx, "ns1", tc.pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			got, deleted, err := pods.Delete(e.ctx, "ns1", tc.pod.Name, tc.opts)
			wantCode(t, err, tc.wantCode)
			if err != nil {
				return
			}
			if deleted != tc.wantDeleted {
				t.Errorf("deleted = %v, want %v", deleted, tc.wantDeleted)
			}
			_, getErr := pods.Get(e.ctx, "ns1", tc.pod.Name)
			if tc.wantDeleted {
				wantCode(t, getErr, 404)
				return
			}
			wantCode(t, getErr, 0)
			m := mustMeta(t, got)
			if m.DeletionTimestamp == nil {
				t.Fatalf("kept object has no deletionTimestamp")
			}
			if diff := cmp.Diff(tc.wantGrace, m.DeletionGracePeriodSeconds); diff != "" {
				t.Errorf("deletionGracePeriodSeconds (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantFinalizers, m.Finalizers); diff != "" {
				t.Errorf("finalizers (-want +got):\n%s", diff)
			}
			wantTS := e.now.Add(time.Duration(*tc.wantGrace) * time.Second).Truncate(time.Second)
			if !m.DeletionTimestamp.Time.Equal(wantTS) {
				t.Errorf("deletionTimestamp %v, want %v", m.DeletionTimestamp, wantTS)
			}
		})
	}

	t.Run("graceful: repeat keeps, shorter grace shortens, 0 deletes", func(t *testing.T) {
		if _, err := pods.Create(e.ctx, "ns1", pod("g", "n1"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		first, _, err := pods.Delete(e.ctx, "ns1", "g", metav1.DeleteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		again, deleted, err := pods.Delete(e.ctx, "ns1", "g", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(60))})
		if err != nil || deleted {
			t.Fatalf("second delete: deleted %v err %v", deleted, err)
		}
		if mustMeta(t, again).ResourceVersion != mustMeta(t, first).ResourceVersion {
			t.Errorf("a longer grace changed the object")
		}
		shorter, _, err := pods.Delete(e.ctx, "ns1", "g", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(10))})
		if err != nil {
			t.Fatal(err)
		}
		if g := mustMeta(t, shorter).DeletionGracePeriodSeconds; g == nil || *g != 10 {
			t.Errorf("grace %v, want 10", g)
		}
		if want := e.now.Add(10 * time.Second).Truncate(time.Second); !mustMeta(t, shorter).DeletionTimestamp.Time.Equal(want) {
			t.Errorf("deletionTimestamp %v, want %v", mustMeta(t, shorter).DeletionTimestamp, want)
		}
		if _, deleted, err := pods.Delete(e.ctx, "ns1", "g", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil || !deleted {
			t.Fatalf("force delete: deleted %v err %v", deleted, err)
		}
		_, err = pods.Get(e.ctx, "ns1", "g")
		wantCode(t, err, 404)
	})

	t.Run("removing the last finalizer deletes", func(t *testing.T) {
		if _, err := cms.Create(e.ctx, "ns1", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "f", Finalizers: []string{"a.example/x", "b.example/y"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, deleted, err := cms.Delete(e.ctx, "ns1", "f", metav1.DeleteOptions{}); err != nil || deleted {
			t.Fatalf("delete: deleted %v err %v", deleted, err)
		}
		// Finalizers may not be added while deleting.
		_, _, err := cms.Update(e.ctx, "ns1", "f", Main, mutate(func(c *corev1.ConfigMap) { c.Finalizers = append(c.Finalizers, "c.example/z") }), metav1.UpdateOptions{})
		wantCode(t, err, 422)
		// A client cannot clear deletionTimestamp.
		got, _, err := cms.Update(e.ctx, "ns1", "f", Main, mutate(func(c *corev1.ConfigMap) { c.DeletionTimestamp = nil; c.Finalizers = c.Finalizers[1:] }), metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if mustMeta(t, got).DeletionTimestamp == nil {
			t.Errorf("update cleared deletionTimestamp")
		}
		if _, _, err := cms.Update(e.ctx, "ns1", "f", Main, mutate(func(c *corev1.ConfigMap) { c.Finalizers = nil }), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err = cms.Get(e.ctx, "ns1", "f")
		wantCode(t, err, 404)
	})

	t.Run("dry run writes nothing", func(t *testing.T) {
		created, err := pods.Create(e.ctx, "ns1", pod("dry", "n1"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, grace := range []*int64{nil, ptr(int64(0))} {
			got, _, err := pods.Delete(e.ctx, "ns1", "dry", metav1.DeleteOptions{GracePeriodSeconds: grace, DryRun: []string{metav1.DryRunAll}})
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Errorf("grace %v: dry run returned no object", grace)
			}
			stored, err := pods.Get(e.ctx, "ns1", "dry")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(created, stored); diff != "" {
				t.Errorf("grace %v: dry run changed the object (-before +after):\n%s", grace, diff)
			}
		}
	})

	t.Run("delete collection", func(t *testing.T) {
		for _, n := range []string{"c1", "c2", "c3"} {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{"batch": "x"}}}
			if n == "c3" {
				cm.Labels["batch"] = "y"
			}
			if _, err := cms.Create(e.ctx, "ns1", cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		sel := labels.SelectorFromSet(labels.Set{"batch": "x"})
		out, err := cms.DeleteCollection(e.ctx, "ns1", storage.ListOptions{Predicate: storage.Predicate{Label: sel}}, metav1.DeleteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, cm := range out.(*corev1.ConfigMapList).Items {
			names = append(names, cm.Name)
		}
		if diff := cmp.Diff([]string{"c1", "c2"}, names); diff != "" {
			t.Errorf("deleted (-want +got):\n%s", diff)
		}
		list, err := cms.List(e.ctx, "ns1", storage.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		names = nil
		for _, cm := range list.(*corev1.ConfigMapList).Items {
			names = append(names, cm.Name)
		}
		if diff := cmp.Diff([]string{"c3"}, names); diff != "" {
			t.Errorf("left (-want +got):\n%s", diff)
		}
	})
}

func TestNamespaceDeletion(t *testing.T) {
	e := newTestEnv(t)
	cms := e.store(configMapsResource(), e.namespaces)
	if _, err := cms.Create(e.ctx, "ns1", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "content"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"default", "kube-system", "kube-public"} {
		_, _, err := e.namespaces.Delete(e.ctx, "", name, metav1.DeleteOptions{})
		wantCode(t, err, 403)
		if got, want := statusOf(err).Message, `namespaces "`+name+`" is forbidden: this namespace may not be deleted`; got != want {
			t.Errorf("message %q, want %q", got, want)
		}
	}

	obj, deleted, err := e.namespaces.Delete(e.ctx, "", "ns1", metav1.DeleteOptions{})
	if err != nil || deleted {
		t.Fatalf("delete ns1: deleted %v err %v", deleted, err)
	}
	ns := obj.(*corev1.Namespace)
	if ns.Status.Phase != corev1.NamespaceTerminating || ns.DeletionTimestamp == nil {
		t.Fatalf("phase %q deletionTimestamp %v, want Terminating and set", ns.Status.Phase, ns.DeletionTimestamp)
	}
	_, _, err = e.namespaces.Delete(e.ctx, "", "ns1", metav1.DeleteOptions{})
	wantCode(t, err, 409)

	// A status update by the namespace controller keeps it.
	if _, _, err := e.namespaces.Update(e.ctx, "", "ns1", StatusSub, mutate(func(n *corev1.Namespace) {
		n.Status.Conditions = append(n.Status.Conditions, corev1.NamespaceCondition{Type: corev1.NamespaceDeletionContentFailure, Status: corev1.ConditionFalse})
	}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Finalize changes spec.finalizers and nothing else.
	got, _, err := e.namespaces.Update(e.ctx, "", "ns1", Finalize, mutate(func(n *corev1.Namespace) {
		n.Spec.Finalizers = []corev1.FinalizerName{"example.com/mine", corev1.FinalizerKubernetes}
		n.Labels = map[string]string{"sneaky": "yes"}
	}), metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := got.(*corev1.Namespace); len(n.Labels) != 0 || len(n.Spec.Finalizers) != 2 {
		t.Errorf("finalize: labels %v finalizers %v, want no labels, 2 finalizers", n.Labels, n.Spec.Finalizers)
	}
	if _, _, err := e.namespaces.Update(e.ctx, "", "ns1", Finalize, mutate(func(n *corev1.Namespace) { n.Spec.Finalizers = nil }), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = e.namespaces.Get(e.ctx, "", "ns1")
	wantCode(t, err, 404)
}

// TestPrepareForDelete checks that what Resource.PrepareForDelete does is
// written by the first delete only (a later delete adds nothing), and that
// the finalizer it adds holds the object. It may run more than once within
// one delete (a write that races is tried again), each time on a fresh copy.
func TestPrepareForDelete(t *testing.T) {
	e := newTestEnv(t)
	res := configMapsResource()
	res.PrepareForDelete = func(obj runtime.Object) {
		cm := obj.(*corev1.ConfigMap)
		cm.Finalizers = append(cm.Finalizers, "example.com/cleanup")
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		cm.Annotations["phase"] = "terminating"
	}
	cms := e.store(res, e.namespaces)
	if _, err := cms.Create(e.ctx, "ns1", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, deleted, err := cms.Delete(e.ctx, "ns1", "c", metav1.DeleteOptions{})
	if err != nil || deleted {
		t.Fatalf("first delete: deleted=%v err=%v", deleted, err)
	}
	m := mustMeta(t, got)
	if m.DeletionTimestamp == nil || !slices.Contains(m.Finalizers, "example.com/cleanup") || m.Annotations["phase"] != "terminating" {
		t.Errorf("after the first delete: %+v", m)
	}
	if _, _, err := cms.Delete(e.ctx, "ns1", "c", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	again, err := cms.Get(e.ctx, "ns1", "c")
	if err != nil {
		t.Fatal(err)
	}
	if fins := mustMeta(t, again).Finalizers; !slices.Equal(fins, []string{"example.com/cleanup"}) {
		t.Errorf("finalizers after a second delete = %v, want the one the first added", fins)
	}
	// Removing the finalizer lets the object go.
	if _, _, err := cms.Update(e.ctx, "ns1", "c", Main, mutate(func(cm *corev1.ConfigMap) { cm.Finalizers = nil }), metav1.UpdateOptions{}); err != nil {
		t.Fatalf("removing the finalizer: %v", err)
	}
	if _, err := cms.Get(e.ctx, "ns1", "c"); !apierrors.IsNotFound(err) {
		t.Errorf("object after its finalizer went: %v", err)
	}
}
