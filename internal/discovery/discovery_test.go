package discovery

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientdiscovery "k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/registry"
)

// testResources stands in for builtin.Resources: a namespaced and a
// cluster-scoped resource in core and in named groups, with status and
// scale subresources, and a second version of one group.
func testResources() []*registry.Resource {
	scale := &registry.ScaleAccessor{
		Get:         func(runtime.Object) (int32, int32, string) { return 0, 0, "" },
		SetReplicas: func(runtime.Object, int32) {},
	}
	return []*registry.Resource{
		{GVR: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, Kind: "Pod", ListKind: "PodList",
			Singular: "pod", ShortNames: []string{"po"}, Categories: []string{"all"}, Namespaced: true, Status: true},
		{GVR: schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, Kind: "Namespace", ListKind: "NamespaceList",
			Singular: "namespace", ShortNames: []string{"ns"}, Status: true,
			Verbs: []string{"watch", "get", "list", "create", "update", "patch", "delete"}},
		{GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, Kind: "Deployment", ListKind: "DeploymentList",
			Singular: "deployment", ShortNames: []string{"deploy"}, Categories: []string{"all"}, Namespaced: true, Status: true, Scale: scale},
		{GVR: schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, Kind: "ClusterRole", ListKind: "ClusterRoleList",
			Singular: "clusterrole"},
		{GVR: schema.GroupVersionResource{Group: "autoscaling", Version: "v1", Resource: "horizontalpodautoscalers"}, Kind: "HorizontalPodAutoscaler",
			ListKind: "HorizontalPodAutoscalerList", Singular: "horizontalpodautoscaler", ShortNames: []string{"hpa"}, Namespaced: true, Status: true},
		{GVR: schema.GroupVersionResource{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}, Kind: "HorizontalPodAutoscaler",
			ListKind: "HorizontalPodAutoscalerList", Singular: "horizontalpodautoscaler", ShortNames: []string{"hpa"}, Namespaced: true, Status: true},
	}
}

