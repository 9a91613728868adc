package discovery

import (
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientdiscovery "k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// TestReviewGroups checks that the review resources are advertised with
// the verb create and their kinds, in both discovery forms, and that a
// RESTMapper (what kubectl builds) resolves them.
func TestReviewGroups(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(testResources(), ReviewGroups()...))
	t.Cleanup(srv.Close)
	create := []string{"create"}
	want := map[string][]metav1.APIResource{
		"authentication.k8s.io/v1": {
			{Name: "selfsubjectreviews", SingularName: "selfsubjectreview", Kind: "SelfSubjectReview", Verbs: create},
			{Name: "tokenreviews", SingularName: "tokenreview", Kind: "TokenReview", Verbs: create},
		},
		"authorization.k8s.io/v1": {
			{Name: "localsubjectaccessreviews", SingularName: "localsubjectaccessreview", Namespaced: true, Kind: "LocalSubjectAccessReview", Verbs: create},
			{Name: "selfsubjectaccessreviews", SingularName: "selfsubjectaccessreview", Kind: "SelfSubjectAccessReview", Verbs: create},
			{Name: "selfsubjectrulesreviews", SingularName: "selfsubjectrulesreview", Kind: "SelfSubjectRulesReview", Verbs: create},
			{Name: "subjectaccessreviews", SingularName: "subjectaccessreview", Kind: "SubjectAccessReview", Verbs: create},
		},
	}
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
			_, lists, err := dc.ServerGroupsAndResources()
			if err != nil {
				t.Fatalf("ServerGroupsAndResources: %v", err)
			}
			got := map[string][]metav1.APIResource{}
			for _, l := range lists {
				if _, ok := want[l.GroupVersion]; ok {
					got[l.GroupVersion] = l.APIResources
				}
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(metav1.APIResource{}, "Group", "Version"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("review resources (-want +got):\n%s", diff)
			}

			groups, err := restmapper.GetAPIGroupResources(dc)
			if err != nil {
				t.Fatalf("GetAPIGroupResources: %v", err)
			}
			mapper := restmapper.NewDiscoveryRESTMapper(groups)
			for _, name := range []string{"selfsubjectaccessreviews", "tokenreview", "localsubjectaccessreviews.authorization.k8s.io"} {
				_, gr := schema.ParseResourceArg(name)
				if _, err := mapper.KindFor(gr.WithVersion("")); err != nil {
					t.Errorf("RESTMapper cannot resolve %q: %v", name, err)
				}
			}
		})
	}
}
