package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	discoveryv1listers "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/admission"
	"github.com/skiff-dev/skiff/internal/admission/policy"
	"github.com/skiff-dev/skiff/internal/admission/webhook"
	"github.com/skiff-dev/skiff/internal/apiserver"
	"github.com/skiff-dev/skiff/internal/auth"
	"github.com/skiff-dev/skiff/internal/auth/node"
	"github.com/skiff-dev/skiff/internal/auth/rbac"
	"github.com/skiff-dev/skiff/internal/auth/tokens"
	"github.com/skiff-dev/skiff/internal/registry"
)

// security is the request path's authorization and admission. Both read
// the API through informers, so they can only start once the API server
// serves: the API server gets this object at construction, and requests
// that need it wait (bounded by their own deadline) until start has
// synced the caches. system:masters is never authorized by it, so the
// server's own start-up requests do not wait for it.
type security struct {
	// admissionReady is closed once the caches synced, ready once the
	// default policy is written too.
	admissionReady, ready chan struct{}
	// Set once before ready is closed.
	authorizers []apiserver.Authorizer
	rules       *rbac.Authorizer
	chain       *admission.Chain
	disabled    []string // admission plugins left out
	// policyStatus keeps ValidatingAdmissionPolicies' status (set by
	// start; the server runs it once start is done).
	policyStatus func(ctx context.Context) error
	// conversion, when set before start, is the CRD conversion webhooks'
	// caller: start gives it the service and endpoint slice listers.
	conversion *webhook.Caller
	// services and slices are start's listers, shared with the
	// aggregator (set before ready is closed).
	services corev1listers.ServiceLister
	slices   discoveryv1listers.EndpointSliceLister
}

func newSecurity(disabledPlugins []string) *security {
	return &security{admissionReady: make(chan struct{}), ready: make(chan struct{}), disabled: disabledPlugins}
}

// start builds the authorizers (node, then RBAC) and the admission chain
// on informers of f (the shared ones, listing as the admin), writes the
// default RBAC policy and priority classes, and waits for the caches.
// client is the admin's; what start runs lives until run is done, ctx
// bounds the start.
func (s *security) start(ctx, run context.Context, f informers.SharedInformerFactory, client kubernetes.Interface, dyn dynamic.Interface, log *slog.Logger) error {
	nodeAuthz := node.New(f)
	rbacAuthz := rbac.New(f)
	hooks := webhook.Config{
		Validating: f.Admissionregistration().V1().ValidatingWebhookConfigurations().Lister(),
		Mutating:   f.Admissionregistration().V1().MutatingWebhookConfigurations().Lister(),
		Namespaces: f.Core().V1().Namespaces().Lister(),
		Services:   f.Core().V1().Services().Lister(),
		Slices:     f.Discovery().V1().EndpointSlices().Lister(),
		Client:     client,
		Logger:     log.With("component", "admission-webhooks"),
	}
	s.conversion.SetListers(hooks.Services, hooks.Slices)
	s.services, s.slices = hooks.Services, hooks.Slices
	policies := f.Admissionregistration().V1().ValidatingAdmissionPolicies()
	pols := policy.Config{
		Policies:   policies.Lister(),
		Bindings:   f.Admissionregistration().V1().ValidatingAdmissionPolicyBindings().Lister(),
		Namespaces: f.Core().V1().Namespaces().Lister(),
		Client:     client,
		Params:     policy.NewDynamicParams(run, dyn, client.Discovery()),
		Logger:     log.With("component", "admission-policies"),
	}
	// Upstream's order: mutating webhooks, then ValidatingAdmissionPolicy,
	// then validating webhooks, all before ResourceQuota.
	chain := admission.Default(f, client, webhook.NewMutating(hooks), policy.New(pols), webhook.NewValidating(hooks))
	policyInformer := policies.Informer()
	s.policyStatus = func(ctx context.Context) error {
		// Type checking reads the schemas from this server's own
		// /openapi/v3, as upstream's checker resolves them through discovery.
		return policy.RunStatus(ctx, client, policies.Lister(), policyInformer, log.With("component", "admission-policy-status"),
			policy.WithSchemaResolver(policy.NewDiscoveryResolver(client.Discovery())))
	}
	if len(s.disabled) > 0 {
		chain = chain.Without(s.disabled...)
	}
	f.StartWithContext(run) // a hub scope: its informers run as long as the hub
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("authorization caches: %v did not sync", typ)
		}
	}
	if !cache.WaitForCacheSync(ctx.Done(), nodeAuthz.HasSynced, rbacAuthz.HasSynced) {
		return nil
	}
	s.authorizers = []apiserver.Authorizer{nodeAuthz, rbacAuthz}
	s.rules = rbacAuthz
	s.chain = chain
	close(s.admissionReady)
	// The defaults are written through the API (admitted, as the admin),
	// so admission must be ready first; authorization waits for them so
	// that nobody is refused for want of the default bindings.
	if err := rbac.EnsureDefaults(ctx, client); err != nil {
		return fmt.Errorf("default RBAC policy: %w", err)
	}
	if err := admission.EnsurePriorityClasses(ctx, client); err != nil {
		return fmt.Errorf("system priority classes: %w", err)
	}
	// The informers see the defaults a moment after they are written:
	// wait until discovery is allowed to every authenticated user.
	probe := auth.Attributes{User: auth.User{Name: "skiff:probe", Groups: []string{auth.AllAuthenticated}}, Verb: "get", Path: "/api"}
	for deadline := time.Now().Add(readyTimeout); ; {
		if d, _, _ := rbacAuthz.Authorize(ctx, probe); d == auth.Allow {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("default RBAC policy did not reach the authorizer's cache")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(s.ready)
	log.Debug("authorization and admission ready")
	return nil
}

// wait blocks until start is done or ctx ends.
func (s *security) wait(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("authorization is not ready yet: %w", ctx.Err())
	}
}

