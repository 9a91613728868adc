package daemonset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/history"
	"github.com/skiff-dev/skiff/internal/controller/ownership"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
	"github.com/skiff-dev/skiff/internal/nsindex"
)

// gvk is the kind of the controller references this controller writes.
var gvk = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// pendingTTL bounds how long a sync waits for the cache to show its own
// writes before acting again anyway.
const pendingTTL = 30 * time.Second

// Controller reconciles DaemonSets. Create it with New, then Run it.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time
	history  history.Store
	pending  *pending
	// backoff spaces out the replacement of failed pods, per DaemonSet and
	// node, so that a pod that keeps failing is not recreated in a loop.
	backoff *flowcontrol.Backoff

	sets appslisters.DaemonSetLister
	// setIndex is the sets' cache, listed by namespace (see ownerKeys).
	setIndex cache.Indexer
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	revs     appslisters.ControllerRevisionLister
	synced   []cache.InformerSynced

	loop *reconcile.Loop
}

// New returns a controller and registers its informers (DaemonSets, Pods,
// Nodes, ControllerRevisions) on deps.Informers.
func New(deps controller.Deps) *Controller {
	c := &Controller{
		client:   deps.Client,
		recorder: deps.Recorder,
		log:      deps.Log(),
		now:      deps.Clock(),
		history:  history.Store{Client: deps.Client},
		pending:  newPending(pendingTTL),
		backoff:  flowcontrol.NewBackOff(time.Second, 15*time.Minute),
	}
	c.loop = reconcile.New("daemonset", c.sync, c.log)

	dsInf := deps.Informers.Apps().V1().DaemonSets()
	podInf := deps.Informers.Core().V1().Pods()
	nodeInf := deps.Informers.Core().V1().Nodes()
	revInf := deps.Informers.Apps().V1().ControllerRevisions()
	c.sets, c.pods, c.nodes, c.revs = dsInf.Lister(), podInf.Lister(), nodeInf.Lister(), revInf.Lister()
	c.setIndex = dsInf.Informer().GetIndexer()

	dsInf.Informer().AddEventHandler(c.loop.Handler())
	podInf.Informer().AddEventHandler(c.loop.HandlerFor(c.ownerKeys))
	revInf.Informer().AddEventHandler(c.loop.HandlerFor(c.ownerKeys))
	nodeInf.Informer().AddEventHandler(c.loop.HandlerFor(c.allKeys))
	c.synced = []cache.InformerSynced{
		dsInf.Informer().HasSynced, podInf.Informer().HasSynced,
		nodeInf.Informer().HasSynced, revInf.Informer().HasSynced,
	}
	return c
}

// Run processes DaemonSets with workers workers until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.backoff.GC()
			}
		}
	}()
	err := c.loop.Run(ctx, workers, c.synced...)
	cancel()
	<-gcDone
	return err
}

// allKeys maps a node to every DaemonSet: any node change may change
// where daemon pods belong.
func (c *Controller) allKeys(any) []string {
	sets, err := c.sets.List(labels.Everything())
	if err != nil {
		return nil
	}
	keys := make([]string, 0, len(sets))
	for _, s := range sets {
		keys = append(keys, s.Namespace+"/"+s.Name)
	}
	return keys
}

// ownerKeys maps a pod or revision to the DaemonSet controlling it or, for
// an orphan, to every DaemonSet in its namespace whose selector matches.
func (c *Controller) ownerKeys(obj any) []string {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil
	}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		if ref.Kind != gvk.Kind || ref.APIVersion != gvk.GroupVersion().String() {
			return nil
		}
		return []string{m.GetNamespace() + "/" + ref.Name}
	}
	var keys []string
	for _, s := range nsindex.List[*appsv1.DaemonSet](c.setIndex, m.GetNamespace()) {
		sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(m.GetLabels())) {
			continue
		}
		keys = append(keys, s.Namespace+"/"+s.Name)
	}
	return keys
}

// nodeState is one node as one sync sees it.
type nodeState struct {
	node                      *corev1.Node
	shouldRun, shouldContinue bool
	pods                      []*corev1.Pod // live (not terminating) daemon pods, oldest first
}

