package tokens

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/skiff-dev/skiff/internal/auth"
)

// Keys of auth.User.Extra set for service account tokens, as upstream.
const (
	ExtraPodName      = "authentication.kubernetes.io/pod-name"
	ExtraPodUID       = "authentication.kubernetes.io/pod-uid"
	ExtraNodeName     = "authentication.kubernetes.io/node-name"
	ExtraNodeUID      = "authentication.kubernetes.io/node-uid"
	ExtraCredentialID = "authentication.kubernetes.io/credential-id"
)

// ServiceAccountsNamespacePrefix prefixes the per-namespace service
// account group, "system:serviceaccounts:<namespace>".
const ServiceAccountsNamespacePrefix = auth.ServiceAccountsAll + ":"

// Lookups are the informer-cache listers tokens are checked against; the
// authenticator makes no API calls. ServiceAccounts and Secrets are
// required (Secrets for legacy and secret-bound tokens); Pods for
// pod-bound tokens; Nodes is optional: without it node-bound tokens are
// refused and pod-bound tokens carry no node UID.
type Lookups struct {
	ServiceAccounts corelisters.ServiceAccountLister
	Pods            corelisters.PodLister
	Secrets         corelisters.SecretLister
	Nodes           corelisters.NodeLister
}

// SAAuthenticator authenticates service account tokens signed by its
// Issuer: bound tokens (iss = the issuer) and legacy secret-based tokens
// (iss = LegacyIssuer). A token is accepted only if its signature is
// valid, it is within exp/nbf (60 s leeway), its audiences intersect the
// requested ones (the API audiences unless AuthenticateTokenFor says
// otherwise), and the service account, and the pod, secret or node it is
// bound to, still exist with the UIDs in the token. Safe for concurrent
// use.
type SAAuthenticator struct {
	issuer  *Issuer
	lookups Lookups
}

var (
	_ TokenAuthenticator         = (*SAAuthenticator)(nil)
	_ AudienceTokenAuthenticator = (*SAAuthenticator)(nil)
)

// Authenticator returns an authenticator for the tokens i signs, checking
// them against l.
func (i *Issuer) Authenticator(l Lookups) *SAAuthenticator {
	return &SAAuthenticator{issuer: i, lookups: l}
}

// AuthenticateToken authenticates token for the API audiences. A token
// that is not a service account token of this issuer, or is invalid, is
// (zero, false, nil) with the reason logged at Debug; an error means the
// token could not be checked.
func (a *SAAuthenticator) AuthenticateToken(ctx context.Context, token string) (auth.User, bool, error) {
	u, _, ok, err := a.AuthenticateTokenFor(ctx, token, nil)
	return u, ok, err
}

// AuthenticateTokenFor is AuthenticateToken for the given audiences (none
// means the API audiences); it also returns which of them the token is
// valid for.
func (a *SAAuthenticator) AuthenticateTokenFor(ctx context.Context, token string, audiences []string) (auth.User, []string, bool, error) {
	if strings.Count(token, ".") != 2 {
		return auth.User{}, nil, false, nil // not a JWT: someone else's token
	}
	j, err := parseJWS(token)
	if err != nil {
		a.reject(ctx, "", err)
		return auth.User{}, nil, false, nil
	}
	var c claims
	if err := json.Unmarshal(j.payload, &c); err != nil {
		a.reject(ctx, "", fmt.Errorf("%w: claims: %v", errMalformed, err))
		return auth.User{}, nil, false, nil
	}
	legacy := c.Issuer == LegacyIssuer
	if !legacy && c.Issuer != a.issuer.issuer {
		a.issuer.log().DebugContext(ctx, "token refused", "reason", "not this issuer", "iss", c.Issuer)
		return auth.User{}, nil, false, nil
	}
	if err := j.verify(&a.issuer.key.PublicKey, a.issuer.kid); err != nil {
		a.reject(ctx, c.Subject, err)
		return auth.User{}, nil, false, nil
	}
	now := a.issuer.now()
	if err := c.checkTime(now, !legacy); err != nil {
		a.reject(ctx, c.Subject, err)
		return auth.User{}, nil, false, nil
	}
	requested := audiences
	if len(requested) == 0 {
		requested = a.issuer.apiAudiences
	}
	tokenAuds := []string(c.Audience)
	if legacy {
		if len(tokenAuds) != 0 {
			a.reject(ctx, c.Subject, errors.New("legacy token with audiences"))
			return auth.User{}, nil, false, nil
		}
		tokenAuds = a.issuer.apiAudiences // legacy tokens are for the API server only
	}
	valid := intersect(tokenAuds, requested)
	if len(valid) == 0 {
		a.reject(ctx, c.Subject, fmt.Errorf("token audiences %q do not include any of %q", tokenAuds, requested))
		return auth.User{}, nil, false, nil
	}
	var u auth.User
	if legacy {
		u, err = a.checkLegacy(token, &c)
	} else {
		u, err = a.checkBound(&c, now)
	}
	var inv invalidError
	switch {
	case errors.As(err, &inv):
		a.reject(ctx, c.Subject, err)
		return auth.User{}, nil, false, nil
	case err != nil:
		return auth.User{}, nil, false, fmt.Errorf("checking token of %q: %w", c.Subject, err)
	}
	return u, valid, true, nil
}

