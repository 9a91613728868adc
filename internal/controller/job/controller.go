package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/ownership"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// Upstream's back-off for recreating failed pods: 10s doubled per
// consecutive failure, at most 6 minutes.
const (
	DefaultBackoff    = 10 * time.Second
	DefaultMaxBackoff = 6 * time.Minute
)

// ManagedBy is the spec.managedBy value of the Jobs this controller
// reconciles (a nil managedBy means the same); Jobs naming another
// manager are left alone, as upstream does.
const ManagedBy = "kubernetes.io/job-controller"

var jobGVK = batchv1.SchemeGroupVersion.WithKind("Job")

// Controller is the Job controller (and the TTL-after-finished controller
// for Jobs). See the package documentation. Run it once.
type Controller struct {
	client   kubernetes.Interface
	jobs     batchlisters.JobLister
	pods     corelisters.PodLister
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time
	loop     *reconcile.Loop

	guard    *guard
	backoffs *backoffs
	// backoffBase and backoffMax are the pod re-creation back-off; fixed
	// after New (tests in this package shorten them before Run).
	backoffBase, backoffMax time.Duration
}

// New returns a Job controller and registers the Job and Pod informers on
// deps.Informers; start the factory after New and then call Run.
func New(deps controller.Deps) *Controller {
	logger := deps.Log()
	recorder := deps.Events()
	jobInf := deps.Informers.Batch().V1().Jobs()
	podInf := deps.Informers.Core().V1().Pods()
	c := &Controller{
		client:      deps.Client,
		jobs:        jobInf.Lister(),
		pods:        podInf.Lister(),
		synced:      []cache.InformerSynced{jobInf.Informer().HasSynced, podInf.Informer().HasSynced},
		recorder:    recorder,
		log:         logger,
		now:         deps.Clock(),
		guard:       newGuard(),
		backoffs:    newBackoffs(),
		backoffBase: DefaultBackoff,
		backoffMax:  DefaultMaxBackoff,
	}
	c.loop = reconcile.New("job", c.sync, logger)
	_, _ = jobInf.Informer().AddEventHandler(c.loop.Handler())
	_, _ = podInf.Informer().AddEventHandler(c.loop.HandlerFor(podKeys))
	return c
}

// Run reconciles Jobs with workers workers until ctx is done; it returns
// nil on cancellation.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced...)
}

// orphanPrefix starts the name part of the key of a pod without a
// controller reference that still has the tracking finalizer ("~" cannot
// start an object name, so it never collides with a Job's key).
const orphanPrefix = "~orphan-pod~"

// podKeys maps a pod to the key of the Job its controller reference names
// (even a Job that no longer exists, so its finalizer is removed), or, for
// a pod with the tracking finalizer and no controller reference (the
// garbage collector removed it), to an orphan-pod key.
func podKeys(obj any) []string {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	ref := metav1.GetControllerOfNoCopy(p)
	if ref == nil {
		if hasTrackingFinalizer(p) {
			return []string{p.Namespace + "/" + orphanPrefix + p.Name}
		}
		return nil
	}
	if ref.Kind != "Job" || ref.APIVersion != batchv1.SchemeGroupVersion.String() {
		return nil
	}
	return []string{p.Namespace + "/" + ref.Name}
}

// syncOrphan removes the tracking finalizer from a pod that no Job
// controls any more: nobody will count it.
func (c *Controller) syncOrphan(ctx context.Context, ns, name string) error {
	p, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting pod %s/%s: %w", ns, name, err)
	}
	if metav1.GetControllerOfNoCopy(p) != nil || !hasTrackingFinalizer(p) {
		return nil
	}
	return c.patchOutFinalizer(ctx, p)
}

// sync reconciles one Job. See the package documentation for the steps.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	if pod, ok := strings.CutPrefix(name, orphanPrefix); ok {
		return 0, c.syncOrphan(ctx, ns, pod)
	}
	shared, err := c.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.guard.forget(key)
		c.backoffs.forget(key)
		return 0, c.releaseOrphans(ctx, ns, name, "")
	}
	if err != nil {
		return 0, fmt.Errorf("getting job %s: %w", key, err)
	}
	if m := shared.Spec.ManagedBy; m != nil && *m != ManagedBy {
		return 0, nil // another controller's Job
	}
	job := shared.DeepCopy()
	// Pods controlled by an earlier Job of the same name lose their finalizer.
	if err := c.releaseOrphans(ctx, ns, name, job.UID); err != nil {
		return 0, err
	}
	_, done := finishedCondition(job)
	if done || job.DeletionTimestamp != nil {
		// Finished or going away: nothing is adopted or counted any more;
		// the pods' finalizers go so that they can be deleted.
		if err := c.removeFinalizers(ctx, key, job, c.controlledPods(job)); err != nil {
			return 0, err
		}
		if !done {
			return 0, nil
		}
		return c.expireTTL(ctx, job)
	}
	pods, err := c.ownedPods(ctx, job)
	if err != nil {
		return 0, err
	}
	s := &syncState{c: c, key: key, job: job, orig: shared, pods: pods, now: c.now()}
	return s.run(ctx)
}

