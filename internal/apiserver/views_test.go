package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
)

const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

func TestTables(t *testing.T) {
	env := newTestEnv(t)
	for _, n := range []string{"a", "b"} {
		if code, _, body := env.do(t, "POST", "/api/v1/namespaces/default/configmaps", nil, `{"metadata":{"name":"`+n+`"}}`); code != 201 {
			t.Fatalf("create: %d %s", code, body)
		}
	}
	tests := []struct {
		name        string
		path        string
		accept      string
		wantVersion string
		wantRows    int
		wantObject  string // kind of rows' object; "" for none
	}{
		{"list", "/api/v1/namespaces/default/configmaps", tableAccept, "meta.k8s.io/v1", 2, "PartialObjectMetadata"},
		{"get", "/api/v1/namespaces/default/configmaps/a", tableAccept, "meta.k8s.io/v1", 1, "PartialObjectMetadata"},
		{"v1beta1", "/api/v1/namespaces/default/configmaps", "application/json;as=Table;v=v1beta1;g=meta.k8s.io", "meta.k8s.io/v1beta1", 2, "PartialObjectMetadata"},
		{"include none", "/api/v1/namespaces/default/configmaps?includeObject=None", tableAccept, "meta.k8s.io/v1", 2, ""},
		{"include object", "/api/v1/namespaces/default/configmaps?includeObject=Object", tableAccept, "meta.k8s.io/v1", 2, "ConfigMap"},
		{"all namespaces", "/api/v1/configmaps", tableAccept, "meta.k8s.io/v1", 2, "PartialObjectMetadata"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := env.do(t, "GET", tc.path, map[string]string{"Accept": tc.accept}, "")
			if code != 200 {
				t.Fatalf("code %d: %s", code, body)
			}
			var tbl struct {
				metav1.TypeMeta
				metav1.ListMeta   `json:"metadata"`
				ColumnDefinitions []metav1.TableColumnDefinition `json:"columnDefinitions"`
				Rows              []struct {
					Cells  []any           `json:"cells"`
					Object json.RawMessage `json:"object"`
				} `json:"rows"`
			}
			if err := json.Unmarshal([]byte(body), &tbl); err != nil {
				t.Fatal(err)
			}
			if tbl.Kind != "Table" || tbl.APIVersion != tc.wantVersion || tbl.ResourceVersion == "" {
				t.Errorf("table header: %+v %+v", tbl.TypeMeta, tbl.ListMeta)
			}
			if len(tbl.ColumnDefinitions) == 0 || tbl.ColumnDefinitions[0].Name != "Name" {
				t.Errorf("columns = %+v", tbl.ColumnDefinitions)
			}
			if len(tbl.Rows) != tc.wantRows {
				t.Fatalf("rows = %d, want %d: %s", len(tbl.Rows), tc.wantRows, body)
			}
			for _, row := range tbl.Rows {
				if len(row.Cells) != len(tbl.ColumnDefinitions) {
					t.Errorf("row cells %v do not match %d columns", row.Cells, len(tbl.ColumnDefinitions))
				}
				var obj metav1.PartialObjectMetadata
				if len(row.Object) > 0 && string(row.Object) != "null" {
					if err := json.Unmarshal(row.Object, &obj); err != nil {
						t.Fatal(err)
					}
				}
				if obj.Kind != tc.wantObject || (tc.wantObject != "" && obj.Name == "") {
					t.Errorf("row object = %s, want kind %q", row.Object, tc.wantObject)
				}
			}
		})
	}
}

func TestTableWatch(t *testing.T) {
	env := newTestEnv(t)
	if code, _, body := env.do(t, "POST", "/api/v1/namespaces/default/configmaps", nil, `{"metadata":{"name":"a"}}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	req, err := http.NewRequest("GET", env.ts.URL+"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", tableAccept)
	resp, err := env.admin.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("watch code %d", resp.StatusCode)
	}
	if code, _, body := env.do(t, "POST", "/api/v1/namespaces/default/configmaps", nil, `{"metadata":{"name":"b"}}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	sc := bufio.NewScanner(resp.Body)
	type event struct {
		Type   string
		Object metav1.Table
	}
	var got []event
	for len(got) < 2 && sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		got = append(got, ev)
	}
	if len(got) < 2 {
		t.Fatalf("got %d events: %v", len(got), sc.Err())
	}
	for i, ev := range got {
		if ev.Type != "ADDED" || ev.Object.Kind != "Table" || len(ev.Object.Rows) != 1 {
			t.Errorf("event %d = %+v", i, ev)
		}
		if wantCols := i == 0; (len(ev.Object.ColumnDefinitions) > 0) != wantCols {
			t.Errorf("event %d has %d column definitions", i, len(ev.Object.ColumnDefinitions))
		}
	}
}

func TestProtobufAndMetadataClients(t *testing.T) {
	env := newTestEnv(t)
	cfg := *env.adminConfig
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pods := cs.CoreV1().Pods("default")
	w, err := pods.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("protobuf watch: %v", err)
	}
	defer w.Stop()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"app": "x"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("protobuf create: %v", err)
	}
	ev := <-w.ResultChan()
	if got, ok := ev.Object.(*corev1.Pod); !ok || got.Name != "p" || ev.Type != "ADDED" {
		t.Fatalf("protobuf watch event = %s %T", ev.Type, ev.Object)
	}

	mc, err := metadata.NewForConfig(env.adminConfig)
	if err != nil {
		t.Fatal(err)
	}
	podsGVR := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	list, err := mc.Resource(podsGVR).Namespace("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("metadata list: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "p" || list.Items[0].UID != created.UID {
		t.Errorf("metadata list = %+v", list.Items)
	}
	one, err := mc.Resource(podsGVR).Namespace("default").Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("metadata get: %v", err)
	}
	if diff := cmp.Diff(created.Labels, one.Labels); diff != "" {
		t.Errorf("metadata get labels (-want +got):\n%s", diff)
	}
	mw, err := mc.Resource(podsGVR).Namespace("default").Watch(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatalf("metadata watch: %v", err)
	}
	defer mw.Stop()
	mev := <-mw.ResultChan()
	if got, ok := mev.Object.(*metav1.PartialObjectMetadata); !ok || got.Name != "p" {
		t.Errorf("metadata watch event = %s %T %+v", mev.Type, mev.Object, mev.Object)
	}

	grace := int64(0)
	if err := pods.Delete(ctx, "p", metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatalf("protobuf delete: %v", err)
	}
	if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatalf("protobuf deletecollection: %v", err)
	}
}
