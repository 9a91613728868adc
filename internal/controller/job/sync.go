package job

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/controller/ownership"
)

// Condition messages, as upstream writes them.
const (
	msgBackoffLimit     = "Job has reached the specified backoff limit"
	msgDeadline         = "Job was active longer than specified deadline"
	msgCompletions      = "Reached expected number of succeeded pods"
	msgMaxFailedIndexes = "Job has exceeded the specified maximal number of failed indexes"
	msgFailedIndexes    = "Job has failed indexes"
	reasonSuspended     = "JobSuspended"
	reasonResumed       = "JobResumed"
	msgSuspended        = "Job suspended"
	msgResumed          = "Job resumed"
	maxCreateBatchStart = 1
)

// syncState is one reconcile of one unfinished Job. job is a private copy
// whose status is rewritten; orig is the cached object, never changed.
type syncState struct {
	c    *Controller
	key  string
	job  *batchv1.Job
	orig *batchv1.Job
	pods []*corev1.Pod
	now  time.Time

	// requeue is the earliest time-based wake-up wanted (0: none).
	requeue time.Duration
}

// tally is what the pods say beyond the Job's status: the newly finished
// pods, the pods whose finalizer can go, and the failure policy's verdict.
type tally struct {
	newSucceeded, newFailed []types.UID
	completed               indexSet // Indexed: status.completedIndexes plus new ones
	failedIndexes           indexSet // backoffLimitPerIndex: status.failedIndexes plus new ones
	finalize                []*corev1.Pod
	failJobMessage          string // a FailJob rule matched
}

func (s *syncState) wantRequeue(d time.Duration) {
	if d > 0 && (s.requeue == 0 || d < s.requeue) {
		s.requeue = d
	}
}

