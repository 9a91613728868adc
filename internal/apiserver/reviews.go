package apiserver

// The review resources are create-only and virtual, as upstream serves
// them: nothing is stored, and the answer to a POST is the request with its
// status filled in (201 Created). They let clients ask the server's
// authenticator and authorizer questions:
//
//	authorization.k8s.io/v1   selfsubjectaccessreviews   kubectl auth can-i
//	                          subjectaccessreviews       (webhooks, proxies)
//	                          localsubjectaccessreviews  (namespaced)
//	                          selfsubjectrulesreviews    kubectl auth can-i --list
//	authentication.k8s.io/v1  tokenreviews               (webhooks, proxies)
//	                          selfsubjectreviews         kubectl auth whoami
//	                          (also v1beta1, v1alpha1: kubectl 1.27 asks v1beta1)
//
// The request filter has already authorized "create" on the review
// resource before these handlers run; the handlers ask Config.Authorizer,
// Config.Rules and Config.Authenticator about the subject the review names.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authenticationv1alpha1 "k8s.io/api/authentication/v1alpha1"
	authenticationv1beta1 "k8s.io/api/authentication/v1beta1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/auth"
	"github.com/skiff-dev/skiff/internal/auth/tokens"
	"github.com/skiff-dev/skiff/internal/registry"
)

// reviewFunc answers one decoded review: it returns the object to send
// back (with status filled) or an API error (422 naming the field for
// invalid requests). It must not modify obj's shared state beyond obj
// itself, which the caller decoded for this request alone.
type reviewFunc func(ctx context.Context, ri *requestInfo, obj runtime.Object) (runtime.Object, error)

// review describes one review resource.
type review struct {
	res    *registry.Resource // description only: no Strategy
	newObj func() runtime.Object
	answer reviewFunc
}

// reviewOf returns the review resource ri names, or false.
func (s *Server) reviewOf(ri *requestInfo) (review, bool) {
	gvr := schema.GroupVersionResource{Group: ri.group, Version: ri.version, Resource: ri.resource}
	desc := func(kind string, namespaced bool) *registry.Resource {
		return &registry.Resource{GVR: gvr, Kind: kind, ListKind: kind + "List", Namespaced: namespaced, Verbs: []string{"create"}}
	}
	switch gvr {
	case authorizationv1.SchemeGroupVersion.WithResource("selfsubjectaccessreviews"):
		return review{desc("SelfSubjectAccessReview", false), func() runtime.Object { return &authorizationv1.SelfSubjectAccessReview{} }, s.selfSubjectAccessReview}, true
	case authorizationv1.SchemeGroupVersion.WithResource("subjectaccessreviews"):
		return review{desc("SubjectAccessReview", false), func() runtime.Object { return &authorizationv1.SubjectAccessReview{} }, s.subjectAccessReview}, true
	case authorizationv1.SchemeGroupVersion.WithResource("localsubjectaccessreviews"):
		return review{desc("LocalSubjectAccessReview", true), func() runtime.Object { return &authorizationv1.LocalSubjectAccessReview{} }, s.localSubjectAccessReview}, true
	case authorizationv1.SchemeGroupVersion.WithResource("selfsubjectrulesreviews"):
		return review{desc("SelfSubjectRulesReview", false), func() runtime.Object { return &authorizationv1.SelfSubjectRulesReview{} }, s.selfSubjectRulesReview}, true
	case authenticationv1.SchemeGroupVersion.WithResource("tokenreviews"):
		return review{desc("TokenReview", false), func() runtime.Object { return &authenticationv1.TokenReview{} }, s.tokenReview}, true
	case authenticationv1.SchemeGroupVersion.WithResource("selfsubjectreviews"):
		return review{desc("SelfSubjectReview", false), func() runtime.Object { return &authenticationv1.SelfSubjectReview{} }, s.selfSubjectReview}, true
	case authenticationv1beta1.SchemeGroupVersion.WithResource("selfsubjectreviews"):
		return review{desc("SelfSubjectReview", false), func() runtime.Object { return &authenticationv1beta1.SelfSubjectReview{} }, s.selfSubjectReview}, true
	case authenticationv1alpha1.SchemeGroupVersion.WithResource("selfsubjectreviews"):
		return review{desc("SelfSubjectReview", false), func() runtime.Object { return &authenticationv1alpha1.SelfSubjectReview{} }, s.selfSubjectReview}, true
	}
	return review{}, false
}