// sync converges the DaemonSet named key.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	ds, err := c.sets.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.pending.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting daemonset %s: %w", key, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || selector.Empty() || ds.DeletionTimestamp != nil {
		return 0, nil
	}
	now := c.now()

	owner := ownership.Owner{Object: ds, GVK: gvk, Selector: selector, Reread: func(ctx context.Context) (metav1.Object, error) {
		return c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
	}}
	allPods, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return 0, fmt.Errorf("listing pods of %s: %w", key, err)
	}
	pods, err := ownership.Claim(ctx, owner, allPods, c.patchPod)
	if err != nil {
		return 0, fmt.Errorf("claiming pods of %s: %w", key, err)
	}
	allRevs, err := c.revs.ControllerRevisions(ns).List(labels.Everything())
	if err != nil {
		return 0, fmt.Errorf("listing revisions of %s: %w", key, err)
	}
	revs, err := ownership.Claim(ctx, owner, allRevs, c.history.Patcher())
	if err != nil {
		return 0, fmt.Errorf("claiming revisions of %s: %w", key, err)
	}
	var collisions int32
	if ds.Status.CollisionCount != nil {
		collisions = *ds.Status.CollisionCount
	}
	cur, revs, collisions, err := c.history.Sync(ctx, ds, gvk, ds.Spec.Template.Labels, &ds.Spec.Template, revs, collisions)
	if err != nil {
		return 0, fmt.Errorf("syncing revisions of %s: %w", key, err)
	}
	hash := cur.Labels[history.HashLabel]

	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return 0, fmt.Errorf("listing nodes: %w", err)
	}
	states, orphans := group(ds, nodes, pods)

	var requeue time.Duration
	if c.pending.satisfied(key, c.pods, now) {
		changed, wait, err := c.manage(ctx, key, ds, hash, states, orphans, now)
		if err != nil {
			return 0, err
		}
		requeue = wait
		if !changed && ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
			if err := c.rollingUpdate(ctx, key, ds, hash, states); err != nil {
				return 0, err
			}
		}
	} else {
		requeue = 100 * time.Millisecond // safety net; the pod events come first
	}

	status, wait := computeStatus(ds, hash, states, now)
	status.CollisionCount = &collisions
	if err := c.updateStatus(ctx, ds, status); err != nil {
		return 0, err
	}
	if wait > 0 && (requeue == 0 || wait < requeue) {
		requeue = wait
	}
	live := map[string]bool{cur.Name: true}
	for _, p := range pods {
		if h := p.Labels[history.HashLabel]; h != "" {
			live[history.Name(ds.Name, h)] = true
		}
	}
	limit := 10
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = int(*ds.Spec.RevisionHistoryLimit)
	}
	if err := c.history.Truncate(ctx, revs, live, limit); err != nil {
		return 0, err
	}
	return requeue, nil
}