func (s *syncState) run(ctx context.Context) (time.Duration, error) {
	job, c := s.job, s.c
	satisfied, unobserved := c.guard.observe(s.key, s.pods, s.now)
	indexed := isIndexed(job)
	completions := 0
	if job.Spec.Completions != nil {
		completions = int(*job.Spec.Completions)
	}

	var active, terminating []*corev1.Pod
	for _, p := range s.pods {
		switch {
		case isTerminal(p):
		case p.DeletionTimestamp != nil:
			terminating = append(terminating, p)
		default:
			active = append(active, p)
		}
	}

	cond := interimCondition(job)
	t := s.tally(cond, unobserved, indexed, completions)
	uncounted := job.Status.UncountedTerminatedPods
	if uncounted == nil {
		uncounted = &batchv1.UncountedTerminatedPods{}
	}
	succeeded := int(job.Status.Succeeded) + len(uncounted.Succeeded) + len(t.newSucceeded)
	if indexed {
		succeeded = len(t.completed)
	}
	failed := int(job.Status.Failed) + len(uncounted.Failed) + len(t.newFailed)

	suspended := job.Spec.Suspend != nil && *job.Spec.Suspend
	var newCond *batchv1.JobCondition
	if cond == nil {
		switch {
		case t.failJobMessage != "":
			newCond = &batchv1.JobCondition{Type: batchv1.JobFailureTarget, Reason: batchv1.JobReasonPodFailurePolicy, Message: t.failJobMessage}
		case job.Spec.BackoffLimit != nil && failed > int(*job.Spec.BackoffLimit):
			newCond = &batchv1.JobCondition{Type: batchv1.JobFailureTarget, Reason: batchv1.JobReasonBackoffLimitExceeded, Message: msgBackoffLimit}
		case s.pastDeadline(suspended):
			newCond = &batchv1.JobCondition{Type: batchv1.JobFailureTarget, Reason: batchv1.JobReasonDeadlineExceeded, Message: msgDeadline}
		case t.failedIndexes != nil && job.Spec.MaxFailedIndexes != nil && len(t.failedIndexes) > int(*job.Spec.MaxFailedIndexes):
			newCond = &batchv1.JobCondition{Type: batchv1.JobFailureTarget, Reason: batchv1.JobReasonMaxFailedIndexesExceeded, Message: msgMaxFailedIndexes}
		case len(t.failedIndexes) > 0 && len(t.failedIndexes)+len(t.completed) >= completions:
			newCond = &batchv1.JobCondition{Type: batchv1.JobFailureTarget, Reason: batchv1.JobReasonFailedIndexes, Message: msgFailedIndexes}
		case indexed && matchSuccessPolicy(job.Spec.SuccessPolicy, completions, t.completed) != "":
			newCond = &batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Reason: batchv1.JobReasonSuccessPolicy,
				Message: matchSuccessPolicy(job.Spec.SuccessPolicy, completions, t.completed)}
		case indexed && succeeded >= completions,
			!indexed && job.Spec.Completions != nil && succeeded >= completions,
			!indexed && job.Spec.Completions == nil && succeeded > 0 && len(active) == 0:
			newCond = &batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Reason: batchv1.JobReasonCompletionsReached, Message: msgCompletions}
		}
		if newCond != nil {
			setCondition(&job.Status, newCond.Type, corev1.ConditionTrue, newCond.Reason, newCond.Message, s.now)
			cond = interimCondition(job)
			// Now that the Job is finishing, every remaining pod's
			// finalizer goes: tally again.
			t = s.tally(cond, unobserved, indexed, completions)
		}
	}

	var errs []error
	switch {
	case cond != nil:
		// Finishing: the deleted pods keep their finalizer and are counted
		// (as failed, unless the Job succeeded) by track.
		deleted, err := s.deletePods(ctx, active, false)
		errs = append(errs, err)
		terminating = append(terminating, deleted...)
		active = slices.DeleteFunc(active, func(p *corev1.Pod) bool { return slices.Contains(deleted, p) })
	case suspended:
		// Pods removed by suspension are not failures: their finalizer
		// goes first, so they are never counted.
		deleted, err := s.deletePods(ctx, active, true)
		errs = append(errs, err)
		terminating = append(terminating, deleted...)
		active = slices.DeleteFunc(active, func(p *corev1.Pod) bool { return slices.Contains(deleted, p) })
		if setCondition(&job.Status, batchv1.JobSuspended, corev1.ConditionTrue, reasonSuspended, msgSuspended, s.now) {
			c.recorder.Event(job, corev1.EventTypeNormal, "Suspended", msgSuspended)
		}
		// Upstream clears startTime so activeDeadlineSeconds counts from the resume.
		job.Status.StartTime = nil
	default:
		if isSuspendedCond(job) {
			setCondition(&job.Status, batchv1.JobSuspended, corev1.ConditionFalse, reasonResumed, msgResumed, s.now)
			c.recorder.Event(job, corev1.EventTypeNormal, "Resumed", msgResumed)
			job.Status.StartTime = nil
		}
		if job.Status.StartTime == nil {
			st := metav1.NewTime(s.now)
			job.Status.StartTime = &st
		}
		if job.Spec.ActiveDeadlineSeconds != nil {
			s.wantRequeue(job.Status.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds) * time.Second).Sub(s.now))
		}
		if satisfied {
			created, deleted, err := s.manage(ctx, active, terminating, t, succeeded, indexed, completions)
			errs = append(errs, err)
			active = slices.DeleteFunc(active, func(p *corev1.Pod) bool { return slices.Contains(deleted, p) })
			active = append(active, created...)
			terminating = append(terminating, deleted...)
		} else {
			s.wantRequeue(guardTTL)
		}
	}

	ready := 0
	for _, p := range active {
		if isReady(p) {
			ready++
		}
	}
	job.Status.Active = int32(len(active))
	job.Status.Ready = ptrTo(int32(ready))
	job.Status.Terminating = ptrTo(int32(len(terminating)))
	err := s.track(ctx, t, uncounted, cond, len(terminating))
	errs = append(errs, err)
	return s.requeue, errors.Join(errs...)
}