// Authorize asks the node authorizer, then RBAC: the first decision that
// is not NoOpinion stands.
func (s *security) Authorize(ctx context.Context, a auth.Attributes) (auth.Decision, string, error) {
	if err := s.wait(ctx); err != nil {
		return auth.NoOpinion, "", err
	}
	var errs []error
	for _, z := range s.authorizers {
		d, reason, err := z.Authorize(ctx, a)
		if err != nil {
			errs = append(errs, err)
		}
		if d != auth.NoOpinion {
			return d, reason, nil
		}
	}
	return auth.NoOpinion, "", errors.Join(errs...)
}

// RulesFor answers SelfSubjectRulesReview from RBAC.
func (s *security) RulesFor(u auth.User, namespace string) ([]rbacv1.PolicyRule, []rbacv1.PolicyRule, bool) {
	select {
	case <-s.ready:
		return s.rules.RulesFor(u, namespace)
	default:
		return nil, nil, true
	}
}

// Mutate and Validate run the admission chain.
func (s *security) Mutate(ctx context.Context, r *admission.Request) error {
	if err := s.waitAdmission(ctx); err != nil {
		return err
	}
	return s.chain.Mutate(ctx, r)
}

// ValidateDelete runs the chain's delete admission (the webhooks).
func (s *security) ValidateDelete(ctx context.Context, r *admission.Request) error {
	if err := s.waitAdmission(ctx); err != nil {
		return err
	}
	return s.chain.ValidateDelete(ctx, r)
}

func (s *security) AdmitConnect(ctx context.Context, r *admission.Request) error {
	if err := s.waitAdmission(ctx); err != nil {
		return err
	}
	return s.chain.AdmitConnect(ctx, r)
}

func (s *security) Validate(ctx context.Context, r *admission.Request) error {
	if err := s.waitAdmission(ctx); err != nil {
		return err
	}
	if err := s.chain.Validate(ctx, r); err != nil {
		return err
	}
	return s.preventEscalation(ctx, r)
}

