package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// Name is the controller's name in logs and the work queue.
const Name = "node-lifecycle-controller"

// LeaseNamespace holds the nodes' Leases, each named after its node.
const LeaseNamespace = corev1.NamespaceNodeLease

// Upstream defaults.
const (
	// DefaultGracePeriod is upstream's --node-monitor-grace-period.
	DefaultGracePeriod = 40 * time.Second
	// DefaultTolerationSeconds is upstream's
	// --default-not-ready-toleration-seconds and
	// --default-unreachable-toleration-seconds.
	DefaultTolerationSeconds int64 = 300
)

// Event reasons and pod condition reasons, as upstream's.
const (
	ReasonTaintEviction  = "TaintManagerEviction"
	ReasonTaintManager   = "DeletionByTaintManager"
	ReasonPodGC          = "DeletionByPodGC"
	conditionDisruption  = corev1.DisruptionTarget
	messageTaintEviction = "Taint manager: deleting due to NoExecute taint"
	messagePodGC         = "PodGC: node no longer exists"
)

// podsByNode names the pod informer index by spec.nodeName.
const podsByNode = "nodelifecycle.spec.nodeName"

// Controller is the node lifecycle controller. Set its exported fields
// after New and before Run; Run it once. The key of its work queue is a
// node name: nodes, their Leases and the pods bound to them all map to it.
type Controller struct {
	// GracePeriod is how long a node may go without renewing its Lease
	// (or its Ready heartbeat) before its conditions become Unknown.
	GracePeriod time.Duration
	// DefaultTolerationSeconds, when not nil, stands in for the
	// DefaultTolerationSeconds admission plugin (see the package doc).
	DefaultTolerationSeconds *int64

	client   kubernetes.Interface
	nodes    corelisters.NodeLister
	leases   coordinationlisters.LeaseLister
	pods     cache.Indexer
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time
	synced   []cache.InformerSynced
	loop     *reconcile.Loop

	mu sync.Mutex
	// started is when Run began handling nodes; no node is stale before
	// started+GracePeriod. Guarded by mu.
	started time.Time
	// firstSeen is when a NoExecute taint without TimeAdded was first
	// seen, keyed by node then taint key and effect. Guarded by mu.
	firstSeen map[string]map[corev1.Taint]time.Time
	// evicted holds the UIDs of pods per node whose deletion was sent
	// while the informer may not show it yet. Guarded by mu.
	evicted map[string]map[types.UID]bool
}

// New returns a node lifecycle controller with upstream's defaults and
// registers its informers (nodes, leases, pods with an index by node) on
// deps.Informers; start the factory after calling it, then call Run.
func New(deps controller.Deps) *Controller {
	log := deps.Log()
	recorder := deps.Events()
	seconds := DefaultTolerationSeconds
	nodeInf := deps.Informers.Core().V1().Nodes()
	leaseInf := deps.Informers.Coordination().V1().Leases()
	podInf := deps.Informers.Core().V1().Pods()
	if err := podInf.Informer().AddIndexers(cache.Indexers{podsByNode: indexByNode}); err != nil {
		log.Info("cannot add pod index", "err", err)
	}
	c := &Controller{
		GracePeriod:              DefaultGracePeriod,
		DefaultTolerationSeconds: &seconds,
		client:                   deps.Client,
		nodes:                    nodeInf.Lister(),
		leases:                   leaseInf.Lister(),
		pods:                     podInf.Informer().GetIndexer(),
		recorder:                 recorder,
		log:                      log,
		now:                      deps.Clock(),
		synced: []cache.InformerSynced{
			nodeInf.Informer().HasSynced, leaseInf.Informer().HasSynced, podInf.Informer().HasSynced,
		},
		firstSeen: map[string]map[corev1.Taint]time.Time{},
		evicted:   map[string]map[types.UID]bool{},
	}
	c.loop = reconcile.New(Name, c.sync, log)
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{nodeInf.Informer(), c.loop.Handler()},
		{leaseInf.Informer(), c.loop.HandlerFor(nodeOfLease)},
		{podInf.Informer(), c.loop.HandlerFor(c.nodeOfPod)},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			log.Info("cannot add event handler", "err", err)
		}
	}
	return c
}

