package webhook

import (
	"context"
	"log/slog"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"

	"github.com/skiff-dev/skiff/internal/admission"
)

// exempt reports whether r is never sent to webhooks: the writes of
// admissionregistration.k8s.io's own resources (webhook configurations and
// admission policies), so that a broken webhook cannot block its own fix.
func exempt(r *admission.Request) bool {
	return r.Resource.Group == admissionregistrationv1.GroupName
}

// matcher decides which hooks one request calls. It reads the request's
// namespace labels at most once and builds the variables of matchConditions
// at most once per version of the object (see objectChanged). A matcher is
// used by one goroutine.
type matcher struct {
	r          *admission.Request
	namespaces corev1listers.NamespaceLister
	client     kubernetes.Interface
	log        *slog.Logger // the plugin's; must be set when hooks have matchConditions

	nsRead   bool
	nsLabels map[string]string
	nsErr    *apierrors.StatusError

	a    *attributes    // the request's attributes, nil until needed (see attributes)
	vars *conditionVars // matchConditions' variables, nil until a hook has conditions
}

// attributes returns the request's attributes, shared by the conditions
// and the calls, so the object is encoded once per version.
func (m *matcher) attributes() *attributes {
	if m.a == nil {
		m.a = newAttributes(m.r)
	}
	return m.a
}

// objectChanged is called after a mutating webhook changed the request's
// object: the namespace's labels (of a Namespace written) and the object
// variable of conditions are read again.
func (m *matcher) objectChanged() {
	if admission.IsNamespace(m.r) {
		m.nsRead = false
	}
	if m.vars != nil {
		m.vars.built &^= usesObject
	}
}

// matches reports whether h is called for the request, as upstream's
// ShouldCallHook: a selector's error refuses the request only when the
// hook's rules match it; matchConditions are evaluated last, once rules
// and selectors matched.
func (m *matcher) matches(ctx context.Context, h *hook) (bool, *apierrors.StatusError) {
	nsMatch, nsErr := m.matchNamespace(ctx, h)
	if !nsMatch && nsErr == nil {
		return false, nil
	}
	objMatch, objErr := m.matchObject(h)
	if !objMatch && objErr == nil {
		return false, nil
	}
	if !matchRules(h.rules, m.r) {
		return false, nil
	}
	if nsErr != nil {
		return false, nsErr
	}
	if objErr != nil {
		return false, objErr
	}
	if len(h.conditions) > 0 {
		return m.matchConditions(ctx, h)
	}
	return true, nil
}

// matchRules reports whether any rule matches r (operations, apiGroups,
// apiVersions, resources and scope). matchPolicy is not consulted: skiff
// serves one version of each resource, so Exact and Equivalent agree.
func matchRules(rules []admissionregistrationv1.RuleWithOperations, r *admission.Request) bool {
	for i := range rules {
		if admission.MatchRule(&rules[i], r) {
			return true
		}
	}
	return false
}

// matchNamespace applies h's namespaceSelector: cluster-scoped objects
// other than namespaces always match; a Namespace matches on its own
// labels (the new object's for a create or update of the namespace
// itself); others on their namespace's labels. A namespace that does not
// exist is upstream's 404.
func (m *matcher) matchNamespace(ctx context.Context, h *hook) (bool, *apierrors.StatusError) {
	ns := m.r.Namespace
	if admission.IsNamespace(m.r) && ns == "" {
		ns = m.r.Name
	}
	if ns == "" && !admission.IsNamespace(m.r) {
		return true, nil
	}
	if h.selectorErr != nil {
		return false, apierrors.NewInternalError(h.selectorErr)
	}
	if h.nsSelector.Empty() {
		return true, nil
	}
	lbls, err := m.namespaceLabels(ctx, ns)
	if err != nil {
		return false, err
	}
	return h.nsSelector.Matches(labels.Set(lbls)), nil
}

func (m *matcher) namespaceLabels(ctx context.Context, ns string) (map[string]string, *apierrors.StatusError) {
	if m.nsRead {
		return m.nsLabels, m.nsErr
	}
	m.nsRead = true
	if lbls, ok, err := admission.WrittenNamespaceLabels(m.r); ok {
		m.nsLabels, m.nsErr = lbls, err
		return m.nsLabels, m.nsErr
	}
	nsObj, err := admission.LookupNamespace(ctx, m.namespaces, m.client, ns)
	if err != nil {
		m.nsErr = err
		return nil, err
	}
	m.nsLabels = nsObj.Labels
	return m.nsLabels, nil
}

// matchObject applies h's objectSelector to the new or the old object.
func (m *matcher) matchObject(h *hook) (bool, *apierrors.StatusError) {
	if h.selectorErr != nil {
		return false, apierrors.NewInternalError(h.selectorErr)
	}
	return admission.ObjectSelected(m.r, h.objSelector), nil
}
