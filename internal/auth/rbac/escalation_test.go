package rbac

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiff-dev/skiff/internal/auth"
)

func TestCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		owner       []rbacv1.PolicyRule
		servant     []rbacv1.PolicyRule
		wantMissing []rbacv1.PolicyRule
	}{
		{
			name:    "exact",
			owner:   []rbacv1.PolicyRule{rule("get", "list").groups("").resources("pods").rule()},
			servant: []rbacv1.PolicyRule{rule("get").groups("").resources("pods").rule()},
		},
		{
			name:    "split across owner rules",
			owner:   []rbacv1.PolicyRule{rule("get").groups("").resources("pods").rule(), rule("list").groups("").resources("pods").rule()},
			servant: []rbacv1.PolicyRule{rule("get", "list").groups("").resources("pods").rule()},
		},
		{
			name:        "missing verb",
			owner:       []rbacv1.PolicyRule{rule("get").groups("").resources("pods", "secrets").rule()},
			servant:     []rbacv1.PolicyRule{rule("get", "delete").groups("").resources("pods").rule()},
			wantMissing: []rbacv1.PolicyRule{rule("delete").groups("").resources("pods").rule()},
		},
		{
			name:    "stars cover all",
			owner:   []rbacv1.PolicyRule{rule("*").groups("*").resources("*").rule()},
			servant: []rbacv1.PolicyRule{rule("escalate").groups("rbac.authorization.k8s.io").resources("roles").names("x").rule()},
		},
		{
			name:        "a star is not covered by a list",
			owner:       []rbacv1.PolicyRule{rule("get", "list", "watch").groups("").resources("pods").rule()},
			servant:     []rbacv1.PolicyRule{rule("*").groups("").resources("pods").rule()},
			wantMissing: []rbacv1.PolicyRule{rule("*").groups("").resources("pods").rule()},
		},
		{
			name:    "star subresource covers a subresource",
			owner:   []rbacv1.PolicyRule{rule("update").groups("apps").resources("*/scale").rule()},
			servant: []rbacv1.PolicyRule{rule("update").groups("apps").resources("deployments/scale").rule()},
		},
		{
			name:        "resource does not cover its subresource",
			owner:       []rbacv1.PolicyRule{rule("get").groups("").resources("pods").rule()},
			servant:     []rbacv1.PolicyRule{rule("get").groups("").resources("pods/log").rule()},
			wantMissing: []rbacv1.PolicyRule{rule("get").groups("").resources("pods/log").rule()},
		},
		{
			name:    "names within names",
			owner:   []rbacv1.PolicyRule{rule("get").groups("").resources("configmaps").names("a", "b").rule()},
			servant: []rbacv1.PolicyRule{rule("get").groups("").resources("configmaps").names("b").rule()},
		},
		{
			name:        "named owner does not cover unnamed",
			owner:       []rbacv1.PolicyRule{rule("get").groups("").resources("configmaps").names("a").rule()},
			servant:     []rbacv1.PolicyRule{rule("get").groups("").resources("configmaps").rule()},
			wantMissing: []rbacv1.PolicyRule{rule("get").groups("").resources("configmaps").rule()},
		},
		{
			name:    "unnamed owner covers named",
			owner:   []rbacv1.PolicyRule{rule("get").groups("").resources("configmaps").rule()},
			servant: []rbacv1.PolicyRule{rule("get").groups("").resources("configmaps").names("a").rule()},
		},
		{
			name:    "url prefix",
			owner:   []rbacv1.PolicyRule{rule("get").urls("/healthz/*").rule()},
			servant: []rbacv1.PolicyRule{rule("get").urls("/healthz/etcd", "/healthz/*").rule()},
		},
		{
			name:        "url not covered",
			owner:       []rbacv1.PolicyRule{rule("get").urls("/healthz").rule()},
			servant:     []rbacv1.PolicyRule{rule("get").urls("/healthz/*").rule()},
			wantMissing: []rbacv1.PolicyRule{rule("get").urls("/healthz/*").rule()},
		},
		{
			name:        "resource rules do not cover urls",
			owner:       []rbacv1.PolicyRule{rule("*").groups("*").resources("*").rule()},
			servant:     []rbacv1.PolicyRule{rule("get").urls("/metrics").rule()},
			wantMissing: []rbacv1.PolicyRule{rule("get").urls("/metrics").rule()},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, missing := Covers(tt.owner, tt.servant)
			if diff := cmp.Diff(tt.wantMissing, missing); diff != "" {
				t.Errorf("missing (-want +got):\n%s", diff)
			}
			if ok != (len(tt.wantMissing) == 0) {
				t.Errorf("covered = %v with %d missing", ok, len(missing))
			}
		})
	}
}