func indexByNode(obj any) ([]string, error) {
	if pod, ok := obj.(*corev1.Pod); ok && pod.Spec.NodeName != "" {
		return []string{pod.Spec.NodeName}, nil
	}
	return nil, nil
}

func nodeOfLease(obj any) []string {
	if l, ok := obj.(*coordinationv1.Lease); ok && l.Namespace == LeaseNamespace {
		return []string{l.Name}
	}
	return nil
}

// nodeOfPod maps a pod event to its node, but only when the pod can matter
// to that node's reconcile: the node is gone (the pod is an orphan), not
// Ready (its pods are marked not ready), or has a NoExecute taint (its pods
// may be evicted). Pods on healthy nodes change all the time and need no
// look; when their node turns unhealthy, the node's own event brings every
// pod on it into view.
func (c *Controller) nodeOfPod(obj any) []string {
	keys, _ := indexByNode(obj)
	if len(keys) == 0 {
		return nil
	}
	node, err := c.nodes.Get(keys[0])
	if err != nil {
		return keys
	}
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			return keys
		}
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady && cond.Status != corev1.ConditionTrue {
			return keys
		}
	}
	return nil
}

// Run waits for the caches, runs workers workers and blocks until ctx is
// done. It returns nil on cancellation.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("nodelifecycle: caches did not sync")
	}
	c.mu.Lock()
	c.started = c.now()
	c.mu.Unlock()
	return c.loop.Run(ctx, workers, c.synced...)
}

// sync converges the node named name: its health, its taints, and the
// pods bound to it. It returns the time until the next deadline (the lease
// going stale, a toleration running out), 0 when there is none.
// Idempotent.
func (c *Controller) sync(ctx context.Context, name string) (time.Duration, error) {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		return 0, c.collectOrphans(ctx, name)
	}
	if err != nil {
		return 0, fmt.Errorf("getting node %s: %w", name, err)
	}
	now := c.now()
	var lease *coordinationv1.Lease
	if l, err := c.leases.Leases(LeaseNamespace).Get(name); err == nil {
		lease = l
	}

	next := deadlines{now: now}
	node, err = c.monitorHealth(ctx, node, lease, now, &next)
	if err != nil {
		return 0, err
	}
	node, err = c.reconcileTaints(ctx, node, now)
	if err != nil {
		return 0, err
	}
	if err := c.markPodsNotReady(ctx, node, now); err != nil {
		return 0, err
	}
	if err := c.evictPods(ctx, node, now, &next); err != nil {
		return 0, err
	}
	return next.after(), nil
}

// deadlines collects the earliest future time a sync must run again.
type deadlines struct {
	now      time.Time
	earliest time.Time
}

func (d *deadlines) add(t time.Time) {
	if d.earliest.IsZero() || t.Before(d.earliest) {
		d.earliest = t
	}
}

func (d *deadlines) after() time.Duration {
	if d.earliest.IsZero() {
		return 0
	}
	return max(d.earliest.Sub(d.now), time.Millisecond)
}

