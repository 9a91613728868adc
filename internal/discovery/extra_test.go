package discovery

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientdiscovery "k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/registry"
)

func metricsGroup() ExtraGroup {
	return ExtraGroup{
		GroupVersion: schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"},
		Resources: []ExtraResource{
			{Name: "nodes", Kind: "NodeMetrics", Verbs: []string{"list", "get"}},
			{Name: "pods", Kind: "PodMetrics", Namespaced: true, Verbs: []string{"list", "get"}},
		},
	}
}

// TestExtraGroup checks that an extra group is advertised, in both
// discovery forms, as kubectl top looks for it.
func TestExtraGroup(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(testResources(), metricsGroup()))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name   string
		legacy bool
	}{
		{name: "aggregated"},
		{name: "legacy", legacy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dc, err := clientdiscovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
			if err != nil {
				t.Fatal(err)
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
			wantGroups := []string{"=v1", "apps=apps/v1", "rbac.authorization.k8s.io=rbac.authorization.k8s.io/v1",
				"autoscaling=autoscaling/v2", "metrics.k8s.io=metrics.k8s.io/v1beta1"}
			if diff := cmp.Diff(wantGroups, gotGroups); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
			var got []metav1.APIResource
			for _, l := range lists {
				if l.GroupVersion == "metrics.k8s.io/v1beta1" {
					got = append(got, l.APIResources...)
				}
			}
			want := []metav1.APIResource{
				{Name: "nodes", SingularName: "nodemetrics", Kind: "NodeMetrics", Verbs: []string{"get", "list"}},
				{Name: "pods", SingularName: "podmetrics", Namespaced: true, Kind: "PodMetrics", Verbs: []string{"get", "list"}},
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(metav1.APIResource{}, "Group", "Version"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("metrics.k8s.io/v1beta1 resources (-want +got):\n%s", diff)
			}
		})
	}

	// The group documents are served too.
	for _, path := range []string{"/apis/metrics.k8s.io", "/apis/metrics.k8s.io/v1beta1"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Errorf("GET %s: %s, %v", path, resp.Status, err)
		}
	}

	// Without extra groups nothing changes.
	plain := httptest.NewServer(New(testResources()))
	t.Cleanup(plain.Close)
	resp, err := http.Get(plain.URL + "/apis/metrics.k8s.io/v1beta1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /apis/metrics.k8s.io/v1beta1 without the extra group: %s, want 404", resp.Status)
	}
}

// TestLocalGroupVersions: the group versions the server serves itself are
// the built-in, extra and custom ones, whether or not an extension server
// hides one; the extension servers' own are not among them.
func TestLocalGroupVersions(t *testing.T) {
	t.Parallel()
	d := NewDynamic(testResources(), metricsGroup())
	crontabs := schema.GroupVersionResource{Group: "stable.example.com", Version: "v1", Resource: "crontabs"}
	d.SetCustomResources([]*registry.Resource{{GVR: crontabs, Kind: "CronTab", ListKind: "CronTabList", Singular: "crontab", Namespaced: true}})
	d.SetRemoteGroups([]ExtraGroup{
		{GroupVersion: schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}},
		{GroupVersion: schema.GroupVersion{Group: "remote.example.com", Version: "v1"}},
	})
	var want []schema.GroupVersion
	seen := map[schema.GroupVersion]bool{}
	for _, r := range testResources() {
		if gv := r.GVR.GroupVersion(); !seen[gv] {
			seen[gv] = true
			want = append(want, gv)
		}
	}
	want = append(want, crontabs.GroupVersion(), schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"})
	if diff := cmp.Diff(want, d.LocalGroupVersions()); diff != "" {
		t.Errorf("LocalGroupVersions (-want +got):\n%s", diff)
	}
}
