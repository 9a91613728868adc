package openapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	openapiv3 "github.com/google/gnostic-models/openapiv3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientdiscovery "k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	openapiproto "k8s.io/kube-openapi/pkg/util/proto"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-dev/skiff/internal/registry"
)

// testResources stands in for builtin.Resources: namespaced and
// cluster-scoped resources in core and named groups, with status and scale.
func testResources() []*registry.Resource {
	return []*registry.Resource{
		{GVR: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, Kind: "Pod", ListKind: "PodList",
			Singular: "pod", Namespaced: true, Status: true,
			Strategy: registry.Define(registry.Typed[*corev1.Pod, *corev1.PodList]{
				New: func() *corev1.Pod { return &corev1.Pod{} }, NewList: func() *corev1.PodList { return &corev1.PodList{} }})},
		{GVR: schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, Kind: "Namespace", ListKind: "NamespaceList",
			Singular: "namespace", Status: true, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"},
			Strategy: registry.Define(registry.Typed[*corev1.Namespace, *corev1.NamespaceList]{
				New: func() *corev1.Namespace { return &corev1.Namespace{} }, NewList: func() *corev1.NamespaceList { return &corev1.NamespaceList{} }})},
		{GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, Kind: "Deployment", ListKind: "DeploymentList",
			Singular: "deployment", Namespaced: true, Status: true,
			Scale: &registry.ScaleAccessor{
				Get:         func(runtime.Object) (int32, int32, string) { return 0, 0, "" },
				SetReplicas: func(runtime.Object, int32) {},
			},
			Strategy: registry.Define(registry.Typed[*appsv1.Deployment, *appsv1.DeploymentList]{
				New: func() *appsv1.Deployment { return &appsv1.Deployment{} }, NewList: func() *appsv1.DeploymentList { return &appsv1.DeploymentList{} }})},
		{GVR: schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, Kind: "ClusterRole",
			ListKind: "ClusterRoleList", Singular: "clusterrole",
			Strategy: registry.Define(registry.Typed[*rbacv1.ClusterRole, *rbacv1.ClusterRoleList]{
				New: func() *rbacv1.ClusterRole { return &rbacv1.ClusterRole{} }, NewList: func() *rbacv1.ClusterRoleList { return &rbacv1.ClusterRoleList{} }})},
	}
}

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	h, err := New(testResources())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return resp, body
}

func TestV2WithClientGo(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	dc, err := clientdiscovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	// OpenAPISchema asks for protobuf, as kubectl does.
	doc, err := dc.OpenAPISchema()
	if err != nil {
		t.Fatalf("OpenAPISchema: %v", err)
	}
	models, err := openapiproto.NewOpenAPIData(doc)
	if err != nil {
		t.Fatalf("NewOpenAPIData: %v", err)
	}

	pod, ok := models.LookupModel("io.k8s.api.core.v1.Pod").(*openapiproto.Kind)
	if !ok {
		t.Fatalf("Pod model missing or not a kind")
	}
	if diff := cmp.Diff(`[map[group: kind:Pod version:v1]]`,
		fmt.Sprint(pod.GetExtensions()["x-kubernetes-group-version-kind"])); diff != "" {
		t.Errorf("Pod GVK extension (-want +got):\n%s", diff)
	}
	if !strings.Contains(pod.GetDescription(), "Pod is a collection of containers") {
		t.Errorf("Pod description = %q", pod.GetDescription())
	}
	podSpec, ok := models.LookupModel("io.k8s.api.core.v1.PodSpec").(*openapiproto.Kind)
	if !ok {
		t.Fatalf("PodSpec model missing")
	}
	containers := podSpec.Fields["containers"]
	if containers == nil {
		t.Fatalf("PodSpec has no containers field")
	}
	wantExt := map[string]any{
		"x-kubernetes-patch-merge-key": "name",
		"x-kubernetes-patch-strategy":  "merge",
		"x-kubernetes-list-type":       "map",
		"x-kubernetes-list-map-keys":   []any{"name"},
	}
	if diff := cmp.Diff(wantExt, containers.GetExtensions()); diff != "" {
		t.Errorf("spec.containers extensions (-want +got):\n%s", diff)
	}
	if !strings.Contains(containers.GetDescription(), "containers belonging to the pod") {
		t.Errorf("spec.containers description = %q", containers.GetDescription())
	}
	ctr, ok := models.LookupModel("io.k8s.api.core.v1.Container").(*openapiproto.Kind)
	if !ok {
		t.Fatalf("Container model missing")
	}
	if _, ok := ctr.Fields["resources"]; !ok {
		t.Errorf("Container has no resources field")
	}
	q, ok := models.LookupModel("io.k8s.apimachinery.pkg.api.resource.Quantity").(*openapiproto.Primitive)
	if !ok || q.Type != "string" {
		t.Errorf("Quantity model = %#v, want a string primitive", models.LookupModel("io.k8s.apimachinery.pkg.api.resource.Quantity"))
	}
	if _, ok := models.LookupModel("io.k8s.api.apps.v1.Deployment").(*openapiproto.Kind); !ok {
		t.Errorf("Deployment model missing")
	}
}