// monitorHealth sets the node's kubelet conditions to Unknown once its
// heartbeat is older than the grace period, and otherwise records when
// that will be. It returns the node as stored.
func (c *Controller) monitorHealth(ctx context.Context, node *corev1.Node, lease *coordinationv1.Lease, now time.Time, next *deadlines) (*corev1.Node, error) {
	last := lastHeartbeat(node, lease)
	c.mu.Lock()
	if c.started.After(last) {
		// Count from our own start, as upstream counts from its own
		// observations: a control plane coming back after downtime gives
		// the kubelets a full grace period to report.
		last = c.started
	}
	c.mu.Unlock()
	stale := last.Add(c.GracePeriod)
	if now.Before(stale) {
		next.add(stale)
		return node, nil
	}
	conds, changed := markUnknown(node.Status.Conditions, node.CreationTimestamp, now)
	if !changed {
		return node, nil
	}
	updated := node.DeepCopy()
	updated.Status.Conditions = conds
	out, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("marking node %s unknown: %w", node.Name, err)
	}
	c.log.Info("node stopped posting status", "node", node.Name)
	c.recorder.Eventf(out, corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", node.Name)
	return out, nil
}

// reconcileTaints writes the node's taints as desiredTaints computes them
// and returns the node as stored.
func (c *Controller) reconcileTaints(ctx context.Context, node *corev1.Node, now time.Time) (*corev1.Node, error) {
	taints, changed := desiredTaints(node, now)
	if !changed {
		return node, nil
	}
	updated := node.DeepCopy()
	updated.Spec.Taints = taints
	out, err := c.client.CoreV1().Nodes().Update(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating taints of node %s: %w", node.Name, err)
	}
	return out, nil
}

// podsOn returns the pods bound to the node named name, from the cache.
func (c *Controller) podsOn(name string) ([]*corev1.Pod, error) {
	objs, err := c.pods.ByIndex(podsByNode, name)
	if err != nil {
		return nil, fmt.Errorf("listing pods of node %s: %w", name, err)
	}
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			pods = append(pods, p)
		}
	}
	return pods, nil
}

// markPodsNotReady sets Ready=False on the pods of a node whose Ready
// condition is Unknown: nobody else will, since the kubelet is gone.
func (c *Controller) markPodsNotReady(ctx context.Context, node *corev1.Node, now time.Time) error {
	ready := findCondition(node.Status.Conditions, corev1.NodeReady)
	if ready == nil || ready.Status != corev1.ConditionUnknown {
		return nil
	}
	pods, err := c.podsOn(node.Name)
	if err != nil {
		return err
	}
	var errs []error
	for _, pod := range pods {
		i := podConditionIndex(pod.Status.Conditions, corev1.PodReady)
		if i < 0 || pod.Status.Conditions[i].Status != corev1.ConditionTrue || pod.DeletionTimestamp != nil {
			continue
		}
		p := pod.DeepCopy()
		p.Status.Conditions[i].Status = corev1.ConditionFalse
		p.Status.Conditions[i].LastTransitionTime = metav1.NewTime(now)
		_, err := c.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("marking pod %s/%s not ready: %w", p.Namespace, p.Name, err))
		}
	}
	return errors.Join(errs...)
}

// evictPods deletes the node's pods whose tolerations of its NoExecute
// taints ran out, and records the earliest time another one will.
func (c *Controller) evictPods(ctx context.Context, node *corev1.Node, now time.Time, next *deadlines) error {
	taints := noExecuteTaints(node)
	added := c.taintClock(node.Name, taints, now)
	pods, err := c.podsOn(node.Name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	sent := c.evicted[node.Name]
	present := map[types.UID]bool{}
	for _, p := range pods {
		if p.DeletionTimestamp == nil && sent[p.UID] {
			present[p.UID] = true
		}
	}
	if len(present) == 0 {
		delete(c.evicted, node.Name)
	} else {
		c.evicted[node.Name] = present
	}
	c.mu.Unlock()

	var errs []error
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || present[pod.UID] {
			continue
		}
		tolerations := pod.Spec.Tolerations
		if c.DefaultTolerationSeconds != nil {
			tolerations = withDefaultTolerations(tolerations, *c.DefaultTolerationSeconds)
		}
		at, evict := evictionTime(taints, tolerations, added)
		if !evict {
			continue
		}
		if now.Before(at) {
			next.add(at)
			continue
		}
		if err := c.evict(ctx, pod); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// taintClock returns when each of taints was added: its TimeAdded, or when
// this controller first saw it. It forgets taints the node no longer has.
func (c *Controller) taintClock(node string, taints []corev1.Taint, now time.Time) func(corev1.Taint) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.firstSeen[node]
	seen := map[corev1.Taint]time.Time{}
	for _, t := range taints {
		if t.TimeAdded != nil {
			continue
		}
		id := corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect}
		if first, ok := old[id]; ok {
			seen[id] = first
		} else {
			seen[id] = now
		}
	}
	if len(seen) == 0 {
		delete(c.firstSeen, node)
	} else {
		c.firstSeen[node] = seen
	}
	return func(t corev1.Taint) time.Time {
		if t.TimeAdded != nil {
			return t.TimeAdded.Time
		}
		return seen[corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect}]
	}
}

