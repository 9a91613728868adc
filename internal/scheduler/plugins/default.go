package plugins

import "github.com/skiff-dev/skiff/internal/scheduler/framework"

// Plugin names, as upstream names them.
const (
	NodeNameName           = "NodeName"
	NodeUnschedulableName  = "NodeUnschedulable"
	TaintTolerationName    = "TaintToleration"
	NodeAffinityName       = "NodeAffinity"
	NodePortsName          = "NodePorts"
	NodeResourcesFitName   = "NodeResourcesFit"
	BalancedAllocationName = "NodeResourcesBalancedAllocation"
	PodTopologySpreadName  = "PodTopologySpread"
	InterPodAffinityName   = "InterPodAffinity"
	ImageLocalityName      = "ImageLocality"
	VolumeBindingName      = "VolumeBinding"
)

// Default returns the default plugins, in upstream's filter order (the
// first rejecting filter names the reason a node is unavailable), and
// the default score weights. Its VolumeBinding has no listers and skips
// every pod; the scheduler uses DefaultWith.
func Default() ([]framework.Plugin, map[string]int64) {
	return DefaultWith(VolumeListers{})
}

// DefaultWith is Default with VolumeBinding reading vl.
func DefaultWith(vl VolumeListers) ([]framework.Plugin, map[string]int64) {
	ps := []framework.Plugin{
		NodeUnschedulable{},
		NodeName{},
		TaintToleration{},
		NodeAffinity{},
		NodePorts{},
		NodeResourcesFit{},
		NewVolumeBinding(vl),
		BalancedAllocation{},
		NewPodTopologySpread(),
		NewInterPodAffinity(),
		ImageLocality{},
	}
	weights := map[string]int64{
		TaintTolerationName:    3,
		NodeAffinityName:       2,
		PodTopologySpreadName:  2,
		InterPodAffinityName:   2,
		NodeResourcesFitName:   1,
		BalancedAllocationName: 1,
		ImageLocalityName:      1,
	}
	return ps, weights
}

// normalize rescales scores to [0, MaxNodeScore] by the highest one;
// reverse turns the highest into 0 (upstream DefaultNormalizeScore).
func normalize(scores []int64, reverse bool) {
	var max int64
	for _, s := range scores {
		if s > max {
			max = s
		}
	}
	if max == 0 {
		if reverse {
			for i := range scores {
				scores[i] = framework.MaxNodeScore
			}
		}
		return
	}
	for i := range scores {
		s := framework.MaxNodeScore * scores[i] / max
		if reverse {
			s = framework.MaxNodeScore - s
		}
		scores[i] = s
	}
}
