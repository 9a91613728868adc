package pods

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/containerd/containerdtest"
	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/images"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// runManager runs a Manager until the returned stop is called.
func runManager(t *testing.T, cfg Config) (*Manager, func()) {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return m, stop
}

// TestWithContainerd runs pods in a real containerd: a long-running one
// (its /etc/hosts is ours), one that fails with a termination message, an
// agent restart that adopts the running container, and a deletion.
func TestWithContainerd(t *testing.T) {
	n := containerdtest.Start(t, images.BusyboxImage)
	rt := n.Runtime
	dir := t.TempDir()
	client := kubernetes.NewForConfigOrDie(testserver.Start(t, testserver.Options{}))
	ctx := t.Context()
	cfg := Config{
		Client: client, NodeName: "node-1", NodeIP: "127.0.0.1", Runtime: rt,
		Status: newRecordingStatus(), Writer: apiWriter{client: client, t: t}, Recorder: record.NewFakeRecorder(1000),
		RootDir: filepath.Join(dir, "agent"), RelistPeriod: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	_, stop := runManager(t, cfg)

	newPod := func(name string, policy v1.RestartPolicy, script string) *v1.Pod {
		return &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: v1.PodSpec{
				NodeName: "node-1", HostNetwork: true, RestartPolicy: policy,
				HostAliases: []v1.HostAlias{{IP: "10.9.9.9", Hostnames: []string{"alias-host"}}},
				Containers:  []v1.Container{{Name: "main", Image: images.BusyboxImage, Command: []string{"sh", "-c", script}}},
			},
		}
	}
	getPod := func(name string) (*v1.Pod, error) {
		return client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
	}

	start := time.Now()
	if _, err := client.CoreV1().Pods("default").Create(ctx, newPod("sleeper", v1.RestartPolicyAlways, "echo started; exec sleep 3600"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, newPod("failer", v1.RestartPolicyNever, "echo bye > /dev/termination-log; exit 3"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var containerID string
	poll(t, 60*time.Second, "sleeper running", func() error {
		p, err := getPod("sleeper")
		if err != nil {
			return err
		}
		if p.Status.Phase != v1.PodRunning || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
			return fmt.Errorf("status %+v", p.Status)
		}
		containerID = strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
		return nil
	})
	t.Logf("sleeper running %v after create", time.Since(start).Round(time.Millisecond))
	res, err := rt.ExecSync(ctx, containerID, []string{"cat", "/etc/hosts"}, 10*time.Second)
	if err != nil || !strings.Contains(string(res.Stdout), "10.9.9.9\talias-host") {
		t.Errorf("/etc/hosts in the container: %q, %v; want the host alias", res.Stdout, err)
	}
	poll(t, 60*time.Second, "failer failed with its termination message", func() error {
		p, err := getPod("failer")
		if err != nil {
			return err
		}
		if p.Status.Phase != v1.PodFailed || len(p.Status.ContainerStatuses) != 1 {
			return fmt.Errorf("status %+v", p.Status)
		}
		term := p.Status.ContainerStatuses[0].State.Terminated
		if term == nil || term.ExitCode != 3 || term.Message != "bye\n" {
			return fmt.Errorf("container state %+v", p.Status.ContainerStatuses[0].State)
		}
		return nil
	})

	// The agent restarts: the running container is adopted, not restarted.
	stop()
	status2 := newRecordingStatus()
	cfg.Status = status2
	runManager(t, cfg)
	sleeper, err := getPod("sleeper")
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "new agent synced the sleeper", func() error {
		if obs := status2.last(sleeper.UID); len(obs.Containers["main"]) == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	cs, err := rt.ListContainers(ctx, cri.ContainerFilter{Labels: map[string]string{LabelPodUID: string(sleeper.UID)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ID != containerID || cs[0].State != cri.ContainerRunning {
		t.Errorf("sleeper's containers after the agent restart = %+v, want only %s, running", cs, containerID)
	}

	// Deletion: stopped (SIGKILL after the grace period: sh ignores
	// SIGTERM as PID 1), cleaned up, deleted.
	start = time.Now()
	if err := client.CoreV1().Pods("default").Delete(ctx, "sleeper", metav1.DeleteOptions{GracePeriodSeconds: new(int64(2))}); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "sleeper deleted", func() error {
		if _, err := getPod("sleeper"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("get: %v", err)
		}
		return nil
	})
	took := time.Since(start)
	t.Logf("sleeper deleted %v after the delete call", took.Round(time.Millisecond))
	if took < 2*time.Second {
		t.Errorf("sleeper deleted after %v, before its grace period: was sleep not PID 1?", took)
	}
	sbs, err := rt.ListSandboxes(ctx, map[string]string{LabelPodUID: string(sleeper.UID)})
	if err != nil || len(sbs) != 0 {
		t.Errorf("sleeper's sandboxes after deletion: %+v, %v", sbs, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.RootDir, "pods", string(sleeper.UID))); !os.IsNotExist(err) {
		t.Errorf("sleeper's pod dir after deletion: %v", err)
	}
}
