package pods

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/agent/podstatus"
)

func TestSyncStartsPod(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pod := testPod("p", func(p *v1.Pod) {
		p.Spec.Hostname, p.Spec.Subdomain = "web", "sub"
		p.Spec.HostAliases = []v1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo", "bar"}}}
	})
	e.sync(t, pod)

	if diff := cmp.Diff([]string{"main/0 Running"}, e.containers(t)); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	obs := e.status.last(pod.UID)
	if obs.Sandbox == nil || obs.Sandbox.State != cri.SandboxReady || obs.Sandbox.IP == "" {
		t.Fatalf("Observed.Sandbox = %+v, want a Ready sandbox with an IP", obs.Sandbox)
	}
	if len(obs.Waiting) != 0 {
		t.Errorf("Observed.Waiting = %v, want none", obs.Waiting)
	}
	if cs := obs.Containers["main"]; len(cs) != 1 || cs[0].State != cri.ContainerRunning || cs[0].StartedAt.IsZero() {
		t.Errorf("Observed.Containers[main] = %+v, want one running container with its full status", cs)
	}
	if obs.NodeIP != "192.0.2.10" {
		t.Errorf("Observed.NodeIP = %q", obs.NodeIP)
	}
	hosts, err := os.ReadFile(filepath.Join(e.m.cfg.RootDir, "pods", "uid-p", "etc-hosts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"127.0.0.1\tlocalhost\n", obs.Sandbox.IP + "\tweb.sub.ns.svc.cluster.local\tweb\n", "10.1.2.3\tfoo\tbar\n"} {
		if !strings.Contains(string(hosts), want) {
			t.Errorf("etc-hosts lacks %q:\n%s", want, hosts)
		}
	}
	if _, err := os.Stat(filepath.Join(e.m.cfg.RootDir, "pods", "uid-p", "containers", "main", "0")); err != nil {
		t.Errorf("termination message file: %v", err)
	}
	events := e.drainEvents()
	for _, want := range []string{"Normal Created Created container main", "Normal Started Started container main"} {
		if !hasEvent(events, want) {
			t.Errorf("events %q lack %q", events, want)
		}
	}
	// A second sync changes nothing.
	e.sync(t, pod)
	if diff := cmp.Diff([]string{"main/0 Running"}, e.containers(t)); diff != "" {
		t.Errorf("containers after a second sync (-want +got):\n%s", diff)
	}
}

func TestRestartPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy      v1.RestartPolicy
		code        int32
		wantRestart bool
	}{
		{v1.RestartPolicyAlways, 0, true},
		{v1.RestartPolicyAlways, 1, true},
		{v1.RestartPolicyOnFailure, 0, false},
		{v1.RestartPolicyOnFailure, 1, true},
		{v1.RestartPolicyNever, 0, false},
		{v1.RestartPolicyNever, 1, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy)+"/"+string(rune('0'+tt.code)), func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil)
			pod := testPod("p", func(p *v1.Pod) { p.Spec.RestartPolicy = tt.policy })
			e.sync(t, pod)
			e.rt.Exit(e.running(t, "main"), tt.code, "")
			e.clock.Step(time.Second)
			e.sync(t, pod)
			want := []string{"main/0 Exited"}
			if tt.wantRestart {
				want = append(want, "main/1 Running")
			}
			if diff := cmp.Diff(want, e.containers(t)); diff != "" {
				t.Errorf("containers (-want +got):\n%s", diff)
			}
			sbs, _ := e.rt.ListSandboxes(context.Background(), nil)
			wantState := cri.SandboxReady
			if !tt.wantRestart {
				wantState = cri.SandboxNotReady // a finished pod's sandbox is stopped
			}
			if len(sbs) != 1 || sbs[0].State != wantState {
				t.Errorf("sandboxes = %+v, want one %s", sbs, wantState)
			}
		})
	}
}

