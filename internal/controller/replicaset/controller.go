package replicaset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/ownership"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// burstReplicas caps how many pods one sync creates or deletes (upstream's
// BurstReplicas); the rest follow in the next syncs.
const burstReplicas = 500

// Controller reconciles ReplicaSets (New) or ReplicationControllers
// (NewReplicationController). Run may be called once.
type Controller struct {
	kind     kind
	gvk      schema.GroupVersionKind
	client   kubernetes.Interface
	pods     corelisters.PodLister
	podsInf  cache.SharedIndexInformer
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time
	exp      *expectations
	loop     *reconcile.Loop
}

// New returns the ReplicaSet controller. It registers the replicaset and
// pod informers on deps.Informers; start the factory after all
// constructors have run.
func New(deps controller.Deps) *Controller {
	return newController(deps, "replicaset", newRSKind(deps.Client, deps.Informers))
}

// NewReplicationController returns the ReplicationController controller,
// the same behaviour for core/v1 ReplicationControllers and their map
// selectors.
func NewReplicationController(deps controller.Deps) *Controller {
	return newController(deps, "replicationcontroller", newRCKind(deps.Client, deps.Informers))
}

func newController(deps controller.Deps, name string, k kind) *Controller {
	logger := deps.Log()
	recorder := deps.Events()
	podInf := deps.Informers.Core().V1().Pods()
	c := &Controller{
		kind:     k,
		gvk:      k.gvk(),
		client:   deps.Client,
		pods:     podInf.Lister(),
		podsInf:  podInf.Informer(),
		recorder: recorder,
		log:      logger,
		now:      deps.Clock(),
	}
	c.exp = newExpectations(c.now)
	c.loop = reconcile.New(name, c.sync, logger)
	if _, err := k.informer().AddEventHandler(c.loop.Handler()); err != nil {
		logger.Info("cannot watch owners", "err", err)
	}
	if _, err := c.podsInf.AddEventHandler(c.loop.HandlerFor(c.podOwnerKeys)); err != nil {
		logger.Info("cannot watch pods", "err", err)
	}
	return c
}

// Run reconciles with workers workers until ctx is done. It returns nil on
// cancellation and an error if the caches never sync.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.kind.informer().HasSynced, c.podsInf.HasSynced)
}

// podOwnerKeys maps a pod to the owners that must look at it: its
// controller if that is of our kind, else (an orphan) every owner in its
// namespace whose selector matches it, which may adopt it.
func (c *Controller) podOwnerKeys(obj any) []string {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil || gv.Group != c.gvk.Group || ref.Kind != c.gvk.Kind {
			return nil
		}
		key := pod.Namespace + "/" + ref.Name
		c.exp.seen(key, pod.Name)
		return []string{key}
	}
	if pod.DeletionTimestamp != nil {
		return nil
	}
	owners, err := c.kind.list(pod.Namespace)
	if err != nil {
		return nil
	}
	var keys []string
	for _, o := range owners {
		if o.selector.Matches(labels.Set(pod.Labels)) {
			keys = append(keys, pod.Namespace+"/"+o.meta.GetName())
		}
	}
	return keys
}

// sync converges one owner: claim its pods, create or delete pods if its
// earlier writes have been observed, and write its status.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	o, err := c.kind.get(ns, name)
	if apierrors.IsNotFound(err) {
		c.exp.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading %s %s: %w", c.gvk.Kind, key, err)
	}
	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return 0, fmt.Errorf("listing pods of %s %s: %w", c.gvk.Kind, key, err)
	}
	// Check before claiming: the pods listed are what the cache holds now.
	canManage := c.exp.satisfied(key, all)

	var active []*corev1.Pod
	var terminating int32
	for _, p := range all {
		switch {
		case isActive(p):
			active = append(active, p)
		case isTerminating(p) && isControlledBy(p, o.meta.GetUID()):
			terminating++
		}
	}
	owned, err := ownership.Claim(ctx, ownership.Owner{
		Object:   o.meta,
		GVK:      c.gvk,
		Selector: o.selector,
		Reread: func(ctx context.Context) (metav1.Object, error) {
			return c.kind.getLive(ctx, o.meta.GetNamespace(), o.meta.GetName())
		},
	}, active, c.patchPod)
	if err != nil {
		return 0, fmt.Errorf("claiming pods for %s %s: %w", c.gvk.Kind, key, err)
	}

	var manageErr error
	if canManage && o.meta.GetDeletionTimestamp() == nil {
		manageErr = c.manage(ctx, key, o, owned)
	}

	now := c.now()
	st, wait := computeStatus(o, owned, terminating, manageErr, now)
	if !statusEqual(o.status, st) {
		if err := c.kind.updateStatus(ctx, o, st); err != nil {
			return 0, errors.Join(manageErr, err)
		}
	}
	if manageErr != nil {
		return 0, manageErr
	}
	return wait, nil
}

func isControlledBy(p *corev1.Pod, uid types.UID) bool {
	ref := metav1.GetControllerOfNoCopy(p)
	return ref != nil && ref.UID == uid
}

func (c *Controller) patchPod(ctx context.Context, namespace, name string, pt types.PatchType, data []byte) error {
	_, err := c.client.CoreV1().Pods(namespace).Patch(ctx, name, pt, data, metav1.PatchOptions{})
	return err
}
