package reconcile

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Func reconciles the object named by key to its desired state. It is
// called by one worker at a time per key and must be idempotent.
type Func func(ctx context.Context, key string) (requeueAfter time.Duration, err error)

// Loop is one controller's work queue and workers. Enqueue methods are safe
// for concurrent use and may be called before Run; Run may be called once.
type Loop struct {
	name  string
	fn    Func
	log   *slog.Logger
	queue workqueue.TypedRateLimitingInterface[string]
	ids   atomic.Uint64
}

// New returns a loop named name (used in logs and the queue's name) that
// calls fn. A nil logger discards logs.
func New(name string, fn Func, logger *slog.Logger) *Loop {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Loop{
		name: name,
		fn:   fn,
		log:  logger.With("controller", name),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedMaxOfRateLimiter[string](
				workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 1000*time.Second),
			),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name},
		),
	}
}

// Enqueue adds key to the queue now.
func (l *Loop) Enqueue(key string) { l.queue.Add(key) }

// EnqueueAfter adds key to the queue after d.
func (l *Loop) EnqueueAfter(key string, d time.Duration) { l.queue.AddAfter(key, d) }

// EnqueueObject adds the key of an informer object (also of a
// cache.DeletedFinalStateUnknown tombstone).
func (l *Loop) EnqueueObject(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		l.log.Debug("cannot key object", "err", err)
		return
	}
	l.queue.Add(key)
}

// Handler returns informer event handlers that enqueue the object's own key
// on every add, update and delete.
func (l *Loop) Handler() cache.ResourceEventHandler {
	return l.HandlerFor(func(obj any) []string {
		key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		if err != nil {
			return nil
		}
		return []string{key}
	})
}

// HandlerFor returns informer event handlers that enqueue the keys keys
// returns for an object (for example its controller owner's key). On
// updates both the old and the new object's keys are enqueued, so a change
// of owner or labels reaches both the old and the new owner. Tombstones are
// unwrapped before keys is called.
func (l *Loop) HandlerFor(keys func(obj any) []string) cache.ResourceEventHandler {
	add := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		for _, k := range keys(obj) {
			l.queue.Add(k)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(old, obj any) { add(old); add(obj) },
		DeleteFunc: add,
	}
}

// Len is the number of keys waiting (for tests and metrics).
func (l *Loop) Len() int { return l.queue.Len() }

// Run waits for the informers to sync, then processes keys, up to workers
// at once, until ctx is done; it then shuts the queue down and waits for
// the keys in progress. It returns nil on cancellation and an error if the
// caches never synced.
//
// A key is processed on a goroutine of its own, started when the key is
// taken from the queue: an idle loop holds one goroutine (the caller's)
// instead of workers blocked on the queue, which for the fifty-odd loops
// of a server is a few hundred kilobytes of stacks.
func (l *Loop) Run(ctx context.Context, workers int, synced ...cache.InformerSynced) error {
	defer l.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("reconcile: caches did not sync")
	}
	if workers < 1 {
		workers = 1
	}
	l.log.Debug("started", "workers", workers)
	stop := context.AfterFunc(ctx, l.queue.ShutDown)
	defer stop()
	slots := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for {
		slots <- struct{}{} // at most workers keys in progress
		key, quit := l.queue.Get()
		if quit {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			l.process(ctx, key)
		})
	}
	wg.Wait()
	l.log.Debug("stopped")
	return nil
}

// process reconciles key, taken from the queue, and marks it done.
func (l *Loop) process(ctx context.Context, key string) {
	defer l.queue.Done(key)
	id := l.ids.Add(1)
	start := time.Now()
	after, err := l.fn(ctx, key)
	switch {
	case err != nil && ctx.Err() != nil:
		// Shutting down: not an error worth a retry.
	case err != nil:
		l.log.Info("reconcile failed; retrying", "key", key, "reconcileID", id, "err", err)
		l.queue.AddRateLimited(key)
	case after > 0:
		l.queue.Forget(key)
		l.queue.AddAfter(key, after)
	default:
		l.queue.Forget(key)
	}
	l.log.Debug("reconciled", "key", key, "reconcileID", id, "elapsed", time.Since(start))
}