func TestCrashLoopBackOff(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pod := testPod("p")
	e.sync(t, pod)

	// The first restart is immediate.
	e.rt.Exit(e.running(t, "main"), 1, "")
	e.clock.Step(time.Second)
	e.sync(t, pod)
	if diff := cmp.Diff([]string{"main/0 Exited", "main/1 Running"}, e.containers(t)); diff != "" {
		t.Fatalf("after the first exit (-want +got):\n%s", diff)
	}

	// Then 10s, 20s, 40s: each exit waits out the back-off.
	for i, delay := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second} {
		attempt := i + 1
		e.rt.Exit(e.running(t, "main"), 1, "")
		e.clock.Step(time.Second)
		e.drainEvents()
		after := e.sync(t, pod)
		if after != delay-time.Second {
			t.Errorf("attempt %d: requeue after %v, want %v", attempt, after, delay-time.Second)
		}
		obs := e.status.last(pod.UID)
		want := podstatus.Waiting{Reason: "CrashLoopBackOff", Message: "back-off " + delay.String() + " restarting failed container=main pod=p_ns(uid-p)"}
		if diff := cmp.Diff(want, obs.Waiting["main"]); diff != "" {
			t.Errorf("attempt %d: waiting (-want +got):\n%s", attempt, diff)
		}
		if ev := e.drainEvents(); !hasEvent(ev, "Warning BackOff Back-off restarting failed container main in pod p_ns(uid-p)") {
			t.Errorf("attempt %d: events %q lack BackOff", attempt, ev)
		}
		// Still in back-off just before it ends.
		e.clock.Step(delay - 2*time.Second)
		e.sync(t, pod)
		// The current (exited) container and the one before it stay.
		if diff := cmp.Diff([]string{"main/" + itoa(attempt-1) + " Exited", "main/" + itoa(attempt) + " Exited"}, e.containers(t)); diff != "" {
			t.Fatalf("attempt %d: before the back-off ended (-want +got):\n%s", attempt, diff)
		}
		e.clock.Step(time.Second)
		e.sync(t, pod)
		// Garbage: besides the running one, only the newest exited
		// container stays.
		want2 := []string{"main/" + itoa(attempt) + " Exited", "main/" + itoa(attempt+1) + " Running"}
		if diff := cmp.Diff(want2, e.containers(t)); diff != "" {
			t.Fatalf("attempt %d: after the back-off (-want +got):\n%s", attempt, diff)
		}
	}
	// Ten minutes of running reset the back-off.
	e.clock.Step(11 * time.Minute)
	e.rt.Exit(e.running(t, "main"), 1, "")
	e.sync(t, pod)
	if got := e.containers(t); got[len(got)-1] != "main/5 Running" {
		t.Errorf("after a long run: %v, want an immediate restart", got)
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

func TestInitContainers(t *testing.T) {
	t.Parallel()
	withInit := func(policy v1.RestartPolicy) *v1.Pod {
		return testPod("p", func(p *v1.Pod) {
			p.Spec.RestartPolicy = policy
			p.Spec.InitContainers = []v1.Container{{Name: "init1", Image: "busybox"}, {Name: "init2", Image: "busybox"}}
		})
	}
	t.Run("in order", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, nil)
		pod := withInit(v1.RestartPolicyAlways)
		e.sync(t, pod)
		if diff := cmp.Diff([]string{"init1/0 Running"}, e.containers(t)); diff != "" {
			t.Fatalf("first (-want +got):\n%s", diff)
		}
		obs := e.status.last(pod.UID)
		if obs.Waiting["main"].Reason != "PodInitializing" || obs.Waiting["init2"].Reason != "PodInitializing" {
			t.Errorf("waiting = %v, want PodInitializing for init2 and main", obs.Waiting)
		}
		e.sync(t, pod) // a running init container is waited for
		e.rt.Exit(e.running(t, "init1"), 0, "")
		e.sync(t, pod)
		if diff := cmp.Diff([]string{"init1/0 Exited", "init2/0 Running"}, e.containers(t)); diff != "" {
			t.Fatalf("second (-want +got):\n%s", diff)
		}
		e.rt.Exit(e.running(t, "init2"), 0, "")
		e.sync(t, pod)
		if diff := cmp.Diff([]string{"init1/0 Exited", "init2/0 Exited", "main/0 Running"}, e.containers(t)); diff != "" {
			t.Fatalf("third (-want +got):\n%s", diff)
		}
		// App container restarts do not rerun init containers.
		e.rt.Exit(e.running(t, "main"), 0, "")
		e.sync(t, pod)
		if diff := cmp.Diff([]string{"init1/0 Exited", "init2/0 Exited", "main/0 Exited", "main/1 Running"}, e.containers(t)); diff != "" {
			t.Fatalf("after an app restart (-want +got):\n%s", diff)
		}
	})
	t.Run("failure restarts with OnFailure", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, nil)
		pod := withInit(v1.RestartPolicyOnFailure)
		e.sync(t, pod)
		e.rt.Exit(e.running(t, "init1"), 2, "")
		e.sync(t, pod)
		if diff := cmp.Diff([]string{"init1/0 Exited", "init1/1 Running"}, e.containers(t)); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
	})
	t.Run("failure with Never fails the pod", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, nil)
		pod := withInit(v1.RestartPolicyNever)
		e.sync(t, pod)
		e.rt.Exit(e.running(t, "init1"), 2, "")
		e.sync(t, pod)
		e.sync(t, pod)
		if diff := cmp.Diff([]string{"init1/0 Exited"}, e.containers(t)); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
		sbs, _ := e.rt.ListSandboxes(context.Background(), nil)
		if len(sbs) != 1 || sbs[0].State != cri.SandboxNotReady {
			t.Errorf("sandboxes = %+v, want one, stopped", sbs)
		}
	})
	t.Run("sidecar keeps running", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, nil)
		always := v1.ContainerRestartPolicyAlways
		pod := testPod("p", func(p *v1.Pod) {
			p.Spec.RestartPolicy = v1.RestartPolicyNever
			p.Spec.InitContainers = []v1.Container{{Name: "side", Image: "busybox", RestartPolicy: &always}}
		})
		e.sync(t, pod)
		if diff := cmp.Diff([]string{"main/0 Running", "side/0 Running"}, e.containers(t)); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
		e.rt.Exit(e.running(t, "side"), 1, "")
		e.sync(t, pod)
		if diff := cmp.Diff([]string{"main/0 Running", "side/0 Exited", "side/1 Running"}, e.containers(t)); diff != "" {
			t.Fatalf("sidecar restart (-want +got):\n%s", diff)
		}
		// The main container finishing ends the pod and stops the sidecar.
		e.rt.Exit(e.running(t, "main"), 0, "")
		e.sync(t, pod)
		if diff := cmp.Diff([]string{"main/0 Exited", "side/0 Exited", "side/1 Exited"}, e.containers(t)); diff != "" {
			t.Fatalf("after main (-want +got):\n%s", diff)
		}
	})
}

