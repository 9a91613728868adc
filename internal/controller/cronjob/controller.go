package cronjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/cronjob/schedule"
	"github.com/skiff-dev/skiff/internal/controller/ownership"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

const (
	// nextScheduleDelta is added to the wait for the next scheduled time,
	// so the sync surely happens after it (upstream uses the same 100ms).
	nextScheduleDelta = 100 * time.Millisecond
	// tooManyMissed is the number of missed start times above which an
	// event warns (upstream's threshold).
	tooManyMissed = 100
)

var cronJobGVK = batchv1.SchemeGroupVersion.WithKind("CronJob")

// Controller is the CronJob controller. See the package documentation.
// Run it once.
type Controller struct {
	client   kubernetes.Interface
	cronJobs batchlisters.CronJobLister
	jobs     batchlisters.JobLister
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time
	loop     *reconcile.Loop
}

// New returns a CronJob controller and registers the CronJob and Job
// informers on deps.Informers; start the factory after New and then call
// Run.
func New(deps controller.Deps) *Controller {
	logger := deps.Log()
	recorder := deps.Events()
	cjInf := deps.Informers.Batch().V1().CronJobs()
	jobInf := deps.Informers.Batch().V1().Jobs()
	c := &Controller{
		client:   deps.Client,
		cronJobs: cjInf.Lister(),
		jobs:     jobInf.Lister(),
		synced:   []cache.InformerSynced{cjInf.Informer().HasSynced, jobInf.Informer().HasSynced},
		recorder: recorder,
		log:      logger,
		now:      deps.Clock(),
	}
	c.loop = reconcile.New("cronjob", c.sync, logger)
	_, _ = cjInf.Informer().AddEventHandler(c.loop.Handler())
	_, _ = jobInf.Informer().AddEventHandler(c.loop.HandlerFor(ownerKey))
	return c
}

// Run reconciles CronJobs with workers workers until ctx is done; it
// returns nil on cancellation.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced...)
}

// Enqueue asks for the CronJob namespace/name to be reconciled now (for
// example after a clock jump in tests or a manual trigger).
func (c *Controller) Enqueue(namespace, name string) { c.loop.Enqueue(namespace + "/" + name) }

func ownerKey(obj any) []string {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return nil
	}
	ref := metav1.GetControllerOfNoCopy(j)
	if ref == nil || ref.Kind != "CronJob" || ref.APIVersion != batchv1.SchemeGroupVersion.String() {
		return nil
	}
	return []string{j.Namespace + "/" + ref.Name}
}

// sync reconciles one CronJob and returns the wait until its next
// scheduled time.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	shared, err := c.cronJobs.CronJobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting cronjob %s: %w", key, err)
	}
	cj := shared.DeepCopy()
	all, err := c.jobs.Jobs(ns).List(labels.Everything())
	if err != nil {
		return 0, fmt.Errorf("listing jobs: %w", err)
	}
	var owned []*batchv1.Job
	for _, j := range all {
		if ref := metav1.GetControllerOfNoCopy(j); ref != nil && ref.UID == cj.UID {
			owned = append(owned, j)
		}
	}

	var errs []error
	c.reconcileActive(ctx, cj, owned)
	requeue, err := c.run(ctx, cj)
	errs = append(errs, err)
	if !equality.Semantic.DeepEqual(shared.Status, cj.Status) {
		out, err := c.client.BatchV1().CronJobs(ns).UpdateStatus(ctx, cj, metav1.UpdateOptions{})
		if err != nil {
			return 0, errors.Join(append(errs, fmt.Errorf("updating status of cronjob %s: %w", key, err))...)
		}
		cj = out
	}
	errs = append(errs, c.cleanupHistory(ctx, cj, owned))
	return requeue, errors.Join(errs...)
}

// reconcileActive makes status.active the unfinished Jobs this CronJob
// controls, and advances lastSuccessfulTime, as upstream does.
func (c *Controller) reconcileActive(ctx context.Context, cj *batchv1.CronJob, owned []*batchv1.Job) {
	byUID := map[types.UID]*batchv1.Job{}
	for _, j := range owned {
		byUID[j.UID] = j
		found := inActive(cj, j.UID)
		finished, ct := finishedType(j)
		switch {
		case !found && !finished:
			if j.DeletionTimestamp != nil {
				continue
			}
			// A Job we created but did not record (a crash or a failed
			// status write), or one created by hand with us as owner.
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnexpectedJob", "Saw a job that the controller did not create or forgot: %s", j.Name)
			cj.Status.Active = append(cj.Status.Active, jobRef(j))
		case found && finished:
			removeActive(cj, j.UID)
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "SawCompletedJob", "Saw completed job: %s, condition: %v", j.Name, ct)
		}
		if finished && ct == batchv1.JobComplete && j.Status.CompletionTime != nil {
			if cj.Status.LastSuccessfulTime == nil || j.Status.CompletionTime.After(cj.Status.LastSuccessfulTime.Time) {
				t := *j.Status.CompletionTime
				cj.Status.LastSuccessfulTime = &t
			}
		}
	}
	for _, ref := range slices.Clone(cj.Status.Active) {
		if _, ok := byUID[ref.UID]; ok {
			continue
		}
		// Not in the cache: make sure before forgetting it.
		j, err := c.client.BatchV1().Jobs(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || err == nil && j.UID != ref.UID {
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "MissingJob", "Active job went missing: %v", ref.Name)
			removeActive(cj, ref.UID)
		}
	}
}

