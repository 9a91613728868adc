package cri

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFakeContainerStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := NewFake("busybox")
	f.Now = func() time.Time { return now }
	pod := SandboxConfig{Name: "a", Namespace: "ns", UID: "uid-a"}
	sb, err := f.RunSandbox(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"io.kubernetes.container.name": "main"}
	running, err := f.CreateContainer(ctx, sb, pod, ContainerConfig{Name: "main", Image: "busybox", Attempt: 1, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	exited, err := f.CreateContainer(ctx, sb, pod, ContainerConfig{Name: "main", Image: "busybox", Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	unseeded, err := f.CreateContainer(ctx, sb, pod, ContainerConfig{Name: "side", Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{running, exited, unseeded} {
		if err := f.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	f.Exit(exited, 1, "")
	if err := f.SetContainerStats(running, 5e9, 10<<20, 12<<20, 4096); err != nil {
		t.Fatalf("SetContainerStats: %v", err)
	}
	if err := f.SetContainerStats(exited, 1e9, 1, 1, 8192); err != nil {
		t.Fatalf("SetContainerStats: %v", err)
	}
	if err := f.SetContainerStats("nope", 1, 1, 1, 1); !IsNotFound(err) {
		t.Errorf("SetContainerStats(nope) = %v, want not found", err)
	}

	got, err := f.ListContainerStats(ctx)
	if err != nil {
		t.Fatalf("ListContainerStats: %v", err)
	}
	want := []ContainerStats{
		{
			ID: running, SandboxID: sb, Name: "main", Attempt: 1, Labels: labels, CreatedAt: now, Timestamp: now,
			CPUUsageCoreNanoSeconds: 5e9, MemoryWorkingSetBytes: 10 << 20, MemoryUsageBytes: 12 << 20, WritableLayerUsedBytes: 4096,
		},
		{ID: exited, SandboxID: sb, Name: "main", Labels: labels, CreatedAt: now, WritableLayerUsedBytes: 8192},
		{ID: unseeded, SandboxID: sb, Name: "side", CreatedAt: now, Timestamp: now},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListContainerStats (-want +got):\n%s", diff)
	}

	// Another Fake does not see the first one's stats.
	other := NewFake("busybox")
	if got, err := other.ListContainerStats(ctx); err != nil || len(got) != 0 {
		t.Errorf("ListContainerStats of an empty Fake = %v, %v; want none", got, err)
	}
}
