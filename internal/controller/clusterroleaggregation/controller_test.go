package clusterroleaggregation

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/auth/rbac"
	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/controllertest"
)

func rule(group, resource string, verbs ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: verbs}
}

func TestAggregation(t *testing.T) {
	client, _ := controllertest.Run(t, 2, func(deps controller.Deps, _ *rest.Config) (controllertest.Runner, error) {
		return New(deps), nil
	})
	roles := client.RbacV1().ClusterRoles()

	create := func(t *testing.T, r *rbacv1.ClusterRole) {
		t.Helper()
		if _, err := roles.Create(t.Context(), r, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating cluster role %s: %v", r.Name, err)
		}
	}
	rulesAre := func(name string, want ...rbacv1.PolicyRule) func() error {
		return func() error {
			r, err := roles.Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !equality.Semantic.DeepEqual(want, r.Rules) {
				return fmt.Errorf("cluster role %s rules (-want +got):\n%s", name, cmp.Diff(want, r.Rules))
			}
			return nil
		}
	}
	labelled := func(name string, label string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
		l := map[string]string{}
		if label != "" {
			l[label] = "true"
		}
		return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}, Rules: rules}
	}
	readPods := rule("", "pods", "get")
	readWidgets := rule("example.com", "widgets", "get", "list")
	writeWidgets := rule("example.com", "widgets", "update")

	t.Run("union follows the selected roles", func(t *testing.T) {
		create(t, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "agg"},
			AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
				{MatchLabels: map[string]string{"agg-a": "true"}},
				{MatchLabels: map[string]string{"agg-b": "true"}},
			}},
			Rules: []rbacv1.PolicyRule{rule("", "secrets", "get")}, // replaced
		})
		controllertest.Eventually(t, rulesAre("agg"))
		create(t, labelled("b-part", "agg-b", readWidgets))
		create(t, labelled("a-part", "agg-a", readPods, readWidgets))
		create(t, labelled("unrelated", "", writeWidgets))
		controllertest.Eventually(t, rulesAre("agg", readPods, readWidgets))

		r, err := roles.Get(t.Context(), "b-part", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting role: %v", err)
		}
		r.Rules = append(r.Rules, writeWidgets)
		if _, err := roles.Update(t.Context(), r, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("updating role: %v", err)
		}
		controllertest.Eventually(t, rulesAre("agg", readPods, readWidgets, writeWidgets))

		if err := roles.Delete(t.Context(), "a-part", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting role: %v", err)
		}
		controllertest.Eventually(t, rulesAre("agg", readWidgets, writeWidgets))

		// Hand edits of an aggregated role are reverted.
		r, err = roles.Get(t.Context(), "agg", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting role: %v", err)
		}
		r.Rules = []rbacv1.PolicyRule{rule("*", "*", "*")}
		if _, err := roles.Update(t.Context(), r, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("updating role: %v", err)
		}
		controllertest.Eventually(t, rulesAre("agg", readWidgets, writeWidgets))
	})

	t.Run("view, edit and admin pick up a CRD's roles", func(t *testing.T) {
		if err := rbac.EnsureDefaults(t.Context(), client); err != nil {
			t.Fatalf("EnsureDefaults: %v", err)
		}
		create(t, labelled("crontabs-view", rbac.AggregateToView, rule("stable.example.com", "crontabs", "get", "list", "watch")))
		create(t, labelled("crontabs-edit", rbac.AggregateToEdit, rule("stable.example.com", "crontabs", "create", "delete")))
		has := func(name string, want rbacv1.PolicyRule, present bool) func() error {
			return func() error {
				r, err := roles.Get(context.Background(), name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				found := false
				for _, x := range r.Rules {
					found = found || equality.Semantic.DeepEqual(x, want)
				}
				if found != present {
					return fmt.Errorf("cluster role %s has rule %v: %v, want %v", name, want, found, present)
				}
				return nil
			}
		}
		viewRule := rule("stable.example.com", "crontabs", "get", "list", "watch")
		editRule := rule("stable.example.com", "crontabs", "create", "delete")
		for _, name := range []string{"view", "edit", "admin"} {
			controllertest.Eventually(t, has(name, viewRule, true))
		}
		for _, name := range []string{"edit", "admin"} {
			controllertest.Eventually(t, has(name, editRule, true))
		}
		controllertest.Eventually(t, has("view", editRule, false))
		// view carries the default read rules too.
		controllertest.Eventually(t, has("view", rule("", "namespaces", "get", "list", "watch"), true))
	})
}
