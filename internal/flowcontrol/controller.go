package flowcontrol

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	flowcontrollisters "k8s.io/client-go/listers/flowcontrol/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// Name is the component's name in logs and the work queue.
const Name = "apf-configuration"

// consumerFieldManager is the field manager of the Dangling condition
// writes (upstream's config consumer).
const consumerFieldManager = "api-priority-and-fairness-config-consumer-v1"

// ensureKey is the work-queue key of the bootstrap ensurer; no object name
// contains a colon, so it cannot collide with a FlowSchema's key.
const ensureKey = ":ensure"

const (
	// ensurePeriod is how often the bootstrap configuration is re-checked
	// once it has been ensured (upstream: every minute).
	ensurePeriod = time.Minute
	// ensureRetry is the delay after a failed pass (upstream: a second).
	ensureRetry = time.Second
)

// Run creates what is missing of the bootstrap configuration and keeps it
// as upstream's ensurer does (see package doc), and keeps each
// FlowSchema's Dangling condition, until ctx ends. It watches flow schemas
// and priority levels through informers of factory (nil: its own on
// client; its Shutdown is called when Run returns). It returns nil when
// ctx ends and an error only if the caches never sync. Call it once.
func Run(ctx context.Context, client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger) error {
	return newController(client, factory, log, ensurePeriod, ensureRetry).run(ctx)
}

// controller is the ensurer and the Dangling-condition keeper, sharing one
// work queue: key ensureKey runs the ensurer, any other key is the name of
// a FlowSchema whose condition to check.
type controller struct {
	client   kubernetes.Interface
	log      *slog.Logger
	factory  informers.SharedInformerFactory
	fsLister flowcontrollisters.FlowSchemaLister
	plLister flowcontrollisters.PriorityLevelConfigurationLister
	synced   []cache.InformerSynced
	loop     *reconcile.Loop
	boot     bootstrap
	// period and retry space the ensurer's passes after a success and
	// after a failure.
	period, retry time.Duration
	// now is the clock of lastTransitionTime.
	now func() time.Time
}

func newController(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger, period, retryAfter time.Duration) *controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if factory == nil {
		factory = informers.NewSharedInformerFactory(client, 0)
	}
	fsInf := factory.Flowcontrol().V1().FlowSchemas()
	plInf := factory.Flowcontrol().V1().PriorityLevelConfigurations()
	c := &controller{
		client:   client,
		log:      log.With("component", Name),
		factory:  factory,
		fsLister: fsInf.Lister(),
		plLister: plInf.Lister(),
		synced:   []cache.InformerSynced{fsInf.Informer().HasSynced, plInf.Informer().HasSynced},
		boot:     newBootstrap(),
		period:   period,
		retry:    retryAfter,
		now:      time.Now,
	}
	c.loop = reconcile.New(Name, c.sync, log)
	if _, err := fsInf.Informer().AddEventHandler(c.loop.Handler()); err != nil {
		c.log.Info("cannot add event handler", "err", err)
	}
	if _, err := plInf.Informer().AddEventHandler(c.loop.HandlerFor(c.referrers)); err != nil {
		c.log.Info("cannot add event handler", "err", err)
	}
	return c
}

// run starts the informers and the loop, with one ensurer pass queued, and
// blocks until ctx is done.
func (c *controller) run(ctx context.Context) error {
	c.factory.StartWithContext(ctx)
	defer c.factory.Shutdown()
	c.loop.Enqueue(ensureKey)
	return c.loop.Run(ctx, 1, c.synced...)
}

// referrers returns the names of the flow schemas that reference the
// priority level obj: whether it exists decides their Dangling condition.
func (c *controller) referrers(obj any) []string {
	pl, ok := obj.(*flowcontrolv1.PriorityLevelConfiguration)
	if !ok {
		return nil
	}
	fss, err := c.fsLister.List(labels.Everything())
	if err != nil {
		return nil
	}
	var keys []string
	for _, fs := range fss {
		if fs.Spec.PriorityLevelConfiguration.Name == pl.Name {
			keys = append(keys, fs.Name)
		}
	}
	return keys
}

