package plugins

import (
	"context"

	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// NodeAffinity rejects nodes that do not match the pod's nodeSelector
// and required node affinity, and scores nodes by the summed weights of
// the preferred terms they match.
type NodeAffinity struct{}

var (
	_ framework.PreFilterPlugin = NodeAffinity{}
	_ framework.FilterPlugin    = NodeAffinity{}
	_ framework.PreScorePlugin  = NodeAffinity{}
	_ framework.ScorePlugin     = NodeAffinity{}
	_ framework.ScoreNormalizer = NodeAffinity{}
)

// ReasonNodeAffinity is NodeAffinity's rejection reason.
const ReasonNodeAffinity = "node(s) didn't match Pod's node affinity/selector"

const (
	nodeAffinityFilterKey = "NodeAffinity/filter"
	nodeAffinityScoreKey  = "NodeAffinity/score"
)

// Name implements framework.Plugin.
func (NodeAffinity) Name() string { return NodeAffinityName }

// PreFilter implements framework.PreFilterPlugin: it parses the required
// terms once.
func (NodeAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ *framework.Snapshot) *framework.Status {
	spec := &pod.Pod.Spec
	if len(spec.NodeSelector) == 0 && (spec.Affinity == nil || spec.Affinity.NodeAffinity == nil ||
		spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil) {
		return framework.NewStatus(framework.Skip)
	}
	req := nodeaffinity.GetRequiredNodeAffinity(pod.Pod)
	state.Write(nodeAffinityFilterKey, &req)
	return nil
}

// Filter implements framework.FilterPlugin.
func (NodeAffinity) Filter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	req, _ := state.Read(nodeAffinityFilterKey).(*nodeaffinity.RequiredNodeAffinity)
	if req == nil {
		r := nodeaffinity.GetRequiredNodeAffinity(pod.Pod)
		req = &r
	}
	ok, err := req.Match(node.Node())
	if err != nil {
		return framework.AsStatus(err)
	}
	if !ok {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonNodeAffinity)
	}
	return nil
}

// PreScore implements framework.PreScorePlugin.
func (NodeAffinity) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ *framework.Snapshot, _ []*framework.NodeInfo) *framework.Status {
	aff := pod.Pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || len(aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	terms, err := nodeaffinity.NewPreferredSchedulingTerms(aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	if err != nil {
		return framework.AsStatus(err)
	}
	state.Write(nodeAffinityScoreKey, terms)
	return nil
}

// Score implements framework.ScorePlugin.
func (NodeAffinity) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	terms, _ := state.Read(nodeAffinityScoreKey).(*nodeaffinity.PreferredSchedulingTerms)
	if terms == nil {
		return 0, nil
	}
	return terms.Score(node.Node()), nil
}

// NormalizeScore implements framework.ScoreNormalizer.
func (NodeAffinity) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores []int64) *framework.Status {
	normalize(scores, false)
	return nil
}