func TestLivenessFailureRestarts(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pod := testPod("p", func(p *v1.Pod) {
		p.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}}
	})
	e.sync(t, pod)
	id := e.running(t, "main")
	e.prober.liveFail[id] = true
	e.drainEvents()
	e.sync(t, pod)
	if diff := cmp.Diff([]string{"main/0 Exited", "main/1 Running"}, e.containers(t)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if ev := e.drainEvents(); !hasEvent(ev, "Normal Killing Container main failed liveness probe, will be restarted") {
		t.Errorf("events %q lack Killing", ev)
	}
	if diff := cmp.Diff([]string{"preStop main"}, e.prober.hooks); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	if _, ok := e.prober.started[id]; ok {
		t.Errorf("probes of the killed container %s still started", id)
	}
}

func TestPostStartHookFailure(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pod := testPod("p", func(p *v1.Pod) {
		p.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"false"}}}}
	})
	e.prober.hookErr["postStart main"] = errors.New("command 'false' exited with 1")
	after := e.sync(t, pod)
	if diff := cmp.Diff([]string{"main/0 Exited"}, e.containers(t)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if after == 0 {
		t.Errorf("no requeue after a failed postStart hook")
	}
	if ev := e.drainEvents(); !hasEvent(ev, "Warning FailedPostStartHook command 'false' exited with 1") {
		t.Errorf("events %q lack FailedPostStartHook", ev)
	}
	delete(e.prober.hookErr, "postStart main")
	e.sync(t, pod)
	if diff := cmp.Diff([]string{"main/0 Exited", "main/1 Running"}, e.containers(t)); diff != "" {
		t.Fatalf("after the hook passes (-want +got):\n%s", diff)
	}
}

