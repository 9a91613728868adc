package prober

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// changes counts OnChange calls per pod.
type changes struct {
	mu sync.Mutex
	n  map[types.UID]int
}

func (c *changes) add(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[types.UID]int{}
	}
	c.n[uid]++
}

func (c *changes) get(uid types.UID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[uid]
}

// scripted answers exec probes with the exit codes in codes, one per call
// (-1: a runtime error), repeating the last one.
type scripted struct {
	mu    sync.Mutex
	codes []int32
}

func (s *scripted) set(codes ...int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes = codes
}

func (s *scripted) ExecSync(context.Context, string, []string, time.Duration) (cri.ExecResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := s.codes[0]
	if len(s.codes) > 1 {
		s.codes = s.codes[1:]
	}
	if code < 0 {
		return cri.ExecResult{}, errors.New("container is not running")
	}
	return cri.ExecResult{ExitCode: code, Stdout: []byte("out")}, nil
}

func execProbe(p v1.Probe) *v1.Probe {
	p.Exec = &v1.ExecAction{Command: []string{"check"}}
	return &p
}

// state is what the Manager reports for a container.
type state struct {
	Ready, Started, Failed bool
	Message                string
}

func stateOf(m *Manager, id string) state {
	failed, msg := m.Liveness(id)
	return state{Ready: m.Ready(id), Started: m.Started(id), Failed: failed, Message: msg}
}