// patchSupports reports whether the PATCH operation published for gvk
// takes the query parameter name, the way kubectl decides whether the
// server validates fields.
func patchSupports(doc *openapiv2.Document, gvk schema.GroupVersionKind, name string) (bool, bool) {
	for _, p := range doc.GetPaths().GetPath() {
		op := p.GetValue().GetPatch()
		if op == nil {
			continue
		}
		found := false
		for _, ext := range op.GetVendorExtension() {
			if ext.GetName() != "x-kubernetes-group-version-kind" {
				continue
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(yamlToJSON(ext.GetValue().GetYaml())), &got); err == nil &&
				got["group"] == gvk.Group && got["version"] == gvk.Version && got["kind"] == gvk.Kind {
				found = true
			}
		}
		if !found {
			continue
		}
		for _, param := range op.GetParameters() {
			p := param.GetParameter()
			// Shared parameters are references to the global ones, which
			// kubectl resolves too.
			if ref := param.GetJsonReference().GetXRef(); ref != "" {
				for _, g := range doc.GetParameters().GetAdditionalProperties() {
					if "#/parameters/"+g.GetName() == ref {
						p = g.GetValue()
					}
				}
			}
			if p.GetNonBodyParameter().GetQueryParameterSubSchema().GetName() == name {
				return true, true
			}
		}
		return true, false
	}
	return false, false
}

