package garbagecollector

import (
	"context"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// DefaultResyncPeriod is how often discovery is re-read to watch new
// resources and drop removed ones.
const DefaultResyncPeriod = 30 * time.Second

// Controller is the garbage collector. Build it with New and run it once
// with Run.
type Controller struct {
	meta     metadata.Interface
	recorder record.EventRecorder
	log      *slog.Logger

	graph    *graph
	absent   absentOwners
	monitors *monitors
	// deleteLoop processes uids in the attempt-to-delete queue: objects
	// that may be garbage, and owners deleting their dependents.
	deleteLoop *reconcile.Loop
	// orphanLoop processes uids of owners orphaning their dependents.
	orphanLoop *reconcile.Loop

	// ResyncPeriod is how often discovery is re-read; set it before Run.
	// Zero means DefaultResyncPeriod.
	ResyncPeriod time.Duration
}

// New returns a garbage collector that watches every deletable resource
// found through disc (through deps.Informers where it has the resource,
// else through a metadata informer), and reads and writes objects through
// meta. deps.Client is not used.
func New(deps controller.Deps, meta metadata.Interface, disc discovery.DiscoveryInterface) *Controller {
	logger := deps.Log()
	rec := deps.Events()
	c := &Controller{meta: meta, recorder: rec, log: logger, graph: newGraph()}
	c.monitors = &monitors{meta: meta, disc: disc, onEvent: c.handler, shared: deps.Informers, running: map[schema.GroupVersionResource]*monitor{}}
	c.deleteLoop = reconcile.New("garbagecollector-delete", c.attemptToDelete, logger)
	c.orphanLoop = reconcile.New("garbagecollector-orphan", c.orphan, logger)
	return c
}

// Run discovers the resources, starts watching them, waits for the watches
// to sync, then collects garbage with workers workers per queue until ctx
// is done. It re-reads discovery every ResyncPeriod. It returns nil on
// cancellation.
func (c *Controller) Run(ctx context.Context, workers int) error {
	period := c.ResyncPeriod
	if period <= 0 {
		period = DefaultResyncPeriod
	}
	defer c.monitors.stop()
	// The first discovery must find something; retry until it does.
	for {
		err := c.monitors.sync(ctx)
		if err == nil {
			break
		}
		c.log.Info("discovery failed", "err", err)
		if c.monitors.ready() {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- c.deleteLoop.Run(ctx, workers, c.monitors.synced) })
	wg.Go(func() { errs <- c.orphanLoop.Run(ctx, workers, c.monitors.synced) })
	wg.Go(func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := c.monitors.sync(ctx); err != nil {
					c.log.Info("discovery failed", "err", err)
				}
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// handler returns the informer event handlers for resource r of kind kind:
// every add and update is observed into the graph, every delete forgets;
// what they return is enqueued.
func (c *Controller) handler(r schema.GroupVersionResource, kind string) cache.ResourceEventHandler {
	observe := func(obj any) {
		m, ok := obj.(metav1.Object)
		if !ok {
			return
		}
		c.enqueue(c.graph.observe(newNode(r, kind, m)))
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			m, ok := obj.(metav1.Object)
			if !ok {
				return
			}
			c.enqueue(c.graph.forget(m.GetUID()))
		},
	}
}

func (c *Controller) enqueue(w work) {
	for _, uid := range w.attemptToDelete {
		c.deleteLoop.Enqueue(string(uid))
	}
	for _, uid := range w.orphan {
		c.orphanLoop.Enqueue(string(uid))
	}
}

// uidOf converts a queue key back to a uid.
func uidOf(key string) types.UID { return types.UID(key) }