// run starts the Job of the most recent unmet scheduled time if it is
// due, and returns the wait until the next scheduled time (0: none).
func (c *Controller) run(ctx context.Context, cj *batchv1.CronJob) (time.Duration, error) {
	if cj.DeletionTimestamp != nil {
		return 0, nil
	}
	loc := time.Local
	if cj.Spec.TimeZone != nil {
		l, err := time.LoadLocation(*cj.Spec.TimeZone)
		if err != nil {
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnknownTimeZone", "invalid timeZone: %q: %s", *cj.Spec.TimeZone, err)
			return 0, nil // nothing to retry until the spec changes
		}
		loc = l
	}
	sched, err := schedule.Parse(cj.Spec.Schedule)
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnparseableSchedule", "unparseable schedule: %q : %s", cj.Spec.Schedule, err)
		return 0, nil
	}
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		return 0, nil
	}
	now := c.now().In(loc)
	wait := func() time.Duration {
		next := sched.Next(now)
		if next.IsZero() {
			return 0
		}
		return next.Sub(now) + nextScheduleDelta
	}

	scheduled, missed := mostRecent(cj, sched, now)
	if missed > tooManyMissed {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "TooManyMissedTimes", "too many missed start times: %d. Set or decrease .spec.startingDeadlineSeconds or check clock skew", missed)
		c.log.Info("too many missed start times", "cronjob", cj.Namespace+"/"+cj.Name, "missed", missed)
	}
	if scheduled.IsZero() {
		return wait(), nil
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && scheduled.Add(time.Duration(*d)*time.Second).Before(now) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "MissSchedule", "Missed scheduled time to start a job: %s", scheduled.UTC().Format(time.RFC1123Z))
		return wait(), nil
	}
	name := jobName(cj.Name, scheduled)
	for _, ref := range cj.Status.Active {
		if ref.Name == name {
			// Started by an earlier sync whose status write was lost.
			if cj.Status.LastScheduleTime == nil || cj.Status.LastScheduleTime.Time.Before(scheduled) {
				st := metav1.NewTime(scheduled)
				cj.Status.LastScheduleTime = &st
			}
			return wait(), nil
		}
	}
	if cj.Status.LastScheduleTime != nil && cj.Status.LastScheduleTime.Time.Equal(scheduled) {
		return wait(), nil
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(cj.Status.Active) > 0 {
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
			return wait(), nil
		}
	case batchv1.ReplaceConcurrent:
		for _, ref := range slices.Clone(cj.Status.Active) {
			if err := c.deleteJob(ctx, cj, ref.Namespace, ref.Name, ref.UID); err != nil {
				return 0, err
			}
			removeActive(cj, ref.UID)
		}
	}

	job := newJob(cj, name, scheduled)
	out, err := c.client.BatchV1().Jobs(cj.Namespace).Create(ctx, job, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		existing, gerr := c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, name, metav1.GetOptions{})
		if gerr != nil {
			return 0, fmt.Errorf("getting existing job %s/%s: %w", cj.Namespace, name, gerr)
		}
		if ref := metav1.GetControllerOf(existing); ref == nil || ref.UID != cj.UID {
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
			return wait(), nil
		}
		// Ours, created by an earlier sync whose status write was lost.
		out = existing
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return 0, nil
	case err != nil:
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return 0, fmt.Errorf("creating job %s/%s: %w", cj.Namespace, name, err)
	default:
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %v", out.Name)
	}
	if finished, _ := finishedType(out); !finished && !inActive(cj, out.UID) {
		cj.Status.Active = append(cj.Status.Active, jobRef(out))
	}
	st := metav1.NewTime(scheduled)
	cj.Status.LastScheduleTime = &st
	return wait(), nil
}