// TestThresholds drives one probe worker step by step (no goroutines): each
// step answers one probe run with an exit code and checks the results.
func TestThresholds(t *testing.T) {
	t.Parallel()
	type step struct {
		code int32 // -1: the runtime fails the exec
		want state
		// done: the worker ends after this step.
		done bool
		// early: an early probe, before the first success.
		early bool
	}
	livenessFailed := state{Ready: true, Started: true, Failed: true, Message: "Container app failed liveness probe, will be restarted"}
	tests := []struct {
		name        string
		container   v1.Container
		status      *v1.ContainerStatus // in pod.Status, for adoption
		drive       kind
		initial     state
		steps       []step
		wantChanges int
		wantEvents  []string
	}{{
		name:      "readiness with default thresholds",
		container: v1.Container{ReadinessProbe: execProbe(v1.Probe{})},
		drive:     readiness,
		initial:   state{Started: true},
		steps: []step{
			{code: 0, want: state{Ready: true, Started: true}},
			{code: 1, want: state{Ready: true, Started: true}},
			{code: 1, want: state{Ready: true, Started: true}},
			{code: 1, want: state{Started: true}},
			{code: 1, want: state{Started: true}},
			{code: 0, want: state{Ready: true, Started: true}},
		},
		wantChanges: 3,
		wantEvents: []string{
			"Warning Unhealthy Readiness probe failed: out",
			"Warning Unhealthy Readiness probe failed: out",
			"Warning Unhealthy Readiness probe failed: out",
			"Warning Unhealthy Readiness probe failed: out",
		},
	}, {
		name:      "readiness with successThreshold 2 and failureThreshold 1",
		container: v1.Container{ReadinessProbe: execProbe(v1.Probe{SuccessThreshold: 2, FailureThreshold: 1})},
		drive:     readiness,
		initial:   state{Started: true},
		steps: []step{
			{code: 0, want: state{Started: true}},
			{code: 1, want: state{Started: true}},
			{code: 0, want: state{Started: true}},
			{code: 0, want: state{Ready: true, Started: true}},
			{code: 1, want: state{Started: true}},
		},
		wantChanges: 2,
	}, {
		name:      "an exec error leaves the result as it was",
		container: v1.Container{ReadinessProbe: execProbe(v1.Probe{FailureThreshold: 1})},
		drive:     readiness,
		initial:   state{Started: true},
		steps: []step{
			{code: 0, want: state{Ready: true, Started: true}},
			{code: -1, want: state{Ready: true, Started: true}},
			{code: -1, want: state{Ready: true, Started: true}},
			{code: 1, want: state{Started: true}},
		},
		wantChanges: 2,
		wantEvents: []string{
			"Warning Unhealthy Readiness probe errored: exec probe \"check\": container is not running",
			"Warning Unhealthy Readiness probe errored: exec probe \"check\": container is not running",
			"Warning Unhealthy Readiness probe failed: out",
		},
	}, {
		name:      "early probes count only when they succeed",
		container: v1.Container{ReadinessProbe: execProbe(v1.Probe{SuccessThreshold: 2, FailureThreshold: 1})},
		drive:     readiness,
		initial:   state{Started: true},
		steps: []step{
			{code: 1, want: state{Started: true}},
			{code: 1, early: true, want: state{Started: true}},
			{code: -1, early: true, want: state{Started: true}},
			{code: 0, early: true, want: state{Started: true}},
			{code: 0, early: true, want: state{Ready: true, Started: true}},
		},
		wantChanges: 1,
		wantEvents:  []string{"Warning Unhealthy Readiness probe failed: out"},
	}, {
		name:      "liveness fails after failureThreshold failures in a row and then holds",
		container: v1.Container{LivenessProbe: execProbe(v1.Probe{FailureThreshold: 2})},
		drive:     liveness,
		initial:   state{Ready: true, Started: true},
		steps: []step{
			{code: 1, want: state{Ready: true, Started: true}},
			{code: 0, want: state{Ready: true, Started: true}},
			{code: 1, want: state{Ready: true, Started: true}},
			{code: 1, want: livenessFailed, done: true},
		},
		wantChanges: 1,
		wantEvents: []string{
			"Warning Unhealthy Liveness probe failed: out",
			"Warning Unhealthy Liveness probe failed: out",
			"Warning Unhealthy Liveness probe failed: out",
		},
	}, {
		name:      "startup succeeds, then the container is started and, without readiness probe, ready",
		container: v1.Container{StartupProbe: execProbe(v1.Probe{FailureThreshold: 3}), LivenessProbe: execProbe(v1.Probe{})},
		drive:     startup,
		steps: []step{
			{code: 1, want: state{}},
			{code: 1, want: state{}},
			{code: 0, want: state{Ready: true, Started: true}, done: true},
		},
		wantChanges: 1,
	}, {
		name:      "startup fails after failureThreshold failures",
		container: v1.Container{StartupProbe: execProbe(v1.Probe{FailureThreshold: 2}), ReadinessProbe: execProbe(v1.Probe{})},
		drive:     startup,
		steps: []step{
			{code: 1, want: state{}},
			{code: 1, want: state{Failed: true, Message: "Container app failed startup probe, will be restarted"}, done: true},
		},
		wantChanges: 1,
		wantEvents:  []string{"Warning Unhealthy Startup probe failed: out", "Warning Unhealthy Startup probe failed: out"},
	}, {
		name:      "started with a readiness probe is not ready until it succeeds",
		container: v1.Container{StartupProbe: execProbe(v1.Probe{}), ReadinessProbe: execProbe(v1.Probe{})},
		drive:     startup,
		steps: []step{
			{code: 0, want: state{Started: true}, done: true},
		},
		wantChanges: 1,
	}, {
		name:      "adopted container keeps the readiness and start pod status reports",
		container: v1.Container{StartupProbe: execProbe(v1.Probe{}), ReadinessProbe: execProbe(v1.Probe{FailureThreshold: 1})},
		status:    &v1.ContainerStatus{Name: "app", ContainerID: "containerd://c1", Ready: true, Started: ptr(true)},
		drive:     readiness,
		initial:   state{Ready: true, Started: true},
		steps: []step{
			{code: 0, want: state{Ready: true, Started: true}},
			{code: 1, want: state{Started: true}},
		},
		wantChanges: 1,
	}, {
		name:      "status of another container ID is not adopted",
		container: v1.Container{ReadinessProbe: execProbe(v1.Probe{})},
		status:    &v1.ContainerStatus{Name: "app", ContainerID: "containerd://old", Ready: true, Started: ptr(true)},
		drive:     readiness,
		initial:   state{Started: true},
		steps:     []step{{code: 0, want: state{Ready: true, Started: true}}},

		wantChanges: 1,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			exec := &scripted{}
			rec := record.NewFakeRecorder(100)
			var ch changes
			m := New(Config{Runtime: exec, Recorder: rec, Logger: testLogger(t), OnChange: ch.add})
			pod, _ := testPod("10.0.0.1")
			tt.container.Name = "app"
			pod.Spec.Containers[0] = tt.container
			if tt.status != nil {
				pod.Status.ContainerStatuses = []v1.ContainerStatus{*tt.status}
			}
			m.mu.Lock()
			_, workers := m.addLocked(pod, &pod.Spec.Containers[0], "c1", time.Now())
			m.mu.Unlock()
			i := slices.IndexFunc(workers, func(w *worker) bool { return w.kind == tt.drive })
			if i < 0 {
				t.Fatalf("no %v worker", tt.drive)
			}
			w := workers[i]
			if diff := cmp.Diff(tt.initial, stateOf(m, "c1")); diff != "" {
				t.Errorf("initial state (-want +got):\n%s", diff)
			}
			for n, s := range tt.steps {
				exec.set(s.code)
				more := w.once(context.Background(), s.early)
				if diff := cmp.Diff(s.want, stateOf(m, "c1")); diff != "" {
					t.Errorf("after step %d (exit %d) (-want +got):\n%s", n, s.code, diff)
				}
				if more == s.done {
					t.Errorf("after step %d: worker continues = %v, want %v", n, more, !s.done)
				}
			}
			if got := ch.get(pod.UID); got != tt.wantChanges {
				t.Errorf("OnChange called %d times, want %d", got, tt.wantChanges)
			}
			if tt.wantEvents != nil {
				var got []string
				for len(rec.Events) > 0 {
					got = append(got, <-rec.Events)
				}
				if diff := cmp.Diff(tt.wantEvents, got); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// startManager runs a Manager whose seconds last unit, until the test ends.
func startManager(t *testing.T, cfg Config, unit time.Duration) *Manager {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	m := New(cfg)
	m.second = unit
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return m
}

// waitFor polls cond until it holds or 5 s passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// containerDone returns whether every probe goroutine of id ended.
func containerDone(s *container) bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func lookup(m *Manager, id string) *container {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.containers[id]
}

func TestNoProbesCostNothing(t *testing.T) {
	t.Parallel()
	exec := &fakeExec{}
	m := startManager(t, Config{Runtime: exec}, time.Second)
	pod, c := testPod("10.0.0.1")
	m.Start(pod, c, "c1", time.Now())
	if diff := cmp.Diff(state{Ready: true, Started: true}, stateOf(m, "c1")); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
	if !containerDone(lookup(m, "c1")) {
		t.Error("a container without probes has goroutines")
	}
	if diff := cmp.Diff(state{}, stateOf(m, "unknown")); diff != "" {
		t.Errorf("unknown container (-want +got):\n%s", diff)
	}
}

func TestFirstReadinessProbeRunsAtOnce(t *testing.T) {
	t.Parallel()
	exec := &fakeExec{}
	m := startManager(t, Config{Runtime: exec}, time.Second)
	pod, c := testPod("10.0.0.1")
	c.ReadinessProbe = execProbe(v1.Probe{PeriodSeconds: 10})
	c.LivenessProbe = execProbe(v1.Probe{PeriodSeconds: 10, InitialDelaySeconds: 30})
	start := time.Now()
	m.Start(pod, c, "c1", start)
	m.Start(pod, c, "c1", start) // idempotent
	waitFor(t, "ready", func() bool { return m.Ready("c1") })
	// The period is 10s: well under it means the first probe did not wait
	// for a tick (the margin absorbs a loaded machine).
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ready after %v, want at once", d)
	}
	if n := exec.count(); n != 1 {
		t.Errorf("%d probes ran, want 1 (readiness once, liveness after its initial delay)", n)
	}
}

func TestStartupGatesLivenessAndReadiness(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var order []string
	startupLeft := 3 // startup fails this many times
	exec := &fakeExec{fn: func(_ context.Context, _ string, cmd []string, _ time.Duration) (cri.ExecResult, error) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, cmd[0])
		switch cmd[0] {
		case "startup":
			if startupLeft > 0 {
				startupLeft--
				return cri.ExecResult{ExitCode: 1}, nil
			}
			return cri.ExecResult{}, nil
		case "live":
			return cri.ExecResult{ExitCode: 1, Stdout: []byte("dead")}, nil
		}
		return cri.ExecResult{}, nil
	}}
	var ch changes
	rec := record.NewFakeRecorder(100)
	m := startManager(t, Config{Runtime: exec, Recorder: rec, OnChange: ch.add}, 10*time.Millisecond)
	pod, c := testPod("10.0.0.1")
	c.StartupProbe = &v1.Probe{PeriodSeconds: 1, FailureThreshold: 10, ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"startup"}}}}
	c.ReadinessProbe = &v1.Probe{PeriodSeconds: 1, ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"ready"}}}}
	c.LivenessProbe = &v1.Probe{PeriodSeconds: 1, FailureThreshold: 2, ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"live"}}}}
	m.Start(pod, c, "c1", time.Now())

	waitFor(t, "liveness failure", func() bool { failed, _ := m.Liveness("c1"); return failed })
	if !m.Started("c1") {
		t.Error("not started")
	}
	waitFor(t, "ready", func() bool { return m.Ready("c1") })
	mu.Lock()
	firstOther := slices.IndexFunc(order, func(s string) bool { return s != "startup" })
	lastStartup := -1
	for i, s := range order {
		if s == "startup" {
			lastStartup = i
		}
	}
	if firstOther < lastStartup || lastStartup != 3 {
		t.Errorf("probe order %v: want 4 startup probes before any other", order)
	}
	mu.Unlock()
	// started, ready, liveness failed
	waitFor(t, "3 OnChange calls", func() bool { return ch.get(pod.UID) >= 3 })
	if got := ch.get(pod.UID); got != 3 {
		t.Errorf("OnChange called %d times, want 3", got)
	}
	// The liveness goroutine holds after the failure; readiness goes on.
	if _, msg := m.Liveness("c1"); msg != "Container app failed liveness probe, will be restarted" {
		t.Errorf("liveness message %q", msg)
	}
}