// reviewHandler returns the handler of the review resource ri names, or
// nil when ri names none. serveResource calls it before looking up stores.
func (s *Server) reviewHandler(ri *requestInfo) func(http.ResponseWriter, *http.Request, *requestInfo) {
	rv, ok := s.reviewOf(ri)
	if !ok || !s.scheme.Recognizes(rv.res.GroupVersionKind()) {
		return nil
	}
	return func(w http.ResponseWriter, r *http.Request, ri *requestInfo) { s.serveReview(w, r, ri, rv) }
}

// serveReview handles one request on a review resource: only a create on
// the collection path of the resource's scope exists.
func (s *Server) serveReview(w http.ResponseWriter, r *http.Request, ri *requestInfo, rv review) {
	res := rv.res
	if ri.name != "" || ri.subresource != "" || res.Namespaced != (ri.namespace != "") {
		s.writeError(w, notFoundPath())
		return
	}
	if ri.verb != "create" {
		s.writeError(w, apierrors.NewMethodNotSupported(res.GroupResource(), ri.verb))
		return
	}
	var opts metav1.CreateOptions
	rd, obj, warnings, err := s.readReview(r, ri, rv, &opts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Nothing is stored, so a dry run is answered exactly like a real one.
	out, err := rv.answer(r.Context(), ri, obj)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	addWarnings(w, warnings)
	s.writeObject(w, http.StatusCreated, rd, out)
}

// readReview reads a review create: CreateOptions (422 when invalid, which
// covers dryRun values), the response format, and the body decoded as the
// review's kind and placed in the URL's namespace.
func (s *Server) readReview(r *http.Request, ri *requestInfo, rv review, opts *metav1.CreateOptions) (*render, runtime.Object, []string, error) {
	if err := s.decodeQuery(r, opts); err != nil {
		return nil, nil, nil, err
	}
	if err := invalidOptions("CreateOptions", metavalidation.ValidateCreateOptions(opts)); err != nil {
		return nil, nil, nil, err
	}
	rd, err := s.newRender(r, rv.res, viewsAllowed{}, false)
	if err != nil {
		return nil, nil, nil, err
	}
	obj, warnings, err := s.decodeBody(r, rv.res.GroupVersionKind(), rv.newObj(), opts.FieldValidation)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := ensureNamespace(obj, ri.namespace, rv.res.Namespaced); err != nil {
		return nil, nil, nil, err
	}
	return rd, obj, warnings, nil
}

// noUser is upstream's answer to a self review without an authenticated
// requester (a context that did not pass through the handler).
func noUser() error { return apierrors.NewBadRequest("no user present on request") }

func (s *Server) selfSubjectAccessReview(ctx context.Context, _ *requestInfo, obj runtime.Object) (runtime.Object, error) {
	sar := obj.(*authorizationv1.SelfSubjectAccessReview)
	errs := validateAccessSpec(sar.Spec.ResourceAttributes, sar.Spec.NonResourceAttributes)
	errs = append(errs, metadataMustBeEmpty(sar.ObjectMeta, false)...)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview").GroupKind(), "", errs)
	}
	u, ok := UserFrom(ctx)
	if !ok {
		return nil, noUser()
	}
	sar.Status = s.accessReviewStatus(ctx, accessAttributes(u, sar.Spec.ResourceAttributes, sar.Spec.NonResourceAttributes))
	return sar, nil
}

func (s *Server) subjectAccessReview(ctx context.Context, _ *requestInfo, obj runtime.Object) (runtime.Object, error) {
	sar := obj.(*authorizationv1.SubjectAccessReview)
	errs := validateSubjectAccessSpec(&sar.Spec)
	errs = append(errs, metadataMustBeEmpty(sar.ObjectMeta, false)...)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("SubjectAccessReview").GroupKind(), "", errs)
	}
	sar.Status = s.accessReviewStatus(ctx, accessAttributes(specUser(&sar.Spec), sar.Spec.ResourceAttributes, sar.Spec.NonResourceAttributes))
	return sar, nil
}

func (s *Server) localSubjectAccessReview(ctx context.Context, ri *requestInfo, obj runtime.Object) (runtime.Object, error) {
	sar := obj.(*authorizationv1.LocalSubjectAccessReview)
	errs := validateSubjectAccessSpec(&sar.Spec)
	errs = append(errs, metadataMustBeEmpty(sar.ObjectMeta, true)...)
	if ra := sar.Spec.ResourceAttributes; ra != nil && ra.Namespace != sar.Namespace {
		errs = append(errs, field.Invalid(field.NewPath("spec", "resourceAttributes", "namespace"), ra.Namespace, "must match metadata.namespace"))
	}
	if sar.Spec.NonResourceAttributes != nil {
		errs = append(errs, field.Invalid(field.NewPath("spec", "nonResourceAttributes"), sar.Spec.NonResourceAttributes, "disallowed on this kind of request"))
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("LocalSubjectAccessReview").GroupKind(), "", errs)
	}
	if sar.Namespace != ri.namespace { // ensureNamespace made them equal; kept as upstream checks it
		return nil, apierrors.NewBadRequest(fmt.Sprintf("spec.resourceAttributes.namespace must match namespace: %v", ri.namespace))
	}
	sar.Status = s.accessReviewStatus(ctx, accessAttributes(specUser(&sar.Spec), sar.Spec.ResourceAttributes, nil))
	return sar, nil
}

