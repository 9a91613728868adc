package pods

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/agent/podstatus"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeProber records probe starts and hook runs; liveness failures and
// hook errors are set per container name.
type fakeProber struct {
	mu        sync.Mutex
	started   map[string]string // container ID → container name
	ips       map[string]string // container ID → the pod IP Start was given
	stopped   []string
	hooks     []string         // "postStart <name>" / "preStop <name>"
	liveFail  map[string]bool  // by container ID
	hookErr   map[string]error // by "<kind> <name>"
	notReady  map[string]bool
	stoppedAt map[types.UID]bool
}

func newFakeProber() *fakeProber {
	return &fakeProber{started: map[string]string{}, ips: map[string]string{}, liveFail: map[string]bool{}, hookErr: map[string]error{}, notReady: map[string]bool{}, stoppedAt: map[types.UID]bool{}}
}

func (p *fakeProber) Start(pod *v1.Pod, c *v1.Container, id string, _ time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started[id] = c.Name
	p.ips[id] = pod.Status.PodIP
}

// ip is the pod IP the prober was last given for container id.
func (p *fakeProber) ip(id string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ips[id]
}
func (p *fakeProber) Stop(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = append(p.stopped, id)
	delete(p.started, id)
}
func (p *fakeProber) StopPod(uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stoppedAt[uid] = true
}
func (p *fakeProber) Ready(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.notReady[id]
}
func (p *fakeProber) Started(string) bool { return true }
func (p *fakeProber) Liveness(id string) (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.liveFail[id] {
		return true, "Liveness probe failed: boom"
	}
	return false, ""
}
func (p *fakeProber) RunHook(_ context.Context, _ *v1.Pod, c *v1.Container, _ string, h *v1.LifecycleHandler) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	kind := "preStop"
	if c.Lifecycle.PostStart == h {
		kind = "postStart"
	}
	key := kind + " " + c.Name
	p.hooks = append(p.hooks, key)
	return p.hookErr[key]
}

// recordingStatus is a StatusComputer and StatusWriter that keeps what it
// was given: the last Observed and the last status per pod.
type recordingStatus struct {
	mu       sync.Mutex
	observed map[types.UID]podstatus.Observed
	set      map[types.UID]v1.PodStatus
	forgot   map[types.UID]bool
}

func newRecordingStatus() *recordingStatus {
	return &recordingStatus{observed: map[types.UID]podstatus.Observed{}, set: map[types.UID]v1.PodStatus{}, forgot: map[types.UID]bool{}}
}

func (r *recordingStatus) Compute(pod *v1.Pod, obs podstatus.Observed, _ podstatus.Probes, _ time.Time) v1.PodStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observed[pod.UID] = obs
	return minimalStatus(pod, obs)
}

func (r *recordingStatus) Set(pod *v1.Pod, st v1.PodStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.set[pod.UID] = st
}

func (r *recordingStatus) Forget(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgot[uid] = true
}

func (r *recordingStatus) last(uid types.UID) podstatus.Observed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.observed[uid]
}

// minimalStatus is a stand-in for podstatus.Compute good enough for these
// tests: phase, pod IP and container states.
func minimalStatus(pod *v1.Pod, obs podstatus.Observed) v1.PodStatus {
	st := v1.PodStatus{Phase: v1.PodPending, HostIP: obs.NodeIP, QOSClass: pod.Status.QOSClass, StartTime: pod.Status.StartTime}
	if st.StartTime == nil {
		now := metav1.Now()
		st.StartTime = &now
	}
	if obs.Sandbox != nil && obs.Sandbox.IP != "" {
		st.PodIP = obs.Sandbox.IP
	}
	running, exited, failed := 0, 0, 0
	for _, c := range pod.Spec.Containers {
		cs := v1.ContainerStatus{Name: c.Name, Image: c.Image}
		if w, ok := obs.Waiting[c.Name]; ok {
			cs.State.Waiting = &v1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
		}
		if ctrs := obs.Containers[c.Name]; len(ctrs) > 0 {
			cur := ctrs[0]
			cs.RestartCount = int32(cur.Attempt)
			cs.ContainerID = "containerd://" + cur.ID
			switch cur.State {
			case cri.ContainerRunning:
				running++
				cs.State = v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(cur.StartedAt)}}
				cs.Ready = true
			case cri.ContainerExited:
				exited++
				if cur.ExitCode != 0 {
					failed++
				}
				if cs.State.Waiting == nil {
					cs.State.Terminated = &v1.ContainerStateTerminated{ExitCode: cur.ExitCode, Reason: cur.Reason, Message: cur.Message}
				}
			}
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	switch {
	case obs.Phase != "":
		st.Phase, st.Reason, st.Message = obs.Phase, obs.Reason, obs.Message
	case exited == len(pod.Spec.Containers) && pod.Spec.RestartPolicy == v1.RestartPolicyNever && failed > 0:
		st.Phase = v1.PodFailed
	case exited == len(pod.Spec.Containers) && pod.Spec.RestartPolicy != v1.RestartPolicyAlways && failed == 0:
		st.Phase = v1.PodSucceeded
	case running > 0 || exited > 0:
		st.Phase = v1.PodRunning
	}
	return st
}