// tally looks at every pod still carrying the tracking finalizer (and not
// already un-finalized by us) and decides whether it is newly succeeded or
// failed and whether its finalizer can go, as upstream's
// trackJobStatusAndRemoveFinalizers does.
func (s *syncState) tally(cond *batchv1.JobCondition, unobserved map[types.UID]bool, indexed bool, completions int) tally {
	job := s.job
	var t tally
	uncounted := job.Status.UncountedTerminatedPods
	if uncounted == nil {
		uncounted = &batchv1.UncountedTerminatedPods{}
	}
	if indexed {
		t.completed = parseIndexes(job.Status.CompletedIndexes, completions)
	}
	perIndex := indexed && job.Spec.BackoffLimitPerIndex != nil
	if perIndex {
		t.failedIndexes = parseIndexes(ptrDeref(job.Status.FailedIndexes), completions)
	}
	for _, p := range s.pods {
		if !hasTrackingFinalizer(p) || unobserved[p.UID] {
			continue
		}
		failed := isPodFailed(p, job)
		if !failed && !isTerminal(p) && cond == nil {
			continue // still running
		}
		t.finalize = append(t.finalize, p)
		ix := podIndex(p)
		validIndex := !indexed || (ix != noIndex && ix < completions)
		switch {
		case p.Status.Phase == corev1.PodSucceeded && !slices.Contains(uncounted.Failed, p.UID):
			if indexed {
				if validIndex {
					t.completed[ix] = struct{}{}
				}
			} else if !slices.Contains(uncounted.Succeeded, p.UID) {
				t.newSucceeded = append(t.newSucceeded, p.UID)
			}
		case failed || (cond != nil && cond.Type != batchv1.JobSuccessCriteriaMet):
			if slices.Contains(uncounted.Failed, p.UID) || !validIndex {
				continue
			}
			counts := true
			var action *batchv1.PodFailurePolicyAction
			if job.Spec.PodFailurePolicy != nil && p.Status.Phase == corev1.PodFailed {
				var msg string
				action, counts, msg = matchFailurePolicy(job.Spec.PodFailurePolicy, p)
				if action != nil && *action == batchv1.PodFailurePolicyActionFailJob && t.failJobMessage == "" {
					t.failJobMessage = msg
				}
			}
			if counts {
				t.newFailed = append(t.newFailed, p.UID)
			}
			// An index fails for good when its pod's failure count has
			// reached backoffLimitPerIndex or a FailIndex rule matched.
			if _, done := t.completed[ix]; perIndex && counts && !done &&
				(action != nil && *action == batchv1.PodFailurePolicyActionFailIndex ||
					annotationInt(p, batchv1.JobIndexFailureCountAnnotation) >= int(*job.Spec.BackoffLimitPerIndex)) {
				t.failedIndexes[ix] = struct{}{}
			}
		}
	}
	return t
}

// pastDeadline reports whether an unsuspended Job has been active longer
// than spec.activeDeadlineSeconds.
func (s *syncState) pastDeadline(suspended bool) bool {
	job := s.job
	if job.Spec.ActiveDeadlineSeconds == nil || job.Status.StartTime == nil || suspended {
		return false
	}
	return !s.now.Before(job.Status.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds) * time.Second))
}

