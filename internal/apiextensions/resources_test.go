package apiextensions

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/storage"
)

func TestCellValue(t *testing.T) {
	tests := []struct {
		typ   string
		value any
		want  any
	}{
		{"integer", int64(3), int64(3)},
		{"integer", 3.0, int64(3)},
		{"integer", 3.5, nil},
		{"integer", "3", nil},
		{"number", 3.5, 3.5},
		{"number", int64(2), int64(2)},
		{"boolean", true, true},
		{"boolean", "true", nil},
		{"date", "yesterday", "<invalid>"},
		{"object", map[string]any{}, nil},
	}
	for _, tc := range tests {
		if got := cellValue(tc.typ, tc.value); got != tc.want {
			t.Errorf("cellValue(%s, %v) = %v, want %v", tc.typ, tc.value, got, tc.want)
		}
	}
	if got := cellValue("date", time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339)); got != "120m" && got != "2h" {
		t.Errorf("date two hours ago = %v", got)
	}
}

func TestTable(t *testing.T) {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "a"},
		"spec":     map[string]any{"cron": "* * * * *", "replicas": int64(2), "tags": []any{"x", "y"}},
	}}
	tbl := tableOf([]apiextensionsv1.CustomResourceColumnDefinition{
		{Name: "Cron", Type: "string", JSONPath: ".spec.cron"},
		{Name: "Replicas", Type: "integer", JSONPath: ".spec.replicas", Priority: 1},
		{Name: "Tags", Type: "string", JSONPath: ".spec.tags"},
		{Name: "Missing", Type: "string", JSONPath: ".status.nothing"},
	})
	var names []string
	for _, c := range tbl.Columns {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"Name", "Cron", "Replicas", "Tags", "Missing"}, names); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if tbl.Columns[2].Priority != 1 {
		t.Errorf("priority not kept: %+v", tbl.Columns[2])
	}
	if diff := cmp.Diff([]any{"a", "* * * * *", int64(2), `["x","y"]`, nil}, tbl.Row(obj)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	// Without columns: Name and Age.
	def := tableOf(nil)
	if len(def.Columns) != 2 || def.Columns[1].Name != "Age" {
		t.Errorf("default columns: %+v", def.Columns)
	}
}

func TestAttrsAndScale(t *testing.T) {
	crd := &apiextensionsv1.CustomResourceDefinition{
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "x.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				SelectableFields: []apiextensionsv1.SelectableField{{JSONPath: ".spec.color"}, {JSONPath: ".spec.size"}, {JSONPath: ".spec.on"}},
				Subresources: &apiextensionsv1.CustomResourceSubresources{Scale: &apiextensionsv1.CustomResourceSubresourceScale{
					SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.replicas", LabelSelectorPath: ptr.To(".status.selector"),
				}},
			}},
		},
		Status: apiextensionsv1.CustomResourceDefinitionStatus{AcceptedNames: apiextensionsv1.CustomResourceDefinitionNames{
			Plural: "things", Singular: "thing", Kind: "Thing", ListKind: "ThingList",
		}},
	}
	crs, err := resourcesOf(crd)
	if err != nil || len(crs) != 1 {
		t.Fatalf("resourcesOf: %v, %d", err, len(crs))
	}
	res := crs[0].res
	obj := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "a", "namespace": "ns", "labels": map[string]any{"l": "v"}},
		"spec":     map[string]any{"color": "blue", "size": int64(3), "on": true, "replicas": int64(2)},
		"status":   map[string]any{"replicas": int64(1), "selector": "app=a"},
	}}
	labels, fields, err := res.Strategy.Attrs(obj)
	if err != nil {
		t.Fatal(err)
	}
	if labels["l"] != "v" || fields["spec.color"] != "blue" || fields["spec.size"] != "3" || fields["spec.on"] != "true" || fields["metadata.namespace"] != "ns" {
		t.Errorf("attrs: %v %v", labels, fields)
	}
	if diff := cmp.Diff([]string{"metadata.name", "metadata.namespace", "spec.color", "spec.size", "spec.on"}, res.Strategy.FieldLabels()); diff != "" {
		t.Errorf("field labels (-want +got):\n%s", diff)
	}
	spec, status, sel := res.Scale.Get(obj)
	if spec != 2 || status != 1 || sel != "app=a" {
		t.Errorf("scale = %d %d %q", spec, status, sel)
	}
	res.Scale.SetReplicas(obj, 7)
	if r, _, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas"); r != 7 {
		t.Errorf("replicas after SetReplicas = %d", r)
	}
	if res.GVR.String() != "x.example.com/v1, Resource=things" || !res.Namespaced || !res.Unstructured {
		t.Errorf("resource: %+v", res)
	}
	// A terminating CRD serves everything but create.
	now := metav1.Now()
	crd.DeletionTimestamp = &now
	crs, _ = resourcesOf(crd)
	for _, v := range crs[0].res.Verbs {
		if v == "create" {
			t.Error("a terminating CRD still serves create")
		}
	}
}

// memStorage is a storage.Interface holding one object, for versioned.
type memStorage struct {
	storage.Interface
	obj     runtime.Object
	watcher *watch.FakeWatcher
}