// yamlToJSON turns the flow-style YAML map gnostic stores for an extension
// ("group: apps\nkind: Deployment\n…") into JSON for the test.
func yamlToJSON(y string) string {
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(y), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func TestV2Paths(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	resp, body := get(t, srv.URL+"/openapi/v2", map[string]string{"Accept": mimeV2ProtoLegacy})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != mimeV2Proto {
		t.Fatalf("protobuf GET: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	doc := &openapiv2.Document{}
	if err := proto.Unmarshal(body, doc); err != nil {
		t.Fatalf("unmarshalling protobuf: %v", err)
	}
	for _, gvk := range []schema.GroupVersionKind{
		{Version: "v1", Kind: "Pod"},
		{Version: "v1", Kind: "Namespace"},
		{Group: "apps", Version: "v1", Kind: "Deployment"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"},
		{Group: "autoscaling", Version: "v1", Kind: "Scale"},
	} {
		t.Run(gvk.Kind, func(t *testing.T) {
			for _, name := range []string{"fieldValidation", "dryRun", "fieldManager", "force"} {
				found, ok := patchSupports(doc, gvk, name)
				if !found {
					t.Fatalf("no PATCH operation for %v", gvk)
				}
				if !ok {
					t.Errorf("PATCH of %v lacks the %s parameter", gvk, name)
				}
			}
		})
	}

	var sw spec.Swagger
	_, jsonBody := get(t, srv.URL+"/openapi/v2", nil)
	if err := json.Unmarshal(jsonBody, &sw); err != nil {
		t.Fatalf("decoding JSON: %v", err)
	}
	for _, tc := range []struct {
		path    string
		methods []string
	}{
		{path: "/api/v1/namespaces/{namespace}/pods", methods: []string{"delete", "get", "post"}},
		{path: "/api/v1/namespaces/{namespace}/pods/{name}", methods: []string{"delete", "get", "patch", "put"}},
		{path: "/api/v1/namespaces/{namespace}/pods/{name}/status", methods: []string{"get", "patch", "put"}},
		{path: "/api/v1/namespaces/{namespace}/pods/{name}/binding", methods: []string{"post"}},
		{path: "/api/v1/namespaces/{namespace}/bindings", methods: []string{"post"}},
		{path: "/api/v1/pods", methods: []string{"get"}},
		{path: "/api/v1/watch/namespaces/{namespace}/pods/{name}", methods: []string{"get"}},
		{path: "/api/v1/namespaces", methods: []string{"get", "post"}},
		{path: "/api/v1/namespaces/{name}/finalize", methods: []string{"put"}},
		{path: "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", methods: []string{"get", "patch", "put"}},
		{path: "/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}", methods: []string{"delete", "get", "patch", "put"}},
		{path: "/version/", methods: []string{"get"}},
		{path: "/api/", methods: []string{"get"}},
		{path: "/api/v1/", methods: []string{"get"}},
		{path: "/apis/", methods: []string{"get"}},
		{path: "/apis/apps/", methods: []string{"get"}},
		{path: "/apis/apps/v1/", methods: []string{"get"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			item, ok := sw.Paths.Paths[tc.path]
			if !ok {
				t.Fatalf("path missing")
			}
			var got []string
			for m, op := range map[string]*spec.Operation{"get": item.Get, "put": item.Put, "post": item.Post, "patch": item.Patch, "delete": item.Delete} {
				if op != nil {
					got = append(got, m)
				}
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.methods, got); diff != "" {
				t.Errorf("methods (-want +got):\n%s", diff)
			}
		})
	}
	if op := sw.Paths.Paths["/api/v1/namespaces/{namespace}/pods/{name}"].Patch; op != nil {
		if got := op.ID; got != "patchCoreV1NamespacedPod" {
			t.Errorf("operation ID = %q, want patchCoreV1NamespacedPod", got)
		}
		if got := op.Extensions["x-kubernetes-action"]; got != "patch" {
			t.Errorf("x-kubernetes-action = %v, want patch", got)
		}
	}
}

func TestV3WithClientGo(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	dc, err := clientdiscovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	root := openapi3.NewRoot(dc.OpenAPIV3())
	gvs, err := root.GroupVersions()
	if err != nil {
		t.Fatalf("GroupVersions: %v", err)
	}
	var got []string
	for _, gv := range gvs {
		got = append(got, gv.String())
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"apps/v1", "rbac.authorization.k8s.io/v1", "v1"}, got); diff != "" {
		t.Errorf("group versions (-want +got):\n%s", diff)
	}

	doc, err := root.GVSpec(schema.GroupVersion{Group: "apps", Version: "v1"})
	if err != nil {
		t.Fatalf("GVSpec(apps/v1): %v", err)
	}
	dep := doc.Components.Schemas["io.k8s.api.apps.v1.Deployment"]
	if dep == nil {
		t.Fatalf("Deployment schema missing")
	}
	raw, err := json.Marshal(dep.Extensions["x-kubernetes-group-version-kind"])
	if err != nil {
		t.Fatalf("marshalling extension: %v", err)
	}
	if diff := cmp.Diff(`[{"group":"apps","kind":"Deployment","version":"v1"}]`, string(raw)); diff != "" {
		t.Errorf("Deployment GVK extension (-want +got):\n%s", diff)
	}
	if _, ok := doc.Components.Schemas["io.k8s.api.core.v1.PodSpec"]; !ok {
		t.Errorf("PodSpec (referenced by the pod template) missing from apps/v1")
	}
	patch := doc.Paths.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"].Patch
	if patch == nil {
		t.Fatalf("deployment PATCH missing")
	}
	var names []string
	for _, p := range patch.Parameters {
		names = append(names, p.Name)
	}
	for _, want := range []string{"fieldValidation", "dryRun", "fieldManager", "force"} {
		if !slices.Contains(names, want) {
			t.Errorf("deployment PATCH parameters %v lack %s", names, want)
		}
	}
}

func TestV3Caching(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	_, body := get(t, srv.URL+"/openapi/v3", nil)
	var index v3Index
	if err := json.Unmarshal(body, &index); err != nil {
		t.Fatalf("decoding index: %v", err)
	}
	var keys []string
	for k := range index.Paths {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"api", "api/v1", "apis", "apis/apps", "apis/apps/v1", "apis/rbac.authorization.k8s.io",
		"apis/rbac.authorization.k8s.io/v1", "version"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("index paths (-want +got):\n%s", diff)
	}
	entry := index.Paths["api/v1"]
	for _, tc := range []struct {
		name         string
		url          string
		header       map[string]string
		wantCode     int
		wantCache    string
		wantType     string
		wantLocation string
	}{
		{name: "hash", url: entry.ServerRelativeURL, wantCode: 200, wantCache: "public, immutable", wantType: mimeJSON},
		{name: "no hash", url: "/openapi/v3/api/v1", wantCode: 200, wantType: mimeJSON},
		{name: "protobuf", url: entry.ServerRelativeURL, header: map[string]string{"Accept": mimeV3ProtoLegacy},
			wantCode: 200, wantCache: "public, immutable", wantType: mimeV3Proto},
		{name: "stale hash", url: "/openapi/v3/api/v1?hash=ABC", wantCode: 301, wantLocation: entry.ServerRelativeURL},
		{name: "unknown group", url: "/openapi/v3/apis/nope/v1", wantCode: 404},
		{name: "not modified", url: "/openapi/v3/api/v1", wantCode: 304,
			header: map[string]string{"If-None-Match": `"` + strings.TrimPrefix(entry.ServerRelativeURL, "/openapi/v3/api/v1?hash=") + `"`}},
		{name: "unacceptable", url: "/openapi/v3/api/v1", header: map[string]string{"Accept": "text/html"}, wantCode: 406},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+tc.url, tc.header)
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.wantCode)
			}
			if got := resp.Header.Get("Cache-Control"); got != tc.wantCache {
				t.Errorf("Cache-Control = %q, want %q", got, tc.wantCache)
			}
			if tc.wantType != "" && resp.Header.Get("Content-Type") != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", resp.Header.Get("Content-Type"), tc.wantType)
			}
			if got := resp.Header.Get("Location"); got != tc.wantLocation {
				t.Errorf("Location = %q, want %q", got, tc.wantLocation)
			}
			if tc.wantType == mimeV3Proto {
				doc := &openapiv3.Document{}
				if err := proto.Unmarshal(body, doc); err != nil {
					t.Fatalf("unmarshalling protobuf: %v", err)
				}
				if doc.GetComponents().GetSchemas() == nil {
					t.Errorf("protobuf document has no schemas")
				}
			}
		})
	}
}