func isSuspendedCond(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobSuspended && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// track records newly finished pods in status.uncountedTerminatedPods
// (persisted first), removes their finalizers, then moves them into the
// succeeded/failed counts, and finally adds Complete or Failed once the Job
// is finishing and no pod is left to count or terminate.
func (s *syncState) track(ctx context.Context, t tally, uncounted *batchv1.UncountedTerminatedPods, cond *batchv1.JobCondition, terminating int) error {
	c, job := s.c, s.job
	st := &job.Status
	next := uncounted.DeepCopy()
	next.Succeeded = append(next.Succeeded, t.newSucceeded...)
	next.Failed = append(next.Failed, t.newFailed...)
	st.UncountedTerminatedPods = next
	newIndexes := 0
	if isIndexed(job) {
		newIndexes = len(t.completed) - len(parseIndexes(st.CompletedIndexes, int(*job.Spec.Completions)))
		st.CompletedIndexes = t.completed.String()
		st.Succeeded = int32(len(t.completed))
	}
	if t.failedIndexes != nil {
		st.FailedIndexes = ptrTo(t.failedIndexes.String())
	}

	// 1. Persist what is about to be counted before any finalizer goes.
	if len(t.newSucceeded)+len(t.newFailed) > 0 || !equality.Semantic.DeepEqual(s.orig.Status, job.Status) && len(t.finalize) > 0 {
		if err := s.updateStatus(ctx); err != nil {
			return err
		}
	}
	c.backoffs.record(s.key, len(t.newSucceeded)+max(newIndexes, 0), len(t.newFailed), s.now)
	// 2. Remove the finalizers.
	finalized := map[types.UID]bool{}
	var errs []error
	for _, p := range t.finalize {
		if err := c.patchOutFinalizer(ctx, p); err != nil {
			errs = append(errs, err)
			continue
		}
		c.guard.finalized(s.key, p.UID, s.now)
		finalized[p.UID] = true
	}
	// 3. Count what is no longer tracked by a finalizer.
	byUID := map[types.UID]*corev1.Pod{}
	for _, p := range s.pods {
		byUID[p.UID] = p
	}
	gone := func(uid types.UID) bool {
		p, ok := byUID[uid]
		return !ok || finalized[uid] || !hasTrackingFinalizer(p) || c.guard.isFinalized(s.key, uid)
	}
	st.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	for _, uid := range next.Succeeded {
		if gone(uid) {
			st.Succeeded++
		} else {
			st.UncountedTerminatedPods.Succeeded = append(st.UncountedTerminatedPods.Succeeded, uid)
		}
	}
	for _, uid := range next.Failed {
		if gone(uid) {
			st.Failed++
		} else {
			st.UncountedTerminatedPods.Failed = append(st.UncountedTerminatedPods.Failed, uid)
		}
	}
	// 4. Finish.
	var event func()
	if cond != nil && len(errs) == 0 && terminating == 0 &&
		len(st.UncountedTerminatedPods.Succeeded)+len(st.UncountedTerminatedPods.Failed) == 0 {
		if cond.Type == batchv1.JobSuccessCriteriaMet {
			setCondition(st, batchv1.JobComplete, corev1.ConditionTrue, cond.Reason, cond.Message, s.now)
			ct := metav1.NewTime(s.now)
			st.CompletionTime = &ct
			event = func() { c.recorder.Event(job, corev1.EventTypeNormal, "Completed", "Job completed") }
		} else {
			setCondition(st, batchv1.JobFailed, corev1.ConditionTrue, cond.Reason, cond.Message, s.now)
			event = func() { c.recorder.Event(job, corev1.EventTypeWarning, cond.Reason, cond.Message) }
		}
	}
	if !equality.Semantic.DeepEqual(s.orig.Status, job.Status) {
		if err := s.updateStatus(ctx); err != nil {
			errs = append(errs, err)
		} else if event != nil {
			event()
			if job.Spec.TTLSecondsAfterFinished != nil {
				s.wantRequeue(time.Duration(*job.Spec.TTLSecondsAfterFinished)*time.Second + time.Millisecond)
			}
		}
	}
	return errors.Join(errs...)
}

// updateStatus writes job.Status; on success the written object becomes
// both job and orig (so a later write in the same sync carries the new
// resourceVersion). A conflict is returned and the key retried.
func (s *syncState) updateStatus(ctx context.Context) error {
	out, err := s.c.client.BatchV1().Jobs(s.job.Namespace).UpdateStatus(ctx, s.job, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("updating status of job %s/%s: %w", s.job.Namespace, s.job.Name, err)
	}
	// Keep s.job (callers hold it) with the status it wrote and the new
	// resourceVersion.
	s.orig = out
	s.job.ResourceVersion = out.ResourceVersion
	return nil
}

// manage creates and deletes pods so that the Job has as many active pods
// as it wants (upstream's manageJob). It returns the pods it created and
// those it deleted.
func (s *syncState) manage(ctx context.Context, active, terminating []*corev1.Pod, t tally, succeeded int, indexed bool, completions int) (created, deleted []*corev1.Pod, err error) {
	job := s.job
	completed, failedIndexes := t.completed, t.failedIndexes
	parallelism := int(*job.Spec.Parallelism)
	var want int
	switch {
	case indexed:
		want = min(parallelism, completions-len(completed)-len(failedIndexes))
	case job.Spec.Completions == nil && succeeded > 0:
		want = len(active)
	case job.Spec.Completions == nil:
		want = parallelism
	default:
		want = min(parallelism, completions-succeeded)
	}
	want = max(want, 0)
	counted := len(active)
	if onlyReplaceFailed(job) {
		counted += len(terminating)
	}

	var toDelete []*corev1.Pod
	var missing []int // Indexed: indexes to create, lowest first
	if indexed {
		seen := map[int]bool{}
		keep := active[:0:0]
		for _, p := range sortForDeletion(active, true) {
			ix := podIndex(p)
			if ix == noIndex || ix >= completions || seen[ix] {
				toDelete = append(toDelete, p)
				continue
			}
			_, done := completed[ix]
			_, failed := failedIndexes[ix]
			if done || failed {
				toDelete = append(toDelete, p)
				continue
			}
			seen[ix] = true
			keep = append(keep, p)
		}
		if onlyReplaceFailed(job) {
			for _, p := range terminating {
				if ix := podIndex(p); ix != noIndex {
					seen[ix] = true
				}
			}
		}
		counted -= len(toDelete)
		if extra := len(keep) - want; extra > 0 {
			toDelete = append(toDelete, sortForDeletion(keep, false)[:extra]...)
			counted -= extra
		}
		for ix := 0; ix < completions && len(missing) < want-counted; ix++ {
			_, done := completed[ix]
			_, failed := failedIndexes[ix]
			if !done && !failed && !seen[ix] {
				missing = append(missing, ix)
			}
		}
	} else if extra := len(active) - want; extra > 0 {
		toDelete = sortForDeletion(active, false)[:extra]
	}

	var errs []error
	if len(toDelete) > 0 {
		d, err := s.deletePods(ctx, toDelete, true)
		deleted, errs = d, append(errs, err)
	}
	toCreate := want - counted
	if indexed {
		toCreate = len(missing)
	}
	if toCreate <= 0 || len(toDelete) > 0 && !indexed {
		return nil, deleted, errors.Join(errs...)
	}
	if wait := s.c.backoffs.remaining(s.key, s.c.backoffBase, s.c.backoffMax, s.now); wait > 0 {
		s.wantRequeue(wait)
		return nil, deleted, errors.Join(errs...)
	}
	created, err = s.createPods(ctx, toCreate, missing)
	errs = append(errs, err)
	return created, deleted, errors.Join(errs...)
}

// sortForDeletion orders pods the way upstream picks victims: not ready
// before ready, unscheduled before scheduled, newer before older. With
// keepFirst the order is reversed (the best pod to keep comes first).
func sortForDeletion(pods []*corev1.Pod, keepFirst bool) []*corev1.Pod {
	out := slices.Clone(pods)
	slices.SortStableFunc(out, func(a, b *corev1.Pod) int {
		r := cmp.Or(
			cmp.Compare(boolRank(isReady(a)), boolRank(isReady(b))),
			cmp.Compare(boolRank(a.Spec.NodeName != ""), boolRank(b.Spec.NodeName != "")),
			b.CreationTimestamp.Compare(a.CreationTimestamp.Time),
		)
		if keepFirst {
			return -r
		}
		return r
	})
	return out
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// createPods creates n pods from the template in slow-start batches (1, 2,
// 4, …) and stops at the first batch with a failure, as upstream does.
// indexes, when not empty, are the completion indexes of the pods.
func (s *syncState) createPods(ctx context.Context, n int, indexes []int) ([]*corev1.Pod, error) {
	var (
		mu      sync.Mutex
		created []*corev1.Pod
		errs    []error
	)
	for start, batch := 0, maxCreateBatchStart; start < n; start, batch = start+batch, batch*2 {
		batch = min(batch, n-start)
		var wg sync.WaitGroup
		for i := start; i < start+batch; i++ {
			ix := noIndex
			if len(indexes) > 0 {
				ix = indexes[i]
			}
			wg.Go(func() {
				p, err := s.createPod(ctx, ix)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case p != nil:
					created = append(created, p)
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			break
		}
	}
	return created, errors.Join(errs...)
}

func (s *syncState) createPod(ctx context.Context, ix int) (*corev1.Pod, error) {
	job, c := s.job, s.c
	pod := newPod(job, ix)
	if ix != noIndex && job.Spec.BackoffLimitPerIndex != nil {
		failures, ignored := s.indexFailureCounts(ix)
		pod.Annotations[batchv1.JobIndexFailureCountAnnotation] = strconv.Itoa(failures)
		if ignored > 0 {
			pod.Annotations[batchv1.JobIndexIgnoredFailureCountAnnotation] = strconv.Itoa(ignored)
		}
	}
	out, err := c.client.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if apierrors.IsAlreadyExists(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil, nil
		}
		c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return nil, fmt.Errorf("creating pod for job %s/%s: %w", job.Namespace, job.Name, err)
	}
	c.guard.created(s.key, out.UID, s.now)
	c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", out.Name)
	return out, nil
}

// newPod builds a pod of job from its template: generateName "<job>-"
// ("<job>-<index>-" for Indexed Jobs), the template's labels and
// annotations, the tracking finalizer and the controller reference; an
// Indexed Job's pod also gets its index as annotation and label and the
// hostname "<job>-<index>".
func newPod(job *batchv1.Job, ix int) *corev1.Pod {
	tmpl := job.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    job.Name + "-",
			Namespace:       job.Namespace,
			Labels:          tmpl.Labels,
			Annotations:     tmpl.Annotations,
			Finalizers:      append(tmpl.Finalizers, batchv1.JobTrackingFinalizer),
			OwnerReferences: []metav1.OwnerReference{ownership.NewControllerRef(job, jobGVK)},
		},
		Spec: tmpl.Spec,
	}
	if ix != noIndex {
		v := strconv.Itoa(ix)
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		if pod.Labels == nil {
			pod.Labels = map[string]string{}
		}
		pod.Annotations[batchv1.JobCompletionIndexAnnotation] = v
		pod.Labels[batchv1.JobCompletionIndexAnnotation] = v
		pod.GenerateName = job.Name + "-" + v + "-"
		pod.Spec.Hostname = job.Name + "-" + v
		addCompletionIndexEnv(pod.Spec.InitContainers)
		addCompletionIndexEnv(pod.Spec.Containers)
	}
	return pod
}

// completionIndexEnv is the variable an Indexed Job's containers read
// their index from, as upstream's Job controller sets it.
const completionIndexEnv = "JOB_COMPLETION_INDEX"

// addCompletionIndexEnv gives each container JOB_COMPLETION_INDEX, from
// the pod's completion-index annotation, unless it sets the variable
// itself.
func addCompletionIndexEnv(cs []corev1.Container) {
	for i := range cs {
		if slices.ContainsFunc(cs[i].Env, func(e corev1.EnvVar) bool { return e.Name == completionIndexEnv }) {
			continue
		}
		cs[i].Env = append(cs[i].Env, corev1.EnvVar{
			Name: completionIndexEnv,
			ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
				FieldPath: "metadata.annotations['" + batchv1.JobCompletionIndexAnnotation + "']",
			}},
		})
	}
}

