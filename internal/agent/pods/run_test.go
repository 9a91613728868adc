package pods

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// TestRunWithAPIServer runs a Manager against a real API server and the
// fake runtime: a pod bound to the node runs, an exit is noticed by the
// relist and restarted, an orphan found at start is removed, and deleting
// the pod stops it and deletes the object for good.
func TestRunWithAPIServer(t *testing.T) {
	t.Parallel()
	client := kubernetes.NewForConfigOrDie(testserver.Start(t, testserver.Options{}))
	ctx := t.Context()
	rt := cri.NewFake("busybox")

	orphan := cri.SandboxConfig{Name: "old", Namespace: "default", UID: "uid-old", Labels: map[string]string{LabelPodUID: "uid-old"}}
	if _, err := rt.RunSandbox(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	status := newRecordingStatus()
	m := runAgainstServer(t, client, rt, status)

	poll(t, 10*time.Second, "orphan sandbox removed", func() error {
		if sbs, _ := rt.ListSandboxes(ctx, map[string]string{LabelPodUID: "uid-old"}); len(sbs) != 0 {
			return fmt.Errorf("%d left", len(sbs))
		}
		return nil
	})

	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: v1.PodSpec{
			NodeName:   "node-1",
			Containers: []v1.Container{{Name: "main", Image: "busybox"}},
		},
	}
	start := time.Now()
	pod, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	running := func(attempt int) func() error {
		return func() error {
			p, err := client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Status.Phase != v1.PodRunning || len(p.Status.ContainerStatuses) != 1 {
				return fmt.Errorf("phase %s", p.Status.Phase)
			}
			cs := p.Status.ContainerStatuses[0]
			if cs.State.Running == nil || cs.RestartCount != int32(attempt) {
				return fmt.Errorf("container %+v", cs)
			}
			return nil
		}
	}
	poll(t, 10*time.Second, "pod running", running(0))
	t.Logf("pod running in the API %v after create", time.Since(start).Round(time.Millisecond))

	cs, _ := rt.ListContainers(ctx, cri.ContainerFilter{State: cri.ContainerRunning})
	if len(cs) != 1 {
		t.Fatalf("running containers: %+v", cs)
	}
	rt.Exit(cs[0].ID, 1, "")
	poll(t, 10*time.Second, "container restarted after its exit", running(1))

	if err := client.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 20*time.Second, "pod deleted from the API", func() error {
		_, err := client.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("get: %v", err)
	})
	poll(t, 10*time.Second, "runtime empty", func() error {
		if got := rt.Dump(); got != "POD ID\tSTATE\tNAME\tNAMESPACE\tATTEMPT\nCONTAINER\tIMAGE\tSTATE\tNAME\tATTEMPT\tPOD ID\tEXIT\n" {
			return fmt.Errorf("runtime holds:\n%s", got)
		}
		return nil
	})
	poll(t, 10*time.Second, "pod forgotten", func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if len(m.pods) != 0 {
			return fmt.Errorf("%d pods held", len(m.pods))
		}
		return nil
	})
}

// runAgainstServer runs a Manager of node-1 on rt, reading and writing
// through client, until the test ends.
func runAgainstServer(t *testing.T, client kubernetes.Interface, rt cri.Runtime, status StatusComputer) *Manager {
	t.Helper()
	m, err := New(Config{
		Client: client, NodeName: "node-1", NodeIP: "192.0.2.10", Runtime: rt,
		Status: status, Writer: apiWriter{client: client, t: t}, Recorder: record.NewFakeRecorder(1000),
		RootDir: t.TempDir(), ResolvConf: "/nonexistent", RelistPeriod: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return m
}
