package cri

import (
	"context"
	"maps"
	"runtime"
	"slices"
	"sync"
	"weak"
)

// fakeUsage is what a test seeded for one container of a Fake.
type fakeUsage struct {
	cpu, workingSet, usage, writable uint64
}

// fakeStatsTable holds the usage seeded into each Fake, keyed weakly so a
// Fake that is no longer used is collected together with its entry.
//
// It lives here rather than as a field of Fake only because fake.go was
// not ours to edit when stats were added; it is the one piece of package
// state and is reachable only through the methods below.
// TODO(issue 5): move it into Fake as a field guarded by Fake.mu.
type fakeStatsTable struct {
	mu sync.Mutex
	m  map[weak.Pointer[Fake]]map[string]fakeUsage // guarded by mu; by container ID
}

var fakeStats = &fakeStatsTable{m: map[weak.Pointer[Fake]]map[string]fakeUsage{}}

func (t *fakeStatsTable) set(f *Fake, id string, u fakeUsage) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := weak.Make(f)
	m, ok := t.m[k]
	if !ok {
		m = map[string]fakeUsage{}
		t.m[k] = m
		runtime.AddCleanup(f, func(k weak.Pointer[Fake]) {
			t.mu.Lock()
			defer t.mu.Unlock()
			delete(t.m, k)
		}, k)
	}
	m[id] = u
}

func (t *fakeStatsTable) get(f *Fake) map[string]fakeUsage {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.m[weak.Make(f)])
}

// SetContainerStats seeds the usage ListContainerStats reports for
// container id from now on: cumulative CPU time in core-nanoseconds, memory
// working set and total usage, and the writable layer's size. It returns an
// error for which IsNotFound is true if there is no such container. Safe
// for concurrent use.
func (f *Fake) SetContainerStats(id string, cpuCoreNanoSeconds, workingSetBytes, usageBytes, writableLayerBytes uint64) error {
	f.mu.Lock()
	_, ok := f.containers[id]
	f.mu.Unlock()
	if !ok {
		return notFound("setting container stats", id)
	}
	fakeStats.set(f, id, fakeUsage{
		cpu: cpuCoreNanoSeconds, workingSet: workingSetBytes, usage: usageBytes, writable: writableLayerBytes,
	})
	return nil
}

// ListContainerStats reports every container, sorted by ID, as
// Client.ListContainerStats does: a running container with the usage last
// seeded by SetContainerStats (zero if none) and Timestamp Now; any other
// container with a zero Timestamp and no CPU or memory, as containerd
// reports a container without a running process.
func (f *Fake) ListContainerStats(_ context.Context) ([]ContainerStats, error) {
	seeded := fakeStats.get(f)
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []ContainerStats{}
	for _, id := range slices.Sorted(maps.Keys(f.containers)) {
		c := f.containers[id].c
		u := seeded[id]
		s := ContainerStats{
			ID: c.ID, SandboxID: c.SandboxID, Name: c.Name, Attempt: c.Attempt,
			Labels: maps.Clone(c.Labels), CreatedAt: c.CreatedAt,
			WritableLayerUsedBytes: u.writable,
		}
		if c.State == ContainerRunning {
			s.Timestamp = f.now()
			s.CPUUsageCoreNanoSeconds, s.MemoryWorkingSetBytes, s.MemoryUsageBytes = u.cpu, u.workingSet, u.usage
		}
		out = append(out, s)
	}
	return out, nil
}