// deletePods deletes pods and returns those it deleted (or found gone).
// With uncounted, each pod first loses its tracking finalizer so it is
// never counted (upstream does so for the pods it removes to honour
// parallelism or suspension); otherwise the finalizer stays and track
// counts the pod.
func (s *syncState) deletePods(ctx context.Context, pods []*corev1.Pod, uncounted bool) ([]*corev1.Pod, error) {
	job, c := s.job, s.c
	var (
		mu      sync.Mutex
		deleted []*corev1.Pod
		errs    []error
		wg      sync.WaitGroup
	)
	for _, p := range pods {
		wg.Go(func() {
			if uncounted && hasTrackingFinalizer(p) {
				if err := c.patchOutFinalizer(ctx, p); err != nil {
					mu.Lock()
					defer mu.Unlock()
					errs = append(errs, err)
					return
				}
				c.guard.finalized(s.key, p.UID, s.now)
			}
			err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
				Preconditions: &metav1.Preconditions{UID: &p.UID},
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && !apierrors.IsNotFound(err) {
				c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
				errs = append(errs, fmt.Errorf("deleting pod %s/%s: %w", p.Namespace, p.Name, err))
				return
			}
			c.guard.deleted(s.key, p.UID, s.now)
			if err == nil {
				c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", p.Name)
			}
			deleted = append(deleted, p)
		})
	}
	wg.Wait()
	return deleted, errors.Join(errs...)
}

