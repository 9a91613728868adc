package lazyclient

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TestAllGroups checks every group client against the one
// kubernetes.NewForConfig builds: same base URL, built once.
func TestAllGroups(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:6443", QPS: 50, Burst: 100}
	lazy, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	eager, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("NewForConfig: %v", err)
	}
	it := reflect.TypeFor[kubernetes.Interface]()
	lv, ev := reflect.ValueOf(lazy), reflect.ValueOf(eager)
	for i := range it.NumMethod() {
		name := it.Method(i).Name
		if name == "Discovery" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			got := lv.MethodByName(name).Call(nil)[0]
			if got.IsNil() {
				t.Fatal("nil client")
			}
			if again := lv.MethodByName(name).Call(nil)[0]; again.Interface() != got.Interface() {
				t.Error("a second call built another client")
			}
			want := ev.MethodByName(name).Call(nil)[0]
			gotURL := restClient(t, got).Get().URL().String()
			wantURL := restClient(t, want).Get().URL().String()
			if gotURL != wantURL {
				t.Errorf("base URL %s, want %s", gotURL, wantURL)
			}
		})
	}
	if lazy.Discovery() == nil {
		t.Error("no discovery client")
	}
}

func restClient(t *testing.T, v reflect.Value) rest.Interface {
	t.Helper()
	m := v.MethodByName("RESTClient")
	if !m.IsValid() {
		t.Fatalf("%s has no RESTClient method", v.Type())
	}
	return m.Call(nil)[0].Interface().(rest.Interface)
}

// TestRequests checks that requests carry the config's user agent and
// reach the server.
func TestRequests(t *testing.T) {
	var gotPath, gotAgent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotAgent = r.URL.Path, r.UserAgent()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "team-a"}})
	}))
	defer srv.Close()
	c, err := New(&rest.Config{Host: srv.URL, UserAgent: "skiff-controller-manager/namespace"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ns, err := c.CoreV1().Namespaces().Get(t.Context(), "team-a", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if ns.Name != "team-a" || gotPath != "/api/v1/namespaces/team-a" || gotAgent != "skiff-controller-manager/namespace" {
		t.Errorf("got namespace %q at %s with agent %q", ns.Name, gotPath, gotAgent)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	if _, err := New(&rest.Config{Host: "https://x", QPS: 5}); err == nil {
		t.Error("QPS without burst accepted")
	}
	if _, err := New(&rest.Config{Host: "https://x", TLSClientConfig: rest.TLSClientConfig{CAFile: "/nonexistent/ca.crt"}}); err == nil {
		t.Error("missing CA file accepted")
	}
}