func TestV2ETag(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	first, _ := get(t, srv.URL+"/openapi/v2", nil)
	etag := first.Header.Get("Etag")
	if first.StatusCode != 200 || etag == "" {
		t.Fatalf("first GET: %d, ETag %q", first.StatusCode, etag)
	}
	second, body := get(t, srv.URL+"/openapi/v2", map[string]string{"If-None-Match": etag})
	if second.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("conditional GET: %d with %d bytes, want 304 and none", second.StatusCode, len(body))
	}
}

func TestNewRejectsUnknownTypes(t *testing.T) {
	t.Parallel()
	rs := []*registry.Resource{{
		GVR: schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}, Kind: "Widget", ListKind: "WidgetList",
		Strategy: registry.Define(registry.Typed[*widget, *widget]{New: func() *widget { return &widget{} }, NewList: func() *widget { return &widget{} }}),
	}}
	if _, err := New(rs); err == nil {
		t.Errorf("New accepted a resource without generated definitions")
	}
}

// widget is a runtime.Object with no generated OpenAPI definition.
// It embeds nothing: an embedded TypeMeta would lend it TypeMeta's
// OpenAPIModelName.
type widget struct{}

func (w *widget) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (w *widget) DeepCopyObject() runtime.Object   { return &widget{} }

// The documents are kept gzipped: clients that accept gzip get them as
// they are, others get them plain, and both are the same JSON.
func TestContentEncoding(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	zipped, zbody := get(t, srv.URL+"/openapi/v2", map[string]string{"Accept-Encoding": "gzip"})
	plain, pbody := get(t, srv.URL+"/openapi/v2", map[string]string{"Accept-Encoding": "identity"})
	refused, rbody := get(t, srv.URL+"/openapi/v2", map[string]string{"Accept-Encoding": "gzip;q=0, br"})
	if got := zipped.Header.Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("Accept-Encoding gzip: Content-Encoding %q, want gzip", got)
	}
	for _, r := range []*http.Response{plain, refused} {
		if got := r.Header.Get("Content-Encoding"); got != "" {
			t.Errorf("Content-Encoding %q for a client without gzip", got)
		}
	}
	zr, err := gzip.NewReader(bytes.NewReader(zbody))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unzipped, pbody) || !bytes.Equal(pbody, rbody) || !json.Valid(pbody) {
		t.Errorf("gzipped (%d bytes plain) and plain (%d, %d) bodies differ or are not JSON", len(unzipped), len(pbody), len(rbody))
	}
	proto, body := get(t, srv.URL+"/openapi/v2", map[string]string{"Accept": mimeV2Proto})
	if proto.Header.Get("Content-Type") != mimeV2Proto || len(body) == 0 || body[0] == 0x1f {
		t.Errorf("protobuf without gzip: %s, %d bytes starting %x", proto.Header.Get("Content-Type"), len(body), body[:min(2, len(body))])
	}
}

func TestAcceptsGzip(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]bool{
		"": false, "gzip": true, "deflate, gzip;q=1.0, *;q=0.5": true, "gzip;q=0": false,
		"identity": false, "*": true, "br, x-gzip": true, " GZIP ; q=0.3": true,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}