func (m *memStorage) GuaranteedUpdate(_ context.Context, _ string, _ bool, fn storage.UpdateFunc) (runtime.Object, error) {
	next, err := fn(m.obj)
	if err != nil {
		return nil, err
	}
	m.obj = next
	return next, nil
}

func (m *memStorage) Delete(_ context.Context, _ string, _ *storage.Preconditions, validate func(runtime.Object) error) (runtime.Object, error) {
	if validate != nil {
		if err := validate(m.obj); err != nil {
			return nil, err
		}
	}
	return m.obj, nil
}

func (m *memStorage) Watch(context.Context, string, storage.WatchOptions) (watch.Interface, error) {
	m.watcher = watch.NewFakeWithChanSize(4, false)
	return m.watcher, nil
}

func (m *memStorage) Create(_ context.Context, _ string, obj runtime.Object, _ ...storage.Guard) (runtime.Object, error) {
	m.obj = obj
	return obj, nil
}

func (m *memStorage) Get(context.Context, string) (runtime.Object, error) { return m.obj, nil }

func (m *memStorage) List(_ context.Context, _ string, opts storage.ListOptions) (runtime.Object, error) {
	if opts.Encoder != nil {
		b, err := opts.Encoder.Encode(m.obj)
		if err != nil {
			return nil, err
		}
		return &storage.EncodedList{Encoding: opts.Encoder.ID, Items: [][]byte{b}}, nil
	}
	return &unstructured.UnstructuredList{Items: []unstructured.Unstructured{*m.obj.(*unstructured.Unstructured)}}, nil
}

func TestVersioned(t *testing.T) {
	mem := &memStorage{}
	v := &versioned{Interface: mem, stored: "x/v1", served: "x/v1beta1", conv: noneConverter{}}
	in := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "x/v1beta1", "kind": "K", "metadata": map[string]any{"name": "a"}}}
	out, err := v.Create(context.Background(), "a", in)
	if err != nil {
		t.Fatal(err)
	}
	if got := mem.obj.(*unstructured.Unstructured).GetAPIVersion(); got != "x/v1" {
		t.Errorf("stored apiVersion %q, want x/v1", got)
	}
	if got := out.(*unstructured.Unstructured).GetAPIVersion(); got != "x/v1beta1" {
		t.Errorf("returned apiVersion %q, want x/v1beta1", got)
	}
	got, _ := v.Get(context.Background(), "a")
	if got.(*unstructured.Unstructured).GetAPIVersion() != "x/v1beta1" || mem.obj.(*unstructured.Unstructured).GetAPIVersion() != "x/v1" {
		t.Error("Get changed the stored object or did not convert")
	}
	list, _ := v.List(context.Background(), "", storage.ListOptions{})
	if l := list.(*unstructured.UnstructuredList); l.Items[0].GetAPIVersion() != "x/v1beta1" || mem.obj.(*unstructured.Unstructured).GetAPIVersion() != "x/v1" {
		t.Error("List changed the stored object or did not convert")
	}
	enc := &storage.ItemEncoder{ID: "json", Encode: func(obj runtime.Object) ([]byte, error) {
		return []byte(obj.(*unstructured.Unstructured).GetAPIVersion()), nil
	}}
	el, _ := v.List(context.Background(), "", storage.ListOptions{Encoder: enc})
	// The items are memoized apart from the stored version's but are
	// reported in the encoding asked for.
	if e := el.(*storage.EncodedList); e.Encoding != "json" || string(e.Items[0]) != "x/v1beta1" {
		t.Errorf("encoded list: %q %q", e.Encoding, e.Items)
	}
}

// fakeConverter converts things between x/v1 (spec.name) and x/v2
// (spec.fullName) as the test webhook does, counting its calls, or
// fails.
type fakeConverter struct {
	calls int
	fail  bool
}

func (f *fakeConverter) convert(_ context.Context, objs []*unstructured.Unstructured, apiVersion string) ([]*unstructured.Unstructured, error) {
	f.calls++
	if f.fail {
		return nil, newConversionError(errors.New("conversion webhook for x/v1, Kind=Thing failed: boom"))
	}
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		c := o.DeepCopy()
		renameSpec(c.Object, apiVersion)
		out[i] = c
	}
	return out, nil
}

