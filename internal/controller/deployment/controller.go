package deployment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/ownership"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// controllerKind is the GVK put in the controller references of the
// replica sets a deployment owns.
func controllerKind() schema.GroupVersionKind {
	return appsv1.SchemeGroupVersion.WithKind("Deployment")
}

// Controller is the deployment controller. See the package documentation.
// It is built by New and run once by Run.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time

	dLister   appslisters.DeploymentLister
	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	synced    []cache.InformerSynced

	loop *reconcile.Loop
}

// New returns a deployment controller and registers the deployment,
// replica set and pod informers it needs on deps.Informers; start the
// factory after New, then call Run.
func New(deps controller.Deps) *Controller {
	logger := deps.Log()
	recorder := deps.Events()
	c := &Controller{
		client:   deps.Client,
		recorder: recorder,
		log:      logger,
		now:      deps.Clock(),
	}
	c.loop = reconcile.New("deployment", c.sync, logger)

	dInf := deps.Informers.Apps().V1().Deployments()
	rsInf := deps.Informers.Apps().V1().ReplicaSets()
	podInf := deps.Informers.Core().V1().Pods()
	c.dLister, c.rsLister, c.podLister = dInf.Lister(), rsInf.Lister(), podInf.Lister()
	// AddEventHandler only fails on a stopped informer, which a fresh
	// factory's are not.
	_, _ = dInf.Informer().AddEventHandler(c.loop.Handler())
	_, _ = rsInf.Informer().AddEventHandler(c.loop.HandlerFor(c.replicaSetKeys))
	_, _ = podInf.Informer().AddEventHandler(c.loop.HandlerFor(c.podKeys))
	c.synced = []cache.InformerSynced{dInf.Informer().HasSynced, rsInf.Informer().HasSynced, podInf.Informer().HasSynced}
	return c
}

// Run reconciles deployments with workers workers until ctx is done. The
// informer factory must be started by the caller. It returns nil on
// cancellation.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced...)
}

// replicaSetKeys maps a replica set to the deployment that controls it or,
// for an orphan, to every deployment whose selector matches it (so that
// one can adopt it).
func (c *Controller) replicaSetKeys(obj any) []string {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return nil
	}
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		if d := c.resolveControllerRef(rs.Namespace, ref); d != nil {
			return []string{rs.Namespace + "/" + d.Name}
		}
		return nil
	}
	ds, err := c.dLister.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var keys []string
	for _, d := range ds {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(rs.Labels)) {
			continue
		}
		keys = append(keys, d.Namespace+"/"+d.Name)
	}
	return keys
}

// podKeys maps a pod to the Recreate deployment owning its replica set:
// a Recreate rollout waits for the old pods to be gone.
func (c *Controller) podKeys(obj any) []string {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return nil
	}
	rs, err := c.rsLister.ReplicaSets(pod.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	rsRef := metav1.GetControllerOfNoCopy(rs)
	if rsRef == nil {
		return nil
	}
	d := c.resolveControllerRef(rs.Namespace, rsRef)
	if d == nil || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		return nil
	}
	return []string{d.Namespace + "/" + d.Name}
}

// resolveControllerRef returns the deployment ref names if it is in the
// cache with the same uid.
func (c *Controller) resolveControllerRef(ns string, ref *metav1.OwnerReference) *appsv1.Deployment {
	if ref.Kind != controllerKind().Kind {
		return nil
	}
	d, err := c.dLister.Deployments(ns).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

// sync reconciles the deployment named by key ("namespace/name"): it
// claims the replica sets, then, in upstream's order, only syncs status
// for a deployment being deleted, records pause/resume, only scales a
// paused deployment or one whose spec.replicas changed, and otherwise
// progresses the rollout by its strategy.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cached, err := c.dLister.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting deployment %s from cache: %w", key, err)
	}
	d := cached.DeepCopy()

	if d.Spec.Selector == nil || (len(d.Spec.Selector.MatchLabels) == 0 && len(d.Spec.Selector.MatchExpressions) == 0) {
		c.recorder.Eventf(d, corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			if _, err := c.client.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
				return 0, fmt.Errorf("updating status of deployment %s: %w", key, err)
			}
		}
		return 0, nil
	}

	rsList, err := c.claimReplicaSets(ctx, d)
	if err != nil {
		return 0, err
	}

	if d.DeletionTimestamp != nil {
		newRS, oldRSs, err := c.newAndOld(ctx, d, rsList, false)
		if err != nil {
			return 0, err
		}
		return 0, c.syncStatus(ctx, append(oldRSs, newRS), newRS, d)
	}

	if err := c.checkPausedConditions(ctx, d); err != nil {
		return 0, err
	}
	if d.Spec.Paused {
		return 0, c.syncScale(ctx, d, rsList)
	}

	newRS, oldRSs, err := c.newAndOld(ctx, d, rsList, false)
	if err != nil {
		return 0, err
	}
	if isScalingEvent(d, append(oldRSs, newRS)) {
		return 0, c.syncScale(ctx, d, rsList)
	}

	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		pods, err := c.podsByReplicaSet(d, rsList)
		if err != nil {
			return 0, err
		}
		return c.rolloutRecreate(ctx, d, rsList, pods)
	}
	return c.rolloutRolling(ctx, d, rsList)
}

