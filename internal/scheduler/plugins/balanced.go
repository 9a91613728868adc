package plugins

import (
	"context"
	"math"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// BalancedAllocation prefers nodes whose cpu and memory would be used in
// similar proportions after placing the pod.
type BalancedAllocation struct{}

var (
	_ framework.PreScorePlugin = BalancedAllocation{}
	_ framework.ScorePlugin    = BalancedAllocation{}
)

// Name implements framework.Plugin.
func (BalancedAllocation) Name() string { return BalancedAllocationName }

// PreScore implements framework.PreScorePlugin: pods requesting neither
// cpu nor memory do not change any node's balance, so scoring is skipped.
func (BalancedAllocation) PreScore(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, _ *framework.Snapshot, _ []*framework.NodeInfo) *framework.Status {
	if pod.Requests.MilliCPU == 0 && pod.Requests.Memory == 0 {
		return framework.NewStatus(framework.Skip)
	}
	return nil
}

// Score implements framework.ScorePlugin: (1 - std of the used
// fractions) * 100, with the two fractions capped at 1.
func (BalancedAllocation) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	cpu := fraction(node.Requested.MilliCPU+pod.Requests.MilliCPU, node.Allocatable.MilliCPU)
	mem := fraction(node.Requested.Memory+pod.Requests.Memory, node.Allocatable.Memory)
	std := math.Abs(cpu-mem) / 2
	return int64((1 - std) * float64(framework.MaxNodeScore)), nil
}

func fraction(requested, capacity int64) float64 {
	if capacity == 0 {
		return 1
	}
	f := float64(requested) / float64(capacity)
	if f > 1 {
		return 1
	}
	return f
}
