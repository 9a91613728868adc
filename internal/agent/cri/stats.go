package cri

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStats is one container's resource usage as the runtime reports
// it. CPU and memory are cumulative or instantaneous readings; rates (CPU
// cores) are the consumer's to compute from successive readings.
type ContainerStats struct {
	ID, SandboxID, Name string
	// Attempt is the container's restart attempt (CRI metadata).
	Attempt uint32
	Labels  map[string]string
	// CreatedAt is when the container was created; zero if the container
	// disappeared between the two runtime calls behind a list.
	CreatedAt time.Time
	// Timestamp is when CPU and memory were read. It is zero when the
	// runtime reported neither, as containerd does for a container whose
	// process is not running: the usage fields are then meaningless.
	Timestamp time.Time
	// CPUUsageCoreNanoSeconds is the cumulative CPU time of the container.
	CPUUsageCoreNanoSeconds uint64
	// MemoryWorkingSetBytes and MemoryUsageBytes are the cgroup's working
	// set (usage minus inactive file pages) and total usage.
	MemoryWorkingSetBytes, MemoryUsageBytes uint64
	// WritableLayerUsedBytes is the size of the container's writable layer
	// (0 when the snapshotter does not say).
	WritableLayerUsedBytes uint64
}

// ListContainerStats returns the resource usage of every container the
// runtime knows, sorted as the runtime lists them. It makes two CRI calls
// (ListContainerStats, then ListContainers for the sandbox IDs and creation
// times the stats call does not carry); a container created between them
// is left out, one removed between them has a zero CreatedAt and SandboxID.
func (c *Client) ListContainerStats(ctx context.Context) ([]ContainerStats, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	r, err := c.runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{}})
	if err != nil {
		return nil, wrap("listing container stats", "", err)
	}
	l, err := c.runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{}})
	if err != nil {
		return nil, wrap("listing containers", "", err)
	}
	byID := make(map[string]*runtimeapi.Container, len(l.GetContainers()))
	for _, ctr := range l.GetContainers() {
		byID[ctr.GetId()] = ctr
	}
	out := make([]ContainerStats, 0, len(r.GetStats()))
	for _, s := range r.GetStats() {
		out = append(out, containerStats(s, byID[s.GetAttributes().GetId()]))
	}
	return out, nil
}

// containerStats translates the CRI's stats of one container; ctr, the
// container's list entry, may be nil.
func containerStats(s *runtimeapi.ContainerStats, ctr *runtimeapi.Container) ContainerStats {
	a := s.GetAttributes()
	out := ContainerStats{
		ID:                     a.GetId(),
		Name:                   a.GetMetadata().GetName(),
		Attempt:                a.GetMetadata().GetAttempt(),
		Labels:                 a.GetLabels(),
		SandboxID:              ctr.GetPodSandboxId(),
		CreatedAt:              fromNanos(ctr.GetCreatedAt()),
		WritableLayerUsedBytes: s.GetWritableLayer().GetUsedBytes().GetValue(),
	}
	cpu, mem := s.GetCpu(), s.GetMemory()
	// containerd sends empty CPU and memory messages (timestamp set, no
	// values) for a container without a running task.
	hasCPU := cpu.GetUsageCoreNanoSeconds() != nil
	hasMem := mem.GetWorkingSetBytes() != nil || mem.GetUsageBytes() != nil
	if hasCPU {
		out.Timestamp = fromNanos(cpu.GetTimestamp())
		out.CPUUsageCoreNanoSeconds = cpu.GetUsageCoreNanoSeconds().GetValue()
	}
	if hasMem {
		if out.Timestamp.IsZero() {
			out.Timestamp = fromNanos(mem.GetTimestamp())
		}
		out.MemoryWorkingSetBytes = mem.GetWorkingSetBytes().GetValue()
		out.MemoryUsageBytes = mem.GetUsageBytes().GetValue()
	}
	return out
}