func TestVersionedConverts(t *testing.T) {
	ctx := context.Background()
	mem := &memStorage{}
	conv := &fakeConverter{}
	v := &versioned{Interface: mem, stored: "x/v1", served: "x/v2", conv: conv}
	spec := func(obj runtime.Object) map[string]any {
		return obj.(*unstructured.Unstructured).Object["spec"].(map[string]any)
	}

	out, err := v.Create(ctx, "a", thing("x/v2", "a", map[string]any{"fullName": "alpha"}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"name": "alpha"}, spec(mem.obj)); diff != "" || mem.obj.(*unstructured.Unstructured).GetAPIVersion() != "x/v1" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"fullName": "alpha"}, spec(out)); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	stored := mem.obj.(*unstructured.Unstructured).DeepCopy()
	unchanged := func(op string) {
		t.Helper()
		if diff := cmp.Diff(stored.Object, mem.obj.(*unstructured.Unstructured).Object); diff != "" {
			t.Errorf("%s modified the stored object (-before +after):\n%s", op, diff)
		}
	}

	got, err := v.Get(ctx, "a")
	if err != nil || cmp.Diff(map[string]any{"fullName": "alpha"}, spec(got)) != "" {
		t.Errorf("Get = %v, %v", got, err)
	}
	unchanged("Get")

	var seen map[string]any
	if _, err := v.Delete(ctx, "a", nil, func(cur runtime.Object) error { seen = spec(cur); return nil }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"fullName": "alpha"}, seen); diff != "" {
		t.Errorf("Delete's validate saw (-want +got):\n%s", diff)
	}
	unchanged("Delete")

	// A list is converted with one call, without the encoder's memo.
	conv.calls = 0
	enc := &storage.ItemEncoder{ID: "json", Encode: func(runtime.Object) ([]byte, error) { return nil, errors.New("memoized") }}
	list, err := v.List(ctx, "", storage.ListOptions{Encoder: enc})
	if err != nil {
		t.Fatal(err)
	}
	ul, ok := list.(*unstructured.UnstructuredList)
	if !ok || conv.calls != 1 || cmp.Diff(map[string]any{"fullName": "alpha"}, ul.Items[0].Object["spec"]) != "" {
		t.Errorf("List = %#v after %d calls", list, conv.calls)
	}
	unchanged("List")

	// Updates see the served version and store the stored one.
	if _, err := v.GuaranteedUpdate(ctx, "a", false, func(cur runtime.Object) (runtime.Object, error) {
		u := cur.(*unstructured.Unstructured).DeepCopy()
		u.Object["spec"] = map[string]any{"fullName": spec(cur)["fullName"].(string) + "!"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"name": "alpha!"}, spec(mem.obj)); diff != "" {
		t.Errorf("updated (-want +got):\n%s", diff)
	}

	// Watch events are converted; a failure is a 500 Error event that
	// ends the watch.
	w, err := v.Watch(ctx, "", storage.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next := func() (watch.Event, bool) {
		t.Helper()
		select {
		case e, ok := <-w.ResultChan():
			return e, ok
		case <-time.After(10 * time.Second):
			t.Fatal("no watch event within 10s")
			return watch.Event{}, false
		}
	}
	mem.watcher.Add(thing("x/v1", "b", map[string]any{"name": "beta"}))
	e, _ := next()
	if e.Type != watch.Added || cmp.Diff(map[string]any{"fullName": "beta"}, spec(e.Object)) != "" {
		t.Errorf("event = %v %v", e.Type, e.Object)
	}
	conv.fail = true
	mem.watcher.Modify(thing("x/v1", "b", map[string]any{"name": "beta"}))
	e, _ = next()
	st, ok := e.Object.(*metav1.Status)
	if e.Type != watch.Error || !ok || st.Code != 500 || st.Message != "conversion webhook for x/v1, Kind=Thing failed: boom" {
		t.Errorf("event = %v %#v", e.Type, e.Object)
	}
	if _, open := next(); open {
		t.Error("watch not ended after a failed conversion")
	}

	// Failures fail every path with the converter's error.
	for name, call := range map[string]func() error{
		"Get":    func() error { _, err := v.Get(ctx, "a"); return err },
		"List":   func() error { _, err := v.List(ctx, "", storage.ListOptions{}); return err },
		"Create": func() error { _, err := v.Create(ctx, "a", thing("x/v2", "a", nil)); return err },
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "boom") {
			t.Errorf("%s with a failing converter: %v", name, err)
		}
	}
}

// TestVersionedStorageList: a Webhook CRD's storage version keeps the
// encoder while no item needs conversion, and converts the list (read
// again unencoded) when one does.
func TestVersionedStorageList(t *testing.T) {
	enc := &storage.ItemEncoder{ID: "json", Encode: func(obj runtime.Object) ([]byte, error) {
		return []byte(obj.(*unstructured.Unstructured).GetAPIVersion()), nil
	}}
	tests := []struct {
		name      string
		stored    *unstructured.Unstructured
		wantCalls int
		want      runtime.Object
	}{{
		name:   "all in the storage version",
		stored: thing("x/v2", "a", map[string]any{"fullName": "alpha"}),
		want:   &storage.EncodedList{Encoding: "json", Items: [][]byte{[]byte("x/v2")}},
	}, {
		name:      "stored in an older version",
		stored:    thing("x/v1", "a", map[string]any{"name": "alpha"}),
		wantCalls: 1,
		want:      &unstructured.UnstructuredList{Items: []unstructured.Unstructured{*thing("x/v2", "a", map[string]any{"fullName": "alpha"})}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conv := &fakeConverter{}
			v := &versioned{Interface: &memStorage{obj: tc.stored}, stored: "x/v2", served: "x/v2", conv: conv}
			got, err := v.List(context.Background(), "", storage.ListOptions{Encoder: enc})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" || conv.calls != tc.wantCalls {
				t.Errorf("list after %d calls (-want +got):\n%s", conv.calls, diff)
			}
		})
	}
}
