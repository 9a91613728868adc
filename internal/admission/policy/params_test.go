package policy

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	fakedynamic "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/skiff-dev/skiff/internal/admission"
)

var limitsGVK = schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Limit"}

func newDynamicParams(t *testing.T, objs ...runtime.Object) ParamSource {
	t.Helper()
	disc := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{}}
	disc.Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: []string{"get", "list", "watch"}}}},
		{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{{Name: "limits", Namespaced: false, Kind: "Limit", Verbs: []string{"get", "list", "watch"}}}},
	}
	dyn := fakedynamic.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		{Version: "v1", Resource: "configmaps"}:                   "ConfigMapList",
		{Group: "example.com", Version: "v1", Resource: "limits"}: "LimitList",
	}, objs...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return NewDynamicParams(ctx, dyn, disc)
}

func names(us []*unstructured.Unstructured) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.GetNamespace()+"/"+u.GetName())
	}
	return out
}

func TestDynamicParams(t *testing.T) {
	t.Parallel()
	cluster := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Limit", "metadata": map[string]any{"name": "global"}}}
	src := newDynamicParams(t,
		configMap("ns", "limits", map[string]string{"tier": "a"}, map[string]any{"maxReplicas": "3"}),
		configMap("ns", "other", map[string]string{"tier": "b"}, nil),
		configMap("dev", "limits", map[string]string{"tier": "a"}, nil),
		cluster)
	ctx := context.Background()
	sc := src.(ParamScoper)

	if ns, err := sc.Namespaced(ctx, configMapGVK); err != nil || !ns {
		t.Errorf("ConfigMap namespaced: got %v, %v", ns, err)
	}
	if ns, err := sc.Namespaced(ctx, limitsGVK); err != nil || ns {
		t.Errorf("Limits namespaced: got %v, %v", ns, err)
	}
	if _, err := sc.Namespaced(ctx, schema.GroupVersionKind{Group: "nosuch.example.com", Version: "v1", Kind: "Nope"}); !meta.IsNoMatchError(err) {
		t.Errorf("unknown kind: got %v, want a no-match error", err)
	}

	u, err := src.Get(ctx, configMapGVK, "ns", "limits")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got, _, _ := unstructured.NestedString(u.Object, "data", "maxReplicas"); got != "3" {
		t.Errorf("Get: data.maxReplicas %q, want 3", got)
	}
	if _, err := src.Get(ctx, configMapGVK, "ns", "missing"); !apierrors.IsNotFound(err) {
		t.Errorf("Get missing: got %v, want NotFound", err)
	}
	if u, err := src.Get(ctx, limitsGVK, "", "global"); err != nil || u.GetName() != "global" {
		t.Errorf("Get cluster-scoped: got %v, %v", u, err)
	}

	sel := labels.SelectorFromSet(labels.Set{"tier": "a"})
	got, err := src.List(ctx, configMapGVK, "ns", sel)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if diff := cmp.Diff([]string{"ns/limits"}, names(got)); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	got, err = src.List(ctx, limitsGVK, "", labels.Everything())
	if err != nil {
		t.Fatalf("List cluster-scoped: %v", err)
	}
	if diff := cmp.Diff([]string{"/global"}, names(got)); diff != "" {
		t.Errorf("List cluster-scoped (-want +got):\n%s", diff)
	}
}

// TestParamScope checks upstream's rules for the namespace of params.
func TestParamScope(t *testing.T) {
	t.Parallel()
	limitsKind := func(s *spec) {
		s.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "example.com/v1", Kind: "Limit"}
		s.MatchConstraints.ResourceRules[0].Resources = []string{"*"}
		s.MatchConstraints.ResourceRules[0].APIGroups = []string{"*"}
	}
	global := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Limit", "metadata": map[string]any{"name": "global"}, "max": int64(3)}}
	kinds := map[schema.GroupVersionKind]bool{configMapGVK: true, limitsGVK: false}
	clusterReq := createReq(deployment("web", "", 4, nil))
	cases := []struct {
		name    string
		policy  func(*spec)
		binding func(*bspec)
		req     func() *admission.Request
		wantMsg string
	}{
		{
			name:    "cluster-scoped kind",
			policy:  limitsKind,
			binding: paramByName("global", "Deny"),
			wantMsg: `deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: failed expression: object.spec.replicas <= params.max`,
		},
		{
			name:   "cluster-scoped kind with a namespace",
			policy: limitsKind,
			binding: func(b *bspec) {
				paramByName("global", "Deny")(b)
				b.ParamRef.Namespace = "ns"
			},
			wantMsg: `deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: failed to configure binding: paramRef.namespace must not be provided for a cluster-scoped ` + "`paramKind`",
		},
		{
			name: "namespaced kind, cluster-scoped request",
			policy: func(s *spec) {
				cmParamKind(s)
				s.MatchConstraints.ResourceRules[0].Resources = []string{"*"}
			},
			binding: paramByName("limits", "Deny"),
			req:     func() *admission.Request { return clusterReq },
			wantMsg: `deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: failed to configure binding: cannot use namespaced paramRef in policy binding that matches cluster-scoped resources`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPlugin(t, fixture{
				policies: pols(withPolicy(vap("p", "object.spec.replicas <= params.max"), tc.policy)),
				bindings: binds(withBinding(vapb("b", "p"), tc.binding)),
				params:   &fakeParams{objs: unstructuredList(global), namespaced: kinds},
			})
			req := createReq(web(4))
			if tc.req != nil {
				req = tc.req()
			}
			checkResult(t, p.Validate(context.Background(), req), 422, metav1.StatusReasonInvalid, tc.wantMsg)
		})
	}
}
