package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/internal/audit"
	"github.com/skiff-dev/skiff/internal/auth"
)

// TokenAuthenticator checks a bearer token. ok false with a nil error
// means the token is not one it knows; a non-nil error means it is invalid
// (expired, tampered, revoked). Both are 401.
type TokenAuthenticator interface {
	AuthenticateToken(ctx context.Context, token string) (u auth.User, ok bool, err error)
}

// Authorizer decides one request. reason, when not empty, is appended to
// a refusal's message.
type Authorizer interface {
	Authorize(ctx context.Context, attrs auth.Attributes) (d auth.Decision, reason string, err error)
}

// RuleResolver lists the rules that apply to a user in a namespace (""
// for cluster-wide rules only): SelfSubjectRulesReview's answer.
type RuleResolver interface {
	RulesFor(u auth.User, namespace string) (resource, nonResource []rbacv1.PolicyRule, incomplete bool)
}

// anonymousUser is the user of requests that carry no credential.
var anonymousUser = auth.User{Name: auth.Anonymous, Groups: []string{auth.AllUnauthenticated}}

// WithUser returns ctx carrying u (see auth.WithUser).
func WithUser(ctx context.Context, u auth.User) context.Context { return auth.WithUser(ctx, u) }

// UserFrom returns the user a request was authenticated as. ok is false
// for contexts that did not pass through the server's handler.
func UserFrom(ctx context.Context) (auth.User, bool) { return auth.UserFrom(ctx) }

// errUnauthorized is the answer to a credential that does not
// authenticate: upstream says only "Unauthorized".
var errUnauthorized = newStatus(http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")

// authenticate derives the user of r: a client certificate verified
// against ClientCAs (user = CN, groups = O), else a bearer token, else
// anonymous. A bearer token that does not authenticate is an error (401),
// never anonymous.
func (s *Server) authenticate(r *http.Request) (auth.User, error) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		cert := r.TLS.VerifiedChains[0][0]
		groups := slices.Clone(cert.Subject.Organization)
		groups = append(groups, auth.AllAuthenticated)
		return auth.User{Name: cert.Subject.CommonName, Groups: groups}, nil
	}
	token, hasToken := bearerToken(r)
	if !hasToken {
		return anonymousUser, nil
	}
	if s.cfg.Authenticator == nil || token == "" {
		return auth.User{}, errUnauthorized
	}
	u, ok, err := s.cfg.Authenticator.AuthenticateToken(r.Context(), token)
	if err != nil || !ok || u.Name == "" {
		if err != nil {
			s.log.Debug("bearer token refused", "err", err)
		}
		return auth.User{}, errUnauthorized
	}
	if !slices.Contains(u.Groups, auth.AllAuthenticated) {
		u.Groups = append(slices.Clone(u.Groups), auth.AllAuthenticated)
	}
	return u, nil
}

// bearerToken returns the token of an "Authorization: Bearer" header;
// hasToken is true when the header is present at all (a malformed one
// must not fall back to anonymous).
func bearerToken(r *http.Request) (token string, hasToken bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, found := strings.Cut(strings.TrimSpace(h), " ")
		if !found || !strings.EqualFold(scheme, "bearer") {
			return "", true
		}
		return strings.TrimSpace(tok), true
	}
	return "", false
}

// attributes describes r for authorization.
func attributes(u auth.User, r *http.Request, ri *requestInfo) auth.Attributes {
	a := auth.Attributes{User: u, Verb: ri.verb, Path: r.URL.Path}
	if !ri.isResource {
		return a
	}
	a.ResourceRequest = true
	a.APIGroup, a.APIVersion = ri.group, ri.version
	a.Namespace, a.Resource, a.Subresource, a.Name = ri.namespace, ri.resource, ri.subresource, ri.name
	if ri.group == "" && ri.resource == "namespaces" && ri.name != "" {
		// A namespace is authorized in itself, as upstream does, so that
		// a RoleBinding in "dev" can grant "get namespace dev".
		a.Namespace = ri.name
	}
	if a.Name == "" && (ri.verb == "list" || ri.verb == "watch") {
		// A list or watch of one object by field selector is authorized
		// as that object (informers of one secret, one node).
		a.Name = singleName(r.URL.Query().Get("fieldSelector"))
	}
	return a
}

