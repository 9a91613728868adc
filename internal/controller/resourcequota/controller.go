package resourcequota

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
	"github.com/skiff-dev/skiff/internal/nsindex"
)

// ResyncPeriod is how often every quota is recomputed even without changes
// (upstream's --resource-quota-sync-period).
const ResyncPeriod = 5 * time.Minute

// Mapper resolves count/<resource>.<group> names to a served version.
type Mapper interface {
	ResourceFor(input schema.GroupVersionResource) (schema.GroupVersionResource, error)
}

// Controller is the ResourceQuota status controller.
type Controller struct {
	// Metadata and Mapper, when both set, count objects of kinds without
	// an informer here (count/<resource>.<group> of any served resource)
	// by listing them at each sync: such counts follow changes only at
	// the next sync (ResyncPeriod, or a change of a counted object of the
	// namespace). Set them before Run.
	Metadata metadata.Interface
	Mapper   Mapper

	client kubernetes.Interface
	quotas corelisters.ResourceQuotaLister
	// quotaIndex is the quotas' cache, listed by namespace (quotasOf).
	quotaIndex cache.Indexer
	// counted are the informers of the kinds counted by count/<name>,
	// by that name ("configmaps", "deployments.apps").
	counted  map[string]cache.SharedIndexInformer
	pods     cache.SharedIndexInformer
	services cache.SharedIndexInformer
	claims   cache.SharedIndexInformer
	synced   []cache.InformerSynced
	now      func() time.Time
	log      *slog.Logger
	loop     *reconcile.Loop
}

// New returns the controller with its informers registered on
// deps.Informers.
func New(deps controller.Deps) *Controller {
	logger := deps.Log()
	f := deps.Informers
	quotaInformer := f.Core().V1().ResourceQuotas()
	c := &Controller{
		client:     deps.Client,
		quotas:     quotaInformer.Lister(),
		quotaIndex: quotaInformer.Informer().GetIndexer(),
		now:        deps.Clock(),
		log:        logger,
		pods:       f.Core().V1().Pods().Informer(),
		services:   f.Core().V1().Services().Informer(),
		claims:     f.Core().V1().PersistentVolumeClaims().Informer(),
		counted: map[string]cache.SharedIndexInformer{
			"configmaps":             f.Core().V1().ConfigMaps().Informer(),
			"secrets":                f.Core().V1().Secrets().Informer(),
			"replicationcontrollers": f.Core().V1().ReplicationControllers().Informer(),
			"resourcequotas":         quotaInformer.Informer(),
			"deployments.apps":       f.Apps().V1().Deployments().Informer(),
			"replicasets.apps":       f.Apps().V1().ReplicaSets().Informer(),
			"statefulsets.apps":      f.Apps().V1().StatefulSets().Informer(),
			"daemonsets.apps":        f.Apps().V1().DaemonSets().Informer(),
			"jobs.batch":             f.Batch().V1().Jobs().Informer(),
			"cronjobs.batch":         f.Batch().V1().CronJobs().Informer(),
		},
	}
	c.loop = reconcile.New("resourcequota", c.sync, logger)
	// Deletions in a namespace recompute all its quotas, and so do updates
	// that can change a usage (object counts never change on update).
	// Creations do not: admission charged them into status.used before
	// they were written, and a recompute from caches that have not yet
	// seen the newest creations would hand their charge back, letting a
	// concurrent creation through (a quota of 2 pods ended up with 3).
	// Quotas are the exception: a new one recomputes its namespace's. A
	// quota is also computed when its spec changes, not on its status
	// writes (most of them admission's charges), as upstream.
	c.synced = append(c.synced, c.pods.HasSynced, c.services.HasSynced, c.claims.HasSynced)
	c.pods.AddEventHandler(c.handler(podChanged))
	c.services.AddEventHandler(c.handler(serviceChanged))
	c.claims.AddEventHandler(c.handler(claimChanged))
	for name, inf := range c.counted {
		if name == "resourcequotas" {
			inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				// A new quota is computed, and so are the others of its
				// namespace: those counting resourcequotas may have been
				// computed from a cache without it, and admission charged
				// them nothing while they had no status yet.
				AddFunc: c.enqueueNamespace,
				UpdateFunc: func(old, obj any) {
					if quotaChanged(old, obj) {
						c.loop.EnqueueObject(obj)
					}
				},
				DeleteFunc: c.enqueueNamespace,
			})
		} else {
			inf.AddEventHandler(c.handler(nil))
		}
		c.synced = append(c.synced, inf.HasSynced)
	}
	return c
}