func (a *SAAuthenticator) reject(ctx context.Context, subject string, reason error) {
	a.issuer.log().DebugContext(ctx, "token refused", "sub", subject, "reason", reason.Error())
}

// invalidError marks a token as invalid (not authenticated) as opposed to
// a failure to check it.
type invalidError struct{ msg string }

func (e invalidError) Error() string { return e.msg }

func invalid(format string, args ...any) error { return invalidError{fmt.Sprintf(format, args...)} }

// deleted reports whether obj's deletion is far enough along (its
// deletion timestamp more than the leeway in the past) that its tokens
// are dead, as upstream: a gracefully terminating pod keeps its
// credentials until it is gone.
func deleted(m metav1.Object, now time.Time) bool {
	ts := m.GetDeletionTimestamp()
	return ts != nil && ts.Time.Before(now.Add(-leeway))
}

func (a *SAAuthenticator) checkBound(c *claims, now time.Time) (auth.User, error) {
	k := c.Kubernetes
	if k == nil || k.Namespace == "" || k.ServiceAccount.Name == "" || k.ServiceAccount.UID == "" {
		return auth.User{}, invalid("token lacks the kubernetes.io service account claims")
	}
	if c.Subject != ServiceAccountUsername(k.Namespace, k.ServiceAccount.Name) {
		return auth.User{}, invalid("subject %q does not match service account %s/%s", c.Subject, k.Namespace, k.ServiceAccount.Name)
	}
	if c.ID == "" {
		return auth.User{}, invalid("token has no jti")
	}
	if err := a.checkServiceAccount(k.Namespace, k.ServiceAccount.Name, k.ServiceAccount.UID, now); err != nil {
		return auth.User{}, err
	}
	u := serviceAccountUser(k.Namespace, k.ServiceAccount.Name, k.ServiceAccount.UID)
	u.Extra = map[string][]string{ExtraCredentialID: {"JTI=" + c.ID}}
	switch {
	case k.Pod != nil:
		if k.Secret != nil {
			return auth.User{}, invalid("token bound to both a pod and a secret")
		}
		if a.lookups.Pods == nil {
			return auth.User{}, invalid("pod-bound tokens are not accepted (no pod lookup)")
		}
		pod, err := a.lookups.Pods.Pods(k.Namespace).Get(k.Pod.Name)
		if err := boundCheck(err, pod, "pod", k.Namespace, k.Pod, now); err != nil {
			return auth.User{}, err
		}
		u.Extra[ExtraPodName] = []string{k.Pod.Name}
		u.Extra[ExtraPodUID] = []string{k.Pod.UID}
		if k.Node != nil && k.Node.Name != "" {
			u.Extra[ExtraNodeName] = []string{k.Node.Name}
			if k.Node.UID != "" {
				u.Extra[ExtraNodeUID] = []string{k.Node.UID}
			}
		}
	case k.Secret != nil:
		if a.lookups.Secrets == nil {
			return auth.User{}, invalid("secret-bound tokens are not accepted (no secret lookup)")
		}
		secret, err := a.lookups.Secrets.Secrets(k.Namespace).Get(k.Secret.Name)
		if err := boundCheck(err, secret, "secret", k.Namespace, k.Secret, now); err != nil {
			return auth.User{}, err
		}
	case k.Node != nil:
		if a.lookups.Nodes == nil {
			return auth.User{}, invalid("node-bound tokens are not accepted (no node lookup)")
		}
		node, err := a.lookups.Nodes.Get(k.Node.Name)
		if err := boundCheck(err, node, "node", "", k.Node, now); err != nil {
			return auth.User{}, err
		}
		u.Extra[ExtraNodeName] = []string{k.Node.Name}
		u.Extra[ExtraNodeUID] = []string{k.Node.UID}
	}
	return u, nil
}

