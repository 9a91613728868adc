package podstatus

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

var (
	t0  = time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)
	now = t0.Add(time.Minute + 300*time.Millisecond)
)

// probeSet answers probes from sets of unready and unstarted IDs.
type probeSet struct{ unready, unstarted map[string]bool }

func (p probeSet) Ready(id string) bool   { return !p.unready[id] }
func (p probeSet) Started(id string) bool { return !p.unstarted[id] }

func testPod(policy v1.RestartPolicy, containers ...string) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"},
		Spec:       v1.PodSpec{RestartPolicy: policy, NodeName: "n1"},
		Status:     v1.PodStatus{Phase: v1.PodPending, QOSClass: v1.PodQOSBestEffort},
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: c, Image: "img-" + c})
	}
	return p
}

func withInit(p *v1.Pod, sidecar bool, names ...string) *v1.Pod {
	for _, n := range names {
		c := v1.Container{Name: n, Image: "img-" + n}
		if sidecar {
			always := v1.ContainerRestartPolicyAlways
			c.RestartPolicy = &always
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
	return p
}

func readySandbox() *cri.Sandbox {
	return &cri.Sandbox{ID: "sb1", State: cri.SandboxReady, IP: "10.0.0.5", CreatedAt: t0}
}

func running(name string, attempt uint32) cri.Container {
	return cri.Container{ID: fmt.Sprintf("%s-%d", name, attempt), Name: name, Attempt: attempt, Image: "img-" + name,
		ImageRef: "sha256:" + name, State: cri.ContainerRunning, CreatedAt: t0, StartedAt: t0.Add(time.Second + 500*time.Millisecond)}
}

func exited(name string, attempt uint32, code int32, reason string) cri.Container {
	c := running(name, attempt)
	c.State = cri.ContainerExited
	c.ExitCode = code
	c.Reason = reason
	c.FinishedAt = t0.Add(5 * time.Second)
	return c
}

func observed(sb *cri.Sandbox, cs ...cri.Container) Observed {
	obs := Observed{Sandbox: sb, NodeIP: "192.168.1.10", Containers: map[string][]cri.Container{}}
	for _, c := range cs {
		obs.Containers[c.Name] = append(obs.Containers[c.Name], c)
	}
	return obs
}

// summary is the part of a status the table checks, in readable form.
type summary struct {
	Phase, Reason, PodIP string
	Conditions           []string
	Init, Containers     []string
}

func summarize(s v1.PodStatus) summary {
	out := summary{Phase: string(s.Phase), Reason: s.Reason, PodIP: s.PodIP}
	for _, c := range s.Conditions {
		out.Conditions = append(out.Conditions, strings.TrimSpace(fmt.Sprintf("%s=%s %s %s", c.Type, c.Status, c.Reason, c.Message)))
	}
	state := func(st v1.ContainerState) string {
		switch {
		case st.Running != nil:
			return "running"
		case st.Terminated != nil:
			return fmt.Sprintf("terminated(%s,%d)", st.Terminated.Reason, st.Terminated.ExitCode)
		case st.Waiting != nil:
			return fmt.Sprintf("waiting(%s)", st.Waiting.Reason)
		}
		return "-"
	}
	cs := func(list []v1.ContainerStatus) []string {
		var r []string
		for _, c := range list {
			r = append(r, fmt.Sprintf("%s %s last=%s restarts=%d ready=%v started=%v id=%s",
				c.Name, state(c.State), state(c.LastTerminationState), c.RestartCount, c.Ready, c.Started != nil && *c.Started, c.ContainerID))
		}
		return r
	}
	out.Init = cs(s.InitContainerStatuses)
	out.Containers = cs(s.ContainerStatuses)
	return out
}

func TestCompute(t *testing.T) {
	t.Parallel()
	deleted := metav1.NewTime(t0)
	tests := []struct {
		name   string
		pod    *v1.Pod
		obs    Observed
		probes Probes
		want   summary
	}{
		{
			name: "nothing yet",
			pod:  testPod(v1.RestartPolicyAlways, "app"),
			obs:  observed(nil),
			want: summary{Phase: "Pending", Conditions: []string{
				"PodReadyToStartContainers=False", "Initialized=True", "Ready=False ContainersNotReady containers with unready status: [app]",
				"ContainersReady=False ContainersNotReady containers with unready status: [app]", "PodScheduled=True",
			}, Containers: []string{"app waiting(ContainerCreating) last=- restarts=0 ready=false started=false id="}},
		},
		{
			name: "running and ready; app statuses sorted by name",
			pod:  testPod(v1.RestartPolicyAlways, "web", "app"),
			obs:  observed(readySandbox(), running("web", 0), running("app", 0)),
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=True", "ContainersReady=True", "PodScheduled=True",
			}, Containers: []string{
				"app running last=- restarts=0 ready=true started=true id=containerd://app-0",
				"web running last=- restarts=0 ready=true started=true id=containerd://web-0",
			}},
		},
		{
			name:   "readiness probe failing",
			pod:    testPod(v1.RestartPolicyAlways, "app"),
			obs:    observed(readySandbox(), running("app", 0)),
			probes: probeSet{unready: map[string]bool{"app-0": true}},
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=False ContainersNotReady containers with unready status: [app]",
				"ContainersReady=False ContainersNotReady containers with unready status: [app]", "PodScheduled=True",
			}, Containers: []string{"app running last=- restarts=0 ready=false started=true id=containerd://app-0"}},
		},
		{
			name:   "startup probe not yet passed",
			pod:    testPod(v1.RestartPolicyAlways, "app"),
			obs:    observed(readySandbox(), running("app", 0)),
			probes: probeSet{unstarted: map[string]bool{"app-0": true}},
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=False ContainersNotReady containers with unready status: [app]",
				"ContainersReady=False ContainersNotReady containers with unready status: [app]", "PodScheduled=True",
			}, Containers: []string{"app running last=- restarts=0 ready=false started=false id=containerd://app-0"}},
		},
		{
			name: "never: all exited 0 is Succeeded",
			pod:  testPod(v1.RestartPolicyNever, "app", "b"),
			obs:  observed(readySandbox(), exited("app", 0, 0, "Completed"), exited("b", 0, 0, "")),
			want: summary{Phase: "Succeeded", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True PodCompleted", "Ready=False PodCompleted",
				"ContainersReady=False PodCompleted", "PodScheduled=True",
			}, Containers: []string{
				"app terminated(Completed,0) last=- restarts=0 ready=false started=false id=containerd://app-0",
				"b terminated(Completed,0) last=- restarts=0 ready=false started=false id=containerd://b-0",
			}},
		},
		{
			name: "never: a non-zero exit is Failed",
			pod:  testPod(v1.RestartPolicyNever, "app", "b"),
			obs:  observed(readySandbox(), exited("app", 0, 0, "Completed"), exited("b", 0, 2, "Error")),
			want: summary{Phase: "Failed", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=False PodFailed",
				"ContainersReady=False PodFailed", "PodScheduled=True",
			}, Containers: []string{
				"app terminated(Completed,0) last=- restarts=0 ready=false started=false id=containerd://app-0",
				"b terminated(Error,2) last=- restarts=0 ready=false started=false id=containerd://b-0",
			}},
		},
		{
			name: "never: one still running is Running",
			pod:  testPod(v1.RestartPolicyNever, "app", "b"),
			obs:  observed(readySandbox(), running("app", 0), exited("b", 0, 2, "Error")),
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=False ContainersNotReady containers with unready status: [b]",
				"ContainersReady=False ContainersNotReady containers with unready status: [b]", "PodScheduled=True",
			}, Containers: []string{
				"app running last=- restarts=0 ready=true started=true id=containerd://app-0",
				"b terminated(Error,2) last=- restarts=0 ready=false started=false id=containerd://b-0",
			}},
		},
		{
			name: "onFailure: exited 0 is Succeeded",
			pod:  testPod(v1.RestartPolicyOnFailure, "app"),
			obs:  observed(readySandbox(), exited("app", 3, 0, "Completed"), exited("app", 2, 1, "Error")),
			want: summary{Phase: "Succeeded", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True PodCompleted", "Ready=False PodCompleted",
				"ContainersReady=False PodCompleted", "PodScheduled=True",
			}, Containers: []string{"app terminated(Completed,0) last=terminated(Error,1) restarts=3 ready=false started=false id=containerd://app-3"}},
		},
		{
			name: "onFailure: crash loop back-off is Running",
			pod:  testPod(v1.RestartPolicyOnFailure, "app"),
			obs: func() Observed {
				o := observed(readySandbox(), exited("app", 1, 1, "Error"), exited("app", 0, 1, "Error"))
				o.Waiting = map[string]Waiting{"app": {Reason: "CrashLoopBackOff", Message: "back-off 10s restarting failed container=app pod=p_ns(uid-1)"}}
				return o
			}(),
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=False ContainersNotReady containers with unready status: [app]",
				"ContainersReady=False ContainersNotReady containers with unready status: [app]", "PodScheduled=True",
			}, Containers: []string{"app waiting(CrashLoopBackOff) last=terminated(Error,1) restarts=1 ready=false started=false id=containerd://app-1"}},
		},
		{
			name: "always: restarted after an OOM kill",
			pod:  testPod(v1.RestartPolicyAlways, "app"),
			obs:  observed(readySandbox(), running("app", 2), exited("app", 1, 137, "OOMKilled")),
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=True", "ContainersReady=True", "PodScheduled=True",
			}, Containers: []string{"app running last=terminated(OOMKilled,137) restarts=2 ready=true started=true id=containerd://app-2"}},
		},
		{
			name: "always: every container exited is still Running",
			pod:  testPod(v1.RestartPolicyAlways, "app"),
			obs:  observed(readySandbox(), exited("app", 0, 0, "Completed")),
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=False ContainersNotReady containers with unready status: [app]",
				"ContainersReady=False ContainersNotReady containers with unready status: [app]", "PodScheduled=True",
			}, Containers: []string{"app terminated(Completed,0) last=- restarts=0 ready=false started=false id=containerd://app-0"}},
		},
		{
			name: "image pull back-off",
			pod:  testPod(v1.RestartPolicyAlways, "app"),
			obs: func() Observed {
				o := observed(readySandbox())
				o.Waiting = map[string]Waiting{"app": {Reason: "ImagePullBackOff", Message: `Back-off pulling image "img-app"`}}
				return o
			}(),
			want: summary{Phase: "Pending", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=False ContainersNotReady containers with unready status: [app]",
				"ContainersReady=False ContainersNotReady containers with unready status: [app]", "PodScheduled=True",
			}, Containers: []string{"app waiting(ImagePullBackOff) last=- restarts=0 ready=false started=false id="}},
		},
		{
			name: "init container running",
			pod:  withInit(testPod(v1.RestartPolicyAlways, "app"), false, "init1", "init2"),
			obs:  observed(readySandbox(), running("init1", 0)),
			want: summary{Phase: "Pending", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=False ContainersNotInitialized containers with incomplete status: [init1 init2]",
				"Ready=False ContainersNotReady containers with unready status: [app]",
				"ContainersReady=False ContainersNotReady containers with unready status: [app]", "PodScheduled=True",
			},
				Init: []string{
					"init1 running last=- restarts=0 ready=false started=true id=containerd://init1-0",
					"init2 waiting(PodInitializing) last=- restarts=0 ready=false started=false id=",
				},
				Containers: []string{"app waiting(PodInitializing) last=- restarts=0 ready=false started=false id="}},
		},
		{
			name: "init containers done, app running",
			pod:  withInit(testPod(v1.RestartPolicyAlways, "app"), false, "init1"),
			obs:  observed(readySandbox(), exited("init1", 0, 0, "Completed"), running("app", 0)),
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=True", "ContainersReady=True", "PodScheduled=True",
			},
				Init:       []string{"init1 terminated(Completed,0) last=- restarts=0 ready=true started=false id=containerd://init1-0"},
				Containers: []string{"app running last=- restarts=0 ready=true started=true id=containerd://app-0"}},
		},
		{
			name: "init container gone from the runtime after app containers ran",
			pod:  withInit(testPod(v1.RestartPolicyAlways, "app"), false, "init1"),
			obs:  observed(readySandbox(), running("app", 0)),
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=True", "ContainersReady=True", "PodScheduled=True",
			},
				Init:       []string{"init1 terminated(Completed,0) last=- restarts=0 ready=true started=false id="},
				Containers: []string{"app running last=- restarts=0 ready=true started=true id=containerd://app-0"}},
		},
		{
			name: "never: failed init container fails the pod",
			pod:  withInit(testPod(v1.RestartPolicyNever, "app"), false, "init1"),
			obs:  observed(readySandbox(), exited("init1", 0, 1, "Error")),
			want: summary{Phase: "Failed", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=False ContainersNotInitialized containers with incomplete status: [init1]",
				"Ready=False PodFailed", "ContainersReady=False PodFailed", "PodScheduled=True",
			},
				Init:       []string{"init1 terminated(Error,1) last=- restarts=0 ready=false started=false id=containerd://init1-0"},
				Containers: []string{"app waiting(PodInitializing) last=- restarts=0 ready=false started=false id="}},
		},
		{
			name: "always: failed init container restarts, pod Pending",
			pod:  withInit(testPod(v1.RestartPolicyAlways, "app"), false, "init1"),
			obs: func() Observed {
				o := observed(readySandbox(), exited("init1", 1, 1, "Error"))
				o.Waiting = map[string]Waiting{"init1": {Reason: "CrashLoopBackOff"}}
				return o
			}(),
			want: summary{Phase: "Pending", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=False ContainersNotInitialized containers with incomplete status: [init1]",
				"Ready=False ContainersNotReady containers with unready status: [app]",
				"ContainersReady=False ContainersNotReady containers with unready status: [app]", "PodScheduled=True",
			},
				Init:       []string{"init1 waiting(CrashLoopBackOff) last=terminated(Error,1) restarts=1 ready=false started=false id=containerd://init1-1"},
				Containers: []string{"app waiting(PodInitializing) last=- restarts=0 ready=false started=false id="}},
		},
		{
			name: "sidecar started and app running",
			pod:  withInit(testPod(v1.RestartPolicyAlways, "app"), true, "side"),
			obs:  observed(readySandbox(), running("side", 0), running("app", 0)),
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=True", "ContainersReady=True", "PodScheduled=True",
			},
				Init:       []string{"side running last=- restarts=0 ready=true started=true id=containerd://side-0"},
				Containers: []string{"app running last=- restarts=0 ready=true started=true id=containerd://app-0"}},
		},
		{
			name:   "sidecar not ready holds ContainersReady",
			pod:    withInit(testPod(v1.RestartPolicyAlways, "app"), true, "side"),
			obs:    observed(readySandbox(), running("side", 0), running("app", 0)),
			probes: probeSet{unready: map[string]bool{"side-0": true}},
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=False ContainersNotReady containers with unready status: [side]",
				"ContainersReady=False ContainersNotReady containers with unready status: [side]", "PodScheduled=True",
			},
				Init:       []string{"side running last=- restarts=0 ready=false started=true id=containerd://side-0"},
				Containers: []string{"app running last=- restarts=0 ready=true started=true id=containerd://app-0"}},
		},
		{
			name: "readiness gate without its condition",
			pod: func() *v1.Pod {
				p := testPod(v1.RestartPolicyAlways, "app")
				p.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: "example.com/lb"}}
				return p
			}(),
			obs: observed(readySandbox(), running("app", 0)),
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True",
				`Ready=False ReadinessGatesNotReady corresponding condition of pod readiness gate "example.com/lb" does not exist.`,
				"ContainersReady=True", "PodScheduled=True",
			}, Containers: []string{"app running last=- restarts=0 ready=true started=true id=containerd://app-0"}},
		},
		{
			name: "readiness gate met",
			pod: func() *v1.Pod {
				p := testPod(v1.RestartPolicyAlways, "app")
				p.Spec.ReadinessGates = []v1.PodReadinessGate{{ConditionType: "example.com/lb"}}
				p.Status.Conditions = []v1.PodCondition{{Type: "example.com/lb", Status: v1.ConditionTrue}}
				return p
			}(),
			obs: observed(readySandbox(), running("app", 0)),
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"example.com/lb=True", "PodReadyToStartContainers=True", "Initialized=True", "Ready=True", "ContainersReady=True", "PodScheduled=True",
			}, Containers: []string{"app running last=- restarts=0 ready=true started=true id=containerd://app-0"}},
		},
		{
			name: "host network uses the node IP",
			pod: func() *v1.Pod {
				p := testPod(v1.RestartPolicyAlways, "app")
				p.Spec.HostNetwork = true
				return p
			}(),
			obs: observed(&cri.Sandbox{ID: "sb1", State: cri.SandboxReady}, running("app", 0)),
			want: summary{Phase: "Running", PodIP: "192.168.1.10", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=True", "ContainersReady=True", "PodScheduled=True",
			}, Containers: []string{"app running last=- restarts=0 ready=true started=true id=containerd://app-0"}},
		},
		{
			name: "the sync decided the pod failed",
			pod:  testPod(v1.RestartPolicyAlways, "app"),
			obs: func() Observed {
				o := observed(readySandbox(), running("app", 0))
				o.Phase, o.Reason, o.Message = v1.PodFailed, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
				return o
			}(),
			want: summary{Phase: "Failed", Reason: "DeadlineExceeded", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=False PodFailed", "ContainersReady=False PodFailed", "PodScheduled=True",
			}, Containers: []string{"app running last=- restarts=0 ready=true started=true id=containerd://app-0"}},
		},
		{
			name: "a terminal phase stays",
			pod: func() *v1.Pod {
				p := testPod(v1.RestartPolicyAlways, "app")
				p.Status.Phase, p.Status.Reason = v1.PodFailed, "Evicted"
				return p
			}(),
			obs: observed(readySandbox(), running("app", 0)),
			want: summary{Phase: "Failed", Reason: "Evicted", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=False PodFailed", "ContainersReady=False PodFailed", "PodScheduled=True",
			}, Containers: []string{"app running last=- restarts=0 ready=true started=true id=containerd://app-0"}},
		},
		{
			name: "deleted, sandbox stopped: terminal",
			pod: func() *v1.Pod {
				p := testPod(v1.RestartPolicyAlways, "app")
				p.DeletionTimestamp = &deleted
				p.Status.PodIP, p.Status.PodIPs = "10.0.0.5", []v1.PodIP{{IP: "10.0.0.5"}}
				return p
			}(),
			obs: observed(&cri.Sandbox{ID: "sb1", State: cri.SandboxNotReady}, exited("app", 0, 137, "Error")),
			want: summary{Phase: "Failed", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=False", "Initialized=True", "Ready=False PodFailed", "ContainersReady=False PodFailed", "PodScheduled=True",
			}, Containers: []string{"app terminated(Error,137) last=- restarts=0 ready=false started=false id=containerd://app-0"}},
		},
		{
			name: "running container vanished",
			pod: func() *v1.Pod {
				p := testPod(v1.RestartPolicyAlways, "app")
				p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "app", RestartCount: 3, ContainerID: "containerd://x",
					State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}}}
				return p
			}(),
			obs: observed(readySandbox()),
			want: summary{Phase: "Running", PodIP: "10.0.0.5", Conditions: []string{
				"PodReadyToStartContainers=True", "Initialized=True", "Ready=False ContainersNotReady containers with unready status: [app]",
				"ContainersReady=False ContainersNotReady containers with unready status: [app]", "PodScheduled=True",
			}, Containers: []string{"app waiting(ContainerCreating) last=terminated(ContainerStatusUnknown,137) restarts=4 ready=false started=false id="}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := tt.pod.DeepCopy()
			got := Computer{}.Compute(tt.pod, tt.obs, tt.probes, now)
			if diff := cmp.Diff(tt.want, summarize(got)); diff != "" {
				t.Errorf("Compute (-want +got):\n%s", diff)
			}
			if !reflect.DeepEqual(before, tt.pod) {
				t.Errorf("Compute modified the pod: %s", cmp.Diff(before, tt.pod))
			}

			// Round trip: through the API's JSON and computed again from
			// it, the status is the same.
			raw, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var stored v1.PodStatus
			if err := json.Unmarshal(raw, &stored); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, stored); diff != "" {
				t.Errorf("status changed through JSON (-computed +stored):\n%s", diff)
			}
			again := tt.pod.DeepCopy()
			again.Status = stored
			got2 := Compute(again, tt.obs, tt.probes, now.Add(time.Hour))
			if diff := cmp.Diff(stored, got2); diff != "" {
				t.Errorf("Compute on its own status changed it (-first +second):\n%s", diff)
			}
		})
	}
}