// NewForConfig returns New(deps) with Metadata and Mapper built from cfg.
func NewForConfig(deps controller.Deps, cfg *rest.Config) (*Controller, error) {
	c := New(deps)
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building metadata client: %w", err)
	}
	c.Metadata = md
	c.Mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(deps.Client.Discovery()))
	return c, nil
}

// handler enqueues the quotas of an object's namespace when it is deleted,
// and when changed (nil: never) says an update matters. Creations were
// charged by admission (see New).
func (c *Controller) handler(changed func(old, obj any) bool) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, obj any) {
			if changed != nil && changed(old, obj) {
				c.enqueueNamespace(obj)
			}
		},
		DeleteFunc: c.enqueueNamespace,
	}
}

func (c *Controller) enqueueNamespace(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	for _, key := range c.quotasOf(obj) {
		c.loop.Enqueue(key)
	}
}

// changedAs adapts a comparison of two T to an informer update's
// arguments; anything that is not a T (a tombstone) counts as a change.
func changedAs[T any](differ func(o, n T) bool) func(old, obj any) bool {
	return func(old, obj any) bool {
		o, ok1 := old.(T)
		n, ok2 := obj.(T)
		return !ok1 || !ok2 || differ(o, n)
	}
}

// quotaChanged reports a change of a quota's spec (what it limits and
// which objects it selects), the only update of a quota that needs a
// recompute.
var quotaChanged = changedAs(func(o, n *corev1.ResourceQuota) bool {
	return !equality.Semantic.DeepEqual(o.Spec, n.Spec)
})

// podChanged reports changes that can move a pod's usage or scopes.
var podChanged = changedAs(func(o, n *corev1.Pod) bool {
	return o.Status.Phase != n.Status.Phase ||
		!equality.Semantic.DeepEqual(o.DeletionTimestamp, n.DeletionTimestamp) ||
		quotaSpecChanged(&o.Spec, &n.Spec)
})

// quotaSpecChanged reports a change of what a pod's usage and scopes are
// computed from: its containers' resources, overhead, pod-level resources,
// priority class and active deadline. It replaces a reflective comparison
// of the whole spec, which was 2.5% of the server's CPU while pods were
// created and bound (a binding changes only spec.nodeName).
func quotaSpecChanged(o, n *corev1.PodSpec) bool {
	if o.PriorityClassName != n.PriorityClassName || !equalInt64Ptr(o.ActiveDeadlineSeconds, n.ActiveDeadlineSeconds) ||
		len(o.Containers) != len(n.Containers) || len(o.InitContainers) != len(n.InitContainers) ||
		!equalResourceList(o.Overhead, n.Overhead) || (o.Resources == nil) != (n.Resources == nil) {
		return true
	}
	if o.Resources != nil && !equalRequirements(o.Resources, n.Resources) {
		return true
	}
	for i := range o.Containers {
		if !equalRequirements(&o.Containers[i].Resources, &n.Containers[i].Resources) {
			return true
		}
	}
	for i := range o.InitContainers {
		if !equalRequirements(&o.InitContainers[i].Resources, &n.InitContainers[i].Resources) ||
			!equality.Semantic.DeepEqual(o.InitContainers[i].RestartPolicy, n.InitContainers[i].RestartPolicy) {
			return true
		}
	}
	return false
}

func equalRequirements(a, b *corev1.ResourceRequirements) bool {
	return equalResourceList(a.Requests, b.Requests) && equalResourceList(a.Limits, b.Limits)
}

func equalResourceList(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for name, q := range a {
		if other, ok := b[name]; !ok || q.Cmp(other) != 0 {
			return false
		}
	}
	return true
}

func equalInt64Ptr(a, b *int64) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

var claimChanged = changedAs(func(o, n *corev1.PersistentVolumeClaim) bool {
	return !equality.Semantic.DeepEqual(o.Spec, n.Spec) ||
		!equality.Semantic.DeepEqual(o.Status.AllocatedResources, n.Status.AllocatedResources) ||
		!equality.Semantic.DeepEqual(o.Annotations, n.Annotations)
})

