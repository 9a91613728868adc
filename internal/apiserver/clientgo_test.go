package apiserver

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

func TestClientGoConfigMaps(t *testing.T) {
	env := newTestEnv(t)
	cs := env.clientset(t)
	ctx := context.Background()
	cms := cs.CoreV1().ConfigMaps("default")

	created, err := cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "one", Labels: map[string]string{"app": "a"}},
		Data:       map[string]string{"k": "v"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.UID == "" || created.ResourceVersion == "" || created.Namespace != "default" {
		t.Fatalf("create returned %+v", created.ObjectMeta)
	}

	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	got, err := cms.Get(ctx, "one", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if diff := cmp.Diff(created.Data, got.Data); diff != "" {
		t.Errorf("get data (-want +got):\n%s", diff)
	}

	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "one"}}, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: got %v, want AlreadyExists", err)
	}

	// Dry run: nothing is stored.
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dry"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("dry-run create: %v", err)
	}
	if _, err := cms.Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after dry run: got %v, want NotFound", err)
	}

	list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "app=a"})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "one" || list.ResourceVersion == "" {
		t.Errorf("list = %d items, rv %q", len(list.Items), list.ResourceVersion)
	}
	if list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "app=b"}); err != nil || len(list.Items) != 0 {
		t.Errorf("list app=b: %v, %v", err, list)
	}

	patches := []struct {
		name string
		pt   types.PatchType
		data string
		want map[string]string
	}{
		{"merge", types.MergePatchType, `{"data":{"m":"1"}}`, map[string]string{"k": "v", "m": "1"}},
		{"strategic", types.StrategicMergePatchType, `{"data":{"s":"2","m":null}}`, map[string]string{"k": "v", "s": "2"}},
		{"json", types.JSONPatchType, `[{"op":"replace","path":"/data/k","value":"w"}]`, map[string]string{"k": "w", "s": "2"}},
	}
	for _, p := range patches {
		out, err := cms.Patch(ctx, "one", p.pt, []byte(p.data), metav1.PatchOptions{})
		if err != nil {
			t.Fatalf("%s patch: %v", p.name, err)
		}
		if diff := cmp.Diff(p.want, out.Data); diff != "" {
			t.Errorf("%s patch data (-want +got):\n%s", p.name, diff)
		}
	}
	if _, err := cms.Patch(ctx, "missing", types.MergePatchType, []byte(`{"data":{"a":"b"}}`), metav1.PatchOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("patch of missing object: got %v, want NotFound", err)
	}
	if _, err := cms.Patch(ctx, "one", types.MergePatchType, []byte(`{"metadata":{"name":"other"}}`), metav1.PatchOptions{}); !apierrors.IsBadRequest(err) {
		t.Errorf("patch renaming: got %v, want BadRequest", err)
	}

	// Update with a stale resourceVersion conflicts.
	stale := created.DeepCopy()
	stale.Data = map[string]string{"x": "y"}
	if _, err := cms.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale update: got %v, want Conflict", err)
	}
	cur, err := cms.Get(ctx, "one", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Data = map[string]string{"x": "y"}
	updated, err := cms.Update(ctx, cur, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if diff := cmp.Diff(map[string]string{"x": "y"}, updated.Data); diff != "" {
		t.Errorf("update data (-want +got):\n%s", diff)
	}

	if err := cms.Delete(ctx, "one", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := cms.Delete(ctx, "one", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("second delete: got %v, want NotFound", err)
	}

	// The watch saw: 3 patches, the update, the delete.
	wantTypes := []watch.EventType{watch.Modified, watch.Modified, watch.Modified, watch.Modified, watch.Deleted}
	var gotTypes []watch.EventType
	timeout := time.After(10 * time.Second)
	for len(gotTypes) < len(wantTypes) {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %v", gotTypes)
			}
			if _, ok := ev.Object.(*corev1.ConfigMap); !ok {
				t.Fatalf("watch event object %T: %+v", ev.Object, ev.Object)
			}
			gotTypes = append(gotTypes, ev.Type)
		case <-timeout:
			t.Fatalf("watch: got %v before timeout", gotTypes)
		}
	}
	if diff := cmp.Diff(wantTypes, gotTypes); diff != "" {
		t.Errorf("watch events (-want +got):\n%s", diff)
	}

	// deletecollection
	for _, n := range []string{"a", "b"} {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{"del": "yes"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := cms.List(ctx, metav1.ListOptions{Limit: 1, LabelSelector: "del=yes"})
	if err != nil || len(page.Items) != 1 || page.Continue == "" {
		t.Fatalf("first page: %v %+v", err, page)
	}
	page2, err := cms.List(ctx, metav1.ListOptions{Limit: 1, LabelSelector: "del=yes", Continue: page.Continue})
	if err != nil || len(page2.Items) != 1 || page2.Items[0].Name == page.Items[0].Name || page2.Continue != "" {
		t.Fatalf("second page: %v %+v", err, page2)
	}
	if err := cms.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "del=yes"}); err != nil {
		t.Fatalf("deletecollection: %v", err)
	}
	if list, err := cms.List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 0 {
		t.Errorf("after deletecollection: %v, %d items", err, len(list.Items))
	}
}
