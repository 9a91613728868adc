package webhook

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/admission"
)

func TestMatchRules(t *testing.T) {
	t.Parallel()
	rule := func(ops []admissionregistrationv1.OperationType, groups, versions, resources []string, scope admissionregistrationv1.ScopeType) []admissionregistrationv1.RuleWithOperations {
		return []admissionregistrationv1.RuleWithOperations{{
			Operations: ops,
			Rule:       admissionregistrationv1.Rule{APIGroups: groups, APIVersions: versions, Resources: resources, Scope: &scope},
		}}
	}
	all := []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll}
	create := []admissionregistrationv1.OperationType{admissionregistrationv1.Create}
	star := []string{"*"}
	req := func(op admission.Operation, group, resource, sub, ns string) *admission.Request {
		return &admission.Request{Operation: op, Namespace: ns, Subresource: sub,
			Resource: schema.GroupVersionResource{Group: group, Version: "v1", Resource: resource}}
	}
	tests := []struct {
		name  string
		rules []admissionregistrationv1.RuleWithOperations
		req   *admission.Request
		want  bool
	}{
		{"exact pods", rule(all, []string{""}, []string{"v1"}, []string{"pods"}, "*"), req(admission.Create, "", "pods", "", "ns"), true},
		{"operation differs", rule(create, star, star, star, "*"), req(admission.Update, "", "pods", "", "ns"), false},
		{"operation matches", rule(create, star, star, star, "*"), req(admission.Create, "", "pods", "", "ns"), true},
		{"group differs", rule(all, []string{"apps"}, star, star, "*"), req(admission.Create, "", "pods", "", "ns"), false},
		{"version differs", rule(all, star, []string{"v2"}, star, "*"), req(admission.Create, "", "pods", "", "ns"), false},
		{"star excludes subresources", rule(all, star, star, star, "*"), req(admission.Update, "", "pods", "status", "ns"), false},
		{"star/star includes subresources", rule(all, star, star, []string{"*/*"}, "*"), req(admission.Update, "", "pods", "status", "ns"), true},
		{"pods/status", rule(all, star, star, []string{"pods/status"}, "*"), req(admission.Update, "", "pods", "status", "ns"), true},
		{"pods/status not pods", rule(all, star, star, []string{"pods/status"}, "*"), req(admission.Update, "", "pods", "", "ns"), false},
		{"pods/* also pods, as upstream", rule(all, star, star, []string{"pods/*"}, "*"), req(admission.Update, "", "pods", "", "ns"), true},
		{"pods/* other resource", rule(all, star, star, []string{"pods/*"}, "*"), req(admission.Update, "", "services", "", "ns"), false},
		{"*/status", rule(all, star, star, []string{"*/status"}, "*"), req(admission.Update, "apps", "deployments", "status", "ns"), true},
		{"*/scale not status", rule(all, star, star, []string{"*/scale"}, "*"), req(admission.Update, "apps", "deployments", "status", "ns"), false},
		{"namespaced scope, namespaced object", rule(all, star, star, star, "Namespaced"), req(admission.Create, "", "pods", "", "ns"), true},
		{"namespaced scope, cluster object", rule(all, star, star, star, "Namespaced"), req(admission.Create, "", "nodes", "", ""), false},
		{"cluster scope, cluster object", rule(all, star, star, star, "Cluster"), req(admission.Create, "", "nodes", "", ""), true},
		{"cluster scope, namespaced object", rule(all, star, star, star, "Cluster"), req(admission.Create, "", "pods", "", "ns"), false},
		{"cluster scope, namespace", rule(all, star, star, star, "Cluster"), req(admission.Update, "", "namespaces", "", "ns"), true},
		{"namespaced scope, namespace", rule(all, star, star, star, "Namespaced"), req(admission.Update, "", "namespaces", "", "ns"), false},
		{"no rules", nil, req(admission.Create, "", "pods", "", "ns"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := matchRules(tt.rules, tt.req); got != tt.want {
				t.Errorf("matchRules = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatcherSelectors(t *testing.T) {
	t.Parallel()
	nsLister := namespaceLister(t,
		namespace("prod", map[string]string{"env": "prod"}),
		namespace("dev", map[string]string{"env": "dev"}),
	)
	envProd := &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	appWeb := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	bad := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}}
	pod := func(ns string, lbls map[string]string) *admission.Request {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns, Labels: lbls}}
		return &admission.Request{Operation: admission.Create, Namespace: ns, Name: "p", Resource: podsGVR, Kind: podGVK, Object: p}
	}
	nsReq := func(op admission.Operation, lbls map[string]string) *admission.Request {
		n := namespace("newns", lbls)
		return &admission.Request{Operation: op, Name: "newns", Resource: schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, Object: n}
	}
	node := &admission.Request{Operation: admission.Create, Name: "n1", Resource: schema.GroupVersionResource{Version: "v1", Resource: "nodes"},
		Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}}
	update := pod("prod", map[string]string{"app": "db"})
	update.Operation = admission.Update
	update.OldObject = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "prod", Labels: map[string]string{"app": "web"}}}

	tests := []struct {
		name     string
		nsSel    *metav1.LabelSelector
		objSel   *metav1.LabelSelector
		rules    []admissionregistrationv1.RuleWithOperations
		req      *admission.Request
		want     bool
		wantCode int32
	}{
		{name: "no selectors", req: pod("prod", nil), want: true},
		{name: "namespace matches", nsSel: envProd, req: pod("prod", nil), want: true},
		{name: "namespace does not match", nsSel: envProd, req: pod("dev", nil), want: false},
		{name: "namespace missing, rules match", nsSel: envProd, req: pod("gone", nil), wantCode: 404},
		{name: "namespace missing, rules do not match", nsSel: envProd, rules: []admissionregistrationv1.RuleWithOperations{}, req: pod("gone", nil), want: false},
		{name: "cluster-scoped object ignores namespaceSelector", nsSel: envProd, rules: allRules(), req: node, want: true},
		{name: "namespace matches on its own new labels", nsSel: envProd, rules: allRules(), req: nsReq(admission.Create, map[string]string{"env": "prod"}), want: true},
		{name: "namespace's own labels do not match", nsSel: envProd, rules: allRules(), req: nsReq(admission.Create, map[string]string{"env": "dev"}), want: false},
		{name: "object selector matches", objSel: appWeb, req: pod("prod", map[string]string{"app": "web"}), want: true},
		{name: "object selector does not match", objSel: appWeb, req: pod("prod", map[string]string{"app": "db"}), want: false},
		{name: "object selector matches the old object", objSel: appWeb, req: update, want: true},
		{name: "bad selector, rules match", objSel: bad, req: pod("prod", nil), wantCode: 500},
		{name: "bad selector, rules do not match", objSel: bad, rules: []admissionregistrationv1.RuleWithOperations{}, req: pod("prod", nil), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rules := tt.rules
			if rules == nil {
				rules = podRules()
			}
			w := validatingHook("v.example.com", "https://127.0.0.1", nil, func(h *admissionregistrationv1.ValidatingWebhook) {
				h.Rules = rules
				h.NamespaceSelector = tt.nsSel
				h.ObjectSelector = tt.objSel
			})
			h := compileValidating(validatingConfig("c", w))[0]
			m := &matcher{r: tt.req, namespaces: nsLister}
			got, serr := m.matches(context.Background(), h)
			var code int32
			if serr != nil {
				code = serr.ErrStatus.Code
			}
			if got != tt.want || code != tt.wantCode {
				t.Errorf("matches = %v, code %d (%v); want %v, code %d", got, code, serr, tt.want, tt.wantCode)
			}
		})
	}
}