func TestEscalation(t *testing.T) {
	t.Parallel()
	objs := testPolicy()
	objs = append(objs,
		clusterRole("role-escalator", rule("escalate").groups(rbacv1.GroupName).resources("roles").rule()),
		clusterRole("binder", rule("bind").groups(rbacv1.GroupName).resources("clusterroles").names("all").rule()),
		binding("ns1", "frank-escalates", "ClusterRole", "role-escalator", userSubject("frank")),
		clusterBinding("grace-binds", "binder", userSubject("grace")),
	)
	a := newSynced(t, objs...)
	bob := auth.User{Name: "bob"}
	frank := auth.User{Name: "frank"}
	grace := auth.User{Name: "grace"}
	root := auth.User{Name: "root", Groups: []string{auth.SystemMasters}}
	getSecrets := []rbacv1.PolicyRule{rule("get").groups("").resources("secrets").rule()}
	listSecrets := []rbacv1.PolicyRule{rule("get", "list").groups("").resources("secrets").rule()}
	agg := &rbacv1.AggregationRule{}

	roleTests := []struct {
		name      string
		user      auth.User
		namespace string
		rules     []rbacv1.PolicyRule
		agg       *rbacv1.AggregationRule
		wantErr   bool
	}{
		{"rules held", bob, "ns1", getSecrets, nil, false},
		{"rules not held", bob, "ns1", listSecrets, nil, true},
		{"rules held only in another namespace", bob, "ns2", getSecrets, nil, true},
		{"rules held in a namespace, not cluster-wide", bob, "", getSecrets, nil, true},
		{"escalate verb", frank, "ns1", listSecrets, nil, false},
		{"escalate verb only where bound", frank, "ns2", listSecrets, nil, true},
		{"masters", root, "", listSecrets, nil, false},
		{"aggregated needs full authority", bob, "", nil, agg, true},
		{"aggregated by masters", root, "", nil, agg, false},
	}
	for _, tt := range roleTests {
		t.Run("role/"+tt.name, func(t *testing.T) {
			t.Parallel()
			err := a.AuthorizeRoleWrite(t.Context(), tt.user, tt.namespace, "r", tt.rules, tt.agg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("AuthorizeRoleWrite = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !IsEscalation(err) {
				t.Errorf("error %v is not an escalation error", err)
			}
		})
	}

	ref := func(kind, name string) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name}
	}
	bindingTests := []struct {
		name         string
		user         auth.User
		namespace    string
		ref          rbacv1.RoleRef
		wantErr      bool
		wantNotFound bool
	}{
		{"role whose rules are held", bob, "ns1", ref("Role", "secret-reader"), false, false},
		{"cluster role not held", bob, "ns1", ref("ClusterRole", "all"), true, false},
		{"bind verb on that name", grace, "", ref("ClusterRole", "all"), false, false},
		{"bind verb not on other names", grace, "", ref("ClusterRole", "pod-reader"), true, false},
		{"masters", root, "", ref("ClusterRole", "all"), false, false},
		{"missing role", bob, "ns1", ref("Role", "nope"), true, true},
	}
	for _, tt := range bindingTests {
		t.Run("binding/"+tt.name, func(t *testing.T) {
			t.Parallel()
			err := a.AuthorizeBindingWrite(t.Context(), tt.user, tt.namespace, tt.ref)
			if (err != nil) != tt.wantErr {
				t.Fatalf("AuthorizeBindingWrite = %v, want error %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			if tt.wantNotFound != apierrors.IsNotFound(err) {
				t.Errorf("IsNotFound(%v) = %v, want %v", err, !tt.wantNotFound, tt.wantNotFound)
			}
			if !tt.wantNotFound && !IsEscalation(err) {
				t.Errorf("error %v is not an escalation error", err)
			}
		})
	}

	t.Run("message names the missing rules", func(t *testing.T) {
		t.Parallel()
		err := a.ConfirmNoEscalation(t.Context(), bob, "ns1", listSecrets)
		want := `user "bob" (groups=[]) is attempting to grant RBAC permissions not currently held:` + "\n" +
			`{APIGroups:[""], Resources:["secrets"], Verbs:["list"]}`
		if err == nil || err.Error() != want {
			t.Errorf("error = %v, want %s", err, want)
		}
	})
}