// preventEscalation refuses RBAC writes that would grant more than the
// requester holds (upstream's registry check for roles and bindings): a
// role's rules must be held already (or "escalate" allowed on it), a
// binding's role too (or "bind" allowed on it). Updates that keep the
// rules or the role reference are not checked, as upstream.
func (s *security) preventEscalation(ctx context.Context, r *admission.Request) error {
	if r.Resource.Group != rbacv1.GroupName || r.Subresource != "" {
		return nil
	}
	var err error
	switch o := r.Object.(type) {
	case *rbacv1.Role:
		if old, ok := r.OldObject.(*rbacv1.Role); ok && apiequality.Semantic.DeepEqual(old.Rules, o.Rules) {
			return nil
		}
		err = s.rules.AuthorizeRoleWrite(ctx, r.User, o.Namespace, o.Name, o.Rules, nil)
	case *rbacv1.ClusterRole:
		if old, ok := r.OldObject.(*rbacv1.ClusterRole); ok && apiequality.Semantic.DeepEqual(old.Rules, o.Rules) &&
			apiequality.Semantic.DeepEqual(old.AggregationRule, o.AggregationRule) {
			return nil
		}
		err = s.rules.AuthorizeRoleWrite(ctx, r.User, "", o.Name, o.Rules, o.AggregationRule)
	case *rbacv1.RoleBinding:
		if old, ok := r.OldObject.(*rbacv1.RoleBinding); ok && old.RoleRef == o.RoleRef {
			return nil
		}
		err = s.rules.AuthorizeBindingWrite(ctx, r.User, o.Namespace, o.RoleRef)
	case *rbacv1.ClusterRoleBinding:
		if old, ok := r.OldObject.(*rbacv1.ClusterRoleBinding); ok && old.RoleRef == o.RoleRef {
			return nil
		}
		err = s.rules.AuthorizeBindingWrite(ctx, r.User, "", o.RoleRef)
	default:
		return nil
	}
	if err == nil {
		return nil
	}
	if apierrors.IsForbidden(err) {
		return err
	}
	return apierrors.NewForbidden(r.Resource.GroupResource(), r.Name, err)
}

func (s *security) waitAdmission(ctx context.Context) error {
	select {
	case <-s.admissionReady:
		return nil
	case <-ctx.Done():
		return apierrors.NewServiceUnavailable("admission is not ready yet")
	}
}

// tokenAuthenticator authenticates service account tokens (signed with
// DIR/pki/sa.key) and bootstrap tokens, reading the objects they name
// from the stores, behind a short cache of successes (as upstream's
// token cache) so that a pod's requests do not each cost etcd reads.
func tokenAuthenticator(iss *tokens.Issuer, stores []*registry.Store) apiserver.TokenAuthenticator {
	l := storeLookups(stores)
	return &cachedAuthenticator{
		next:    tokens.Union(iss.Authenticator(l), tokens.NewBootstrapAuthenticator(l.Secrets)),
		ttl:     10 * time.Second,
		max:     4096,
		entries: map[[32]byte]cachedUser{},
	}
}

// cachedAuthenticator remembers successful authentications for ttl.
// Failures are not cached: a token that starts to work (its secret just
// created) works at once. Deleting a service account takes up to ttl to
// lock its tokens out.
type cachedAuthenticator struct {
	next tokens.TokenAuthenticator
	ttl  time.Duration
	max  int

	mu      sync.Mutex
	entries map[[32]byte]cachedUser
}

type cachedUser struct {
	u       auth.User
	expires time.Time
}

func (c *cachedAuthenticator) AuthenticateToken(ctx context.Context, token string) (auth.User, bool, error) {
	key := sha256.Sum256([]byte(token))
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.u, true, nil
	}
	u, ok, err := c.next.AuthenticateToken(ctx, token)
	if err != nil || !ok {
		return u, ok, err
	}
	c.mu.Lock()
	if len(c.entries) >= c.max {
		for k, v := range c.entries { // drop the expired, or everything
			if !now.Before(v.expires) || len(c.entries) >= c.max {
				delete(c.entries, k)
			}
		}
	}
	c.entries[key] = cachedUser{u: u, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return u, true, nil
}