// apiWriter writes statuses to the API server synchronously (a stand-in
// for podstatus.Writer in the tests that run a Manager).
type apiWriter struct {
	client kubernetes.Interface
	t      testing.TB
}

func (w apiWriter) Set(pod *v1.Pod, st v1.PodStatus) {
	p := pod.DeepCopy()
	p.Status = st
	if _, err := w.client.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		w.t.Logf("status of %s: %v", p.Name, err)
	}
}
func (apiWriter) Forget(types.UID) {}

// unreachableClient is a client for tests that never call the API.
func unreachableClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type testEnv struct {
	m      *Manager
	rt     *cri.Fake
	clock  *clock
	prober *fakeProber
	status *recordingStatus
	events *record.FakeRecorder

	mu sync.Mutex
	// forgot records Config.ForgetNeighbor's calls: the address and how
	// many containers the runtime held then.
	forgot []string
}

// newTestEnv returns a Manager over a cri.Fake holding the busybox image,
// with a fake clock; its pods are synced by calling sync.
func newTestEnv(t *testing.T, client kubernetes.Interface) *testEnv {
	t.Helper()
	if client == nil {
		client = unreachableClient(t)
	}
	e := &testEnv{
		rt: cri.NewFake("busybox"), clock: newClock(), prober: newFakeProber(), status: newRecordingStatus(),
		events: record.NewFakeRecorder(1000),
	}
	e.rt.Now = e.clock.Now
	m, err := New(Config{
		Client: client, NodeName: "node-1", NodeIP: "192.0.2.10",
		Runtime: e.rt, Prober: e.prober, Status: e.status, Writer: e.status, Recorder: e.events,
		RootDir: t.TempDir(), ClusterDNS: []string{"10.96.0.10"}, ResolvConf: "/nonexistent",
		Now: e.clock.Now,
		ForgetNeighbor: func(ip netip.Addr) error {
			cs, _ := e.rt.ListContainers(context.Background(), cri.ContainerFilter{})
			e.mu.Lock()
			defer e.mu.Unlock()
			e.forgot = append(e.forgot, fmt.Sprintf("%s with %d containers", ip, len(cs)))
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	return e
}

// sync records pod as the informer would and runs one sync of it.
func (e *testEnv) sync(t *testing.T, pod *v1.Pod) time.Duration {
	t.Helper()
	if pod != nil {
		e.m.storePod(pod)
	}
	after, err := e.m.syncPod(context.Background(), pod.UID)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return after
}

// containers returns "name/attempt STATE" of the runtime's containers,
// sorted, optionally only those in state.
func (e *testEnv) containers(t *testing.T) []string {
	t.Helper()
	cs, err := e.rt.ListContainers(context.Background(), cri.ContainerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s/%d %s", c.Name, c.Attempt, c.State))
	}
	slices.Sort(out)
	return out
}

// running returns the ID of the running container of name.
func (e *testEnv) running(t *testing.T, name string) string {
	t.Helper()
	cs, err := e.rt.ListContainers(context.Background(), cri.ContainerFilter{State: cri.ContainerRunning, Labels: map[string]string{LabelContainerName: name}})
	if err != nil || len(cs) != 1 {
		t.Fatalf("running container %s: %d found, %v\n%s", name, len(cs), err, e.rt.Dump())
	}
	return cs[0].ID
}

// drainEvents returns the events recorded so far.
func (e *testEnv) drainEvents() []string {
	var out []string
	for {
		select {
		case ev := <-e.events.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func hasEvent(events []string, prefix string) bool {
	return slices.ContainsFunc(events, func(e string) bool { return strings.HasPrefix(e, prefix) })
}

func testPod(name string, mutate ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: map[string]string{"app": name}},
		Spec: v1.PodSpec{
			NodeName:      "node-1",
			RestartPolicy: v1.RestartPolicyAlways,
			DNSPolicy:     v1.DNSClusterFirst,
			Containers:    []v1.Container{{Name: "main", Image: "busybox", TerminationMessagePath: "/dev/termination-log"}},
		},
		Status: v1.PodStatus{Phase: v1.PodPending, QOSClass: v1.PodQOSBestEffort},
	}
	for _, f := range mutate {
		f(p)
	}
	return p
}

// testWriter sends log output to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// poll calls f every 20ms until it returns nil or timeout passes, then
// fails with f's last error.
func poll(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, timeout, err)
		}
		<-time.After(20 * time.Millisecond)
	}
}