func TestComputeTimes(t *testing.T) {
	t.Parallel()
	pod := testPod(v1.RestartPolicyAlways, "app")
	pod.Generation = 2
	sched := metav1.NewTime(t0)
	pod.Status.Conditions = []v1.PodCondition{{Type: v1.PodScheduled, Status: v1.ConditionTrue, LastTransitionTime: sched}}

	first := Compute(pod, observed(nil), nil, now)
	wantNow := metav1.NewTime(time.Unix(now.Unix(), 0))
	if first.StartTime == nil || !first.StartTime.Equal(&wantNow) {
		t.Errorf("startTime = %v, want %v", first.StartTime, wantNow)
	}
	if first.ObservedGeneration != 2 {
		t.Errorf("observedGeneration = %d, want 2", first.ObservedGeneration)
	}
	later := now.Add(10 * time.Second)
	pod.Status = first
	second := Compute(pod, observed(readySandbox(), running("app", 0)), nil, later)
	wantLater := metav1.NewTime(time.Unix(later.Unix(), 0))
	got := map[v1.PodConditionType]metav1.Time{}
	for _, c := range second.Conditions {
		got[c.Type] = c.LastTransitionTime
		if c.ObservedGeneration != 2 {
			t.Errorf("condition %s observedGeneration = %d, want 2", c.Type, c.ObservedGeneration)
		}
	}
	want := map[v1.PodConditionType]metav1.Time{
		v1.PodScheduled:              sched,     // unchanged since the scheduler set it
		v1.PodInitialized:            wantNow,   // True since the first sync
		v1.PodReadyToStartContainers: wantLater, // became True
		v1.PodReady:                  wantLater,
		v1.ContainersReady:           wantLater,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lastTransitionTime (-want +got):\n%s", diff)
	}
	if !second.StartTime.Equal(first.StartTime) {
		t.Errorf("startTime changed: %v -> %v", first.StartTime, second.StartTime)
	}
}

