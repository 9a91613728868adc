package builtin

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRBACNames(t *testing.T) {
	r := groupResource(t, "rbac.authorization.k8s.io", "clusterroles")
	if errs := r.Strategy.ValidateName("system:controller:job-controller", false); len(errs) != 0 {
		t.Errorf("path-segment name rejected: %v", errs)
	}
	if errs := r.Strategy.ValidateName("a/b", false); len(errs) == 0 {
		t.Errorf("name with / accepted")
	}
}

func TestRoleValidation(t *testing.T) {
	r := groupResource(t, "rbac.authorization.k8s.io", "roles")
	tests := []struct {
		name string
		rule rbacv1.PolicyRule
		want []string
	}{
		{"valid", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}, []string{}},
		{"no verbs", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}}, []string{"FieldValueRequired rules[0].verbs"}},
		{"no groups or resources", rbacv1.PolicyRule{Verbs: []string{"get"}},
			[]string{"FieldValueRequired rules[0].apiGroups", "FieldValueRequired rules[0].resources"}},
		{"non-resource URL in a Role", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}},
			[]string{"FieldValueInvalid rules[0].nonResourceURLs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "default"}, Rules: []rbacv1.PolicyRule{tt.rule}}
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, role))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	cr := groupResource(t, "rbac.authorization.k8s.io", "clusterroles")
	ok := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}}}
	if errs := create(t, cr, ok); len(errs) != 0 {
		t.Errorf("cluster role with non-resource URL rejected: %v", errs)
	}
}

func TestRoleBinding(t *testing.T) {
	r := groupResource(t, "rbac.authorization.k8s.io", "rolebindings")
	newRB := func() *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "rb", Namespace: "default"},
			RoleRef:    rbacv1.RoleRef{Kind: "Role", Name: "reader"},
			Subjects: []rbacv1.Subject{
				{Kind: "User", Name: "alice"},
				{Kind: "ServiceAccount", Name: "default", Namespace: "default"},
			},
		}
	}
	rb := newRB()
	checkDefaultIdempotent(t, r, rb)
	if errs := create(t, r, rb); len(errs) != 0 {
		t.Fatalf("valid binding rejected: %v", errs)
	}
	if rb.RoleRef.APIGroup != rbacv1.GroupName || rb.Subjects[0].APIGroup != rbacv1.GroupName || rb.Subjects[1].APIGroup != "" {
		t.Errorf("defaults: %+v %+v", rb.RoleRef, rb.Subjects)
	}
	row := r.Strategy.Table().Row(rb)
	if diff := cmp.Diff([]any{"rb", "Role/reader"}, row[:2]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"alice", "", "default/default"}, row[3:]); diff != "" {
		t.Errorf("wide cells (-want +got):\n%s", diff)
	}

	tests := []struct {
		name   string
		mutate func(b *rbacv1.RoleBinding)
		want   []string
	}{
		{"bad kind", func(b *rbacv1.RoleBinding) { b.RoleRef.Kind = "Pod" }, []string{"FieldValueNotSupported roleRef.kind"}},
		{"no role name", func(b *rbacv1.RoleBinding) { b.RoleRef.Name = "" }, []string{"FieldValueRequired roleRef.name"}},
		{"bad subject kind", func(b *rbacv1.RoleBinding) { b.Subjects[0].Kind = "Robot" }, []string{"FieldValueNotSupported subjects[0].kind"}},
		{"subject without name", func(b *rbacv1.RoleBinding) { b.Subjects[0].Name = "" }, []string{"FieldValueRequired subjects[0].name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newRB()
			tt.mutate(b)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, b))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	changed := rb.DeepCopy()
	changed.RoleRef.Name = "writer"
	if diff := cmp.Diff([]string{"FieldValueInvalid roleRef"}, errStrings(update(t, r, changed, rb))); diff != "" {
		t.Errorf("roleRef change (-want +got):\n%s", diff)
	}
}

func TestClusterRoleBindingNeedsNamespaceForServiceAccounts(t *testing.T) {
	r := groupResource(t, "rbac.authorization.k8s.io", "clusterrolebindings")
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "system:crb"},
		RoleRef:    rbacv1.RoleRef{Kind: "Role", Name: "x"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "sa"}},
	}
	want := []string{"FieldValueNotSupported roleRef.kind", "FieldValueRequired subjects[0].namespace"}
	if diff := cmp.Diff(want, errStrings(create(t, r, crb))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
