package registry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func cr(obj map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: obj}
}

// TestUnstructuredFields checks the top-level field handling of custom
// resources: status carried over on main updates, everything but status
// on status updates, and which changes bump the generation.
func TestUnstructuredFields(t *testing.T) {
	meta := map[string]any{"name": "a"}
	old := cr(map[string]any{"apiVersion": "x/v1", "kind": "K", "metadata": meta, "spec": map[string]any{"n": int64(1)}, "status": map[string]any{"ok": true}})

	t.Run("main update keeps the stored status", func(t *testing.T) {
		o := cr(map[string]any{"apiVersion": "x/v1", "kind": "K", "metadata": meta, "spec": map[string]any{"n": int64(2)}, "status": map[string]any{"ok": false}})
		copyFields(o, old.DeepCopy(), true, "Status")
		if diff := cmp.Diff(map[string]any{"ok": true}, o.Object["status"]); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
		noStatus := cr(map[string]any{"spec": map[string]any{}})
		o2 := cr(map[string]any{"spec": map[string]any{}, "status": map[string]any{"x": "y"}})
		copyFields(o2, noStatus, true, "Status")
		if _, ok := o2.Object["status"]; ok {
			t.Errorf("status kept although the stored object has none: %v", o2.Object)
		}
	})
	t.Run("status update keeps all but status", func(t *testing.T) {
		o := cr(map[string]any{"apiVersion": "x/v1", "kind": "K", "metadata": map[string]any{"name": "a", "labels": map[string]any{"l": "v"}}, "spec": map[string]any{"n": int64(9)}, "extra": "new", "status": map[string]any{"ok": false}})
		copyFields(o, old.DeepCopy(), false, "TypeMeta", "ObjectMeta", "Status")
		want := map[string]any{"apiVersion": "x/v1", "kind": "K", "metadata": map[string]any{"name": "a", "labels": map[string]any{"l": "v"}}, "spec": map[string]any{"n": int64(1)}, "status": map[string]any{"ok": false}}
		if diff := cmp.Diff(want, o.Object); diff != "" {
			t.Errorf("object (-want +got):\n%s", diff)
		}
	})
	tests := []struct {
		name       string
		change     func(o *unstructured.Unstructured)
		withStatus bool
		want       bool
	}{
		{name: "spec", change: func(o *unstructured.Unstructured) { o.Object["spec"] = map[string]any{"n": int64(2)} }, want: true},
		{name: "metadata", change: func(o *unstructured.Unstructured) { o.Object["metadata"] = map[string]any{"name": "b"} }},
		{name: "status with a status subresource", change: func(o *unstructured.Unstructured) { o.Object["status"] = nil }, withStatus: true},
		{name: "status without one", change: func(o *unstructured.Unstructured) { o.Object["status"] = nil }, want: true},
		{name: "new top-level field", change: func(o *unstructured.Unstructured) { o.Object["data"] = "x" }, want: true},
		{name: "removed top-level field", change: func(o *unstructured.Unstructured) { delete(o.Object, "spec") }, want: true},
	}
	for _, tc := range tests {
		t.Run("generation: "+tc.name, func(t *testing.T) {
			o := old.DeepCopy()
			tc.change(o)
			if got := specChanged(o, old, tc.withStatus); got != tc.want {
				t.Errorf("specChanged = %v, want %v", got, tc.want)
			}
		})
	}
	if !hasField(cr(nil), "Spec") || !hasField(cr(nil), "Status") {
		t.Error("custom resources have a spec and a status")
	}
}
