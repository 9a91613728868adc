package rbac_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/auth"
	"github.com/skiff-dev/skiff/internal/auth/rbac"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// versions maps every cluster role and binding to its resourceVersion.
func versions(t *testing.T, client kubernetes.Interface) map[string]string {
	t.Helper()
	out := map[string]string{}
	roles, err := client.RbacV1().ClusterRoles().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing cluster roles: %v", err)
	}
	for _, r := range roles.Items {
		out["role/"+r.Name] = r.ResourceVersion
	}
	bindings, err := client.RbacV1().ClusterRoleBindings().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing cluster role bindings: %v", err)
	}
	for _, b := range bindings.Items {
		out["binding/"+b.Name] = b.ResourceVersion
	}
	return out
}

func TestEnsureDefaults(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := t.Context()
	roles := client.RbacV1().ClusterRoles()
	bindings := client.RbacV1().ClusterRoleBindings()

	if err := rbac.EnsureDefaults(ctx, client); err != nil {
		t.Fatalf("EnsureDefaults: %v", err)
	}

	t.Run("creates every default", func(t *testing.T) {
		for _, want := range rbac.DefaultClusterRoles() {
			got, err := roles.Get(ctx, want.Name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("getting cluster role %q: %v", want.Name, err)
				continue
			}
			if diff := cmp.Diff(want.Rules, got.Rules); diff != "" {
				t.Errorf("cluster role %q rules (-want +got):\n%s", want.Name, diff)
			}
			if diff := cmp.Diff(want.AggregationRule, got.AggregationRule); diff != "" {
				t.Errorf("cluster role %q aggregation (-want +got):\n%s", want.Name, diff)
			}
			if got.Labels[rbac.BootstrappingLabel] != "rbac-defaults" || got.Annotations[rbac.AutoUpdateAnnotation] != "true" {
				t.Errorf("cluster role %q: labels %v annotations %v", want.Name, got.Labels, got.Annotations)
			}
		}
		for _, want := range rbac.DefaultClusterRoleBindings() {
			got, err := bindings.Get(ctx, want.Name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("getting cluster role binding %q: %v", want.Name, err)
				continue
			}
			if diff := cmp.Diff(want.Subjects, got.Subjects); diff != "" {
				t.Errorf("binding %q subjects (-want +got):\n%s", want.Name, diff)
			}
			if diff := cmp.Diff(want.RoleRef, got.RoleRef); diff != "" {
				t.Errorf("binding %q roleRef (-want +got):\n%s", want.Name, diff)
			}
		}
	})

	t.Run("idempotent", func(t *testing.T) {
		before := versions(t, client)
		if err := rbac.EnsureDefaults(ctx, client); err != nil {
			t.Fatalf("EnsureDefaults: %v", err)
		}
		if diff := cmp.Diff(before, versions(t, client)); diff != "" {
			t.Errorf("a second EnsureDefaults wrote (-before +after):\n%s", diff)
		}
	})

	custom := rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{"example.com"}, Resources: []string{"widgets"}}
	extraSubject := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "someone"}

	t.Run("restores removed rules and subjects, keeps additions", func(t *testing.T) {
		r, err := roles.Get(ctx, "system:basic-user", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting role: %v", err)
		}
		r.Rules = []rbacv1.PolicyRule{custom}
		delete(r.Labels, rbac.BootstrappingLabel)
		r.Labels["mine"] = "yes"
		if _, err := roles.Update(ctx, r, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("updating role: %v", err)
		}
		b, err := bindings.Get(ctx, "system:public-info-viewer", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting binding: %v", err)
		}
		b.Subjects = []rbacv1.Subject{extraSubject}
		if _, err := bindings.Update(ctx, b, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("updating binding: %v", err)
		}

		if err := rbac.EnsureDefaults(ctx, client); err != nil {
			t.Fatalf("EnsureDefaults: %v", err)
		}
		r, err = roles.Get(ctx, "system:basic-user", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting role: %v", err)
		}
		want := append([]rbacv1.PolicyRule{custom}, defaultRole(t, "system:basic-user").Rules...)
		if diff := cmp.Diff(want, r.Rules); diff != "" {
			t.Errorf("rules (-want +got):\n%s", diff)
		}
		if r.Labels[rbac.BootstrappingLabel] != "rbac-defaults" || r.Labels["mine"] != "yes" {
			t.Errorf("labels = %v, want both the default and the user's", r.Labels)
		}
		b, err = bindings.Get(ctx, "system:public-info-viewer", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting binding: %v", err)
		}
		wantSubjects := append([]rbacv1.Subject{extraSubject}, defaultBinding(t, "system:public-info-viewer").Subjects...)
		if diff := cmp.Diff(wantSubjects, b.Subjects); diff != "" {
			t.Errorf("subjects (-want +got):\n%s", diff)
		}
	})

	t.Run("autoupdate false is left alone", func(t *testing.T) {
		r, err := roles.Get(ctx, "system:discovery", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting role: %v", err)
		}
		r.Annotations[rbac.AutoUpdateAnnotation] = "false"
		r.Rules = []rbacv1.PolicyRule{custom}
		r, err = roles.Update(ctx, r, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("updating role: %v", err)
		}
		b, err := bindings.Get(ctx, "system:discovery", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting binding: %v", err)
		}
		b.Annotations[rbac.AutoUpdateAnnotation] = "false"
		b.Subjects = nil
		b, err = bindings.Update(ctx, b, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("updating binding: %v", err)
		}
		if err := rbac.EnsureDefaults(ctx, client); err != nil {
			t.Fatalf("EnsureDefaults: %v", err)
		}
		after := versions(t, client)
		if after["role/system:discovery"] != r.ResourceVersion || after["binding/system:discovery"] != b.ResourceVersion {
			t.Errorf("objects annotated autoupdate=false were written")
		}
	})

	t.Run("recreates a binding with another roleRef", func(t *testing.T) {
		if err := bindings.Delete(ctx, "system:kube-dns", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting binding: %v", err)
		}
		wrong := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "system:kube-dns"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{extraSubject},
		}
		if _, err := bindings.Create(ctx, wrong, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating binding: %v", err)
		}
		if err := rbac.EnsureDefaults(ctx, client); err != nil {
			t.Fatalf("EnsureDefaults: %v", err)
		}
		b, err := bindings.Get(ctx, "system:kube-dns", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting binding: %v", err)
		}
		if b.RoleRef.Name != "system:kube-dns" {
			t.Errorf("roleRef = %v, want system:kube-dns", b.RoleRef)
		}
		if !slices.Contains(b.Subjects, extraSubject) || len(b.Subjects) != 2 {
			t.Errorf("subjects = %v, want the user's and the default", b.Subjects)
		}
	})

	t.Run("recreates deleted defaults", func(t *testing.T) {
		if err := roles.Delete(ctx, "view", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting role: %v", err)
		}
		if err := rbac.EnsureDefaults(ctx, client); err != nil {
			t.Fatalf("EnsureDefaults: %v", err)
		}
		if _, err := roles.Get(ctx, "view", metav1.GetOptions{}); err != nil {
			t.Errorf("getting view: %v", err)
		}
	})
}

