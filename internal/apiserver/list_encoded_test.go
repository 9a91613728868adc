package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/storage"
)

// TestEncodedListMatchesTypedList checks that a list framed from the watch
// cache's memoized items reads exactly like one encoded from the typed
// list (served from etcd with a limit).
func TestEncodedListMatchesTypedList(t *testing.T) {
	e := newTestEnv(t)
	cs := e.clientset(t)
	ctx := context.Background()
	for i := range 5 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Labels: map[string]string{"i": fmt.Sprint(i % 2)}}, Data: map[string]string{"k": "<v&>"}}
		if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"", "&labelSelector=i%3D1"} {
		code, hdr, cached := e.do(t, "GET", "/api/v1/namespaces/default/configmaps?resourceVersion=0"+q, nil, "")
		if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("cached list: %d %q %s", code, hdr.Get("Content-Type"), cached)
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(cached), &c); err != nil {
			t.Fatalf("cached list is not JSON: %v\n%s", err, cached)
		}
		rv := c["metadata"].(map[string]any)["resourceVersion"].(string)
		code, _, typed := e.do(t, "GET", "/api/v1/namespaces/default/configmaps?limit=100&resourceVersionMatch=Exact&resourceVersion="+rv+q, nil, "")
		if code != http.StatusOK {
			t.Fatalf("typed list: %d %s", code, typed)
		}
		var tl map[string]any
		if err := json.Unmarshal([]byte(typed), &tl); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tl, c); diff != "" {
			t.Errorf("list%s from the cache differs from the typed list (-typed +cached):\n%s", q, diff)
		}
	}
}

// TestWriteEncodedListPooled frames lists large enough for the pooled
// buffers, one after another and of different sizes, and checks each
// body is exactly head, items and tail: a reused buffer leaks nothing of
// the list before.
func TestWriteEncodedListPooled(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	res := &registry.Resource{GVR: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, ListKind: "ConfigMapList"}
	for _, tt := range []struct {
		name     string
		items    int
		itemSize int
	}{
		{"large", 400, 1 << 10},
		{"larger", 300, 4 << 10},
		{"smaller after larger", 260, 1 << 10},
		{"small", 3, 10},
		{"empty", 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			el := &storage.EncodedList{ResourceVersion: "42"}
			var want strings.Builder
			want.WriteString(`{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"42"},"items":[`)
			for i := range tt.items {
				item := fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("x", tt.itemSize))
				el.Items = append(el.Items, []byte(item))
				if i > 0 {
					want.WriteByte(',')
				}
				want.WriteString(item)
			}
			want.WriteString("]}\n")
			rec := httptest.NewRecorder()
			s.writeEncodedList(rec, res, el)
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			if got := rec.Body.String(); got != want.String() {
				t.Errorf("body differs: got %d bytes, want %d", len(got), want.Len())
			}
		})
	}
}

// TestEncodedProtobufListMatchesTypedList checks that a protobuf list
// framed from the watch cache's memoized items is byte for byte the one
// the protobuf serializer writes for the typed list (served from etcd
// with a limit), and that client-go decodes it.
func TestEncodedProtobufListMatchesTypedList(t *testing.T) {
	e := newTestEnv(t)
	cs := e.clientset(t)
	ctx := context.Background()
	for i := range 5 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Labels: map[string]string{"i": fmt.Sprint(i % 2)}}, Data: map[string]string{"k": strings.Repeat("v", 100*i)}}
		if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	accept := map[string]string{"Accept": "application/vnd.kubernetes.protobuf"}
	for _, q := range []string{"", "&labelSelector=i%3D1"} {
		// Twice: the second list is framed from memoized items.
		for range 2 {
			code, hdr, cached := e.do(t, "GET", "/api/v1/namespaces/default/configmaps?resourceVersion=0"+q, accept, "")
			if code != http.StatusOK || hdr.Get("Content-Type") != "application/vnd.kubernetes.protobuf" {
				t.Fatalf("cached list: %d %q", code, hdr.Get("Content-Type"))
			}
			var list corev1.ConfigMapList
			if err := runtime.DecodeInto(scheme.Codecs.UniversalDecoder(), []byte(cached), &list); err != nil {
				t.Fatalf("decoding the cached protobuf list: %v", err)
			}
			code, _, typed := e.do(t, "GET", "/api/v1/namespaces/default/configmaps?limit=100&resourceVersionMatch=Exact&resourceVersion="+list.ResourceVersion+q, accept, "")
			if code != http.StatusOK {
				t.Fatalf("typed list: %d", code)
			}
			if cached != typed {
				t.Errorf("protobuf list%s from the cache (%d bytes) differs from the typed list (%d bytes)", q, len(cached), len(typed))
			}
		}
	}
	// client-go, which asks for protobuf, reads it.
	list, err := cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil || len(list.Items) != 5 || list.Items[4].Data["k"] != strings.Repeat("v", 400) {
		t.Fatalf("client-go list: %v, %d items", err, len(list.Items))
	}
}
