package admission

import (
	"context"
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// What the admission webhooks and the admission policies share: matching
// a request against admissionregistration.k8s.io rules, and the request
// as their CEL expressions see it.

// IsNamespace reports whether r is about a core/v1 Namespace.
func IsNamespace(r *Request) bool {
	return r.Resource.Group == "" && r.Resource.Resource == "namespaces"
}

// MatchRule reports whether r matches rule as upstream's rule matching
// does (operations, apiGroups, apiVersions, resources with subresource
// patterns, scope). matchPolicy is not consulted: skiff serves one version
// of each resource, so Exact and Equivalent agree.
func MatchRule(rule *admissionregistrationv1.RuleWithOperations, r *Request) bool {
	return matchScope(rule.Scope, r) &&
		matchOperation(rule.Operations, r.Operation) &&
		exactOrWildcard(rule.APIGroups, r.Resource.Group) &&
		exactOrWildcard(rule.APIVersions, r.Resource.Version) &&
		matchResource(rule.Resources, r.Resource.Resource, r.Subresource)
}

// matchScope: Namespaced matches namespaced objects (a Namespace is
// cluster-scoped), Cluster the others, "*" (or unset) everything.
func matchScope(scope *admissionregistrationv1.ScopeType, r *Request) bool {
	if scope == nil || *scope == admissionregistrationv1.AllScopes {
		return true
	}
	switch *scope {
	case admissionregistrationv1.NamespacedScope:
		return !IsNamespace(r) && r.Namespace != metav1.NamespaceNone
	case admissionregistrationv1.ClusterScope:
		return IsNamespace(r) || r.Namespace == metav1.NamespaceNone
	}
	return false
}

func matchOperation(ops []admissionregistrationv1.OperationType, op Operation) bool {
	for _, o := range ops {
		if o == admissionregistrationv1.OperationAll || string(o) == string(op) {
			return true
		}
	}
	return false
}

func exactOrWildcard(items []string, requested string) bool {
	for _, item := range items {
		if item == "*" || item == requested {
			return true
		}
	}
	return false
}

// matchResource matches "<resource>[/<subresource>]" patterns: "*" is
// every resource but no subresource, "pods/*" every subresource of pods,
// "*/status" every status subresource, "*/*" everything.
func matchResource(patterns []string, resource, sub string) bool {
	for _, p := range patterns {
		res, psub, _ := strings.Cut(p, "/")
		if (res == "*" || res == resource) && (psub == "*" || psub == sub) {
			return true
		}
	}
	return false
}

// RequestCELValue is r as the `request` variable of admission CEL sees
// upstream's AdmissionRequest, with kind as its kind and requestKind:
// fields that are empty are absent (so request.name of a create by
// generateName is "no such key", as upstream's), and uid, object,
// oldObject and options are left to the caller.
func RequestCELValue(r *Request, kind schema.GroupVersionKind) map[string]any {
	gvk := map[string]any{"group": kind.Group, "version": kind.Version, "kind": kind.Kind}
	gvr := map[string]any{"group": r.Resource.Group, "version": r.Resource.Version, "resource": r.Resource.Resource}
	user := make(map[string]any, 4)
	if r.User.Name != "" {
		user["username"] = r.User.Name
	}
	if r.User.UID != "" {
		user["uid"] = r.User.UID
	}
	if len(r.User.Groups) > 0 {
		user["groups"] = stringList(r.User.Groups)
	}
	if len(r.User.Extra) > 0 {
		extra := make(map[string]any, len(r.User.Extra))
		for k, vals := range r.User.Extra {
			extra[k] = stringList(vals)
		}
		user["extra"] = extra
	}
	req := make(map[string]any, 13)
	req["kind"], req["requestKind"] = gvk, gvk
	req["resource"], req["requestResource"] = gvr, gvr
	req["operation"] = string(r.Operation)
	req["userInfo"] = user
	req["dryRun"] = r.DryRun
	if r.Subresource != "" {
		req["subResource"] = r.Subresource
		req["requestSubResource"] = r.Subresource
	}
	if r.Name != "" {
		req["name"] = r.Name
	}
	if r.Namespace != "" {
		req["namespace"] = r.Namespace
	}
	return req
}

func stringList(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

// WriteOptions is r's options, or, when the caller did not give them,
// the zero CreateOptions, UpdateOptions or DeleteOptions of its operation
// with its dry run, as upstream always has options; nil for CONNECT.
func WriteOptions(r *Request) runtime.Object {
	if r.Options != nil {
		return r.Options
	}
	var dryRun []string
	if r.DryRun {
		dryRun = []string{metav1.DryRunAll}
	}
	switch r.Operation {
	case Create:
		return &metav1.CreateOptions{DryRun: dryRun}
	case Update:
		return &metav1.UpdateOptions{DryRun: dryRun}
	case Delete:
		return &metav1.DeleteOptions{DryRun: dryRun}
	}
	return nil
}

// ObjectSelected applies an objectSelector as upstream: an empty selector
// selects every request; otherwise the labels of the new or of the old
// object must match (a request with neither, or objects without
// metadata such as connect options, is not selected).
func ObjectSelected(r *Request, sel labels.Selector) bool {
	return sel.Empty() || objectLabelsMatch(r.Object, sel) || objectLabelsMatch(r.OldObject, sel)
}

func objectLabelsMatch(obj runtime.Object, sel labels.Selector) bool {
	if obj == nil {
		return false
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return false
	}
	return sel.Matches(labels.Set(acc.GetLabels()))
}

// WrittenNamespaceLabels returns, for a create or update of a Namespace
// itself, the new object's labels (ok true): what a namespaceSelector sees
// for such a request instead of the stored namespace's.
func WrittenNamespaceLabels(r *Request) (lbls map[string]string, ok bool, err *apierrors.StatusError) {
	if !IsNamespace(r) || r.Subresource != "" || (r.Operation != Create && r.Operation != Update) || r.Object == nil {
		return nil, false, nil
	}
	acc, aerr := meta.Accessor(r.Object)
	if aerr != nil {
		return nil, true, apierrors.NewInternalError(fmt.Errorf("reading the namespace's labels: %w", aerr))
	}
	return acc.GetLabels(), true, nil
}

// LookupNamespace reads the namespace name from lister (may be nil) and,
// when the cache does not have it, through client (may be nil). A
// namespace that does not exist is upstream's 404; any other failure a
// 500 naming it.
func LookupNamespace(ctx context.Context, lister corelisters.NamespaceLister, client kubernetes.Interface, name string) (*corev1.Namespace, *apierrors.StatusError) {
	var err error = apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, name)
	if lister != nil {
		ns, gerr := lister.Get(name)
		if gerr == nil {
			return ns, nil
		}
		err = gerr
	}
	if apierrors.IsNotFound(err) && client != nil {
		ns, gerr := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if gerr == nil {
			return ns, nil
		}
		err = gerr
	}
	if se, ok := err.(apierrors.APIStatus); ok && apierrors.IsNotFound(err) {
		return nil, &apierrors.StatusError{ErrStatus: se.Status()}
	}
	return nil, apierrors.NewInternalError(fmt.Errorf("reading namespace %q: %w", name, err))
}