func TestStopEndsGoroutines(t *testing.T) {
	t.Parallel()
	blocked := make(chan struct{})
	exec := &fakeExec{fn: func(ctx context.Context, _ string, _ []string, _ time.Duration) (cri.ExecResult, error) {
		select {
		case blocked <- struct{}{}:
		default:
		}
		<-ctx.Done() // a probe in flight when the container stops
		return cri.ExecResult{}, ctx.Err()
	}}
	var ch changes
	m := startManager(t, Config{Runtime: exec, OnChange: ch.add}, 10*time.Millisecond)
	probes := func(c *v1.Container) {
		c.ReadinessProbe = execProbe(v1.Probe{PeriodSeconds: 1})
		c.LivenessProbe = execProbe(v1.Probe{PeriodSeconds: 1})
		c.StartupProbe = nil
	}
	pod, c := testPod("10.0.0.1")
	probes(c)
	pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{Name: "side"})
	probes(&pod.Spec.Containers[1])
	c = &pod.Spec.Containers[0]
	other, oc := testPod("10.0.0.2")
	other.UID = "uid-2"
	probes(oc)

	m.Start(pod, c, "c1", time.Now())
	m.Start(pod, &pod.Spec.Containers[1], "c2", time.Now())
	m.Start(other, oc, "c3", time.Now())
	s1, s2, s3 := lookup(m, "c1"), lookup(m, "c2"), lookup(m, "c3")
	<-blocked

	m.Stop("c1")
	waitFor(t, "c1's goroutines to end", func() bool { return containerDone(s1) })
	if lookup(m, "c1") != nil || m.Ready("c1") || m.Started("c1") {
		t.Error("c1 still known after Stop")
	}
	if containerDone(s2) || containerDone(s3) {
		t.Error("Stop(c1) stopped other containers")
	}
	m.StopPod(pod.UID)
	waitFor(t, "c2's goroutines to end", func() bool { return containerDone(s2) })
	if containerDone(s3) {
		t.Error("StopPod stopped another pod's container")
	}
	m.Stop("c3")
	m.Stop("c3") // idempotent
	waitFor(t, "c3's goroutines to end", func() bool { return containerDone(s3) })
	if got := ch.get(pod.UID) + ch.get(other.UID); got != 0 {
		t.Errorf("OnChange called %d times after cancelled probes, want 0", got)
	}
}

