package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	admissionregistrationv1listers "k8s.io/client-go/listers/admissionregistration/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// RunStatus keeps each policy's status up to date until ctx ends: on
// every add or update of a policy (from informer, the policies'
// informer whose lister is policies; the caller starts it) whose
// status.observedGeneration differs from metadata.generation, it writes
// observedGeneration = generation and typeChecking = {} (no
// expressionWarnings: skiff does not type-check expressions against
// schemas) through the status subresource. Conflicts and other errors are
// retried with backoff (the informer brings the newer version). It
// returns nil when ctx ends, an error only when it cannot start.
func RunStatus(ctx context.Context, client kubernetes.Interface, policies admissionregistrationv1listers.ValidatingAdmissionPolicyLister, informer cache.SharedIndexInformer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("controller", "validatingadmissionpolicy-status")
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
		err := syncStatus(ctx, client, policies, name)
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

// syncStatus brings one policy's status to its generation.
func syncStatus(ctx context.Context, client kubernetes.Interface, policies admissionregistrationv1listers.ValidatingAdmissionPolicyLister, name string) error {
	p, err := policies.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading policy %q: %w", name, err)
	}
	if p.Status.ObservedGeneration == p.Generation {
		return nil
	}
	p = p.DeepCopy() // from the cache
	p.Status.ObservedGeneration = p.Generation
	p.Status.TypeChecking = &admissionregistrationv1.TypeChecking{}
	_, err = client.AdmissionregistrationV1().ValidatingAdmissionPolicies().UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("updating the status of policy %q: %w", name, err)
	}
	return nil
}
