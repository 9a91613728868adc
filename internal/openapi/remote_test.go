package openapi

import (
	"net/http"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

const metricsDoc = `{"openapi":"3.0.0","info":{"title":"metrics-server","version":"v0.7"},"paths":{"/apis/metrics.k8s.io/v1beta1/nodes":{}},"components":{"schemas":{"io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics":{"type":"object"}}}}`

// Extension servers' v3 documents are listed and served beside the
// built-in and custom ones, survive SetCustomResources, and go when the
// next SetRemoteV3 leaves them out.
func TestSetRemoteV3(t *testing.T) {
	t.Parallel()
	h, srv := newCustomTestServer(t)
	const key = "apis/metrics.k8s.io/v1beta1"

	err := h.SetRemoteV3(map[string][]byte{key: []byte(metricsDoc), "apis/bad.example.com/v1": []byte("<html>"), "api/v1": []byte("{}")})
	if err == nil || !strings.Contains(err.Error(), "bad.example.com") || !strings.Contains(err.Error(), `"api/v1"`) {
		t.Errorf("SetRemoteV3 with a non-JSON document and a core key: err %v, want both named", err)
	}
	index := v3IndexOf(t, srv.URL)
	entry, ok := index.Paths[key]
	if !ok {
		t.Fatalf("index lacks %s: %v", key, index.Paths)
	}
	if _, ok := index.Paths["apis/bad.example.com/v1"]; ok {
		t.Error("the invalid document is listed")
	}
	if _, ok := index.Paths["api/v1"]; !ok {
		t.Error("the built-in core document is gone")
	}
	resp, body := get(t, srv.URL+entry.ServerRelativeURL, nil)
	if resp.StatusCode != http.StatusOK || string(body) != metricsDoc {
		t.Fatalf("GET %s: %d %s", entry.ServerRelativeURL, resp.StatusCode, body)
	}
	if resp, _ := get(t, srv.URL+entry.ServerRelativeURL, map[string]string{"Accept": mimeV3Proto}); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != mimeV3Proto {
		t.Errorf("protobuf form: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// Custom resources change: the remote document stays, with its hash.
	if err := h.SetCustomResources([]*apiextensionsv1.CustomResourceDefinition{decodeCRD(t, cronTabCRD)}); err != nil {
		t.Fatalf("SetCustomResources: %v", err)
	}
	after := v3IndexOf(t, srv.URL)
	if after.Paths[key] != entry {
		t.Errorf("after SetCustomResources: %v, want %v", after.Paths[key], entry)
	}
	if _, ok := after.Paths["apis/stable.example.com/v1"]; !ok {
		t.Error("the custom resource's document is not listed")
	}

	// The same document again keeps its hash; none removes it.
	if err := h.SetRemoteV3(map[string][]byte{key: []byte(metricsDoc)}); err != nil {
		t.Fatal(err)
	}
	if got := v3IndexOf(t, srv.URL).Paths[key]; got != entry {
		t.Errorf("unchanged document: %v, want %v", got, entry)
	}
	if err := h.SetRemoteV3(nil); err != nil {
		t.Fatal(err)
	}
	final := v3IndexOf(t, srv.URL)
	if _, ok := final.Paths[key]; ok {
		t.Error("removed document still listed")
	}
	if _, ok := final.Paths["apis/stable.example.com/v1"]; !ok {
		t.Error("removing the remote documents removed the custom one")
	}
	if resp, _ := get(t, srv.URL+"/openapi/v3/"+key, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("removed document: %d, want 404", resp.StatusCode)
	}
}
