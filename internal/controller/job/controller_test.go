package job

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// env is one API server with a running Job controller shared by the
// subtests of a test; each subtest uses its own namespace.
type env struct {
	client kubernetes.Interface
}

func startEnv(t *testing.T) *env {
	t.Helper()
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	rec := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "job-controller"})
	logger := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := New(controller.Deps{Client: client, Informers: factory, Recorder: rec, Logger: logger})
	c.backoffBase, c.backoffMax = 20*time.Millisecond, 200*time.Millisecond
	factory.StartWithContext(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 4) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
		broadcaster.Shutdown()
	})
	return &env{client: client}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func (e *env) namespace(t *testing.T, name string) string {
	t.Helper()
	_, err := e.client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return name
}

func newJob(ns, name string, mutate func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
				},
			},
		},
	}
	if mutate != nil {
		mutate(j)
	}
	return j
}

func (e *env) createJob(t *testing.T, j *batchv1.Job) *batchv1.Job {
	t.Helper()
	out, err := e.client.BatchV1().Jobs(j.Namespace).Create(context.Background(), j, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating job: %v", err)
	}
	return out
}

// poll calls cond until it returns true or the deadline passes, then fails
// with the last error it reported.
func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: last error: %v", what, last)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for a condition
	}
}

func (e *env) pods(t *testing.T, ns string) []corev1.Pod {
	t.Helper()
	list, err := e.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items
}

func activePods(pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	return out
}

// waitActive waits until the namespace has exactly n active pods.
func (e *env) waitActive(t *testing.T, ns string, n int) []corev1.Pod {
	t.Helper()
	var active []corev1.Pod
	poll(t, 15*time.Second, fmt.Sprintf("%d active pods", n), func() (bool, error) {
		active = activePods(e.pods(t, ns))
		return len(active) == n, fmt.Errorf("%d active pods", len(active))
	})
	return active
}

// finish sets a pod's phase as a node agent would, with a terminated
// container carrying exitCode.
func (e *env) finish(t *testing.T, p corev1.Pod, phase corev1.PodPhase, exitCode int32) {
	t.Helper()
	p.Status.Phase = phase
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name:  "main",
		Image: "busybox",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exitCode, Reason: "Completed"}},
	}}
	if _, err := e.client.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), &p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating status of pod %s: %v", p.Name, err)
	}
}

func (e *env) job(t *testing.T, ns, name string) *batchv1.Job {
	t.Helper()
	j, err := e.client.BatchV1().Jobs(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting job: %v", err)
	}
	return j
}

// waitCondition waits for a true condition of type ct and returns the Job.
func (e *env) waitCondition(t *testing.T, ns, name string, ct batchv1.JobConditionType) *batchv1.Job {
	t.Helper()
	var j *batchv1.Job
	poll(t, 20*time.Second, "condition "+string(ct), func() (bool, error) {
		j = e.job(t, ns, name)
		for _, c := range j.Status.Conditions {
			if c.Type == ct && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, fmt.Errorf("status %+v", j.Status)
	})
	return j
}

// counts is the part of a Job's status the tests compare.
type counts struct {
	Active, Succeeded, Failed int32
	Terminating               int32
	CompletedIndexes          string
	Uncounted                 int
	Conditions                []string // "Type=Reason"
}

func countsOf(j *batchv1.Job) counts {
	c := counts{Active: j.Status.Active, Succeeded: j.Status.Succeeded, Failed: j.Status.Failed,
		CompletedIndexes: j.Status.CompletedIndexes, Terminating: ptr.Deref(j.Status.Terminating, 0)}
	if u := j.Status.UncountedTerminatedPods; u != nil {
		c.Uncounted = len(u.Succeeded) + len(u.Failed)
	}
	for _, cond := range j.Status.Conditions {
		if cond.Status == corev1.ConditionTrue {
			c.Conditions = append(c.Conditions, string(cond.Type)+"="+cond.Reason)
		}
	}
	slices.Sort(c.Conditions)
	return c
}

// waitGone waits until the namespace has no pods left (their finalizers
// removed and the deletions completed).
func (e *env) waitNoFinalizers(t *testing.T, ns string) {
	t.Helper()
	poll(t, 15*time.Second, "no pod with the tracking finalizer", func() (bool, error) {
		for _, p := range e.pods(t, ns) {
			if slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
				return false, fmt.Errorf("pod %s still has it (phase %s, deleting %v)", p.Name, p.Status.Phase, p.DeletionTimestamp != nil)
			}
		}
		return true, nil
	})
}