func defaultRole(t *testing.T, name string) rbacv1.ClusterRole {
	t.Helper()
	for _, r := range rbac.DefaultClusterRoles() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no default cluster role %q", name)
	return rbacv1.ClusterRole{}
}

func defaultBinding(t *testing.T, name string) rbacv1.ClusterRoleBinding {
	t.Helper()
	for _, b := range rbac.DefaultClusterRoleBindings() {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("no default cluster role binding %q", name)
	return rbacv1.ClusterRoleBinding{}
}

// TestAuthorizerOverServer evaluates the default policy through informers
// on a real API server.
func TestAuthorizerOverServer(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	if err := rbac.EnsureDefaults(t.Context(), client); err != nil {
		t.Fatalf("EnsureDefaults: %v", err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	a := rbac.New(factory)
	factory.StartWithContext(t.Context())
	t.Cleanup(factory.Shutdown)
	if !cache.WaitForCacheSync(t.Context().Done(), a.HasSynced) {
		t.Fatal("caches did not sync")
	}
	anonymous := auth.User{Name: auth.Anonymous, Groups: []string{auth.AllUnauthenticated}}
	for _, path := range []string{"/healthz", "/livez", "/readyz", "/version"} {
		d, reason, err := a.Authorize(t.Context(), auth.Attributes{User: anonymous, Verb: "get", Path: path})
		if err != nil || d != auth.Allow {
			t.Errorf("anonymous GET %s = %v %q %v, want Allow", path, d, reason, err)
		}
	}
	d, reason, _ := a.Authorize(t.Context(), auth.Attributes{User: anonymous, Verb: "get", Path: "/api"})
	if d != auth.NoOpinion {
		t.Errorf("anonymous GET /api = %v %q, want NoOpinion", d, reason)
	}
}