func TestSandboxRecreated(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pod := testPod("p")
	e.sync(t, pod)
	sbs, _ := e.rt.ListSandboxes(context.Background(), nil)
	first, err := e.rt.SandboxStatus(context.Background(), sbs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	// Probes go to the sandbox's address before the status shows it.
	if got := e.prober.ip(e.running(t, "main")); got != first.IP {
		t.Errorf("prober given pod IP %q, want the sandbox's %s", got, first.IP)
	}
	// The status as written: the first sandbox's IP.
	pod = pod.DeepCopy()
	pod.Status.PodIP, pod.Status.PodIPs = first.IP, []v1.PodIP{{IP: first.IP}}
	e.sync(t, pod)
	if err := e.rt.StopSandbox(context.Background(), sbs[0].ID); err != nil { // the pause process died
		t.Fatal(err)
	}
	e.sync(t, pod)
	sbs, _ = e.rt.ListSandboxes(context.Background(), nil)
	var got []string
	for _, sb := range sbs {
		got = append(got, string(sb.State)+" "+itoa(int(sb.Attempt)))
	}
	if diff := cmp.Diff([]string{"NotReady 0", "Ready 1"}, got); diff != "" {
		t.Errorf("sandboxes (-want +got):\n%s", diff)
	}
	// The restart count goes on across sandboxes.
	if diff := cmp.Diff([]string{"main/0 Exited", "main/1 Running"}, e.containers(t)); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	// The new container's probes go to the new sandbox, not to the
	// address the pod's status still shows.
	second := ""
	for _, sb := range sbs {
		if sb.State == cri.SandboxReady {
			st, err := e.rt.SandboxStatus(context.Background(), sb.ID)
			if err != nil {
				t.Fatal(err)
			}
			second = st.IP
		}
	}
	if got := e.prober.ip(e.running(t, "main")); got != second || got == first.IP {
		t.Errorf("prober given pod IP %q after the sandbox was re-created, want the new sandbox's %s (the old one's was %s)", got, second, first.IP)
	}
	// Once the old sandbox holds nothing worth keeping, it goes.
	e.rt.Exit(e.running(t, "main"), 0, "")
	e.sync(t, pod)
	sbs, _ = e.rt.ListSandboxes(context.Background(), nil)
	if len(sbs) != 1 || sbs[0].Attempt != 1 {
		t.Errorf("sandboxes = %+v, want only attempt 1", sbs)
	}
}

func TestActiveDeadline(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pod := testPod("p", func(p *v1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(30)) })
	after := e.sync(t, pod)
	if after != 30*time.Second {
		t.Errorf("requeue after %v, want 30s", after)
	}
	e.clock.Step(31 * time.Second)
	e.sync(t, pod)
	if diff := cmp.Diff([]string{"main/0 Exited"}, e.containers(t)); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	obs := e.status.last(pod.UID)
	if obs.Phase != v1.PodFailed || obs.Reason != "DeadlineExceeded" {
		t.Errorf("Observed phase %q reason %q, want Failed DeadlineExceeded", obs.Phase, obs.Reason)
	}
}

func TestTerminationMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  v1.TerminationMessagePolicy
		file    string
		log     string
		code    int32
		wantMsg string
	}{
		{name: "file", policy: v1.TerminationMessageReadFile, file: "bye\n", code: 0, wantMsg: "bye\n"},
		{name: "no file, no fallback", policy: v1.TerminationMessageReadFile, log: "2026-01-01T00:00:00Z stderr F oops\n", code: 1, wantMsg: ""},
		{name: "fallback to logs", policy: v1.TerminationMessageFallbackToLogsOnError,
			log: "2026-01-01T00:00:00Z stdout F one\n2026-01-01T00:00:00Z stderr P tw\n2026-01-01T00:00:00Z stderr F o\n", code: 1, wantMsg: "one\ntwo\n"},
		{name: "fallback only on error", policy: v1.TerminationMessageFallbackToLogsOnError, log: "2026-01-01T00:00:00Z stdout F one\n", code: 0, wantMsg: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil)
			pod := testPod("p", func(p *v1.Pod) {
				p.Spec.RestartPolicy = v1.RestartPolicyNever
				p.Spec.Containers[0].TerminationMessagePolicy = tt.policy
			})
			e.sync(t, pod)
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(e.m.cfg.RootDir, "pods", "uid-p", "containers", "main", "0"), []byte(tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			logFile := filepath.Join(e.m.logDir("ns", "p", "uid-p"), "main", "0.log")
			if err := os.WriteFile(logFile, []byte(tt.log), 0o644); err != nil {
				t.Fatal(err)
			}
			e.rt.Exit(e.running(t, "main"), tt.code, "")
			e.sync(t, pod)
			cs := e.status.last(pod.UID).Containers["main"]
			if len(cs) != 1 {
				t.Fatalf("containers = %+v", cs)
			}
			if cs[0].Message != tt.wantMsg {
				t.Errorf("Message = %q, want %q", cs[0].Message, tt.wantMsg)
			}
		})
	}
}