// waitEvents waits until the namespace has events with every reason.
func (e *env) waitEvents(t *testing.T, ns string, reasons ...string) {
	t.Helper()
	poll(t, 15*time.Second, fmt.Sprintf("events %v", reasons), func() (bool, error) {
		list, err := e.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var got []string
		for _, ev := range list.Items {
			got = append(got, ev.Reason)
		}
		for _, r := range reasons {
			if !slices.Contains(got, r) {
				return false, fmt.Errorf("reasons so far: %v", got)
			}
		}
		return true, nil
	})
}

func TestJob(t *testing.T) {
	e := startEnv(t)

	t.Run("completions and parallelism", func(t *testing.T) {
		t.Parallel()
		ns := e.namespace(t, "parallel")
		e.createJob(t, newJob(ns, "j", func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](2)
		}))
		active := e.waitActive(t, ns, 2)
		for _, p := range active {
			if !slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
				t.Errorf("pod %s has no tracking finalizer: %v", p.Name, p.Finalizers)
			}
			if ref := metav1.GetControllerOf(&p); ref == nil || ref.Kind != "Job" || ref.Name != "j" {
				t.Errorf("pod %s controller ref = %+v", p.Name, ref)
			}
		}
		e.finish(t, active[0], corev1.PodSucceeded, 0)
		// One succeeded, one left to do: still two active.
		poll(t, 15*time.Second, "a replacement", func() (bool, error) {
			j := e.job(t, ns, "j")
			n := len(activePods(e.pods(t, ns)))
			return j.Status.Succeeded == 1 && n == 2, fmt.Errorf("succeeded %d, %d active", j.Status.Succeeded, n)
		})
		for _, p := range e.waitActive(t, ns, 2) {
			e.finish(t, p, corev1.PodSucceeded, 0)
		}
		j := e.waitCondition(t, ns, "j", batchv1.JobComplete)
		want := counts{Succeeded: 3, Conditions: []string{"Complete=CompletionsReached", "SuccessCriteriaMet=CompletionsReached"}}
		if diff := cmp.Diff(want, countsOf(j)); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
		if j.Status.StartTime == nil || j.Status.CompletionTime == nil {
			t.Errorf("startTime %v completionTime %v, want both set", j.Status.StartTime, j.Status.CompletionTime)
		}
		if n := len(e.pods(t, ns)); n != 3 {
			t.Errorf("%d pods were created, want 3", n)
		}
		e.waitNoFinalizers(t, ns)
		e.waitEvents(t, ns, "SuccessfulCreate", "Completed")
	})

	t.Run("backoff limit", func(t *testing.T) {
		t.Parallel()
		ns := e.namespace(t, "backoff")
		e.createJob(t, newJob(ns, "j", func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr.To[int32](2) }))
		for i := range 3 {
			p := e.waitActive(t, ns, 1)[0]
			e.finish(t, p, corev1.PodFailed, 1)
			if i < 2 {
				poll(t, 15*time.Second, "failure counted", func() (bool, error) {
					j := e.job(t, ns, "j")
					return j.Status.Failed == int32(i+1), fmt.Errorf("failed = %d", j.Status.Failed)
				})
			}
		}
		j := e.waitCondition(t, ns, "j", batchv1.JobFailed)
		want := counts{Failed: 3, Conditions: []string{"Failed=BackoffLimitExceeded", "FailureTarget=BackoffLimitExceeded"}}
		if diff := cmp.Diff(want, countsOf(j)); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
		if n := len(e.pods(t, ns)); n != 3 {
			t.Errorf("%d pods, want 3", n)
		}
		e.waitEvents(t, ns, "BackoffLimitExceeded")
	})

	t.Run("active deadline", func(t *testing.T) {
		t.Parallel()
		ns := e.namespace(t, "deadline")
		e.createJob(t, newJob(ns, "j", func(j *batchv1.Job) {
			j.Spec.Parallelism, j.Spec.Completions = ptr.To[int32](2), ptr.To[int32](4)
			j.Spec.ActiveDeadlineSeconds = ptr.To[int64](1)
		}))
		e.waitActive(t, ns, 2)
		j := e.waitCondition(t, ns, "j", batchv1.JobFailed)
		want := counts{Failed: 2, Conditions: []string{"Failed=DeadlineExceeded", "FailureTarget=DeadlineExceeded"}}
		if diff := cmp.Diff(want, countsOf(j)); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
		poll(t, 15*time.Second, "pods deleted", func() (bool, error) {
			n := len(e.pods(t, ns))
			return n == 0, fmt.Errorf("%d pods", n)
		})
		e.waitEvents(t, ns, "SuccessfulDelete", "DeadlineExceeded")
	})

	t.Run("indexed", func(t *testing.T) {
		t.Parallel()
		ns := e.namespace(t, "indexed")
		e.createJob(t, newJob(ns, "j", func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](3)
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		}))
		active := e.waitActive(t, ns, 3)
		byIndex := map[string]corev1.Pod{}
		for _, p := range active {
			ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
			if p.Labels[batchv1.JobCompletionIndexAnnotation] != ix || p.Spec.Hostname != "j-"+ix {
				t.Errorf("pod %s: index annotation %q, label %q, hostname %q", p.Name, ix, p.Labels[batchv1.JobCompletionIndexAnnotation], p.Spec.Hostname)
			}
			byIndex[ix] = p
		}
		if diff := cmp.Diff([]string{"0", "1", "2"}, slices.Sorted(maps.Keys(byIndex))); diff != "" {
			t.Fatalf("indexes (-want +got):\n%s", diff)
		}
		e.finish(t, byIndex["0"], corev1.PodSucceeded, 0)
		e.finish(t, byIndex["2"], corev1.PodSucceeded, 0)
		// A failed index is replaced by a pod with the same index.
		e.finish(t, byIndex["1"], corev1.PodFailed, 1)
		poll(t, 15*time.Second, "completedIndexes 0,2 and a new pod for index 1", func() (bool, error) {
			j := e.job(t, ns, "j")
			act := activePods(e.pods(t, ns))
			ok := j.Status.CompletedIndexes == "0,2" && len(act) == 1 && act[0].Annotations[batchv1.JobCompletionIndexAnnotation] == "1"
			return ok, fmt.Errorf("completedIndexes %q, %d active", j.Status.CompletedIndexes, len(act))
		})
		e.finish(t, e.waitActive(t, ns, 1)[0], corev1.PodSucceeded, 0)
		j := e.waitCondition(t, ns, "j", batchv1.JobComplete)
		want := counts{Succeeded: 3, Failed: 1, CompletedIndexes: "0-2", Conditions: []string{"Complete=CompletionsReached", "SuccessCriteriaMet=CompletionsReached"}}
		if diff := cmp.Diff(want, countsOf(j)); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
	})

	t.Run("backoff limit per index", func(t *testing.T) {
		t.Parallel()
		ns := e.namespace(t, "perindex")
		e.createJob(t, newJob(ns, "j", func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](3)
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.BackoffLimitPerIndex = ptr.To[int32](1)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{Action: batchv1.PodFailurePolicyActionFailIndex, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{5}}},
			}}
		}))
		byIndex := func() map[string]corev1.Pod {
			m := map[string]corev1.Pod{}
			for _, p := range activePods(e.pods(t, ns)) {
				m[p.Annotations[batchv1.JobCompletionIndexAnnotation]] = p
			}
			return m
		}
		e.waitActive(t, ns, 3)
		pods := byIndex()
		e.finish(t, pods["0"], corev1.PodFailed, 1) // first failure of index 0: retried
		e.finish(t, pods["1"], corev1.PodFailed, 5) // FailIndex: index 1 fails at once
		e.finish(t, pods["2"], corev1.PodSucceeded, 0)
		var retry corev1.Pod
		poll(t, 15*time.Second, "index 0 retried", func() (bool, error) {
			m := byIndex()
			retry = m["0"]
			return len(m) == 1 && retry.Name != "" && retry.Name != pods["0"].Name, fmt.Errorf("active %v", slices.Sorted(maps.Keys(m)))
		})
		if got := retry.Annotations[batchv1.JobIndexFailureCountAnnotation]; got != "1" {
			t.Errorf("retry of index 0 has failure count %q, want 1", got)
		}
		e.finish(t, retry, corev1.PodFailed, 1) // second failure: over the limit
		j := e.waitCondition(t, ns, "j", batchv1.JobFailed)
		want := counts{Succeeded: 1, Failed: 3, CompletedIndexes: "2", Conditions: []string{"Failed=FailedIndexes", "FailureTarget=FailedIndexes"}}
		if diff := cmp.Diff(want, countsOf(j)); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
		if got := ptr.Deref(j.Status.FailedIndexes, "<nil>"); got != "0-1" {
			t.Errorf("failedIndexes = %q, want 0-1", got)
		}
	})

	t.Run("suspend and resume", func(t *testing.T) {
		t.Parallel()
		ns := e.namespace(t, "suspend")
		e.createJob(t, newJob(ns, "j", func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](4), ptr.To[int32](2)
		}))
		e.waitActive(t, ns, 2)
		setSuspend(t, e, ns, "j", true)
		j := e.waitCondition(t, ns, "j", batchv1.JobSuspended)
		want := counts{Conditions: []string{"Suspended=JobSuspended"}}
		poll(t, 15*time.Second, "pods deleted", func() (bool, error) {
			j = e.job(t, ns, "j")
			n := len(e.pods(t, ns))
			diff := cmp.Diff(want, countsOf(j))
			return n == 0 && diff == "", fmt.Errorf("%d pods, status (-want +got):\n%s", n, diff)
		})
		if j.Status.StartTime != nil {
			t.Errorf("startTime = %v while suspended, want nil", j.Status.StartTime)
		}
		setSuspend(t, e, ns, "j", false)
		e.waitActive(t, ns, 2)
		poll(t, 15*time.Second, "resumed", func() (bool, error) {
			j = e.job(t, ns, "j")
			return !isSuspendedCond(j) && j.Status.StartTime != nil && j.Status.Active == 2, fmt.Errorf("status %+v", j.Status)
		})
	})

	t.Run("pod failure policy", func(t *testing.T) {
		t.Parallel()
		ns := e.namespace(t, "pfp")
		e.createJob(t, newJob(ns, "j", func(j *batchv1.Job) {
			j.Spec.BackoffLimit = ptr.To[int32](0)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3}}},
				{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
			}}
		}))
		// Exit code 3 is ignored: not counted, replaced (backoffLimit 0 is not reached).
		first := e.waitActive(t, ns, 1)[0]
		e.finish(t, first, corev1.PodFailed, 3)
		poll(t, 15*time.Second, "a replacement", func() (bool, error) {
			act := activePods(e.pods(t, ns))
			return len(act) == 1 && act[0].Name != first.Name, fmt.Errorf("%d active", len(act))
		})
		e.finish(t, e.waitActive(t, ns, 1)[0], corev1.PodFailed, 42)
		j := e.waitCondition(t, ns, "j", batchv1.JobFailed)
		want := counts{Failed: 1, Conditions: []string{"Failed=PodFailurePolicy", "FailureTarget=PodFailurePolicy"}}
		if diff := cmp.Diff(want, countsOf(j)); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
	})

	t.Run("work queue", func(t *testing.T) {
		t.Parallel()
		ns := e.namespace(t, "queue")
		e.createJob(t, newJob(ns, "j", func(j *batchv1.Job) { j.Spec.Parallelism = ptr.To[int32](2) }))
		active := e.waitActive(t, ns, 2)
		e.finish(t, active[0], corev1.PodSucceeded, 0)
		poll(t, 15*time.Second, "success counted", func() (bool, error) {
			j := e.job(t, ns, "j")
			return j.Status.Succeeded == 1 && j.Status.Active == 1, fmt.Errorf("status %+v", countsOf(j))
		})
		if n := len(e.pods(t, ns)); n != 2 {
			t.Errorf("%d pods after the first success, want no new pod", n)
		}
		e.finish(t, e.waitActive(t, ns, 1)[0], corev1.PodSucceeded, 0)
		j := e.waitCondition(t, ns, "j", batchv1.JobComplete)
		if diff := cmp.Diff(counts{Succeeded: 2, Conditions: []string{"Complete=CompletionsReached", "SuccessCriteriaMet=CompletionsReached"}}, countsOf(j)); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
	})

	t.Run("deleted pod counts as failed", func(t *testing.T) {
		t.Parallel()
		ns := e.namespace(t, "deleted")
		e.createJob(t, newJob(ns, "j", nil))
		p := e.waitActive(t, ns, 1)[0]
		if err := e.client.CoreV1().Pods(ns).Delete(context.Background(), p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, 15*time.Second, "deleted pod counted and replaced", func() (bool, error) {
			j := e.job(t, ns, "j")
			act := activePods(e.pods(t, ns))
			return j.Status.Failed == 1 && len(act) == 1 && act[0].Name != p.Name, fmt.Errorf("failed %d, %d active", j.Status.Failed, len(act))
		})
		if _, err := e.client.CoreV1().Pods(ns).Get(context.Background(), p.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("deleted pod still there (err %v): its finalizer was not removed", err)
		}
	})

	t.Run("orphan pod loses the finalizer", func(t *testing.T) {
		t.Parallel()
		ns := e.namespace(t, "orphan")
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stray", Finalizers: []string{batchv1.JobTrackingFinalizer}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
		}
		if _, err := e.client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitNoFinalizers(t, ns)
	})

	t.Run("ttl after finished", func(t *testing.T) {
		t.Parallel()
		ns := e.namespace(t, "ttl")
		e.createJob(t, newJob(ns, "j", func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To[int32](1) }))
		e.finish(t, e.waitActive(t, ns, 1)[0], corev1.PodSucceeded, 0)
		e.waitCondition(t, ns, "j", batchv1.JobComplete)
		poll(t, 15*time.Second, "job deleted", func() (bool, error) {
			j, err := e.client.BatchV1().Jobs(ns).Get(context.Background(), "j", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			return j.DeletionTimestamp != nil, fmt.Errorf("job not deleted")
		})
	})
}

func setSuspend(t *testing.T, e *env, ns, name string, v bool) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"spec":{"suspend":%v}}`, v)
	if _, err := e.client.BatchV1().Jobs(ns).Patch(context.Background(), name, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("setting suspend=%v: %v", v, err)
	}
}
