package cronjob

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// clock is a fake clock that runs at the speed of real time from a chosen
// start and can be moved; safe for concurrent use.
type clock struct {
	mu     sync.Mutex
	offset time.Duration // guarded by mu
}

func newClock(start time.Time) *clock { return &clock{offset: time.Until(start)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Set moves the clock to t.
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = time.Until(t)
}

// events collects a FakeRecorder's events.
type events struct {
	mu   sync.Mutex
	list []string // guarded by mu
}

func (e *events) has(substr string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.ContainsFunc(e.list, func(s string) bool { return strings.Contains(s, substr) })
}

// env is one namespace of a shared API server with its own CronJob
// controller (its informers are scoped to the namespace) and fake clock.
type env struct {
	client kubernetes.Interface
	ns     string
	clock  *clock
	ctrl   *Controller
	events *events
}

func startEnv(t *testing.T, cfg *rest.Config, ns string, start time.Time) *env {
	t.Helper()
	client := kubernetes.NewForConfigOrDie(cfg)
	if _, err := client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	rec := record.NewFakeRecorder(100)
	ev := &events{}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-rec.Events:
				ev.mu.Lock()
				ev.list = append(ev.list, s)
				ev.mu.Unlock()
				t.Log("event:", s)
			}
		}
	})
	clk := newClock(start)
	c := New(controller.Deps{Client: client, Informers: factory, Recorder: rec, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	factory.StartWithContext(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 2) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
		wg.Wait()
	})
	return &env{client: client, ns: ns, clock: clk, ctrl: c, events: ev}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e *env) createCronJob(t *testing.T, mutate func(*batchv1.CronJob)) *batchv1.CronJob {
	t.Helper()
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "cj"},
		Spec: batchv1.CronJobSpec{
			Schedule: "* * * * *",
			TimeZone: ptr.To("UTC"),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"from": "cj"}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyOnFailure,
					Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
				}}},
			},
		},
	}
	if mutate != nil {
		mutate(cj)
	}
	out, err := e.client.BatchV1().CronJobs(e.ns).Create(context.Background(), cj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating cronjob: %v", err)
	}
	return out
}

func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for a condition
	}
}

// jobNames lists the Jobs of the namespace that are not being deleted.
func (e *env) jobNames(t *testing.T) []string {
	t.Helper()
	list, err := e.client.BatchV1().Jobs(e.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing jobs: %v", err)
	}
	var names []string
	for _, j := range list.Items {
		if j.DeletionTimestamp == nil {
			names = append(names, j.Name)
		}
	}
	slices.Sort(names)
	return names
}

func (e *env) waitJobs(t *testing.T, want ...string) {
	t.Helper()
	slices.Sort(want)
	poll(t, 15*time.Second, fmt.Sprintf("jobs %v", want), func() (bool, error) {
		got := e.jobNames(t)
		diff := cmp.Diff(want, got)
		return diff == "", fmt.Errorf("jobs (-want +got):\n%s", diff)
	})
}

// finishJob marks a Job finished as the Job controller would.
func (e *env) finishJob(t *testing.T, name string, ct batchv1.JobConditionType, at time.Time) {
	t.Helper()
	j, err := e.client.BatchV1().Jobs(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := metav1.NewTime(at.Add(-10 * time.Second))
	j.Status.StartTime = &start
	now := metav1.NewTime(at)
	reason := batchv1.JobReasonCompletionsReached
	if ct == batchv1.JobFailed {
		reason = batchv1.JobReasonBackoffLimitExceeded
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: now})
	} else {
		j.Status.Succeeded = 1
		j.Status.CompletionTime = &now
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: now})
	}
	j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: ct, Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: now})
	if _, err := e.client.BatchV1().Jobs(e.ns).UpdateStatus(context.Background(), j, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("finishing job %s: %v", name, err)
	}
}