func TestExempt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		group string
		want  bool
	}{
		{"admissionregistration.k8s.io", true},
		{"", false},
		{"apps", false},
	}
	for _, tt := range tests {
		t.Run(tt.group, func(t *testing.T) {
			t.Parallel()
			r := &admission.Request{Resource: schema.GroupVersionResource{Group: tt.group, Version: "v1", Resource: "things"}}
			if got := exempt(r); got != tt.want {
				t.Errorf("exempt(%q) = %v, want %v", tt.group, got, tt.want)
			}
		})
	}
}

func TestCompileDefaults(t *testing.T) {
	t.Parallel()
	w := admissionregistrationv1.ValidatingWebhook{Name: "v.example.com", Rules: podRules()}
	h := compileValidating(validatingConfig("c", w))[0]
	if h.failOpen || h.timeout != defaultTimeout || !h.nsSelector.Empty() || !h.objSelector.Empty() || h.uid != "c/v.example.com/0" {
		t.Errorf("compiled defaults: failOpen %v timeout %v nsSelector %q objSelector %q uid %q",
			h.failOpen, h.timeout, h.nsSelector, h.objSelector, h.uid)
	}
	m := mutatingHook("m.example.com", "https://x", nil, func(h *admissionregistrationv1.MutatingWebhook) {
		h.ReinvocationPolicy = ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy)
		h.FailurePolicy = ptr.To(admissionregistrationv1.Ignore)
	})
	mh := compileMutating(mutatingConfig("c", m))[0]
	if !mh.reinvoke || !mh.failOpen {
		t.Errorf("compiled mutating: reinvoke %v failOpen %v, want both true", mh.reinvoke, mh.failOpen)
	}
}