func ptrTo[T any](v T) *T { return &v }

// indexFailureCounts returns the failure and ignored-failure counts a new
// pod of index ix starts with: those of the index's most-failed failed pod
// still around, plus that pod's own failure (ignored if the pod failure
// policy says Ignore). Pods already gone are forgotten, as upstream.
func (s *syncState) indexFailureCounts(ix int) (failures, ignored int) {
	var last *corev1.Pod
	for _, p := range s.pods {
		if podIndex(p) != ix || !isPodFailed(p, s.job) {
			continue
		}
		if last == nil || annotationInt(p, batchv1.JobIndexFailureCountAnnotation)+annotationInt(p, batchv1.JobIndexIgnoredFailureCountAnnotation) >
			annotationInt(last, batchv1.JobIndexFailureCountAnnotation)+annotationInt(last, batchv1.JobIndexIgnoredFailureCountAnnotation) {
			last = p
		}
	}
	if last == nil {
		return 0, 0
	}
	failures = annotationInt(last, batchv1.JobIndexFailureCountAnnotation)
	ignored = annotationInt(last, batchv1.JobIndexIgnoredFailureCountAnnotation)
	counts := true
	if s.job.Spec.PodFailurePolicy != nil && last.Status.Phase == corev1.PodFailed {
		_, counts, _ = matchFailurePolicy(s.job.Spec.PodFailurePolicy, last)
	}
	if counts {
		failures++
	} else {
		ignored++
	}
	return failures, ignored
}

// annotationInt reads a non-negative integer annotation (0 if absent or
// malformed).
func annotationInt(p *corev1.Pod, key string) int {
	n, err := strconv.Atoi(p.Annotations[key])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func ptrDeref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