func newTestServer(t *testing.T) (*httptest.Server, map[string]*atomic.Int64) {
	t.Helper()
	hits := map[string]*atomic.Int64{}
	for _, p := range []string{"/api", "/apis", "/api/v1", "/apis/apps/v1"} {
		hits[p] = &atomic.Int64{}
	}
	h := New(testResources())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := hits[r.URL.Path]; ok {
			c.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

func TestClientGoDiscovery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		legacy bool
	}{
		{name: "aggregated", legacy: false},
		{name: "legacy", legacy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, hits := newTestServer(t)
			dc, err := clientdiscovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
			if err != nil {
				t.Fatalf("NewDiscoveryClientForConfig: %v", err)
			}
			dc.UseLegacyDiscovery = tc.legacy

			groups, lists, err := dc.ServerGroupsAndResources()
			if err != nil {
				t.Fatalf("ServerGroupsAndResources: %v", err)
			}
			var gotGroups []string
			for _, g := range groups {
				gotGroups = append(gotGroups, g.Name+"="+g.PreferredVersion.GroupVersion)
			}
			wantGroups := []string{"=v1", "apps=apps/v1", "rbac.authorization.k8s.io=rbac.authorization.k8s.io/v1", "autoscaling=autoscaling/v2"}
			if diff := cmp.Diff(wantGroups, gotGroups); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}

			got := map[string]metav1.APIResource{}
			for _, l := range lists {
				for _, r := range l.APIResources {
					got[l.GroupVersion+" "+r.Name] = r
				}
			}
			want := map[string]metav1.APIResource{
				"v1 pods": {Name: "pods", SingularName: "pod", Namespaced: true, Kind: "Pod",
					Verbs: metav1.Verbs(allVerbs()), ShortNames: []string{"po"}, Categories: []string{"all"}},
				"v1 pods/status":  {Name: "pods/status", Namespaced: true, Kind: "Pod", Verbs: []string{"get", "patch", "update"}},
				"v1 pods/binding": {Name: "pods/binding", Namespaced: true, Kind: "Binding", Verbs: []string{"create"}},
				"v1 bindings":     {Name: "bindings", SingularName: "binding", Namespaced: true, Kind: "Binding", Verbs: []string{"create"}},
				"v1 namespaces": {Name: "namespaces", SingularName: "namespace", Kind: "Namespace",
					Verbs: []string{"create", "delete", "get", "list", "patch", "update", "watch"}, ShortNames: []string{"ns"}},
				"v1 namespaces/finalize": {Name: "namespaces/finalize", Kind: "Namespace", Verbs: []string{"update"}},
				"apps/v1 deployments": {Name: "deployments", SingularName: "deployment", Namespaced: true, Kind: "Deployment",
					Verbs: metav1.Verbs(allVerbs()), ShortNames: []string{"deploy"}, Categories: []string{"all"}},
				"apps/v1 deployments/scale": {Name: "deployments/scale", Namespaced: true, Group: "autoscaling", Version: "v1",
					Kind: "Scale", Verbs: []string{"get", "patch", "update"}},
				"rbac.authorization.k8s.io/v1 clusterroles": {Name: "clusterroles", SingularName: "clusterrole", Kind: "ClusterRole",
					Verbs: metav1.Verbs(allVerbs())},
			}
			for key, w := range want {
				g, ok := got[key]
				if !ok {
					t.Errorf("resource %q missing", key)
					continue
				}
				// Aggregated discovery does not carry storageVersionHash;
				// client-go fills Group/Version of subresources itself.
				ignore := []string{"StorageVersionHash", "Group", "Version"}
				if strings.Contains(w.Name, "/") && !tc.legacy {
					// client-go copies the parent's singular name onto
					// aggregated subresources.
					ignore = append(ignore, "SingularName")
				}
				if diff := cmp.Diff(w, g, cmpopts.IgnoreFields(metav1.APIResource{}, ignore...), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s (-want +got):\n%s", key, diff)
				}
			}
			if g := got["apps/v1 deployments/scale"]; g.Group != "autoscaling" || g.Version != "v1" {
				t.Errorf("deployments/scale group/version = %q/%q, want autoscaling/v1", g.Group, g.Version)
			}
			if _, ok := got["autoscaling/v1 horizontalpodautoscalers"]; !ok {
				t.Errorf("autoscaling/v1 horizontalpodautoscalers missing")
			}

			preferred, err := dc.ServerPreferredResources()
			if err != nil {
				t.Fatalf("ServerPreferredResources: %v", err)
			}
			var gvs []string
			for _, l := range preferred {
				// client-go keeps empty lists for non-preferred versions.
				if len(l.APIResources) > 0 {
					gvs = append(gvs, l.GroupVersion)
				}
			}
			sort.Strings(gvs)
			if diff := cmp.Diff([]string{"apps/v1", "autoscaling/v2", "rbac.authorization.k8s.io/v1", "v1"}, gvs); diff != "" {
				t.Errorf("preferred group versions (-want +got):\n%s", diff)
			}

			legacyHits := hits["/api/v1"].Load() + hits["/apis/apps/v1"].Load()
			if tc.legacy && legacyHits == 0 {
				t.Errorf("legacy discovery never fetched /api/v1 or /apis/apps/v1")
			}
			if !tc.legacy && legacyHits != 0 {
				t.Errorf("aggregated discovery fell back to per-group documents (%d requests)", legacyHits)
			}
		})
	}
}

func TestAggregatedNegotiation(t *testing.T) {
	t.Parallel()
	h := New(testResources())
	for _, tc := range []struct {
		name            string
		path            string
		accept          string
		wantContentType string
		wantAPIVersion  string
	}{
		{name: "client-go v2", path: "/apis", accept: clientdiscovery.AcceptV2 + "," + clientdiscovery.AcceptV1,
			wantContentType: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", wantAPIVersion: "apidiscovery.k8s.io/v2"},
		{name: "nopeer profile", path: "/api", accept: clientdiscovery.AcceptV2NoPeer + "," + clientdiscovery.AcceptV2 + "," + clientdiscovery.AcceptV1,
			wantContentType: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", wantAPIVersion: "apidiscovery.k8s.io/v2"},
		{name: "kubectl 1.27 v2beta1", path: "/apis", accept: "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
			wantContentType: "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", wantAPIVersion: "apidiscovery.k8s.io/v2beta1"},
		{name: "plain json", path: "/apis", accept: "application/json", wantContentType: "application/json"},
		{name: "no accept", path: "/api", wantContentType: "application/json"},
		{name: "protobuf only", path: "/apis", accept: "application/vnd.kubernetes.protobuf", wantContentType: "application/json"},
		{name: "aggregated protobuf then json", path: "/apis",
			accept:          "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
			wantContentType: "application/json"},
		{name: "json preferred by q", path: "/apis", accept: clientdiscovery.AcceptV2 + ";q=0.5,application/json",
			wantContentType: "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Content-Type"); got != tc.wantContentType {
				t.Errorf("Content-Type = %q, want %q", got, tc.wantContentType)
			}
			var tm metav1.TypeMeta
			if err := json.Unmarshal(rec.Body.Bytes(), &tm); err != nil {
				t.Fatalf("decoding: %v", err)
			}
			if tc.wantAPIVersion != "" && tm.APIVersion != tc.wantAPIVersion {
				t.Errorf("apiVersion = %q, want %q", tm.APIVersion, tc.wantAPIVersion)
			}
			if tc.wantAPIVersion == "" && strings.HasPrefix(tm.APIVersion, "apidiscovery") {
				t.Errorf("got aggregated document %q for a legacy request", tm.APIVersion)
			}
		})
	}
}

