package prober

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/containerd/containerdtest"
	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/images"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestWithContainerd probes real containers: a host-network pod with the
// test server and a busybox shell under a containerd of its own. HTTP
// readiness follows /healthz into failure, TCP and exec probes pass and
// fail, an exec probe times out through the CRI, a liveness failure is
// reported, and exec and HTTP hooks reach the containers.
func TestWithContainerd(t *testing.T) {
	n := containerdtest.Start(t, images.BusyboxImage, images.TestServerImage)
	rt := n.Runtime
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	sbCfg := cri.SandboxConfig{Name: "web", Namespace: "ns", UID: "uid-1", HostNetwork: true}
	sbID, err := rt.RunSandbox(ctx, sbCfg)
	if err != nil {
		t.Fatalf("RunSandbox: %v", err)
	}
	httpPort, tcpPort := freePort(t), freePort(t)
	run := func(cfg cri.ContainerConfig) string {
		t.Helper()
		id, err := rt.CreateContainer(ctx, sbID, sbCfg, cfg)
		if err != nil {
			t.Fatalf("CreateContainer(%s): %v", cfg.Name, err)
		}
		if err := rt.StartContainer(ctx, id); err != nil {
			t.Fatalf("StartContainer(%s): %v", cfg.Name, err)
		}
		return id
	}
	srvID := run(cri.ContainerConfig{Name: "server", Image: images.TestServerImage, Env: []cri.EnvVar{
		{Name: "PORT", Value: fmt.Sprint(httpPort)}, {Name: "TCP_PORT", Value: fmt.Sprint(tcpPort)},
	}})
	shID := run(cri.ContainerConfig{Name: "shell", Image: images.BusyboxImage, Command: []string{"sleep", "3600"}})

	pod := &v1.Pod{}
	pod.Namespace, pod.Name, pod.UID = "ns", "web", "uid-1"
	pod.Spec.HostNetwork = true
	pod.Spec.Containers = []v1.Container{
		{Name: "server", Ports: []v1.ContainerPort{{Name: "http", ContainerPort: int32(httpPort)}, {Name: "echo", ContainerPort: int32(tcpPort)}},
			ReadinessProbe: &v1.Probe{PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 5,
				ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}},
			LivenessProbe: &v1.Probe{PeriodSeconds: 1, TimeoutSeconds: 5,
				ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromString("echo")}}},
		},
		{Name: "shell",
			ReadinessProbe: &v1.Probe{PeriodSeconds: 1, TimeoutSeconds: 5,
				ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"test", "-e", "/tmp/ready"}}}},
			LivenessProbe: &v1.Probe{PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 5,
				ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "test ! -e /tmp/dead || { echo dying; exit 1; }"}}}},
		},
	}
	pod.Status.HostIP = "127.0.0.1"
	srv, sh := &pod.Spec.Containers[0], &pod.Spec.Containers[1]

	rec := record.NewFakeRecorder(1000)
	var ch changes
	m := startManager(t, Config{Runtime: rt, Recorder: rec, OnChange: ch.add}, time.Second)
	now := time.Now()
	m.Start(pod, srv, srvID, now)
	m.Start(pod, sh, shID, now)

	waitFor(t, "server ready", func() bool { return m.Ready(srvID) })
	if m.Ready(shID) {
		t.Error("shell ready before /tmp/ready exists")
	}
	if err := m.RunHook(ctx, pod, sh, shID, &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"touch", "/tmp/ready"}}}); err != nil {
		t.Fatalf("exec hook: %v", err)
	}
	waitFor(t, "shell ready", func() bool { return m.Ready(shID) })

	// An HTTP hook that makes the server unhealthy; readiness follows.
	if err := m.RunHook(ctx, pod, srv, srvID, &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Path: "/fail-health", Port: intstr.FromString("http")}}); err != nil {
		t.Fatalf("HTTP hook: %v", err)
	}
	waitFor(t, "server unready", func() bool { return !m.Ready(srvID) })
	if failed, _ := m.Liveness(srvID); failed {
		t.Error("server's TCP liveness failed")
	}

	// Liveness of the shell fails once /tmp/dead exists.
	if err := m.RunHook(ctx, pod, sh, shID, &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"touch", "/tmp/dead"}}}); err != nil {
		t.Fatalf("exec hook: %v", err)
	}
	waitFor(t, "shell liveness failure", func() bool { failed, _ := m.Liveness(shID); return failed })
	if err := m.RunHook(ctx, pod, sh, shID, &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"false"}}}); err == nil {
		t.Error("exec hook exiting 1: no error")
	}

	// An exec probe that outlives its timeout, through the real CRI.
	start := time.Now()
	res, out, err := m.runProbe(ctx, target{pod: pod, container: sh, containerID: shID},
		&v1.Probe{TimeoutSeconds: 1, ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"sleep", "10"}}}})
	if res != resultFailure || !strings.Contains(out, "timed out") || err != nil {
		t.Errorf("exec probe past its timeout = %v, %q, %v; want a failure that timed out", res, out, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timed-out exec probe took %v", d)
	}

	var events []string
	for len(rec.Events) > 0 {
		events = append(events, <-rec.Events)
	}
	joined := strings.Join(events, "\n")
	for _, want := range []string{
		"Warning Unhealthy Readiness probe failed: HTTP probe failed with statuscode: 500",
		"Warning Unhealthy Liveness probe failed: dying",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("events lack %q:\n%s", want, joined)
		}
	}
}