// claimReplicaSets returns the replica sets d owns after adopting matching
// orphans and releasing owned ones that no longer match.
func (c *Controller) claimReplicaSets(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	all, err := c.rsLister.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing replica sets of %s/%s: %w", d.Namespace, d.Name, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s has an invalid selector: %w", d.Namespace, d.Name, err)
	}
	owner := ownership.Owner{
		Object:   d,
		GVK:      controllerKind(),
		Selector: sel,
		Reread: func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		},
	}
	patch := func(ctx context.Context, ns, name string, pt types.PatchType, data []byte) error {
		_, err := c.client.AppsV1().ReplicaSets(ns).Patch(ctx, name, pt, data, metav1.PatchOptions{})
		return err
	}
	claimed, err := ownership.Claim(ctx, owner, all, patch)
	if err != nil {
		return nil, fmt.Errorf("claiming replica sets for %s/%s: %w", d.Namespace, d.Name, err)
	}
	return claimed, nil
}

// podsByReplicaSet groups the pods d selects by the uid of the replica set
// in rsList that controls them.
func (c *Controller) podsByReplicaSet(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (map[types.UID][]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s has an invalid selector: %w", d.Namespace, d.Name, err)
	}
	pods, err := c.podLister.Pods(d.Namespace).List(sel)
	if err != nil {
		return nil, fmt.Errorf("listing pods of %s/%s: %w", d.Namespace, d.Name, err)
	}
	m := make(map[types.UID][]*corev1.Pod, len(rsList))
	for _, rs := range rsList {
		m[rs.UID] = nil
	}
	for _, p := range pods {
		ref := metav1.GetControllerOfNoCopy(p)
		if ref == nil {
			continue
		}
		if _, ok := m[ref.UID]; ok {
			m[ref.UID] = append(m[ref.UID], p)
		}
	}
	return m, nil
}

// checkPausedConditions sets Progressing to Unknown/DeploymentPaused when
// the deployment is paused and to DeploymentResumed when it is no longer,
// unless the rollout already timed out.
func (c *Controller) checkPausedConditions(ctx context.Context, d *appsv1.Deployment) error {
	if !hasProgressDeadline(d) {
		return nil
	}
	cond := getCondition(d.Status, appsv1.DeploymentProgressing)
	if cond != nil && cond.Reason == ReasonTimedOut {
		return nil
	}
	paused := cond != nil && cond.Reason == ReasonPaused
	switch {
	case d.Spec.Paused && !paused:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonPaused, "Deployment is paused", c.now()))
	case !d.Spec.Paused && paused:
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonResumed, "Deployment is resumed", c.now()))
	default:
		return nil
	}
	return c.writeDeployment(ctx, d, false)
}

// syncScale scales without progressing the rollout (paused deployments
// and spec.replicas changes), cleans up old replica sets of a paused
// deployment, and writes the status.
func (c *Controller) syncScale(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, oldRSs, err := c.newAndOld(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	if err := c.scale(ctx, d, newRS, oldRSs); err != nil {
		return err
	}
	if d.Spec.Paused {
		if err := c.cleanupDeployment(ctx, oldRSs, d); err != nil {
			return err
		}
	}
	return c.syncStatus(ctx, append(oldRSs, newRS), newRS, d)
}

// syncStatus writes the counts and Available condition when they changed.
func (c *Controller) syncStatus(ctx context.Context, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) error {
	s := calculateStatus(allRSs, newRS, d, c.now())
	if statusEqual(d.Status, s) {
		return nil
	}
	d.Status = s
	return c.writeDeployment(ctx, d, false)
}

// syncRolloutStatus writes the status with the Progressing condition
// estimated, and returns when to look again for the deadline.
func (c *Controller) syncRolloutStatus(ctx context.Context, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (time.Duration, error) {
	now := c.now()
	s := rolloutStatus(allRSs, newRS, d, now)
	if !statusEqual(d.Status, s) {
		d.Status = s
		if err := c.writeDeployment(ctx, d, false); err != nil {
			return 0, err
		}
	}
	return progressRecheck(d, s, now), nil
}

// statusEqual compares statuses, conditions' times at the second the API
// keeps.
func statusEqual(a, b appsv1.DeploymentStatus) bool {
	a, b = *a.DeepCopy(), *b.DeepCopy()
	for _, s := range []*appsv1.DeploymentStatus{&a, &b} {
		for i := range s.Conditions {
			s.Conditions[i].LastUpdateTime = metav1.NewTime(s.Conditions[i].LastUpdateTime.Truncate(time.Second))
			s.Conditions[i].LastTransitionTime = metav1.NewTime(s.Conditions[i].LastTransitionTime.Truncate(time.Second))
		}
	}
	return equalStatus(a, b)
}

// writeDeployment persists d: its metadata through an update of the main
// resource when annotationsChanged (the status subresource keeps the
// stored metadata), then its status. d is replaced by what the server
// returns, so that later writes in the same sync carry the new
// resourceVersion.
func (c *Controller) writeDeployment(ctx context.Context, d *appsv1.Deployment, annotationsChanged bool) error {
	api := c.client.AppsV1().Deployments(d.Namespace)
	if annotationsChanged {
		status := d.Status
		updated, err := api.Update(ctx, d, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("updating deployment %s/%s: %w", d.Namespace, d.Name, err)
		}
		*d = *updated
		if equalStatus(d.Status, status) {
			return nil
		}
		d.Status = status
	}
	updated, err := api.UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("updating status of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	*d = *updated
	return nil
}

// errCollision is returned after a hash collision bumped
// status.collisionCount: the next sync tries the new name.
var errCollision = errors.New("deployment: replica set name collision")