// mostRecent returns the latest scheduled time in (earliest, now] and how
// many there are, where earliest is lastScheduleTime (or the creation
// time), moved up to now-startingDeadlineSeconds when that is later.
// After tooManyMissed times it skips ahead instead of walking every
// activation: it jumps to twice the longest gap seen so far before now (a
// schedule whose gaps near now are longer than that could then report an
// older time), and the count it returns is then only known to be larger
// than tooManyMissed.
func mostRecent(cj *batchv1.CronJob, sched *schedule.Schedule, now time.Time) (time.Time, int) {
	earliest := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		earliest = cj.Status.LastScheduleTime.Time
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		if dl := now.Add(-time.Duration(*d) * time.Second); dl.After(earliest) {
			earliest = dl
		}
	}
	earliest = earliest.In(now.Location())
	var (
		last    time.Time
		missed  int
		maxGap  time.Duration
		skipped bool
	)
	for t := sched.Next(earliest); !t.IsZero() && !t.After(now); t = sched.Next(t) {
		if !last.IsZero() {
			maxGap = max(maxGap, t.Sub(last))
		}
		last = t
		missed++
		if missed > tooManyMissed && !skipped {
			skipped = true
			if jump := now.Add(-2 * maxGap); jump.After(t) {
				t = jump // the loop goes on from the first activation after jump
			}
		}
	}
	return last, missed
}

// jobName is "<cronjob>-<minutes since the epoch of the scheduled time>".
func jobName(cronJob string, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cronJob, scheduled.Unix()/60)
}

// newJob builds the Job of the scheduled time from the template.
func newJob(cj *batchv1.CronJob, name string, scheduled time.Time) *batchv1.Job {
	tmpl := cj.Spec.JobTemplate.DeepCopy()
	annotations := tmpl.Annotations
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[batchv1.CronJobScheduledTimestampAnnotation] = scheduled.Format(time.RFC3339)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       cj.Namespace,
			Labels:          tmpl.Labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{ownership.NewControllerRef(cj, cronJobGVK)},
		},
		Spec: tmpl.Spec,
	}
}

// cleanupHistory deletes the oldest finished Jobs beyond the history
// limits (successful and failed counted apart).
func (c *Controller) cleanupHistory(ctx context.Context, cj *batchv1.CronJob, owned []*batchv1.Job) error {
	if cj.DeletionTimestamp != nil || cj.Spec.SuccessfulJobsHistoryLimit == nil && cj.Spec.FailedJobsHistoryLimit == nil {
		return nil
	}
	var succeeded, failed []*batchv1.Job
	for _, j := range owned {
		if j.DeletionTimestamp != nil {
			continue
		}
		switch _, ct := finishedType(j); ct {
		case batchv1.JobComplete:
			succeeded = append(succeeded, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	var errs []error
	for _, group := range []struct {
		jobs  []*batchv1.Job
		limit *int32
	}{{succeeded, cj.Spec.SuccessfulJobsHistoryLimit}, {failed, cj.Spec.FailedJobsHistoryLimit}} {
		if group.limit == nil || len(group.jobs) <= int(*group.limit) {
			continue
		}
		slices.SortFunc(group.jobs, byStartTime)
		for _, j := range group.jobs[:len(group.jobs)-int(*group.limit)] {
			errs = append(errs, c.deleteJob(ctx, cj, j.Namespace, j.Name, j.UID))
		}
	}
	return errors.Join(errs...)
}

// byStartTime orders Jobs oldest first: by status.startTime (a Job not
// started yet last), then by name (names embed the scheduled time).
func byStartTime(a, b *batchv1.Job) int {
	switch {
	case a.Status.StartTime == nil && b.Status.StartTime != nil:
		return 1
	case a.Status.StartTime != nil && b.Status.StartTime == nil:
		return -1
	case a.Status.StartTime != nil && !a.Status.StartTime.Equal(b.Status.StartTime):
		return a.Status.StartTime.Compare(b.Status.StartTime.Time)
	}
	return compareNames(a.Name, b.Name)
}

// compareNames compares "<cronjob>-<minutes>" names by length first, so
// that the numeric suffixes compare as numbers.
func compareNames(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (c *Controller) deleteJob(ctx context.Context, cj *batchv1.CronJob, ns, name string, uid types.UID) error {
	policy := metav1.DeletePropagationBackground
	err := c.client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedDelete", "Deleted job: %v", err)
		return fmt.Errorf("deleting job %s/%s: %w", ns, name, err)
	}
	c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", name)
	return nil
}

// finishedType reports whether j has a true Complete or Failed condition,
// and which.
func finishedType(j *batchv1.Job) (bool, batchv1.JobConditionType) {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true, c.Type
		}
	}
	return false, ""
}

func jobRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{
		Kind:            "Job",
		APIVersion:      batchv1.SchemeGroupVersion.String(),
		Namespace:       j.Namespace,
		Name:            j.Name,
		UID:             j.UID,
		ResourceVersion: j.ResourceVersion,
	}
}

func inActive(cj *batchv1.CronJob, uid types.UID) bool {
	for _, r := range cj.Status.Active {
		if r.UID == uid {
			return true
		}
	}
	return false
}

func removeActive(cj *batchv1.CronJob, uid types.UID) {
	cj.Status.Active = slices.DeleteFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == uid })
}
