package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
)

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// statusCode returns the HTTP code of an API error, or 0.
func statusCode(err error) int32 {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Code
	}
	return 0
}

func TestWatchInitialEventsAndBookmark(t *testing.T) {
	t.Parallel()
	cs := sharedServer.clientset(t)
	ns := newNamespace(t, cs)
	ctx := testContext(t, 60*time.Second)
	cms := cs.CoreV1().ConfigMaps(ns)
	for _, name := range []string{"a", "b"} {
		if _, err := cms.Create(ctx, configMap(name, "1"), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create: %v", err)
		}
	}

	w, err := cms.Watch(ctx, metav1.ListOptions{
		AllowWatchBookmarks:  true,
		SendInitialEvents:    ptr.To(true),
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
	})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	next := func() watch.Event {
		t.Helper()
		select {
		case e, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("watch closed early")
			}
			return e
		case <-ctx.Done():
			t.Fatal("no watch event in time")
		}
		return watch.Event{}
	}
	name := func(e watch.Event) string {
		m, err := meta.Accessor(e.Object)
		if err != nil {
			t.Fatalf("event %v carries %T: %v", e.Type, e.Object, err)
		}
		return m.GetName()
	}

	var initial []string
	for range 2 {
		e := next()
		if e.Type != watch.Added {
			t.Fatalf("initial event: got %v, want ADDED", e.Type)
		}
		initial = append(initial, name(e))
	}
	slices.Sort(initial)
	if diff := cmp.Diff([]string{"a", "b"}, initial); diff != "" {
		t.Errorf("initial events mismatch (-want +got):\n%s", diff)
	}

	bm := next()
	if bm.Type != watch.Bookmark {
		t.Fatalf("after the initial events: got %v, want BOOKMARK", bm.Type)
	}
	m, err := meta.Accessor(bm.Object)
	if err != nil {
		t.Fatalf("bookmark object %T: %v", bm.Object, err)
	}
	if m.GetResourceVersion() == "" {
		t.Error("bookmark has no resourceVersion")
	}
	if got := m.GetAnnotations()[metav1.InitialEventsAnnotationKey]; got != "true" {
		t.Errorf("bookmark annotation %s: got %q, want \"true\"", metav1.InitialEventsAnnotationKey, got)
	}

	// Changes after the bookmark arrive in order.
	cm, err := cms.Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	cm.Data["v"] = "2"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update: %v", err)
	}
	if err := cms.Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	var got []string
	for len(got) < 2 {
		e := next()
		if e.Type == watch.Bookmark {
			continue
		}
		got = append(got, fmt.Sprintf("%s %s", e.Type, name(e)))
	}
	if diff := cmp.Diff([]string{"MODIFIED a", "DELETED b"}, got); diff != "" {
		t.Errorf("events after the bookmark mismatch (-want +got):\n%s", diff)
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	cs := sharedServer.clientset(t)
	ns := newNamespace(t, cs)
	ctx := testContext(t, 60*time.Second)
	cms := cs.CoreV1().ConfigMaps(ns)
	var want []string
	for i := range 50 {
		name := fmt.Sprintf("cm-%02d", i)
		want = append(want, name)
		if _, err := cms.Create(ctx, configMap(name, "1"), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}

	const limit = 7
	var got []string
	var listRV string
	opts := metav1.ListOptions{Limit: limit}
	for page := 0; ; page++ {
		if page > 50 {
			t.Fatal("pagination does not end")
		}
		list, err := cms.List(ctx, opts)
		if err != nil {
			t.Fatalf("list page %d: %v", page, err)
		}
		if len(list.Items) > limit {
			t.Errorf("page %d: %d items, limit %d", page, len(list.Items), limit)
		}
		if page == 0 {
			listRV = list.ResourceVersion
		} else if list.ResourceVersion != listRV {
			t.Errorf("page %d: resourceVersion %q, first page had %q", page, list.ResourceVersion, listRV)
		}
		for _, cm := range list.Items {
			got = append(got, cm.Name)
		}
		if list.Continue == "" {
			if list.RemainingItemCount != nil && *list.RemainingItemCount != 0 {
				t.Errorf("last page: remainingItemCount %d", *list.RemainingItemCount)
			}
			break
		}
		if list.RemainingItemCount != nil {
			if want := int64(50 - len(got)); *list.RemainingItemCount != want {
				t.Errorf("page %d: remainingItemCount %d, want %d", page, *list.RemainingItemCount, want)
			}
		}
		opts.Continue = list.Continue
		// A change meanwhile does not show up in later pages of the same list.
		if page == 0 {
			if _, err := cms.Create(ctx, configMap("cm-99-late", "1"), metav1.CreateOptions{}); err != nil {
				t.Fatalf("create during pagination: %v", err)
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paginated names mismatch (-want +got):\n%s", diff)
	}
}

func TestOptimisticConcurrency(t *testing.T) {
	t.Parallel()
	cs := sharedServer.clientset(t)
	ns := newNamespace(t, cs)
	ctx := testContext(t, 30*time.Second)
	cms := cs.CoreV1().ConfigMaps(ns)
	stale, err := cms.Create(ctx, configMap("cm", "1"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	fresh := stale.DeepCopy()
	fresh.Data["v"] = "2"
	if _, err := cms.Update(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update: %v", err)
	}

	stale.Data["v"] = "3"
	_, err = cms.Update(ctx, stale, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) || statusCode(err) != http.StatusConflict {
		t.Fatalf("update with a stale resourceVersion: got %v (code %d), want 409 Conflict", err, statusCode(err))
	}
	// A stale precondition on delete conflicts too.
	err = cms.Delete(ctx, "cm", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &stale.ResourceVersion}})
	if !apierrors.IsConflict(err) {
		t.Fatalf("delete with a stale resourceVersion: got %v, want 409 Conflict", err)
	}
	got, err := cms.Get(ctx, "cm", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Data["v"] != "2" {
		t.Errorf("data after the conflicting writes: got %q, want \"2\"", got.Data["v"])
	}
}

func TestNamespaceDeletionRemovesContent(t *testing.T) {
	t.Parallel()
	cs := sharedServer.clientset(t)
	ctx := testContext(t, 90*time.Second)
	ns := newNamespace(t, cs)

	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap("plain", "1"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create config map: %v", err)
	}
	held := configMap("held", "1")
	held.Finalizers = []string{"example.com/hold"}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, held, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create config map with finalizer: %v", err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment("web", 1), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}, StringData: map[string]string{"k": "v"}}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create secret: %v", err)
	}

	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete namespace: %v", err)
	}
	got, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get namespace: %v", err)
	}
	if got.Status.Phase != corev1.NamespaceTerminating || got.DeletionTimestamp == nil {
		t.Errorf("namespace being deleted: phase %q, deletionTimestamp %v; want Terminating and set", got.Status.Phase, got.DeletionTimestamp)
	}
	// No new content in a terminating namespace.
	_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap("late", "1"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("create in a terminating namespace: got %v, want 403 Forbidden", err)
	}

	// Everything without a finalizer goes; the held config map stays and the
	// namespace says why it waits.
	waitGone(t, "config map plain", func(ctx context.Context) error {
		_, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "plain", metav1.GetOptions{})
		return err
	})
	waitGone(t, "deployment web", func(ctx context.Context) error {
		_, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return err
	})
	waitGone(t, "secret s", func(ctx context.Context) error {
		_, err := cs.CoreV1().Secrets(ns).Get(ctx, "s", metav1.GetOptions{})
		return err
	})
	eventually(t, 30*time.Second, "NamespaceFinalizersRemaining condition", func() error {
		got, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.NamespaceFinalizersRemaining && c.Status == corev1.ConditionTrue &&
				strings.Contains(c.Message, "example.com/hold") {
				return nil
			}
		}
		return fmt.Errorf("conditions: %+v", got.Status.Conditions)
	})

	// Releasing the finalizer lets the config map and then the namespace go.
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := cs.CoreV1().ConfigMaps(ns).Patch(ctx, "held", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("removing the finalizer: %v", err)
	}
	waitGone(t, "namespace "+ns, func(ctx context.Context) error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err
	})
	list, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list config maps of the deleted namespace: %v", err)
	}
	if len(list.Items) != 0 {
		t.Errorf("config maps left in the deleted namespace: %d", len(list.Items))
	}
}