func TestRunEndStopsEverything(t *testing.T) {
	t.Parallel()
	m := New(Config{Runtime: &fakeExec{}, Logger: testLogger(t)})
	m.second = 10 * time.Millisecond
	pod, c := testPod("10.0.0.1")
	c.LivenessProbe = execProbe(v1.Probe{PeriodSeconds: 1})
	m.Start(pod, c, "c1", time.Now()) // before Run
	s := lookup(m, "c1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if !containerDone(s) {
		t.Error("probe goroutines outlived Run")
	}
	m.Start(pod, c, "c2", time.Now())
	if lookup(m, "c2") != nil {
		t.Error("Start after Run ended registered a container")
	}
}

func TestPodIPArrivesLater(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	ip, port := hostPort(t, srv.URL)
	m := startManager(t, Config{Runtime: &fakeExec{}}, time.Second)
	pod, c := testPod("")
	c.ReadinessProbe = &v1.Probe{PeriodSeconds: 100, TimeoutSeconds: 5,
		ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Port: intstr.FromInt(port)}}}
	start := time.Now()
	m.Start(pod, c, "c1", start)
	if m.Ready("c1") {
		t.Fatal("ready without an IP")
	}
	withIP := pod.DeepCopy()
	withIP.Status.PodIP = ip
	m.Start(withIP, &withIP.Spec.Containers[0], "c1", start)
	// The period is 100 s: only the kick of the second Start probes in time.
	waitFor(t, "ready", func() bool { return m.Ready("c1") })
}

func TestReadyWithinAPeriodWhenTheFirstProbesFail(t *testing.T) {
	t.Parallel()
	exec := &scripted{}
	exec.set(1, 1, 0) // not listening yet, twice
	rec := record.NewFakeRecorder(100)
	m := startManager(t, Config{Runtime: exec, Recorder: rec}, time.Second)
	pod, c := testPod("10.0.0.1")
	c.ReadinessProbe = execProbe(v1.Probe{PeriodSeconds: 30})
	m.Start(pod, c, "c1", time.Now())
	// The period is 30 s: only early probes make it in time.
	waitFor(t, "ready", func() bool { return m.Ready("c1") })
	if got := len(rec.Events); got != 1 {
		t.Errorf("%d events, want 1 (the first, counted, failure)", got)
	}
}