// singleName returns X when selector requires metadata.name=X.
func singleName(selector string) string {
	if selector == "" {
		return ""
	}
	sel, err := fields.ParseSelector(selector)
	if err != nil {
		return ""
	}
	if v, ok := sel.RequiresExactMatch("metadata.name"); ok {
		return v
	}
	return ""
}

// authorize checks the request against the authorizer. With no
// Authorizer configured, authenticated users may do anything and
// anonymous users may read only the health and version endpoints.
func (s *Server) authorize(ctx context.Context, r *http.Request, a auth.Attributes, ri *requestInfo) error {
	if s.cfg.Authorizer == nil {
		if a.User.Name == auth.Anonymous && !anonymousAllowed(r.URL.Path) {
			return errUnauthorized
		}
		return nil
	}
	if slices.Contains(a.User.Groups, auth.SystemMasters) {
		return nil // upstream's privileged group short-circuits every authorizer
	}
	if err := s.decide(ctx, a); err != nil {
		return err
	}
	if isConnect(ri) && a.Verb == "get" && isWebsocketUpgrade(r) &&
		(ri.subresource == "exec" || ri.subresource == "attach" || ri.subresource == "portforward") {
		// A websocket exec is a GET, but it does what a POST does: also
		// require create, as upstream does since 1.31.
		a.Verb = "create"
		return s.decide(ctx, a)
	}
	return nil
}

func (s *Server) decide(ctx context.Context, a auth.Attributes) error {
	d, reason, err := s.cfg.Authorizer.Authorize(ctx, a)
	if err != nil {
		s.log.Info("authorizer failed", "user", a.User.Name, "err", err)
		if reason == "" {
			reason = "authorizer error"
		}
	}
	if d == auth.Allow {
		auditAnnotate(ctx, audit.AnnotationDecision, "allow")
		if reason != "" {
			auditAnnotate(ctx, audit.AnnotationReason, reason)
		}
		return nil
	}
	auditAnnotate(ctx, audit.AnnotationDecision, "forbid")
	if reason != "" {
		auditAnnotate(ctx, audit.AnnotationReason, reason)
	}
	return forbidden(a, reason)
}

// forbidden builds upstream's 403 for a refused request, naming the user,
// the verb and the resource (or path).
func forbidden(a auth.Attributes, reason string) error {
	var msg string
	if !a.ResourceRequest {
		msg = fmt.Sprintf("User %q cannot %s path %q", a.User.Name, a.Verb, a.Path)
	} else {
		res := a.Resource
		if a.Subresource != "" {
			res += "/" + a.Subresource
		}
		scope := "at the cluster scope"
		if a.Namespace != "" {
			scope = fmt.Sprintf("in the namespace %q", a.Namespace)
		}
		msg = fmt.Sprintf("User %q cannot %s resource %q in API group %q %s", a.User.Name, a.Verb, res, a.APIGroup, scope)
	}
	if reason != "" {
		msg += ": " + reason
	}
	if !a.ResourceRequest {
		return newStatus(http.StatusForbidden, metav1.StatusReasonForbidden, "forbidden: "+msg)
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: a.APIGroup, Resource: a.Resource}, a.Name, errors.New(msg))
}

// isWebsocketUpgrade reports whether r asks to switch to websockets.
func isWebsocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// anonymousAllowed lists the paths an unauthenticated client may reach
// when no Authorizer is configured.
func anonymousAllowed(path string) bool {
	for _, p := range []string{"/healthz", "/livez", "/readyz", "/version"} {
		if path == p || path == p+"/" || (p != "/version" && len(path) > len(p) && path[:len(p)+1] == p+"/") {
			return true
		}
	}
	return false
}
