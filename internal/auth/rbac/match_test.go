package rbac

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/skiff-dev/skiff/internal/auth"
)

func res(verb, group, resource, sub, ns, name string) auth.Attributes {
	return auth.Attributes{Verb: verb, ResourceRequest: true, APIGroup: group, Resource: resource, Subresource: sub, Namespace: ns, Name: name}
}

func nonRes(verb, path string) auth.Attributes {
	return auth.Attributes{Verb: verb, Path: path}
}

func TestRuleAllows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rule  rbacv1.PolicyRule
		attrs auth.Attributes
		want  bool
	}{
		{"exact", rule("get").groups("").resources("pods").rule(), res("get", "", "pods", "", "ns", "p"), true},
		{"other verb", rule("get").groups("").resources("pods").rule(), res("delete", "", "pods", "", "ns", "p"), false},
		{"other group", rule("get").groups("").resources("pods").rule(), res("get", "apps", "pods", "", "ns", "p"), false},
		{"star verb", rule("*").groups("").resources("pods").rule(), res("escalate", "", "pods", "", "", ""), true},
		{"star group", rule("get").groups("*").resources("pods").rule(), res("get", "x.io", "pods", "", "", ""), true},
		{"star resource matches subresource", rule("get").groups("").resources("*").rule(), res("get", "", "pods", "log", "ns", "p"), true},
		{"resource does not match its subresource", rule("get").groups("").resources("pods").rule(), res("get", "", "pods", "log", "ns", "p"), false},
		{"subresource exact", rule("get").groups("").resources("pods/log").rule(), res("get", "", "pods", "log", "ns", "p"), true},
		{"subresource does not match the resource", rule("get").groups("").resources("pods/log").rule(), res("get", "", "pods", "", "ns", "p"), false},
		{"star subresource", rule("update").groups("apps").resources("*/scale").rule(), res("update", "apps", "deployments", "scale", "ns", "d"), true},
		{"star subresource, other subresource", rule("update").groups("apps").resources("*/scale").rule(), res("update", "apps", "deployments", "status", "ns", "d"), false},
		{"star subresource, no subresource", rule("update").groups("apps").resources("*/scale").rule(), res("update", "apps", "deployments", "", "ns", "d"), false},
		{"resource name", rule("get").groups("").resources("configmaps").names("a", "b").rule(), res("get", "", "configmaps", "", "ns", "b"), true},
		{"other resource name", rule("get").groups("").resources("configmaps").names("a").rule(), res("get", "", "configmaps", "", "ns", "c"), false},
		{"resource names never match a list", rule("list").groups("").resources("configmaps").names("a").rule(), res("list", "", "configmaps", "", "ns", ""), false},
		{"resource rule never matches a URL", rule("get").groups("*").resources("*").rule(), nonRes("get", "/healthz"), false},
		{"url exact", rule("get").urls("/healthz").rule(), nonRes("get", "/healthz"), true},
		{"url not a prefix", rule("get").urls("/healthz").rule(), nonRes("get", "/healthz/etcd"), false},
		{"url star suffix", rule("get").urls("/healthz/*").rule(), nonRes("get", "/healthz/etcd"), true},
		{"url star suffix needs the slash", rule("get").urls("/apis/*").rule(), nonRes("get", "/apis"), false},
		{"url star", rule("*").urls("*").rule(), nonRes("post", "/anything"), true},
		{"url verb", rule("get").urls("/version").rule(), nonRes("post", "/version"), false},
		{"url rule never matches a resource", rule("*").urls("*").rule(), res("get", "", "pods", "", "", ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := RuleAllows(tt.attrs, &tt.rule); got != tt.want {
				t.Errorf("RuleAllows(%+v, %s) = %v, want %v", tt.attrs, ruleString(tt.rule), got, tt.want)
			}
		})
	}
}

func TestSubjectApplies(t *testing.T) {
	t.Parallel()
	alice := auth.User{Name: "alice", Groups: []string{"devs", auth.AllAuthenticated}}
	sa := auth.User{Name: "system:serviceaccount:ns1:builder", Groups: []string{auth.ServiceAccountsAll}}
	tests := []struct {
		name      string
		subject   rbacv1.Subject
		user      auth.User
		namespace string
		want      bool
	}{
		{"user", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "alice"}, alice, "", true},
		{"other user", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "bob"}, alice, "", false},
		{"group", rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "devs"}, alice, "", true},
		{"other group", rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "ops"}, alice, "", false},
		{"user named like a group", rbacv1.Subject{Kind: rbacv1.UserKind, Name: "devs"}, alice, "", false},
		{"service account with namespace", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: "ns1", Name: "builder"}, sa, "", true},
		{"service account defaults to the binding's namespace", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "builder"}, sa, "ns1", true},
		{"service account in another namespace", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "builder"}, sa, "ns2", false},
		{"service account without any namespace", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "builder"}, sa, "", false},
		{"unknown kind", rbacv1.Subject{Kind: "Robot", Name: "alice"}, alice, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := subjectApplies(&tt.subject, tt.user, tt.namespace); got != tt.want {
				t.Errorf("subjectApplies(%+v, %q, %q) = %v, want %v", tt.subject, tt.user.Name, tt.namespace, got, tt.want)
			}
		})
	}
}