func (e *env) cronJob(t *testing.T) *batchv1.CronJob {
	t.Helper()
	cj, err := e.client.BatchV1().CronJobs(e.ns).Get(context.Background(), "cj", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cj
}

func activeNames(cj *batchv1.CronJob) []string {
	var names []string
	for _, r := range cj.Status.Active {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	return names
}

// at is 2030-01-01 10:mm:ss UTC: well after the CronJobs' (real)
// creation, which startingDeadlineSeconds keeps out of the search.
func at(mm, ss int) time.Time { return time.Date(2030, 1, 1, 10, mm, ss, 0, time.UTC) }

func name(mm int) string { return jobName("cj", at(mm, 0)) }

func TestCronJob(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})

	t.Run("fires on schedule", func(t *testing.T) {
		t.Parallel()
		// 1.5s before 10:01: nothing is due, and the controller must wake
		// up at 10:01 by itself.
		e := startEnv(t, cfg, "fires", at(0, 58).Add(500*time.Millisecond))
		e.createCronJob(t, func(cj *batchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = ptr.To[int64](30) })
		e.waitJobs(t, name(1))
		j, err := e.client.BatchV1().Jobs(e.ns).Get(context.Background(), name(1), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2030-01-01T10:01:00Z" {
			t.Errorf("scheduled-timestamp annotation = %q", got)
		}
		if ref := metav1.GetControllerOf(j); ref == nil || ref.Kind != "CronJob" || ref.Name != "cj" {
			t.Errorf("controller ref = %+v", ref)
		}
		if j.Labels["from"] != "cj" {
			t.Errorf("labels = %v, want the template's", j.Labels)
		}
		poll(t, 10*time.Second, "status", func() (bool, error) {
			cj := e.cronJob(t)
			ok := slices.Equal(activeNames(cj), []string{name(1)}) && cj.Status.LastScheduleTime != nil && cj.Status.LastScheduleTime.Time.Equal(at(1, 0))
			return ok, fmt.Errorf("status %+v", cj.Status)
		})
		e.finishJob(t, name(1), batchv1.JobComplete, at(1, 20))
		poll(t, 10*time.Second, "the completed job noticed", func() (bool, error) {
			cj := e.cronJob(t)
			ok := len(cj.Status.Active) == 0 && cj.Status.LastSuccessfulTime != nil && cj.Status.LastSuccessfulTime.Time.Equal(at(1, 20))
			return ok && e.events.has("SawCompletedJob"), fmt.Errorf("status %+v", cj.Status)
		})
	})

	t.Run("forbid", func(t *testing.T) {
		t.Parallel()
		e := startEnv(t, cfg, "forbid", at(1, 5))
		e.createCronJob(t, func(cj *batchv1.CronJob) {
			cj.Spec.StartingDeadlineSeconds = ptr.To[int64](120)
			cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
		})
		e.waitJobs(t, name(1))
		e.clock.Set(at(2, 5))
		e.ctrl.Enqueue(e.ns, "cj")
		poll(t, 10*time.Second, "JobAlreadyActive", func() (bool, error) {
			return e.events.has("JobAlreadyActive"), nil
		})
		if diff := cmp.Diff([]string{name(1)}, e.jobNames(t)); diff != "" {
			t.Fatalf("jobs while one is active (-want +got):\n%s", diff)
		}
		// Once it is done, the missed 10:02 run starts (still within the
		// starting deadline), as upstream does.
		e.finishJob(t, name(1), batchv1.JobComplete, at(2, 6))
		e.waitJobs(t, name(1), name(2))
	})

	t.Run("replace", func(t *testing.T) {
		t.Parallel()
		e := startEnv(t, cfg, "replace", at(1, 5))
		e.createCronJob(t, func(cj *batchv1.CronJob) {
			cj.Spec.StartingDeadlineSeconds = ptr.To[int64](30)
			cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent
		})
		e.waitJobs(t, name(1))
		e.clock.Set(at(2, 5))
		e.ctrl.Enqueue(e.ns, "cj")
		e.waitJobs(t, name(2))
		poll(t, 10*time.Second, "active replaced", func() (bool, error) {
			cj := e.cronJob(t)
			return slices.Equal(activeNames(cj), []string{name(2)}), fmt.Errorf("active %v", activeNames(cj))
		})
	})

	t.Run("history limits", func(t *testing.T) {
		t.Parallel()
		e := startEnv(t, cfg, "history", at(1, 5))
		e.createCronJob(t, func(cj *batchv1.CronJob) {
			cj.Spec.StartingDeadlineSeconds = ptr.To[int64](30)
			cj.Spec.SuccessfulJobsHistoryLimit = ptr.To[int32](1)
			cj.Spec.FailedJobsHistoryLimit = ptr.To[int32](1)
		})
		results := []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobFailed, batchv1.JobComplete, batchv1.JobFailed}
		for i, ct := range results {
			mm := i + 1
			e.clock.Set(at(mm, 5))
			e.ctrl.Enqueue(e.ns, "cj")
			poll(t, 10*time.Second, "job "+name(mm), func() (bool, error) {
				return slices.Contains(e.jobNames(t), name(mm)), fmt.Errorf("jobs %v", e.jobNames(t))
			})
			e.finishJob(t, name(mm), ct, at(mm, 10))
		}
		// Only the newest of each kind is kept.
		e.waitJobs(t, name(3), name(4))
	})

	t.Run("suspend", func(t *testing.T) {
		t.Parallel()
		e := startEnv(t, cfg, "suspend", at(1, 5))
		e.createCronJob(t, func(cj *batchv1.CronJob) {
			cj.Spec.StartingDeadlineSeconds = ptr.To[int64](30)
			cj.Spec.Suspend = ptr.To(true)
			cj.Spec.Schedule = "*/2 * * * *"
		})
		// A second CronJob in the namespace proves the controller has run
		// past the suspended one.
		e.createCronJobNamed(t, "other")
		e.waitJobs(t, jobName("other", at(1, 0)))
		if names := e.jobNames(t); slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "cj-") }) {
			t.Errorf("suspended cronjob ran: %v", names)
		}
		if _, err := e.client.BatchV1().CronJobs(e.ns).Patch(context.Background(), "cj", "application/merge-patch+json", []byte(`{"spec":{"suspend":false,"schedule":"* * * * *"}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitJobs(t, jobName("other", at(1, 0)), name(1))
	})

	t.Run("too many missed", func(t *testing.T) {
		t.Parallel()
		// No starting deadline: every minute since the (real) creation is
		// missed; only the latest runs.
		e := startEnv(t, cfg, "missed", at(1, 5))
		e.createCronJob(t, nil)
		e.waitJobs(t, name(1))
		poll(t, 10*time.Second, "TooManyMissedTimes", func() (bool, error) {
			return e.events.has("TooManyMissedTimes"), nil
		})
	})
}

// createCronJobNamed creates a CronJob like createCronJob's with another
// name, running every minute.
func (e *env) createCronJobNamed(t *testing.T, name string) {
	t.Helper()
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
		Spec: batchv1.CronJobSpec{
			Schedule:                "* * * * *",
			TimeZone:                ptr.To("UTC"),
			StartingDeadlineSeconds: ptr.To[int64](30),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyOnFailure,
				Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
			}}}},
		},
	}
	if _, err := e.client.BatchV1().CronJobs(e.ns).Create(context.Background(), cj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating cronjob %s: %v", name, err)
	}
}