func TestQOSClass(t *testing.T) {
	t.Parallel()
	rl := func(kv ...string) v1.ResourceList {
		l := v1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			l[v1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return l
	}
	ctr := func(req, lim v1.ResourceList) v1.Container {
		return v1.Container{Name: "c", Resources: v1.ResourceRequirements{Requests: req, Limits: lim}}
	}
	tests := []struct {
		name string
		spec v1.PodSpec
		want v1.PodQOSClass
	}{
		{"nothing", v1.PodSpec{Containers: []v1.Container{ctr(nil, nil)}}, v1.PodQOSBestEffort},
		{"zero requests", v1.PodSpec{Containers: []v1.Container{ctr(rl("cpu", "0"), nil)}}, v1.PodQOSBestEffort},
		{"only other resources", v1.PodSpec{Containers: []v1.Container{ctr(rl("ephemeral-storage", "1Gi"), nil)}}, v1.PodQOSBestEffort},
		{"requests only", v1.PodSpec{Containers: []v1.Container{ctr(rl("cpu", "100m"), nil)}}, v1.PodQOSBurstable},
		{"equal limits", v1.PodSpec{Containers: []v1.Container{ctr(rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi"))}}, v1.PodQOSGuaranteed},
		{"lower requests", v1.PodSpec{Containers: []v1.Container{ctr(rl("cpu", "500m", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi"))}}, v1.PodQOSBurstable},
		{"cpu limit only", v1.PodSpec{Containers: []v1.Container{ctr(rl("cpu", "1"), rl("cpu", "1"))}}, v1.PodQOSBurstable},
		{"one container without limits", v1.PodSpec{Containers: []v1.Container{
			ctr(rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi")), ctr(nil, nil)}}, v1.PodQOSBurstable},
		{"init container counts", v1.PodSpec{
			InitContainers: []v1.Container{ctr(rl("memory", "1Gi"), nil)},
			Containers:     []v1.Container{ctr(rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi"))}}, v1.PodQOSBurstable},
		{"pod-level resources", v1.PodSpec{
			Resources:  &v1.ResourceRequirements{Requests: rl("cpu", "1", "memory", "1Gi"), Limits: rl("cpu", "1", "memory", "1Gi")},
			Containers: []v1.Container{ctr(nil, nil)}}, v1.PodQOSGuaranteed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := QOSClass(&v1.Pod{Spec: tt.spec}); got != tt.want {
				t.Errorf("QOSClass = %s, want %s", got, tt.want)
			}
		})
	}
}