func TestHookCache(t *testing.T) {
	t.Parallel()
	a := validatingConfig("a", validatingHook("a.example.com", "https://x", nil))
	b := validatingConfig("b", validatingHook("b1.example.com", "https://x", nil), validatingHook("b2.example.com", "https://x", nil))
	b2 := b.DeepCopy()
	b2.ResourceVersion = "2"
	b2.Webhooks = b2.Webhooks[:1]
	var c hookCache
	names := func(hs []*hook) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.uid)
		}
		return out
	}
	first, err := c.validatingHooks(validatingLister(t, b, a))
	if err != nil {
		t.Fatalf("validatingHooks: %v", err)
	}
	if d := cmp.Diff([]string{"a/a.example.com/0", "b/b1.example.com/0", "b/b2.example.com/1"}, names(first)); d != "" {
		t.Errorf("order (-want +got):\n%s", d)
	}
	again, _ := c.validatingHooks(validatingLister(t, a, b))
	if &again[0] != &first[0] {
		t.Errorf("unchanged configurations: the hook list was rebuilt")
	}
	changed, _ := c.validatingHooks(validatingLister(t, a, b2))
	if d := cmp.Diff([]string{"a/a.example.com/0", "b/b1.example.com/0"}, names(changed)); d != "" {
		t.Errorf("after an update (-want +got):\n%s", d)
	}
	if changed[0] != first[0] {
		t.Errorf("the unchanged configuration was recompiled")
	}
	if none, _ := c.validatingHooks(validatingLister(t)); len(none) != 0 {
		t.Errorf("no configurations: %d hooks", len(none))
	}
}

// TestNamespaceCacheMiss: a namespace the cache does not have yet is read
// through the client.
func TestNamespaceCacheMiss(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(namespace("fresh", map[string]string{"env": "prod"}))
	w := validatingHook("v.example.com", "https://x", nil, func(h *admissionregistrationv1.ValidatingWebhook) {
		h.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	})
	h := compileValidating(validatingConfig("c", w))[0]
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "fresh"}}
	r := &admission.Request{Operation: admission.Create, Namespace: "fresh", Name: "p", Resource: podsGVR, Kind: podGVK, Object: p}
	m := &matcher{r: r, namespaces: namespaceLister(t), client: client}
	if ok, serr := m.matches(context.Background(), h); !ok || serr != nil {
		t.Errorf("matches = %v, %v; want true through the client", ok, serr)
	}
}