// validateAccessSpec checks that exactly one kind of attributes is given.
func validateAccessSpec(ra *authorizationv1.ResourceAttributes, nra *authorizationv1.NonResourceAttributes) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if ra != nil && nra != nil {
		errs = append(errs, field.Invalid(spec.Child("nonResourceAttributes"), nra, "cannot be specified in combination with resourceAttributes"))
	}
	if ra == nil && nra == nil {
		errs = append(errs, field.Invalid(spec.Child("resourceAttributes"), nra, "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
	}
	return errs
}

// validateSubjectAccessSpec adds to validateAccessSpec that a subject must
// be named.
func validateSubjectAccessSpec(spec *authorizationv1.SubjectAccessReviewSpec) field.ErrorList {
	errs := validateAccessSpec(spec.ResourceAttributes, spec.NonResourceAttributes)
	if spec.User == "" && len(spec.Groups) == 0 {
		errs = append(errs, field.Invalid(field.NewPath("spec", "user"), spec.User, "at least one of user or group must be specified"))
	}
	return errs
}

// metadataMustBeEmpty refuses metadata on a review (managedFields and, for
// local reviews, the namespace excepted), as upstream does.
func metadataMustBeEmpty(m metav1.ObjectMeta, keepNamespace bool) field.ErrorList {
	c := m
	c.ManagedFields = nil
	if keepNamespace {
		c.Namespace = ""
	}
	if apiequality.Semantic.DeepEqual(metav1.ObjectMeta{}, c) {
		return nil
	}
	return field.ErrorList{field.Invalid(field.NewPath("metadata"), m, "must be empty")}
}

// specUser is the subject a SubjectAccessReview names.
func specUser(spec *authorizationv1.SubjectAccessReviewSpec) auth.User {
	u := auth.User{Name: spec.User, UID: spec.UID, Groups: slices.Clone(spec.Groups)}
	if len(spec.Extra) > 0 {
		u.Extra = make(map[string][]string, len(spec.Extra))
		for k, v := range spec.Extra {
			u.Extra[k] = slices.Clone([]string(v))
		}
	}
	return u
}

// accessAttributes converts a review's attributes (exactly one non-nil)
// as upstream does: an empty version matches every version.
func accessAttributes(u auth.User, ra *authorizationv1.ResourceAttributes, nra *authorizationv1.NonResourceAttributes) auth.Attributes {
	a := auth.Attributes{User: u}
	switch {
	case ra != nil:
		a.ResourceRequest = true
		a.Verb, a.Namespace, a.Name = ra.Verb, ra.Namespace, ra.Name
		a.APIGroup, a.APIVersion = ra.Group, ra.Version
		a.Resource, a.Subresource = ra.Resource, ra.Subresource
		if a.APIVersion == "" {
			a.APIVersion = "*"
		}
	case nra != nil:
		a.Verb, a.Path = nra.Verb, nra.Path
	}
	return a
}

// accessReviewStatus asks the authorizer about a. With no Authorizer
// every request is allowed (the server lets authenticated users do
// anything then); system:masters is allowed without asking, as the
// request filter does.
func (s *Server) accessReviewStatus(ctx context.Context, a auth.Attributes) authorizationv1.SubjectAccessReviewStatus {
	if s.cfg.Authorizer == nil || slices.Contains(a.User.Groups, auth.SystemMasters) {
		return authorizationv1.SubjectAccessReviewStatus{Allowed: true}
	}
	d, reason, err := s.cfg.Authorizer.Authorize(ctx, a)
	st := authorizationv1.SubjectAccessReviewStatus{Allowed: d == auth.Allow, Denied: d == auth.Deny, Reason: reason}
	if err != nil {
		st.EvaluationError = err.Error()
	}
	return st
}

func (s *Server) selfSubjectRulesReview(ctx context.Context, _ *requestInfo, obj runtime.Object) (runtime.Object, error) {
	srr := obj.(*authorizationv1.SelfSubjectRulesReview)
	u, ok := UserFrom(ctx)
	if !ok {
		return nil, noUser()
	}
	if srr.Spec.Namespace == "" {
		return nil, apierrors.NewBadRequest("no namespace on request")
	}
	// Upstream answers with the status alone.
	out := &authorizationv1.SelfSubjectRulesReview{Status: authorizationv1.SubjectRulesReviewStatus{
		ResourceRules: []authorizationv1.ResourceRule{}, NonResourceRules: []authorizationv1.NonResourceRule{}, Incomplete: true,
	}}
	if s.cfg.Rules == nil {
		return out, nil
	}
	resource, nonResource, incomplete := s.cfg.Rules.RulesFor(u, srr.Spec.Namespace)
	all := append(slices.Clip(resource), nonResource...)
	out.Status.ResourceRules = resourceRules(all)
	out.Status.NonResourceRules = nonResourceRules(all)
	out.Status.Incomplete = incomplete
	return out, nil
}

// resourceRules converts the policy rules that name resources, as upstream
// does: a rule with both resources and URLs (invalid in RBAC) counts as
// both.
func resourceRules(rules []rbacv1.PolicyRule) []authorizationv1.ResourceRule {
	out := []authorizationv1.ResourceRule{}
	for _, r := range rules {
		if len(r.Resources) == 0 {
			continue
		}
		out = append(out, authorizationv1.ResourceRule{
			Verbs:         slices.Clone(r.Verbs),
			APIGroups:     slices.Clone(r.APIGroups),
			Resources:     slices.Clone(r.Resources),
			ResourceNames: slices.Clone(r.ResourceNames),
		})
	}
	return out
}

// nonResourceRules converts the policy rules that name non-resource URLs.
func nonResourceRules(rules []rbacv1.PolicyRule) []authorizationv1.NonResourceRule {
	out := []authorizationv1.NonResourceRule{}
	for _, r := range rules {
		if len(r.NonResourceURLs) == 0 {
			continue
		}
		out = append(out, authorizationv1.NonResourceRule{Verbs: slices.Clone(r.Verbs), NonResourceURLs: slices.Clone(r.NonResourceURLs)})
	}
	return out
}

// errNoAuthenticator is TokenReview's status.error when the server checks
// no bearer tokens.
const errNoAuthenticator = "token authentication is not enabled on this server"

func (s *Server) tokenReview(ctx context.Context, _ *requestInfo, obj runtime.Object) (runtime.Object, error) {
	tr := obj.(*authenticationv1.TokenReview)
	if tr.Spec.Token == "" {
		return nil, apierrors.NewBadRequest("token is required for TokenReview in authentication")
	}
	if s.cfg.Authenticator == nil {
		out := tr.DeepCopy()
		out.Status = authenticationv1.TokenReviewStatus{Error: errNoAuthenticator}
		return out, nil
	}
	out := tokens.Review(ctx, s.cfg.Authenticator, tr)
	if out.Status.Authenticated && !slices.Contains(out.Status.User.Groups, auth.AllAuthenticated) {
		// As for requests (authenticate): every authenticated user is in
		// system:authenticated.
		out.Status.User.Groups = append(out.Status.User.Groups, auth.AllAuthenticated)
	}
	return out, nil
}

// selfSubjectReview answers in the version asked (v1, v1beta1, v1alpha1);
// the three share authenticationv1.UserInfo.
func (s *Server) selfSubjectReview(ctx context.Context, _ *requestInfo, obj runtime.Object) (runtime.Object, error) {
	u, ok := UserFrom(ctx)
	if !ok {
		return nil, noUser()
	}
	info := authenticationv1.UserInfo{Username: u.Name, UID: u.UID, Groups: slices.Clone(u.Groups),
		Extra: make(map[string]authenticationv1.ExtraValue, len(u.Extra))}
	for k, v := range u.Extra {
		info.Extra[k] = slices.Clone(v)
	}
	created := metav1.NewTime(time.Now().Truncate(time.Second))
	var out runtime.Object
	switch obj.(type) {
	case *authenticationv1.SelfSubjectReview:
		out = &authenticationv1.SelfSubjectReview{Status: authenticationv1.SelfSubjectReviewStatus{UserInfo: info}}
	case *authenticationv1beta1.SelfSubjectReview:
		out = &authenticationv1beta1.SelfSubjectReview{Status: authenticationv1beta1.SelfSubjectReviewStatus{UserInfo: info}}
	case *authenticationv1alpha1.SelfSubjectReview:
		out = &authenticationv1alpha1.SelfSubjectReview{Status: authenticationv1alpha1.SelfSubjectReviewStatus{UserInfo: info}}
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a SelfSubjectReview: %T", obj))
	}
	m, err := meta.Accessor(out)
	if err != nil {
		return nil, fmt.Errorf("reading SelfSubjectReview metadata: %w", err)
	}
	m.SetCreationTimestamp(created)
	return out, nil
}