// boundCheck turns the lookup of a bound object into nil (it exists with
// the token's UID and is not deleted), an invalidError, or a lookup error.
func boundCheck[T metav1.Object](err error, obj T, kind, namespace string, r *ref, now time.Time) error {
	if r.Name == "" || r.UID == "" {
		return invalid("%s reference lacks a name or UID", kind)
	}
	name := r.Name
	if namespace != "" {
		name = namespace + "/" + r.Name
	}
	switch {
	case apierrors.IsNotFound(err):
		return invalid("%s %s not found", kind, name)
	case err != nil:
		return fmt.Errorf("looking up %s %s: %w", kind, name, err)
	}
	if string(obj.GetUID()) != r.UID {
		return invalid("%s %s has UID %s, token is for %s", kind, name, obj.GetUID(), r.UID)
	}
	if deleted(obj, now) {
		return invalid("%s %s has been deleted", kind, name)
	}
	return nil
}

func (a *SAAuthenticator) checkServiceAccount(namespace, name, uid string, now time.Time) error {
	if a.lookups.ServiceAccounts == nil {
		return errors.New("no service account lookup")
	}
	sa, err := a.lookups.ServiceAccounts.ServiceAccounts(namespace).Get(name)
	return boundCheck(err, sa, "service account", namespace, &ref{Name: name, UID: uid}, now)
}

func (a *SAAuthenticator) checkLegacy(token string, c *claims) (auth.User, error) {
	ns, name, uid, secretName := c.LegacyNamespace, c.LegacySAName, c.LegacySAUID, c.LegacySecretName
	if ns == "" || name == "" || uid == "" || secretName == "" {
		return auth.User{}, invalid("legacy token lacks service account or secret claims")
	}
	if c.Subject != ServiceAccountUsername(ns, name) {
		return auth.User{}, invalid("subject %q does not match service account %s/%s", c.Subject, ns, name)
	}
	if a.lookups.Secrets == nil {
		return auth.User{}, invalid("legacy tokens are not accepted (no secret lookup)")
	}
	secret, err := a.lookups.Secrets.Secrets(ns).Get(secretName)
	switch {
	case apierrors.IsNotFound(err):
		return auth.User{}, invalid("token secret %s/%s not found", ns, secretName)
	case err != nil:
		return auth.User{}, fmt.Errorf("looking up secret %s/%s: %w", ns, secretName, err)
	}
	// Legacy tokens die with their secret, at once (no grace).
	if secret.DeletionTimestamp != nil {
		return auth.User{}, invalid("token secret %s/%s is being deleted", ns, secretName)
	}
	if secret.Type != corev1.SecretTypeServiceAccountToken || secret.Annotations[corev1.ServiceAccountNameKey] != name {
		return auth.User{}, invalid("secret %s/%s is not a token secret of service account %q", ns, secretName, name)
	}
	if subtle.ConstantTimeCompare(secret.Data[corev1.ServiceAccountTokenKey], []byte(token)) != 1 {
		return auth.User{}, invalid("token does not match the one in secret %s/%s", ns, secretName)
	}
	// No deletion grace for legacy tokens: shift "now" past the leeway
	// so that any deletion timestamp counts.
	if err := a.checkServiceAccount(ns, name, uid, a.issuer.now().Add(leeway+time.Second)); err != nil {
		return auth.User{}, err
	}
	return serviceAccountUser(ns, name, uid), nil
}

func serviceAccountUser(namespace, name, uid string) auth.User {
	return auth.User{
		Name:   ServiceAccountUsername(namespace, name),
		UID:    uid,
		Groups: []string{auth.ServiceAccountsAll, ServiceAccountsNamespacePrefix + namespace, auth.AllAuthenticated},
	}
}