// group assigns the owned live pods to nodes; orphans are pods whose node
// does not exist (or that name none).
func group(ds *appsv1.DaemonSet, nodes []*corev1.Node, pods []*corev1.Pod) (states []*nodeState, orphans []*corev1.Pod) {
	byNode := map[string]*nodeState{}
	for _, n := range nodes {
		run, cont := eligibility(ds, n)
		st := &nodeState{node: n, shouldRun: run, shouldContinue: cont}
		byNode[n.Name] = st
		states = append(states, st)
	}
	slices.SortFunc(states, func(a, b *nodeState) int { return compare(a.node.Name, b.node.Name) })
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		st := byNode[targetNode(p)]
		if st == nil {
			orphans = append(orphans, p)
			continue
		}
		st.pods = append(st.pods, p)
	}
	for _, st := range states {
		slices.SortFunc(st.pods, func(a, b *corev1.Pod) int {
			if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
				return c
			}
			return compare(a.Name, b.Name)
		})
	}
	return states, orphans
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// manage creates the missing daemon pods and deletes the ones that should
// not be there: on ineligible nodes, on missing nodes, failed ones (with
// back-off per node), and duplicates. It reports whether it wrote anything
// and how long until a failed pod's back-off ends.
func (c *Controller) manage(ctx context.Context, key string, ds *appsv1.DaemonSet, hash string, states []*nodeState, orphans []*corev1.Pod, now time.Time) (bool, time.Duration, error) {
	var (
		create []string
		wait   time.Duration
	)
	del := slices.Clone(orphans)
	surge := rollingSurge(ds)
	for _, st := range states {
		switch {
		case st.shouldRun && len(st.pods) == 0:
			create = append(create, st.node.Name)
		case st.shouldContinue:
			var keep []*corev1.Pod
			for _, p := range st.pods {
				if p.Status.Phase == corev1.PodFailed {
					id := key + "/" + st.node.Name
					if c.backoff.IsInBackOffSinceUpdate(id, now) {
						if d := c.backoff.Get(id); wait == 0 || d < wait {
							wait = d
						}
						keep = append(keep, p) // keeps the node from getting a new pod meanwhile
						continue
					}
					c.backoff.Next(id, now)
					c.event(ds, corev1.EventTypeWarning, "FailedDaemonPod", "Found failed daemon pod %s/%s on node %s, will try to kill it", p.Namespace, p.Name, st.node.Name)
					del = append(del, p)
					continue
				}
				keep = append(keep, p)
			}
			del = append(del, duplicates(keep, hash, surge)...)
		default:
			del = append(del, st.pods...)
		}
	}
	var errs []error
	for _, node := range create {
		if err := c.createPod(ctx, key, ds, node, hash); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range del {
		if err := c.deletePod(ctx, key, ds, p); err != nil {
			errs = append(errs, err)
		}
	}
	return len(create)+len(del) > 0, wait, errors.Join(errs...)
}

// duplicates returns the pods of one node beyond the one it should have
// (oldest first). During a surge update, an updated pod may run next to
// an old one: then the oldest of each kind is kept.
func duplicates(pods []*corev1.Pod, hash string, surge bool) []*corev1.Pod {
	if len(pods) <= 1 {
		return nil
	}
	if !surge {
		return pods[1:]
	}
	var extra []*corev1.Pod
	var haveNew, haveOld bool
	for _, p := range pods {
		isNew := p.Labels[history.HashLabel] == hash
		switch {
		case isNew && !haveNew:
			haveNew = true
		case !isNew && !haveOld:
			haveOld = true
		default:
			extra = append(extra, p)
		}
	}
	return extra
}

// createPod creates ds's pod for node.
func (c *Controller) createPod(ctx context.Context, key string, ds *appsv1.DaemonSet, node, hash string) error {
	pod, err := c.client.CoreV1().Pods(ds.Namespace).Create(ctx, newPod(ds, node, hash), metav1.CreateOptions{})
	if err != nil {
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil // the namespace is going away, and the set with it
		}
		c.event(ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return fmt.Errorf("creating pod of %s for node %s: %w", key, node, err)
	}
	c.pending.created(key, pod, c.now())
	c.event(ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", pod.Name)
	return nil
}

// deletePod deletes pod (that exact pod, by uid precondition).
func (c *Controller) deletePod(ctx context.Context, key string, ds *appsv1.DaemonSet, pod *corev1.Pod) error {
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return nil
	case err != nil:
		c.event(ds, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
		return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.pending.deleted(key, pod, c.now())
	c.event(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", pod.Name)
	return nil
}

func (c *Controller) patchPod(ctx context.Context, ns, name string, pt types.PatchType, data []byte) error {
	_, err := c.client.CoreV1().Pods(ns).Patch(ctx, name, pt, data, metav1.PatchOptions{})
	return err
}

// updateStatus writes status if it differs from ds's.
func (c *Controller) updateStatus(ctx context.Context, ds *appsv1.DaemonSet, status appsv1.DaemonSetStatus) error {
	status.Conditions = ds.Status.Conditions
	if apiequality.Semantic.DeepEqual(ds.Status, status) {
		return nil
	}
	d := ds.DeepCopy()
	d.Status = status
	err := controller.WriteStatus(ctx, c.client.AppsV1().DaemonSets(d.Namespace), d, func(fresh *appsv1.DaemonSet) { fresh.Status = status })
	if err != nil {
		return fmt.Errorf("updating status of daemonset %s/%s: %w", d.Namespace, d.Name, err)
	}
	return nil
}

// event records an event on ds, if there is a recorder.
func (c *Controller) event(ds *appsv1.DaemonSet, typ, reason, format string, args ...any) {
	if c.recorder != nil {
		c.recorder.Eventf(ds, typ, reason, format, args...)
	}
}