func TestStrategicMergePatchContainers(t *testing.T) {
	t.Parallel()
	cs := sharedServer.clientset(t)
	ns := newNamespace(t, cs)
	ctx := testContext(t, 30*time.Second)
	deps := cs.AppsV1().Deployments(ns)
	d := deployment("web", 1,
		corev1.Container{Name: "app", Image: "registry.example/app:1"},
		corev1.Container{Name: "sidecar", Image: "registry.example/sidecar:1"},
	)
	if _, err := deps.Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	patch := []byte(`{"spec":{"template":{"spec":{"containers":[
		{"name":"sidecar","image":"registry.example/sidecar:2"},
		{"name":"extra","image":"registry.example/extra:1"}
	]}}}}`)
	got, err := deps.Patch(ctx, "web", types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("strategic merge patch: %v", err)
	}
	type c struct{ Name, Image string }
	var containers []c
	for _, x := range got.Spec.Template.Spec.Containers {
		containers = append(containers, c{x.Name, x.Image})
	}
	// Merged by name: app untouched, sidecar updated, extra added.
	want := []c{
		{"sidecar", "registry.example/sidecar:2"},
		{"extra", "registry.example/extra:1"},
		{"app", "registry.example/app:1"},
	}
	byName := func(a, b c) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(containers, byName)
	slices.SortFunc(want, byName)
	if diff := cmp.Diff(want, containers); diff != "" {
		t.Errorf("containers after the patch mismatch (-want +got):\n%s", diff)
	}

	// $patch: delete removes one entry by name.
	del := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"extra","$patch":"delete"}]}}}}`)
	got, err = deps.Patch(ctx, "web", types.StrategicMergePatchType, del, metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("strategic merge patch with $patch delete: %v", err)
	}
	var names []string
	for _, x := range got.Spec.Template.Spec.Containers {
		names = append(names, x.Name)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"app", "sidecar"}, names); diff != "" {
		t.Errorf("containers after $patch delete mismatch (-want +got):\n%s", diff)
	}
	if got.Generation < 3 {
		t.Errorf("generation after two spec patches: got %d, want >= 3", got.Generation)
	}
}

func TestSelectors(t *testing.T) {
	t.Parallel()
	cs := sharedServer.clientset(t)
	ns := newNamespace(t, cs)
	ctx := testContext(t, 30*time.Second)
	cms := cs.CoreV1().ConfigMaps(ns)
	objects := []struct {
		name   string
		labels map[string]string
	}{
		{"web-a", map[string]string{"app": "web", "tier": "front"}},
		{"web-b", map[string]string{"app": "web", "tier": "back"}},
		{"db", map[string]string{"app": "db", "tier": "back"}},
		{"bare", nil},
	}
	for _, o := range objects {
		cm := configMap(o.name, "1")
		cm.Labels = o.labels
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", o.name, err)
		}
	}
	pods := cs.CoreV1().Pods(ns)
	for _, p := range []struct{ name, node string }{{"p1", "node-a"}, {"p2", "node-b"}, {"p3", ""}} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name},
			Spec: corev1.PodSpec{
				NodeName:   p.node,
				Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1"}},
			},
		}
		if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", p.name, err)
		}
	}

	tests := []struct {
		name      string
		pods      bool
		label     string
		field     string
		want      []string
		wantError bool
	}{
		{name: "label equality", label: "app=web", want: []string{"web-a", "web-b"}},
		{name: "label set", label: "tier in (back),app!=web", want: []string{"db"}},
		{name: "label exists", label: "!app", want: []string{"bare"}},
		{name: "label and field", label: "app=web", field: "metadata.name!=web-a", want: []string{"web-b"}},
		{name: "field name", field: "metadata.name=db", want: []string{"db"}},
		{name: "pod node name", pods: true, field: "spec.nodeName=node-a", want: []string{"p1"}},
		{name: "unscheduled pods", pods: true, field: "spec.nodeName=", want: []string{"p3"}},
		{name: "unsupported field", field: "data.v=1", wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := metav1.ListOptions{LabelSelector: tt.label, FieldSelector: tt.field}
			var names []string
			var err error
			if tt.pods {
				var list *corev1.PodList
				if list, err = pods.List(ctx, opts); err == nil {
					for _, p := range list.Items {
						names = append(names, p.Name)
					}
				}
			} else {
				var list *corev1.ConfigMapList
				if list, err = cms.List(ctx, opts); err == nil {
					for _, c := range list.Items {
						names = append(names, c.Name)
					}
				}
			}
			if tt.wantError {
				if !apierrors.IsBadRequest(err) {
					t.Errorf("got %v, want 400 BadRequest", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			slices.Sort(names)
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("selected names mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestTooLarge(t *testing.T) {
	t.Parallel()
	cs := sharedServer.clientset(t)
	ns := newNamespace(t, cs)
	ctx := testContext(t, 30*time.Second)
	big := configMap("big", strings.Repeat("x", 3<<20+1024))
	_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, big, metav1.CreateOptions{})
	if !apierrors.IsRequestEntityTooLargeError(err) || statusCode(err) != http.StatusRequestEntityTooLarge {
		t.Fatalf("create of a 3 MiB+ object: got %v (code %d), want 413", err, statusCode(err))
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "big", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after the refused create: got %v, want NotFound", err)
	}
}

func TestInvalidObject(t *testing.T) {
	t.Parallel()
	cs := sharedServer.clientset(t)
	ns := newNamespace(t, cs)
	ctx := testContext(t, 30*time.Second)
	tests := []struct {
		name       string
		create     func() error
		wantFields []string
	}{
		{
			name: "bad config map name",
			create: func() error {
				_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap("Not_A_Name", "1"), metav1.CreateOptions{})
				return err
			},
			wantFields: []string{"metadata.name"},
		},
		{
			name: "deployment without containers and with a negative replica count",
			create: func() error {
				d := deployment("web", -1)
				d.Spec.Template.Spec.Containers = nil
				_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
				return err
			},
			wantFields: []string{"spec.replicas", "spec.template.spec.containers"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.create()
			if !apierrors.IsInvalid(err) || statusCode(err) != http.StatusUnprocessableEntity {
				t.Fatalf("got %v (code %d), want 422 Invalid", err, statusCode(err))
			}
			var status apierrors.APIStatus
			errors.As(err, &status)
			details := status.Status().Details
			if details == nil {
				t.Fatalf("422 without details: %+v", status.Status())
			}
			var fields []string
			for _, c := range details.Causes {
				fields = append(fields, c.Field)
			}
			for _, want := range tt.wantFields {
				if !slices.Contains(fields, want) {
					t.Errorf("causes name fields %q, want one to be %q", fields, want)
				}
			}
		})
	}
}