var serviceChanged = changedAs(func(o, n *corev1.Service) bool {
	return !equality.Semantic.DeepEqual(o.Spec, n.Spec)
})

// quotasOf returns the keys of the quotas of obj's namespace.
func (c *Controller) quotasOf(obj any) []string {
	o, ok := obj.(metav1.Object)
	if !ok {
		return nil
	}
	qs := nsindex.List[*corev1.ResourceQuota](c.quotaIndex, o.GetNamespace())
	keys := make([]string, 0, len(qs))
	for _, q := range qs {
		keys = append(keys, q.Namespace+"/"+q.Name)
	}
	return keys
}

// Run keeps quota statuses until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced...)
}

// gather collects the namespace's counted objects from the caches.
func (c *Controller) gather(ns string) (objects, map[string]bool, error) {
	objs := objects{counts: map[string]int64{}}
	counted := map[string]bool{}
	list := func(inf cache.SharedIndexInformer) ([]any, error) {
		items, err := inf.GetIndexer().ByIndex(cache.NamespaceIndex, ns)
		if err != nil {
			return nil, fmt.Errorf("listing namespace %s: %w", ns, err)
		}
		return items, nil
	}
	items, err := list(c.pods)
	if err != nil {
		return objs, nil, err
	}
	for _, it := range items {
		objs.pods = append(objs.pods, it.(*corev1.Pod))
	}
	if items, err = list(c.services); err != nil {
		return objs, nil, err
	}
	for _, it := range items {
		objs.svcs = append(objs.svcs, it.(*corev1.Service))
	}
	if items, err = list(c.claims); err != nil {
		return objs, nil, err
	}
	for _, it := range items {
		objs.claims = append(objs.claims, it.(*corev1.PersistentVolumeClaim))
	}
	for _, name := range []string{"pods", "services", "persistentvolumeclaims"} {
		counted[name] = true
	}
	for name, inf := range c.counted {
		if items, err = list(inf); err != nil {
			return objs, nil, err
		}
		objs.counts[name] = int64(len(items))
		counted[name] = true
	}
	return objs, counted, nil
}

func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	q, err := c.quotas.ResourceQuotas(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	objs, counted, err := c.gather(ns)
	if err != nil {
		return 0, err
	}
	c.countOthers(ctx, q, &objs, counted)
	status, err := computeUsage(q, objs, counted, c.now())
	if err != nil {
		return 0, fmt.Errorf("computing usage of quota %s: %w", key, err)
	}
	if equality.Semantic.DeepEqual(q.Status, status) {
		return ResyncPeriod, nil
	}
	next := q.DeepCopy()
	next.Status = status
	if _, err := c.client.CoreV1().ResourceQuotas(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		return 0, fmt.Errorf("updating status of quota %s: %w", key, err)
	}
	return ResyncPeriod, nil
}

// countOthers counts, by listing, the count/ resources of q.Spec.Hard that
// no informer here covers. A resource that cannot be listed is left
// uncounted (its previous usage is kept).
func (c *Controller) countOthers(ctx context.Context, q *corev1.ResourceQuota, objs *objects, counted map[string]bool) {
	if c.Metadata == nil || c.Mapper == nil || q.Spec.Scopes != nil || q.Spec.ScopeSelector != nil {
		return
	}
	for name := range q.Spec.Hard {
		s := string(name)
		if !strings.HasPrefix(s, "count/") || counted[strings.TrimPrefix(s, "count/")] {
			continue
		}
		gr := schema.ParseGroupResource(strings.TrimPrefix(s, "count/"))
		gvr, err := c.Mapper.ResourceFor(gr.WithVersion(""))
		if err != nil {
			if r, ok := c.Mapper.(interface{ Reset() }); ok && meta.IsNoMatchError(err) {
				r.Reset()
			}
			c.log.Debug("cannot resolve counted resource", "quota", q.Namespace+"/"+q.Name, "resource", s, "err", err)
			continue
		}
		list, err := c.Metadata.Resource(gvr).Namespace(q.Namespace).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			c.log.Debug("cannot count resource", "quota", q.Namespace+"/"+q.Name, "resource", s, "err", err)
			continue
		}
		key := strings.TrimPrefix(s, "count/")
		objs.counts[key] = int64(len(list.Items))
		counted[key] = true
	}
}
