package cri_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/agent/containerd/containerdtest"
	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/agent/stats"
	"github.com/skiff-dev/skiff/internal/images"
)

// TestContainerStatsWithContainerd checks ListContainerStats against a real
// containerd, and that the Fake reports the same shape: a running
// container has CPU time, memory and a timestamp; an exited one has a zero
// Timestamp and no usage; both carry their sandbox, name, attempt, labels
// and creation time.
func TestContainerStatsWithContainerd(t *testing.T) {
	n := containerdtest.Start(t, images.BusyboxImage)
	rt, sup, dir := n.Runtime, n.Supervisor, filepath.Dir(n.DataDir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	sbCfg := cri.SandboxConfig{Name: "stats", Namespace: "default", UID: "uid-stats", HostNetwork: true,
		Labels: map[string]string{"io.kubernetes.pod.uid": "uid-stats"}}
	sbID, err := rt.RunSandbox(ctx, sbCfg)
	if err != nil {
		logTail(t, sup.Layout().Log)
		t.Fatalf("RunSandbox: %v", err)
	}
	run := func(name string, attempt uint32, script string) string {
		t.Helper()
		id, err := rt.CreateContainer(ctx, sbID, sbCfg, cri.ContainerConfig{
			Name: name, Attempt: attempt, Image: images.BusyboxImage, Command: []string{"sh", "-c", script},
			Labels: map[string]string{"io.kubernetes.container.name": name},
		})
		if err != nil {
			t.Fatalf("CreateContainer(%s): %v", name, err)
		}
		if err := rt.StartContainer(ctx, id); err != nil {
			t.Fatalf("StartContainer(%s): %v", name, err)
		}
		return id
	}
	// busy spins (CPU) after touching some memory.
	busy := run("busy", 2, `x=$(head -c 4000000 /dev/zero | tr '\0' a); while :; do :; done`)
	done := run("done", 0, "exit 0")

	var byID map[string]cri.ContainerStats
	poll(t, 30*time.Second, "busy uses CPU and done has exited", func() error {
		list, err := rt.ListContainerStats(ctx)
		if err != nil {
			return err
		}
		byID = map[string]cri.ContainerStats{}
		for _, s := range list {
			byID[s.ID] = s
		}
		b, d := byID[busy], byID[done]
		if b.CPUUsageCoreNanoSeconds < 1e8 || b.MemoryWorkingSetBytes == 0 || b.Timestamp.IsZero() {
			return fmt.Errorf("busy: %+v", b)
		}
		if st, err := rt.ContainerStatus(ctx, done); err != nil || st.State != cri.ContainerExited {
			return fmt.Errorf("done not exited yet: %v %v", st.State, err)
		}
		if !d.Timestamp.IsZero() {
			return fmt.Errorf("done: %+v, want a zero Timestamp", d)
		}
		return nil
	})
	b := byID[busy]
	t.Logf("busy: cpu %dns, working set %d, usage %d, writable layer %d", b.CPUUsageCoreNanoSeconds, b.MemoryWorkingSetBytes, b.MemoryUsageBytes, b.WritableLayerUsedBytes)
	if b.SandboxID != sbID || b.Name != "busy" || b.Attempt != 2 || b.Labels["io.kubernetes.container.name"] != "busy" || b.CreatedAt.IsZero() {
		t.Errorf("busy stats = %+v, want sandbox %s, name busy, attempt 2, labels and CreatedAt", b, sbID)
	}
	if b.MemoryUsageBytes < b.MemoryWorkingSetBytes {
		t.Errorf("busy memory usage %d < working set %d", b.MemoryUsageBytes, b.MemoryWorkingSetBytes)
	}
	if time.Since(b.Timestamp) > time.Minute || time.Until(b.Timestamp) > time.Minute {
		t.Errorf("busy timestamp %v is not now", b.Timestamp)
	}
	if d := byID[done]; d.SandboxID != sbID || d.Name != "done" || d.CPUUsageCoreNanoSeconds != 0 || d.MemoryWorkingSetBytes != 0 {
		t.Errorf("done stats = %+v, want sandbox %s, name done and no usage", d, sbID)
	}

	// The summary over the real runtime: the pod with its running
	// container, busy at close to one core.
	p := stats.New(stats.Config{NodeName: "n", Runtime: rt, RootFS: dir})
	poll(t, 30*time.Second, "the summary shows busy's CPU rate", func() error {
		s, err := p.Summary(ctx)
		if err != nil {
			return err
		}
		if len(s.Pods) != 1 {
			return fmt.Errorf("pods: %+v", s.Pods)
		}
		ps := s.Pods[0]
		if ps.PodRef != (stats.PodReference{Name: "stats", Namespace: "default", UID: "uid-stats"}) || len(ps.Containers) != 1 || ps.Containers[0].Name != "busy" {
			return fmt.Errorf("pod: %+v", ps)
		}
		if ps.CPU == nil || ps.CPU.UsageNanoCores == nil || *ps.CPU.UsageNanoCores < 2e8 || ps.Memory == nil || *ps.Memory.WorkingSetBytes == 0 {
			return fmt.Errorf("pod usage: cpu %+v memory %+v", ps.CPU, ps.Memory)
		}
		t.Logf("pod usage: %d nanocores, %d bytes", *ps.CPU.UsageNanoCores, *ps.Memory.WorkingSetBytes)
		return nil
	})
}
