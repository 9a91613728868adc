package statefulset

import (
	"context"
	"fmt"
	"log/slog"
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

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/history"
	"github.com/skiff-dev/skiff/internal/controller/ownership"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
	"github.com/skiff-dev/skiff/internal/nsindex"
)

// gvk is the kind of the controller references this controller writes.
var gvk = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// Controller reconciles StatefulSets. Create it with New, then Run it.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time
	history  history.Store

	sets appslisters.StatefulSetLister
	// setIndex is the sets' cache, listed by namespace (see ownerKeys).
	setIndex cache.Indexer
	pods     corelisters.PodLister
	revs     appslisters.ControllerRevisionLister
	claims   corelisters.PersistentVolumeClaimLister
	synced   []cache.InformerSynced

	loop *reconcile.Loop
}

// New returns a controller and registers its informers (StatefulSets,
// Pods, ControllerRevisions, PersistentVolumeClaims) on deps.Informers.
func New(deps controller.Deps) *Controller {
	c := &Controller{
		client:   deps.Client,
		recorder: deps.Recorder,
		log:      deps.Log(),
		now:      deps.Clock(),
		history:  history.Store{Client: deps.Client},
	}
	c.loop = reconcile.New("statefulset", c.sync, c.log)

	setInf := deps.Informers.Apps().V1().StatefulSets()
	podInf := deps.Informers.Core().V1().Pods()
	revInf := deps.Informers.Apps().V1().ControllerRevisions()
	claimInf := deps.Informers.Core().V1().PersistentVolumeClaims()
	c.sets, c.pods, c.revs, c.claims = setInf.Lister(), podInf.Lister(), revInf.Lister(), claimInf.Lister()
	c.setIndex = setInf.Informer().GetIndexer()

	setInf.Informer().AddEventHandler(c.loop.Handler())
	podInf.Informer().AddEventHandler(c.loop.HandlerFor(c.ownerKeys))
	revInf.Informer().AddEventHandler(c.loop.HandlerFor(c.ownerKeys))
	claimInf.Informer()
	c.synced = []cache.InformerSynced{
		setInf.Informer().HasSynced, podInf.Informer().HasSynced,
		revInf.Informer().HasSynced, claimInf.Informer().HasSynced,
	}
	return c
}

// Run processes StatefulSets with workers workers until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced...)
}

// ownerKeys maps a pod or revision to the set controlling it or, for an
// orphan, to every set in its namespace whose selector matches it (one of
// them may adopt it).
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
	for _, s := range nsindex.List[*appsv1.StatefulSet](c.setIndex, m.GetNamespace()) {
		sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(m.GetLabels())) {
			continue
		}
		keys = append(keys, s.Namespace+"/"+s.Name)
	}
	return keys
}

// sync converges the StatefulSet named key.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	set, err := c.sets.StatefulSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting statefulset %s: %w", key, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || selector.Empty() {
		// Invalid sets are refused by validation; nothing to do.
		return 0, nil
	}
	if set.DeletionTimestamp != nil {
		return 0, nil
	}

	owner := ownership.Owner{Object: set, GVK: gvk, Selector: selector, Reread: func(ctx context.Context) (metav1.Object, error) {
		return c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
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
	if set.Status.CollisionCount != nil {
		collisions = *set.Status.CollisionCount
	}
	updateRev, revs, collisions, err := c.history.Sync(ctx, set, gvk, set.Spec.Template.Labels, &set.Spec.Template, revs, collisions)
	if err != nil {
		return 0, fmt.Errorf("syncing revisions of %s: %w", key, err)
	}
	currentRev := updateRev
	for _, r := range revs {
		if r.Name == set.Status.CurrentRevision {
			currentRev = r
		}
	}
	currentTmpl, err := history.Template(currentRev)
	if err != nil {
		return 0, err
	}

	st := &state{
		set:         set,
		currentRev:  currentRev.Name,
		updateRev:   updateRev.Name,
		currentTmpl: &currentTmpl,
		now:         c.now(),
	}
	st.split(pods)
	requeue, syncErr := c.syncPods(ctx, st)

	status := st.status(collisions)
	if err := c.updateStatus(ctx, set, status); err != nil {
		return 0, err
	}
	if syncErr != nil {
		return 0, syncErr
	}
	if err := c.truncateHistory(ctx, set, pods, revs, status); err != nil {
		return 0, err
	}
	return requeue, nil
}

func (c *Controller) patchPod(ctx context.Context, ns, name string, pt types.PatchType, data []byte) error {
	_, err := c.client.CoreV1().Pods(ns).Patch(ctx, name, pt, data, metav1.PatchOptions{})
	return err
}

// updateStatus writes status if it differs from the set's.
func (c *Controller) updateStatus(ctx context.Context, set *appsv1.StatefulSet, status appsv1.StatefulSetStatus) error {
	status.Conditions = set.Status.Conditions
	if apiequality.Semantic.DeepEqual(set.Status, status) {
		return nil
	}
	s := set.DeepCopy()
	s.Status = status
	err := controller.WriteStatus(ctx, c.client.AppsV1().StatefulSets(s.Namespace), s, func(fresh *appsv1.StatefulSet) { fresh.Status = status })
	if err != nil {
		return fmt.Errorf("updating status of statefulset %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}

// truncateHistory keeps the current and update revisions, those of live
// pods, and revisionHistoryLimit others.
func (c *Controller) truncateHistory(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, revs []*appsv1.ControllerRevision, status appsv1.StatefulSetStatus) error {
	live := map[string]bool{status.CurrentRevision: true, status.UpdateRevision: true}
	for _, p := range pods {
		if r := p.Labels[appsv1.StatefulSetRevisionLabel]; r != "" {
			live[r] = true
		}
	}
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = int(*set.Spec.RevisionHistoryLimit)
	}
	return c.history.Truncate(ctx, revs, live, limit)
}
