package rbac

import (
	"context"
	"errors"
	"fmt"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// EnsureDefaults creates the default cluster roles and bindings
// (DefaultClusterRoles, DefaultClusterRoleBindings) that are missing and
// reconciles the existing ones as upstream's bootstrap reconciliation
// does at API server start:
//   - an object annotated rbac.authorization.kubernetes.io/autoupdate:
//     "false" is left exactly as it is;
//   - otherwise default rules the role no longer covers are added back,
//     missing aggregation selectors, labels and annotations are added, and
//     missing subjects are added to bindings; rules, subjects, labels and
//     annotations the user added are kept (nothing is ever removed);
//   - a binding whose roleRef differs (roleRef is immutable) is deleted and
//     recreated with the union of subjects.
//
// It is idempotent: a second call writes nothing. Call it once the API
// server serves requests (for example from a post-start hook), with a
// client allowed to write cluster roles and bindings. It tries every
// object and returns the joined errors.
func EnsureDefaults(ctx context.Context, client kubernetes.Interface) error {
	var errs []error
	for _, r := range DefaultClusterRoles() {
		if err := ensureClusterRole(ctx, client, &r); err != nil {
			errs = append(errs, fmt.Errorf("ensuring cluster role %q: %w", r.Name, err))
		}
	}
	for _, b := range DefaultClusterRoleBindings() {
		if err := ensureClusterRoleBinding(ctx, client, &b); err != nil {
			errs = append(errs, fmt.Errorf("ensuring cluster role binding %q: %w", b.Name, err))
		}
	}
	return errors.Join(errs...)
}

func ensureClusterRole(ctx context.Context, client kubernetes.Interface, want *rbacv1.ClusterRole) error {
	api := client.RbacV1().ClusterRoles()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got, err := api.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = api.Create(ctx, want, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(rbacv1.Resource("clusterroles"), want.Name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		updated, changed := reconcileClusterRole(got, want)
		if !changed {
			return nil
		}
		_, err = api.Update(ctx, updated, metav1.UpdateOptions{})
		return err
	})
}

// reconcileClusterRole returns got with what want has and got lacks, and
// whether that changed anything. got is not modified.
func reconcileClusterRole(got, want *rbacv1.ClusterRole) (*rbacv1.ClusterRole, bool) {
	if got.Annotations[AutoUpdateAnnotation] == "false" {
		return got, false
	}
	out := got.DeepCopy()
	out.Labels = mergeMissing(out.Labels, want.Labels)
	out.Annotations = mergeMissing(out.Annotations, want.Annotations)
	if want.AggregationRule != nil {
		if out.AggregationRule == nil {
			out.AggregationRule = &rbacv1.AggregationRule{}
		}
		for _, sel := range want.AggregationRule.ClusterRoleSelectors {
			if !slices.ContainsFunc(out.AggregationRule.ClusterRoleSelectors, func(s metav1.LabelSelector) bool {
				return equality.Semantic.DeepEqual(s, sel)
			}) {
				out.AggregationRule.ClusterRoleSelectors = append(out.AggregationRule.ClusterRoleSelectors, *sel.DeepCopy())
			}
		}
	}
	for _, r := range want.Rules {
		if ok, _ := Covers(out.Rules, []rbacv1.PolicyRule{r}); !ok {
			out.Rules = append(out.Rules, *r.DeepCopy())
		}
	}
	return out, !equality.Semantic.DeepEqual(out, got)
}

func ensureClusterRoleBinding(ctx context.Context, client kubernetes.Interface, want *rbacv1.ClusterRoleBinding) error {
	api := client.RbacV1().ClusterRoleBindings()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got, err := api.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = api.Create(ctx, want, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(rbacv1.Resource("clusterrolebindings"), want.Name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		if got.Annotations[AutoUpdateAnnotation] == "false" {
			return nil
		}
		out := got.DeepCopy()
		out.Labels = mergeMissing(out.Labels, want.Labels)
		out.Annotations = mergeMissing(out.Annotations, want.Annotations)
		for _, s := range want.Subjects {
			if !slices.Contains(out.Subjects, s) {
				out.Subjects = append(out.Subjects, s)
			}
		}
		if out.RoleRef != want.RoleRef {
			// roleRef is immutable: recreate, keeping the subjects.
			out.RoleRef = want.RoleRef
			uid := got.UID
			err := api.Delete(ctx, got.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			out.ObjectMeta = metav1.ObjectMeta{Name: out.Name, Labels: out.Labels, Annotations: out.Annotations}
			_, err = api.Create(ctx, out, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(rbacv1.Resource("clusterrolebindings"), want.Name, err)
			}
			return err
		}
		if equality.Semantic.DeepEqual(out, got) {
			return nil
		}
		_, err = api.Update(ctx, out, metav1.UpdateOptions{})
		return err
	})
}

// mergeMissing returns have plus the keys of want it lacks; values already
// in have win.
func mergeMissing(have, want map[string]string) map[string]string {
	for k, v := range want {
		if _, ok := have[k]; ok {
			continue
		}
		if have == nil {
			have = map[string]string{}
		}
		have[k] = v
	}
	return have
}