func TestAdoptionAndOrphans(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pod := testPod("p")
	e.sync(t, pod)
	id := e.running(t, "main")
	// An orphan: a pod this node does not run (any more).
	ctx := context.Background()
	orphanSB := cri.SandboxConfig{Name: "gone", Namespace: "ns", UID: "uid-gone", Labels: map[string]string{LabelPodUID: "uid-gone"}}
	sbID, err := e.rt.RunSandbox(ctx, orphanSB)
	if err != nil {
		t.Fatal(err)
	}
	cid, err := e.rt.CreateContainer(ctx, sbID, orphanSB, cri.ContainerConfig{Name: "x", Image: "busybox", Labels: map[string]string{LabelPodUID: "uid-gone", LabelContainerName: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rt.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}

	// A new agent over the same runtime.
	e2 := newTestEnv(t, nil)
	e2.rt = e.rt
	e2.m.cfg.Runtime = e.rt
	e2.sync(t, pod)
	if got := e2.running(t, "main"); got != id {
		t.Errorf("running container after adoption = %s, want the adopted %s", got, id)
	}
	if _, ok := e2.prober.started[id]; !ok {
		t.Errorf("probes of the adopted container not started")
	}
	if _, err := e2.m.syncPod(ctx, types.UID("uid-gone")); err != nil {
		t.Fatalf("sync of the orphan: %v", err)
	}
	if diff := cmp.Diff([]string{"main/0 Running"}, e2.containers(t)); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	if sbs, _ := e.rt.ListSandboxes(ctx, map[string]string{LabelPodUID: "uid-gone"}); len(sbs) != 0 {
		t.Errorf("orphan sandboxes left: %+v", sbs)
	}
}

func TestForceDeletedPodCleanedUp(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pod := testPod("p", func(p *v1.Pod) {
		p.Spec.Containers[0].Lifecycle = &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}}
	})
	e.sync(t, pod)
	e.m.podGone(pod)
	if _, err := e.m.syncPod(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
	if got := e.containers(t); len(got) != 0 {
		t.Errorf("containers left: %v", got)
	}
	if _, err := os.Stat(e.m.podDir(pod.UID)); !os.IsNotExist(err) {
		t.Errorf("pod dir still there: %v", err)
	}
	if _, err := os.Stat(e.m.logDir("ns", "p", pod.UID)); !os.IsNotExist(err) {
		t.Errorf("log dir still there: %v", err)
	}
	if !e.status.forgot[pod.UID] || !e.prober.stoppedAt[pod.UID] {
		t.Errorf("status forgotten %v, probes stopped %v; want both", e.status.forgot[pod.UID], e.prober.stoppedAt[pod.UID])
	}
	if diff := cmp.Diff([]string{"preStop main"}, e.prober.hooks); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	e.m.mu.Lock()
	n := len(e.m.pods)
	e.m.mu.Unlock()
	if n != 0 {
		t.Errorf("%d pods still held", n)
	}
}

func TestImagePullError(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pod := testPod("p", func(p *v1.Pod) { p.Spec.Containers[0].Image = "absent:1" })
	after := e.sync(t, pod)
	if after != imageRetry {
		t.Errorf("requeue after %v, want %v", after, imageRetry)
	}
	w := e.status.last(pod.UID).Waiting["main"]
	if w.Reason != "ErrImagePull" || !strings.Contains(w.Message, "absent:1") {
		t.Errorf("waiting = %+v, want ErrImagePull", w)
	}
	e.rt.AddImage("absent:1")
	e.sync(t, pod)
	if diff := cmp.Diff([]string{"main/0 Running"}, e.containers(t)); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
}

func TestTerminalPodIsLeftAlone(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pod := testPod("p")
	e.sync(t, pod)
	failed := pod.DeepCopy()
	failed.Status.Phase, failed.Status.Reason = v1.PodFailed, "Evicted"
	e.sync(t, failed)
	e.sync(t, failed)
	if diff := cmp.Diff([]string{"main/0 Exited"}, e.containers(t)); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	if obs := e.status.last(pod.UID); obs.Phase != v1.PodFailed || obs.Reason != "Evicted" {
		t.Errorf("Observed phase %q reason %q, want the API's Failed Evicted", obs.Phase, obs.Reason)
	}
}

func TestEvict(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pod := testPod("p")
	e.sync(t, pod)
	if got := e.m.ActivePods(); len(got) != 1 || got[0].UID != pod.UID {
		t.Fatalf("ActivePods = %v, want the pod", got)
	}
	done := make(chan error, 1)
	go func() {
		done <- e.m.Evict(context.Background(), pod, "Evicted", "The node was low on resource: memory.")
	}()
	poll(t, 5*time.Second, "eviction requested", func() error {
		e.m.mu.Lock()
		defer e.m.mu.Unlock()
		if e.m.pods[pod.UID].evict == nil {
			return errors.New("not yet")
		}
		return nil
	})
	e.sync(t, pod)
	if err := <-done; err != nil {
		t.Fatalf("Evict: %v", err)
	}
	if diff := cmp.Diff([]string{"main/0 Exited"}, e.containers(t)); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	if obs := e.status.last(pod.UID); obs.Phase != v1.PodFailed || obs.Reason != "Evicted" || obs.Message != "The node was low on resource: memory." {
		t.Errorf("Observed phase %q reason %q message %q, want Failed Evicted", obs.Phase, obs.Reason, obs.Message)
	}
	if got := e.m.ActivePods(); len(got) != 0 {
		t.Errorf("ActivePods = %v, want none", got)
	}
	if ev := e.drainEvents(); !hasEvent(ev, "Warning Evicted The node was low on resource: memory.") {
		t.Errorf("events %q lack Evicted", ev)
	}
}

func TestImageUpdateRestarts(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	e.rt.AddImage("busybox:2")
	pod := testPod("p", func(p *v1.Pod) { p.Spec.RestartPolicy = v1.RestartPolicyNever })
	e.sync(t, pod)
	updated := pod.DeepCopy()
	updated.Spec.Containers[0].Image = "busybox:2"
	e.drainEvents()
	e.sync(t, updated)
	if diff := cmp.Diff([]string{"main/0 Exited", "main/1 Running"}, e.containers(t)); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	if ev := e.drainEvents(); !hasEvent(ev, "Normal Killing Container main definition changed, will be restarted") {
		t.Errorf("events %q lack Killing", ev)
	}
	cs := e.status.last(pod.UID).Containers["main"]
	if len(cs) == 0 || cs[0].Image != "busybox:2" {
		t.Errorf("current container %+v, want image busybox:2", cs)
	}
}

func TestSidecarBackOffDoesNotHoldAppContainers(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	always := v1.ContainerRestartPolicyAlways
	pod := testPod("p", func(p *v1.Pod) {
		p.Spec.InitContainers = []v1.Container{{Name: "side", Image: "busybox", RestartPolicy: &always}}
	})
	e.sync(t, pod)
	// Two sidecar exits put it in back-off.
	e.rt.Exit(e.running(t, "side"), 1, "")
	e.sync(t, pod)
	e.rt.Exit(e.running(t, "side"), 1, "")
	e.sync(t, pod)
	if w := e.status.last(pod.UID).Waiting["side"]; w.Reason != "CrashLoopBackOff" {
		t.Fatalf("sidecar waiting = %+v, want CrashLoopBackOff", w)
	}
	// The app container still restarts.
	e.rt.Exit(e.running(t, "main"), 0, "")
	e.sync(t, pod)
	if diff := cmp.Diff([]string{"main/0 Exited", "main/1 Running", "side/0 Exited", "side/1 Exited"}, e.containers(t)); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
}

// An ephemeral container (kubectl debug) starts in the running pod, in the
// process namespace of its target, and is never restarted.
func TestEphemeralContainers(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pod := testPod("p", func(p *v1.Pod) { p.Spec.RestartPolicy = v1.RestartPolicyAlways })
	e.sync(t, pod)
	app := e.running(t, "main")

	pod = pod.DeepCopy()
	pod.Spec.EphemeralContainers = []v1.EphemeralContainer{{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debugger", Image: "busybox", Stdin: true, TTY: true},
		TargetContainerName:      "main",
	}}
	e.sync(t, pod)
	if diff := cmp.Diff([]string{"debugger/0 Running", "main/0 Running"}, e.containers(t)); diff != "" {
		t.Fatalf("after adding the ephemeral container (-want +got):\n%s", diff)
	}
	dbg := e.running(t, "debugger")
	if got := e.rt.Target(dbg); got != app {
		t.Errorf("debugger's target container = %q, want main's %q", got, app)
	}
	e.rt.Exit(dbg, 1, "")
	e.sync(t, pod)
	e.sync(t, pod)
	if diff := cmp.Diff([]string{"debugger/0 Exited", "main/0 Running"}, e.containers(t)); diff != "" {
		t.Fatalf("an exited ephemeral container was restarted or removed (-want +got):\n%s", diff)
	}
}

// TestSyncForgetsNeighbor: a new sandbox's address is handed to
// Config.ForgetNeighbor once, before any container starts; host-network
// pods have no address of their own and are left out.
func TestSyncForgetsNeighbor(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	pod := testPod("p")
	e.sync(t, pod)
	e.sync(t, pod)
	hostNet := testPod("h", func(p *v1.Pod) { p.Spec.HostNetwork = true })
	e.sync(t, hostNet)

	obs := e.status.last(pod.UID)
	if obs.Sandbox == nil || obs.Sandbox.IP == "" {
		t.Fatalf("Observed.Sandbox = %+v, want one with an IP", obs.Sandbox)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if diff := cmp.Diff([]string{obs.Sandbox.IP + " with 0 containers"}, e.forgot); diff != "" {
		t.Errorf("ForgetNeighbor calls (-want +got):\n%s", diff)
	}
}

// TestSyncRefusesTakenHostPort: a pod bound straight to the node whose
// host port another running pod holds is refused (Failed, NodePorts) and
// never gets a sandbox; other ports, another protocol and, once the holder
// is gone, the same port are taken.
func TestSyncRefusesTakenHostPort(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	withPort := func(port int32, proto v1.Protocol) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: port, Protocol: proto}}
		}
	}
	holder := testPod("holder", withPort(8080, ""))
	e.sync(t, holder)
	clash := testPod("clash", withPort(8080, v1.ProtocolTCP))
	e.sync(t, clash)
	e.sync(t, clash) // stays refused
	udp := testPod("udp", withPort(8080, v1.ProtocolUDP))
	e.sync(t, udp)
	other := testPod("other", withPort(9090, ""))
	e.sync(t, other)

	for name, want := range map[*v1.Pod]string{holder: "", clash: "Failed/NodePorts", udp: "", other: ""} {
		obs := e.status.last(name.UID)
		got := ""
		if obs.Phase == v1.PodFailed {
			got = string(obs.Phase) + "/" + obs.Reason
		}
		if got != want {
			t.Errorf("%s: phase/reason %q (%s), want %q", name.Name, got, obs.Message, want)
		}
	}
	if obs := e.status.last(clash.UID); obs.Sandbox != nil || obs.Message != "Pod was rejected: Predicate NodePorts failed" {
		t.Errorf("refused pod: sandbox %+v, message %q", obs.Sandbox, obs.Message)
	}
	if !hasEvent(e.drainEvents(), "Warning NodePorts Pod was rejected: Predicate NodePorts failed") {
		t.Error("no NodePorts event for the refused pod")
	}

	// Once the holder has finished, the port is free again.
	done := holder.DeepCopy()
	done.Status.Phase = v1.PodSucceeded
	e.sync(t, done)
	late := testPod("late", withPort(8080, ""))
	e.sync(t, late)
	if obs := e.status.last(late.UID); obs.Phase == v1.PodFailed || obs.Sandbox == nil {
		t.Errorf("a pod asking for a freed port: %+v", obs)
	}
}
