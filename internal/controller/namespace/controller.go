package namespace

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiff-dev/skiff/internal/cachetrim"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// FinalizerKubernetes is the spec.finalizers entry this controller owns.
const FinalizerKubernetes corev1.FinalizerName = corev1.FinalizerKubernetes

const (
	// workers is the number of namespaces reconciled in parallel.
	workers = 2
	// resyncPeriod re-enqueues every namespace now and then, so a namespace
	// whose content went away without an event is still finalized.
	resyncPeriod = 5 * time.Minute
	// contentWait is how long to wait before looking again at a namespace
	// whose content is still being removed (finalizers, grace periods).
	contentWait = 2 * time.Second
)

// Controller empties namespaces that are being deleted and then removes the
// "kubernetes" finalizer from them. See the package documentation.
//
// A Controller is run once: Run may not be called twice.
type Controller struct {
	client kubernetes.Interface
	meta   metadata.Interface
	disc   discovery.DiscoveryInterface
	log    *slog.Logger
	now    func() time.Time

	queue workqueue.TypedRateLimitingInterface[string]

	// lister reads namespaces from the informer's cache; set by Run before
	// any worker starts and never changed after.
	lister corelisters.NamespaceLister

	// reconcileID numbers reconciles for the logs.
	reconcileID atomic.Uint64
}

// New returns a namespace controller that reads and writes through client
// (namespaces, their status and finalize subresources), deletes content
// through meta, and finds the namespaced resources through disc. A nil
// logger discards logs. Call Run to start it.
func New(client kubernetes.Interface, meta metadata.Interface, disc discovery.DiscoveryInterface, logger *slog.Logger) *Controller {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Controller{
		client: client,
		meta:   meta,
		disc:   disc,
		log:    logger.With("controller", "namespace"),
		now:    time.Now,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 60*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace"},
		),
	}
}

// Run starts the namespace informer and the workers, and blocks until ctx
// is done. It returns nil when ctx is cancelled, and an error only when the
// informer cannot be set up or its cache never syncs.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()

	factory := informers.NewSharedInformerFactoryWithOptions(c.client, resyncPeriod, cachetrim.Option())
	nsInformer := factory.Core().V1().Namespaces()
	c.lister = nsInformer.Lister()
	if _, err := nsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	}); err != nil {
		return fmt.Errorf("namespace controller: adding event handler: %w", err)
	}
	factory.StartWithContext(ctx)
	defer factory.Shutdown()

	c.log.Info("waiting for namespace cache")
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("namespace controller: cache for %v never synced", typ)
		}
	}
	c.log.Info("started", "workers", workers)

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	c.log.Info("stopped")
	return nil
}

// enqueue adds the name of a namespace (or of a deleted-namespace
// tombstone) to the queue. It does not look at the event type: Reconcile
// decides from the current state.
func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		c.log.Debug("ignoring object without a key", "err", err)
		return
	}
	c.queue.Add(key)
}

// processNext takes one key from the queue and reconciles it. It returns
// false once the queue is shut down.
func (c *Controller) processNext(ctx context.Context) bool {
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)

	id := c.reconcileID.Add(1)
	log := c.log.With("namespace", name, "reconcileID", id)
	requeueAfter, err := c.Reconcile(ctx, name)
	switch {
	case err != nil && ctx.Err() != nil:
		// Shutting down: not an error.
	case err != nil:
		log.Info("reconcile failed, retrying", "err", err, "retries", c.queue.NumRequeues(name))
		c.queue.AddRateLimited(name)
	case requeueAfter > 0:
		log.Debug("content remaining, requeueing", "after", requeueAfter)
		c.queue.Forget(name)
		c.queue.AddAfter(name, requeueAfter)
	default:
		c.queue.Forget(name)
	}
	return true
}

// Reconcile converges one namespace, named by name: if it is being deleted
// and still carries the "kubernetes" finalizer, it deletes the namespace's
// content, records progress in the status conditions, and removes the
// finalizer once nothing is left. It returns a positive requeueAfter when
// content is still going away, and an error for failures worth retrying
// with back-off. It is idempotent and safe to call for any name, including
// namespaces that no longer exist. Run's workers call it concurrently, but
// never for the same name at once (the queue guarantees that); it reads the
// namespace from Run's informer cache, so it is only valid while Run runs.
func (c *Controller) Reconcile(ctx context.Context, name string) (requeueAfter time.Duration, err error) {
	cached, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting namespace %q from cache: %w", name, err)
	}
	if cached.DeletionTimestamp == nil || !hasFinalizer(cached.Spec.Finalizers, FinalizerKubernetes) {
		return 0, nil
	}
	// Never mutate what the cache holds.
	ns := cached.DeepCopy()
	res := c.deleteContent(ctx, ns.Name)
	ns, err = c.updateConditions(ctx, ns, res.conditions(metav1.NewTime(c.now())))
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if err := res.err(); err != nil {
		return 0, err
	}
	if res.contentLeft() {
		return contentWait, nil
	}

	ns.Spec.Finalizers = withoutFinalizer(ns.Spec.Finalizers, FinalizerKubernetes)
	if _, err := c.client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("finalizing namespace %q: %w", name, err)
	}
	c.log.Info("namespace finalized", "namespace", name)
	return 0, nil
}

// updateConditions writes conds into the namespace's status when they
// differ from what it has, and returns the namespace as stored. A
// conflict is returned as an error, so the reconcile retries from the
// newer state.
func (c *Controller) updateConditions(ctx context.Context, ns *corev1.Namespace, conds []corev1.NamespaceCondition) (*corev1.Namespace, error) {
	merged, changed := mergeConditions(ns.Status.Conditions, conds)
	if !changed {
		return ns, nil
	}
	ns.Status.Conditions = merged
	updated, err := c.client.CoreV1().Namespaces().UpdateStatus(ctx, ns, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating status of namespace %q: %w", ns.Name, err)
	}
	return updated, nil
}
