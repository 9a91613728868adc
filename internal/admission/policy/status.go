package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	admissionregistrationv1listers "k8s.io/client-go/listers/admissionregistration/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// RunStatus keeps each policy's status up to date until ctx ends: on
// every add or update of a policy (from informer, the policies'
// informer whose lister is policies; the caller starts it) whose
// status.observedGeneration differs from metadata.generation, it writes
// observedGeneration = generation and typeChecking through the status
// subresource. typeChecking has the expressionWarnings of TypeCheck with
// the SchemaResolver of WithSchemaResolver, computed once per policy uid
// and generation (retries reuse them); without one it is {} (nothing is
// type-checked). Conflicts and other errors are retried with backoff (the
// informer brings the newer version). It returns nil when ctx ends, an
// error only when it cannot start.
func RunStatus(ctx context.Context, client kubernetes.Interface, policies admissionregistrationv1listers.ValidatingAdmissionPolicyLister, informer cache.SharedIndexInformer, log *slog.Logger, opts ...StatusOption) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("controller", "validatingadmissionpolicy-status")
	s := &statusSyncer{client: client, policies: policies, log: log, checked: map[string]typeChecked{}}
	for _, o := range opts {
		o(s)
	}
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{})
	defer q.ShutDown()
	enqueue := func(obj any) {
		if p, ok := obj.(*admissionregistrationv1.ValidatingAdmissionPolicy); ok && p.Status.ObservedGeneration != p.Generation {
			q.Add(p.Name)
		}
	}
	reg, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	if err != nil {
		return fmt.Errorf("watching validating admission policies: %w", err)
	}
	defer func() { _ = informer.RemoveEventHandler(reg) }()
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return nil
	}
	for {
		name, quit := q.Get()
		if quit {
			return nil
		}
		err := s.sync(ctx, name)
		switch {
		case err == nil:
			q.Forget(name)
		case errors.Is(err, context.Canceled) || ctx.Err() != nil:
			q.Forget(name)
		default:
			log.Info("updating policy status failed, retrying", "policy", name, "err", err)
			q.AddRateLimited(name)
		}
		q.Done(name)
	}
}

// StatusOption configures RunStatus.
type StatusOption func(*statusSyncer)

// WithSchemaResolver makes RunStatus type-check policies (TypeCheck) with
// r and write the warnings to status.typeChecking.expressionWarnings.
func WithSchemaResolver(r SchemaResolver) StatusOption {
	return func(s *statusSyncer) { s.resolver = r }
}

// statusSyncer writes policies' status. Used by RunStatus's one worker
// only, so it needs no lock.
type statusSyncer struct {
	client   kubernetes.Interface
	policies admissionregistrationv1listers.ValidatingAdmissionPolicyLister
	resolver SchemaResolver // nil: no type checking
	log      *slog.Logger
	// checked are the type checks of policies (by name) whose status is
	// not written yet, so that a retry does not check again.
	checked map[string]typeChecked
}

// typeChecked is TypeCheck's result for one policy version.
type typeChecked struct {
	uid        types.UID
	generation int64
	warnings   []admissionregistrationv1.ExpressionWarning
}

// sync brings one policy's status to its generation.
func (s *statusSyncer) sync(ctx context.Context, name string) error {
	p, err := s.policies.Get(name)
	if apierrors.IsNotFound(err) {
		delete(s.checked, name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading policy %q: %w", name, err)
	}
	if p.Status.ObservedGeneration == p.Generation {
		delete(s.checked, name)
		return nil
	}
	p = p.DeepCopy() // from the cache
	p.Status.ObservedGeneration = p.Generation
	p.Status.TypeChecking = &admissionregistrationv1.TypeChecking{ExpressionWarnings: s.typeCheck(ctx, p)}
	_, err = s.client.AdmissionregistrationV1().ValidatingAdmissionPolicies().UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		delete(s.checked, name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("updating the status of policy %q: %w", name, err)
	}
	delete(s.checked, name)
	return nil
}

// typeCheck is TypeCheck of p, from s.checked when p's version was
// checked already.
func (s *statusSyncer) typeCheck(ctx context.Context, p *admissionregistrationv1.ValidatingAdmissionPolicy) []admissionregistrationv1.ExpressionWarning {
	if s.resolver == nil {
		return nil
	}
	if c, ok := s.checked[p.Name]; ok && c.uid == p.UID && c.generation == p.Generation {
		return c.warnings
	}
	w := typeCheck(ctx, p, s.resolver, s.log)
	if ctx.Err() == nil {
		s.checked[p.Name] = typeChecked{uid: p.UID, generation: p.Generation, warnings: w}
	}
	return w
}