// evict marks the pod as a disruption target and deletes it (with its
// own grace period), recording TaintManagerEviction.
func (c *Controller) evict(ctx context.Context, pod *corev1.Pod) error {
	if err := c.markDisruption(ctx, pod, ReasonTaintManager, messageTaintEviction, false); err != nil {
		return err
	}
	c.recorder.Eventf(pod, corev1.EventTypeNormal, ReasonTaintEviction, "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("evicting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.mu.Lock()
	if c.evicted[pod.Spec.NodeName] == nil {
		c.evicted[pod.Spec.NodeName] = map[types.UID]bool{}
	}
	c.evicted[pod.Spec.NodeName][pod.UID] = true
	c.mu.Unlock()
	c.log.Info("evicted pod", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName)
	return nil
}

// markDisruption adds the DisruptionTarget condition to the pod's status
// unless it has it; with fail it also sets a running pod's phase to
// Failed. A pod that is gone is not an error.
func (c *Controller) markDisruption(ctx context.Context, pod *corev1.Pod, reason, message string, fail bool) error {
	p := pod.DeepCopy()
	changed := false
	if i := podConditionIndex(p.Status.Conditions, conditionDisruption); i < 0 || p.Status.Conditions[i].Status != corev1.ConditionTrue {
		cond := corev1.PodCondition{
			Type: conditionDisruption, Status: corev1.ConditionTrue,
			Reason: reason, Message: message, LastTransitionTime: metav1.NewTime(c.now()),
		}
		if i < 0 {
			p.Status.Conditions = append(p.Status.Conditions, cond)
		} else {
			p.Status.Conditions[i] = cond
		}
		changed = true
	}
	if fail && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
		p.Status.Phase = corev1.PodFailed
		changed = true
	}
	if !changed {
		return nil
	}
	_, err := c.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("marking pod %s/%s as a disruption target: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// collectOrphans deletes, with grace period 0, the pods bound to the node
// named name once the API server confirms the node does not exist.
func (c *Controller) collectOrphans(ctx context.Context, name string) error {
	c.mu.Lock()
	delete(c.firstSeen, name)
	delete(c.evicted, name)
	c.mu.Unlock()
	pods, err := c.podsOn(name)
	if err != nil || len(pods) == 0 {
		return err
	}
	_, err = c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return nil // the cache is behind; the node's add event will come
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("checking node %s: %w", name, err)
	}
	var errs []error
	zero := int64(0)
	for _, pod := range pods {
		if err := c.markDisruption(ctx, pod, ReasonPodGC, messagePodGC, true); err != nil {
			errs = append(errs, err)
			continue
		}
		err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("deleting orphaned pod %s/%s: %w", pod.Namespace, pod.Name, err))
			continue
		}
		c.log.Info("deleted orphaned pod", "pod", pod.Namespace+"/"+pod.Name, "node", name)
	}
	return errors.Join(errs...)
}

func podConditionIndex(conds []corev1.PodCondition, t corev1.PodConditionType) int {
	for i := range conds {
		if conds[i].Type == t {
			return i
		}
	}
	return -1
}
