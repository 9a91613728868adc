package policy

import (
	"context"
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/internal/admission"
)

// exemptResources are never matched by policies, as upstream: the
// admission policies and bindings themselves (so that a broken policy
// cannot block its own fix) and the virtual review resources.
var exemptResources = map[schema.GroupResource]bool{
	{Group: admissionregistrationv1.GroupName, Resource: "validatingadmissionpolicies"}:       true,
	{Group: admissionregistrationv1.GroupName, Resource: "validatingadmissionpolicybindings"}: true,
	{Group: admissionregistrationv1.GroupName, Resource: "mutatingadmissionpolicies"}:         true,
	{Group: admissionregistrationv1.GroupName, Resource: "mutatingadmissionpolicybindings"}:   true,
	{Group: "authentication.k8s.io", Resource: "selfsubjectreviews"}:                          true,
	{Group: "authentication.k8s.io", Resource: "tokenreviews"}:                                true,
	{Group: "authorization.k8s.io", Resource: "localsubjectaccessreviews"}:                    true,
	{Group: "authorization.k8s.io", Resource: "selfsubjectaccessreviews"}:                     true,
	{Group: "authorization.k8s.io", Resource: "selfsubjectrulesreviews"}:                      true,
	{Group: "authorization.k8s.io", Resource: "subjectaccessreviews"}:                         true,
}

func exempt(r *admission.Request) bool {
	return exemptResources[r.Resource.GroupResource()]
}

// matches applies m to the request as upstream's matching.Matcher does:
// namespaceSelector, objectSelector, excludeResourceRules, resourceRules
// (none: everything). A selector's error is returned only when the rules
// match. matchPolicy is not consulted: skiff serves one version of each
// resource, so Exact and Equivalent agree.
func (s *requestState) matches(ctx context.Context, m *matchSpec) (bool, error) {
	nsMatch, nsErr := s.matchNamespace(ctx, m)
	if !nsMatch && nsErr == nil {
		return false, nil
	}
	objMatch, objErr := s.matchObject(m)
	if !objMatch && objErr == nil {
		return false, nil
	}
	if matchNamedRules(m.exclude, s.r) {
		return false, nil
	}
	if len(m.rules) > 0 && !matchNamedRules(m.rules, s.r) {
		return false, nil
	}
	if nsErr != nil {
		return false, nsErr
	}
	if objErr != nil {
		return false, objErr
	}
	return true, nil
}

// matchNamedRules reports whether any rule matches r: operations,
// apiGroups, apiVersions, resources (with subresources) and scope, then
// resourceNames (none: every name).
func matchNamedRules(rules []admissionregistrationv1.NamedRuleWithOperations, r *admission.Request) bool {
	for i := range rules {
		rule := &rules[i]
		if !admission.MatchRule(&rule.RuleWithOperations, r) {
			continue
		}
		if len(rule.ResourceNames) == 0 {
			return true
		}
		if slices.Contains(rule.ResourceNames, r.Name) {
			return true
		}
	}
	return false
}

// matchNamespace applies m's namespaceSelector: cluster-scoped objects
// other than namespaces always match; a Namespace matches on its own
// labels; others on their namespace's labels.
func (s *requestState) matchNamespace(ctx context.Context, m *matchSpec) (bool, error) {
	if s.r.Namespace == "" && !admission.IsNamespace(s.r) {
		return true, nil
	}
	if m.selectorErr != nil {
		return false, apierrors.NewInternalError(m.selectorErr)
	}
	if m.nsSelector.Empty() {
		return true, nil
	}
	lbls, err := s.namespaceLabels(ctx)
	if err != nil {
		return false, err
	}
	return m.nsSelector.Matches(labels.Set(lbls)), nil
}

// namespaceLabels are the labels namespaceSelector sees: a Namespace
// written (create, update) its new labels; otherwise the stored
// namespace's.
func (s *requestState) namespaceLabels(ctx context.Context) (map[string]string, error) {
	r := s.r
	if lbls, ok, err := admission.WrittenNamespaceLabels(r); ok {
		if err != nil {
			return nil, err
		}
		return lbls, nil
	}
	name := r.Namespace
	if admission.IsNamespace(r) && name == "" {
		name = r.Name
	}
	ns, err := s.getNamespace(ctx, name)
	if err != nil {
		return nil, err
	}
	return ns.Labels, nil
}

// getNamespace reads a namespace (admission.LookupNamespace) at most once
// per request and name.
func (s *requestState) getNamespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	if s.nsRead && s.nsName == name {
		return s.ns, s.nsErr
	}
	s.nsRead, s.nsName = true, name
	s.ns, s.nsErr = nil, nil
	if ns, err := admission.LookupNamespace(ctx, s.p.cfg.Namespaces, s.p.cfg.Client, name); err != nil {
		s.nsErr = err
	} else {
		s.ns = ns
	}
	return s.ns, s.nsErr
}

// matchObject applies m's objectSelector to the new or the old object.
func (s *requestState) matchObject(m *matchSpec) (bool, error) {
	if m.selectorErr != nil {
		return false, apierrors.NewInternalError(m.selectorErr)
	}
	return admission.ObjectSelected(s.r, m.objSelector), nil
}
