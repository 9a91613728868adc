package plugins

import (
	"context"
	"sort"

	v1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// NodeResourcesFit rejects nodes without room for the pod's requests
// (cpu, memory, ephemeral-storage, pod count, extended resources) and
// scores nodes by how much cpu and memory would be left (least
// allocated).
type NodeResourcesFit struct{}

var (
	_ framework.FilterPlugin = NodeResourcesFit{}
	_ framework.ScorePlugin  = NodeResourcesFit{}
)

// ReasonTooManyPods is the reason for a node at its pod capacity.
const ReasonTooManyPods = "Too many pods"

// Name implements framework.Plugin.
func (NodeResourcesFit) Name() string { return NodeResourcesFitName }

// Filter implements framework.FilterPlugin. A node whose allocatable is
// below the request outright is UnschedulableAndUnresolvable (removing
// pods cannot help); otherwise the rejection is Unschedulable.
func (NodeResourcesFit) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	var reasons []string
	resolvable := false
	add := func(reason string, unresolvable bool) {
		reasons = append(reasons, reason)
		if !unresolvable {
			resolvable = true
		}
	}
	if node.Requested.AllowedPodNumber+1 > node.Allocatable.AllowedPodNumber {
		add(ReasonTooManyPods, node.Allocatable.AllowedPodNumber < 1)
	}
	req := &pod.Requests
	free := func(name v1.ResourceName) int64 { return node.Allocatable.Get(name) - node.Requested.Get(name) }
	check := func(name v1.ResourceName, want int64) {
		if want > 0 && want > free(name) {
			add("Insufficient "+string(name), want > node.Allocatable.Get(name))
		}
	}
	check(v1.ResourceCPU, req.MilliCPU)
	check(v1.ResourceMemory, req.Memory)
	check(v1.ResourceEphemeralStorage, req.EphemeralStorage)
	if len(req.Scalar) > 0 {
		names := make([]string, 0, len(req.Scalar))
		for name := range req.Scalar {
			names = append(names, string(name))
		}
		sort.Strings(names)
		for _, name := range names {
			check(v1.ResourceName(name), req.Scalar[v1.ResourceName(name)])
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	code := framework.UnschedulableAndUnresolvable
	if resolvable {
		code = framework.Unschedulable
	}
	return framework.NewStatus(code, reasons...)
}

// Score implements framework.ScorePlugin: for cpu and memory (weight 1
// each), the share of allocatable left free after placing the pod,
// counting pods without requests at the scoring defaults.
func (NodeResourcesFit) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	cpu := leastAllocated(node.NonZeroRequested.MilliCPU+pod.NonZeroRequests.MilliCPU, node.Allocatable.MilliCPU)
	mem := leastAllocated(node.NonZeroRequested.Memory+pod.NonZeroRequests.Memory, node.Allocatable.Memory)
	return (cpu + mem) / 2, nil
}

func leastAllocated(requested, capacity int64) int64 {
	if capacity == 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * framework.MaxNodeScore / capacity
}