// controlledPods lists the cached pods with the tracking finalizer whose
// controller reference is job.
func (c *Controller) controlledPods(job *batchv1.Job) []*corev1.Pod {
	all, err := c.pods.Pods(job.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*corev1.Pod
	for _, p := range all {
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && ref.UID == job.UID && hasTrackingFinalizer(p) {
			out = append(out, p)
		}
	}
	return out
}

// ownedPods lists the pods the Job's selector matches and claims them.
func (c *Controller) ownedPods(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("parsing selector of job %s/%s: %w", job.Namespace, job.Name, err)
	}
	all, err := c.pods.Pods(job.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	owner := ownership.Owner{
		Object:   job,
		GVK:      jobGVK,
		Selector: sel,
		Reread: func(ctx context.Context) (metav1.Object, error) {
			return c.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		},
	}
	return ownership.Claim(ctx, owner, all, func(ctx context.Context, ns, name string, pt types.PatchType, data []byte) error {
		_, err := c.client.CoreV1().Pods(ns).Patch(ctx, name, pt, data, metav1.PatchOptions{})
		return err
	})
}

// releaseOrphans removes the tracking finalizer from pods whose controller
// reference names Job ns/name but not uid (the Job is gone or was
// recreated): nobody else will count them.
func (c *Controller) releaseOrphans(ctx context.Context, ns, name string, uid types.UID) error {
	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	var errs []error
	for _, p := range all {
		ref := metav1.GetControllerOfNoCopy(p)
		if ref == nil || ref.Kind != "Job" || ref.Name != name || ref.UID == uid || !hasTrackingFinalizer(p) {
			continue
		}
		if err := c.patchOutFinalizer(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeFinalizers removes the tracking finalizer from pods and remembers
// it did (for the cache to catch up).
func (c *Controller) removeFinalizers(ctx context.Context, key string, job *batchv1.Job, pods []*corev1.Pod) error {
	var errs []error
	for _, p := range pods {
		if err := c.patchOutFinalizer(ctx, p); err != nil {
			errs = append(errs, err)
			continue
		}
		c.guard.finalized(key, p.UID, c.now())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing tracking finalizers of job %s/%s: %w", job.Namespace, job.Name, err)
	}
	return nil
}

// patchOutFinalizer removes the tracking finalizer from p; a pod already
// gone is not an error.
func (c *Controller) patchOutFinalizer(ctx context.Context, p *corev1.Pod) error {
	patch := fmt.Appendf(nil, `{"metadata":{"uid":%q,"$deleteFromPrimitiveList/finalizers":[%q]}}`, p.UID, batchv1.JobTrackingFinalizer)
	_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("removing finalizer of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// expireTTL deletes a finished Job once spec.ttlSecondsAfterFinished has
// passed since it finished (upstream's TTL-after-finished controller), and
// otherwise asks to be called again then.
func (c *Controller) expireTTL(ctx context.Context, job *batchv1.Job) (time.Duration, error) {
	if job.Spec.TTLSecondsAfterFinished == nil || job.DeletionTimestamp != nil {
		return 0, nil
	}
	finished := finishTime(job)
	if finished.IsZero() {
		return 0, nil
	}
	expire := finished.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second)
	if left := expire.Sub(c.now()); left > 0 {
		return left, nil
	}
	policy := metav1.DeletePropagationForeground
	err := c.client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &job.UID, ResourceVersion: &job.ResourceVersion},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("deleting expired job %s/%s: %w", job.Namespace, job.Name, err)
	}
	c.log.Info("deleted finished job after its TTL", "job", job.Namespace+"/"+job.Name)
	return 0, nil
}

// finishTime is when a finished Job finished: completionTime, or the
// terminal condition's transition time.
func finishTime(job *batchv1.Job) time.Time {
	if job.Status.CompletionTime != nil {
		return job.Status.CompletionTime.Time
	}
	if c, ok := finishedCondition(job); ok {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

// finishedCondition returns the Job's true Complete or Failed condition.
func finishedCondition(job *batchv1.Job) (batchv1.JobCondition, bool) {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c, true
		}
	}
	return batchv1.JobCondition{}, false
}

// interimCondition returns the Job's true FailureTarget or
// SuccessCriteriaMet condition, or nil.
func interimCondition(job *batchv1.Job) *batchv1.JobCondition {
	for i, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobFailureTarget || c.Type == batchv1.JobSuccessCriteriaMet) && c.Status == corev1.ConditionTrue {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

// setCondition sets a condition of the given type, changing the transition
// time only when the status changes. It reports whether anything changed.
func setCondition(st *batchv1.JobStatus, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, message string, now time.Time) bool {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status == status && c.Reason == reason && c.Message == message {
			return false
		}
		if c.Status != status {
			c.LastTransitionTime = metav1.NewTime(now)
		}
		c.Status, c.Reason, c.Message = status, reason, message
		c.LastProbeTime = metav1.NewTime(now)
		return true
	}
	st.Conditions = append(st.Conditions, batchv1.JobCondition{
		Type: t, Status: status, Reason: reason, Message: message,
		LastProbeTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now),
	})
	return true
}

func hasTrackingFinalizer(p *corev1.Pod) bool {
	for _, f := range p.Finalizers {
		if f == batchv1.JobTrackingFinalizer {
			return true
		}
	}
	return false
}

func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// onlyReplaceFailed reports podReplacementPolicy Failed: terminating pods
// are replaced only once they are Failed.
func onlyReplaceFailed(job *batchv1.Job) bool {
	return job.Spec.PodReplacementPolicy != nil && *job.Spec.PodReplacementPolicy == batchv1.Failed
}

// isPodFailed is upstream's rule for counting a pod as failed: phase
// Failed, or, unless only Failed pods are replaced, deleted before it
// succeeded (so orphaned and evicted pods count).
func isPodFailed(p *corev1.Pod, job *batchv1.Job) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	if onlyReplaceFailed(job) {
		return false
	}
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded
}

func isIndexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}