// sync runs the ensurer or checks one FlowSchema's condition.
func (c *controller) sync(ctx context.Context, key string) (time.Duration, error) {
	if key != ensureKey {
		return 0, c.syncDangling(ctx, key)
	}
	if err := c.ensure(ctx); err != nil {
		if ctx.Err() != nil {
			return 0, nil
		}
		// Retried at a steady pace, as upstream, not with the queue's
		// growing back-off: conflicts and a server still starting are
		// the expected causes.
		c.log.Info("ensuring the bootstrap configuration failed; retrying", "err", err, "after", c.retry)
		return c.retry, nil
	}
	return c.period, nil
}

// syncDangling sets the Dangling condition of the FlowSchema name when it
// is not what upstream would write: True (reason NotFound) when the
// priority level it references does not exist, False (reason Found)
// otherwise. Other conditions are kept. It writes only on a change, with
// lastTransitionTime now, and retries conflicts on a fresh read.
func (c *controller) syncDangling(ctx context.Context, name string) error {
	cached, err := c.fsLister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading FlowSchema %q: %w", name, err)
	}
	if c.danglingUpToDate(cached) {
		return nil
	}
	api := c.client.FlowcontrolV1().FlowSchemas()
	fs := cached.DeepCopy() // the cache's copy is shared: never mutate it
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if fs == nil {
			fresh, err := api.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			fs = fresh
		}
		if c.danglingUpToDate(fs) {
			return nil
		}
		setCondition(&fs.Status, c.danglingCondition(fs))
		_, err := api.UpdateStatus(ctx, fs, metav1.UpdateOptions{FieldManager: consumerFieldManager})
		if apierrors.IsConflict(err) {
			fs = nil // read it again
		}
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("updating the status of FlowSchema %q: %w", name, err)
	}
	return nil
}

// danglingCondition is the Dangling condition fs should have, stamped now.
func (c *controller) danglingCondition(fs *flowcontrolv1.FlowSchema) flowcontrolv1.FlowSchemaCondition {
	plName := fs.Spec.PriorityLevelConfiguration.Name
	cond := flowcontrolv1.FlowSchemaCondition{
		Type:               flowcontrolv1.FlowSchemaConditionDangling,
		Status:             flowcontrolv1.ConditionFalse,
		Reason:             "Found",
		Message:            fmt.Sprintf("This FlowSchema references the PriorityLevelConfiguration object named %q and it exists", plName),
		LastTransitionTime: metav1.NewTime(c.now()),
	}
	if _, err := c.plLister.Get(plName); apierrors.IsNotFound(err) {
		cond.Status = flowcontrolv1.ConditionTrue
		cond.Reason = "NotFound"
		cond.Message = fmt.Sprintf("This FlowSchema references the PriorityLevelConfiguration object named %q but there is no such object", plName)
	}
	return cond
}

// danglingUpToDate reports whether fs's Dangling condition has the status,
// reason and message it should have (its time is not compared).
func (c *controller) danglingUpToDate(fs *flowcontrolv1.FlowSchema) bool {
	want := c.danglingCondition(fs)
	for _, cond := range fs.Status.Conditions {
		if cond.Type == flowcontrolv1.FlowSchemaConditionDangling {
			return cond.Status == want.Status && cond.Reason == want.Reason && cond.Message == want.Message
		}
	}
	return false
}

// setCondition replaces the condition of cond's type in place, or appends
// it.
func setCondition(st *flowcontrolv1.FlowSchemaStatus, cond flowcontrolv1.FlowSchemaCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == cond.Type {
			st.Conditions[i] = cond
			return
		}
	}
	st.Conditions = append(st.Conditions, cond)
}