func TestAggregatedETag(t *testing.T) {
	t.Parallel()
	h := New(testResources())
	get := func(inm string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/apis", nil)
		req.Header.Set("Accept", clientdiscovery.AcceptV2)
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	first := get("")
	etag := first.Header().Get("ETag")
	if first.Code != http.StatusOK || etag == "" {
		t.Fatalf("first GET: status %d, ETag %q", first.Code, etag)
	}
	var list apidiscoveryv2.APIGroupDiscoveryList
	if err := json.Unmarshal(first.Body.Bytes(), &list); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	var names []string
	for _, g := range list.Items {
		names = append(names, g.Name)
	}
	if diff := cmp.Diff([]string{"apps", "rbac.authorization.k8s.io", "autoscaling"}, names); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		name string
		inm  string
		want int
	}{
		{name: "matching", inm: etag, want: http.StatusNotModified},
		{name: "stale", inm: `"0000"`, want: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(tc.inm)
			if rec.Code != tc.want {
				t.Errorf("status = %d, want %d", rec.Code, tc.want)
			}
			if rec.Code == http.StatusNotModified && rec.Body.Len() != 0 {
				t.Errorf("304 with a body of %d bytes", rec.Body.Len())
			}
		})
	}
}

func TestLegacyDocuments(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	for _, tc := range []struct {
		name     string
		path     string
		wantCode int
		into     any
		want     any
	}{
		{name: "api", path: "/api", wantCode: 200, into: &metav1.APIVersions{}, want: &metav1.APIVersions{
			TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: strings.TrimPrefix(srv.URL, "http://")}},
		}},
		{name: "group", path: "/apis/autoscaling", wantCode: 200, into: &metav1.APIGroup{}, want: &metav1.APIGroup{
			TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: "autoscaling",
			Versions: []metav1.GroupVersionForDiscovery{
				{GroupVersion: "autoscaling/v2", Version: "v2"}, {GroupVersion: "autoscaling/v1", Version: "v1"},
			},
			PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: "autoscaling/v2", Version: "v2"},
		}},
		{name: "trailing slash", path: "/apis/apps/", wantCode: 200},
		{name: "unknown group", path: "/apis/nope", wantCode: 404},
		{name: "unknown version", path: "/apis/apps/v2", wantCode: 404},
		{name: "core v2", path: "/api/v2", wantCode: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatalf("GET %s: %v", tc.path, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantCode, body)
			}
			if tc.into == nil {
				return
			}
			if err := json.Unmarshal(body, tc.into); err != nil {
				t.Fatalf("decoding: %v", err)
			}
			if diff := cmp.Diff(tc.want, tc.into); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestStorageVersionHash(t *testing.T) {
	t.Parallel()
	// Upstream publishes these values for pods and deployments.
	for _, tc := range []struct {
		gvk  schema.GroupVersionKind
		want string
	}{
		{gvk: schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, want: "xPOwRZ+Yhw8="},
		{gvk: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, want: "8aSe+NMegvE="},
	} {
		t.Run(tc.gvk.String(), func(t *testing.T) {
			if got := StorageVersionHash(tc.gvk); got != tc.want {
				t.Errorf("StorageVersionHash(%v) = %q, want %q", tc.gvk, got, tc.want)
			}
		})
	}
}

func TestSingularDefaultsToKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		r    *registry.Resource
		want string
	}{
		{name: "given", r: &registry.Resource{Kind: "Deployment", Singular: "deployment"}, want: "deployment"},
		{name: "defaulted", r: &registry.Resource{Kind: "PriorityClass"}, want: "priorityclass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := singularOf(tc.r); got != tc.want {
				t.Errorf("singularOf = %q, want %q", got, tc.want)
			}
		})
	}
}
