package plugins

import (
	"context"
	"math"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// InterPodAffinity enforces required pod affinity and anti-affinity (the
// incoming pod's terms and the anti-affinity terms of pods already
// placed, for any topologyKey and across namespaces by namespaces or
// namespaceSelector) and scores the preferred terms of both sides.
type InterPodAffinity struct{}

var (
	_ framework.PreFilterPlugin = InterPodAffinity{}
	_ framework.FilterPlugin    = InterPodAffinity{}
	_ framework.PreScorePlugin  = InterPodAffinity{}
	_ framework.ScorePlugin     = InterPodAffinity{}
	_ framework.ScoreNormalizer = InterPodAffinity{}
)

// Rejection reasons.
const (
	ReasonAffinityRulesNotMatch             = "node(s) didn't match pod affinity rules"
	ReasonAntiAffinityRulesNotMatch         = "node(s) didn't match pod anti-affinity rules"
	ReasonExistingAntiAffinityRulesNotMatch = "node(s) didn't satisfy existing pods anti-affinity rules"
)

// hardPodAffinityWeight is the score weight of an existing pod's
// required affinity term that the incoming pod satisfies (upstream
// default).
const hardPodAffinityWeight = 1

const (
	affinityFilterKey = "InterPodAffinity/filter"
	affinityScoreKey  = "InterPodAffinity/score"
)

// Name implements framework.Plugin.
func (InterPodAffinity) Name() string { return InterPodAffinityName }

type topologyPair struct{ key, value string }

type affinityState struct {
	// existingAnti counts, per topology pair, existing pods whose
	// required anti-affinity terms match the incoming pod.
	existingAnti map[topologyPair]int
	// affinity / anti count, per topology pair, existing pods matching
	// the incoming pod's required affinity / anti-affinity terms.
	affinity, anti map[topologyPair]int
	// selfMatch: the incoming pod matches all its own affinity terms.
	selfMatch bool
}

// PreFilter implements framework.PreFilterPlugin.
func (InterPodAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, snap *framework.Snapshot) *framework.Status {
	hasOwn := len(pod.RequiredAffinityTerms)+len(pod.RequiredAntiAffinityTerms) > 0
	if !hasOwn && len(snap.HavePodsWithRequiredAntiAffinity) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	s := &affinityState{existingAnti: map[topologyPair]int{}, affinity: map[topologyPair]int{}, anti: map[topologyPair]int{}}
	for _, ni := range snap.HavePodsWithRequiredAntiAffinity {
		nodeLabels := ni.Node().Labels
		for _, existing := range ni.PodsWithRequiredAntiAffinity {
			for i := range existing.RequiredAntiAffinityTerms {
				t := &existing.RequiredAntiAffinityTerms[i]
				if v, ok := nodeLabels[t.TopologyKey]; ok && t.Matches(pod.Pod, snap.NamespaceLabels) {
					s.existingAnti[topologyPair{t.TopologyKey, v}]++
				}
			}
		}
	}
	if hasOwn {
		for _, ni := range snap.NodeInfoList {
			nodeLabels := ni.Node().Labels
			for _, existing := range ni.Pods {
				countTerms(s.affinity, pod.RequiredAffinityTerms, existing, nodeLabels, snap.NamespaceLabels)
				countTerms(s.anti, pod.RequiredAntiAffinityTerms, existing, nodeLabels, snap.NamespaceLabels)
			}
		}
		s.selfMatch = true
		for i := range pod.RequiredAffinityTerms {
			if !pod.RequiredAffinityTerms[i].Matches(pod.Pod, snap.NamespaceLabels) {
				s.selfMatch = false
			}
		}
	}
	state.Write(affinityFilterKey, s)
	return nil
}

// countTerms counts existing under every term (all must match for
// affinity upstream counts per term; a pod matching several terms counts
// once per term).
func countTerms(counts map[topologyPair]int, terms []framework.AffinityTerm, existing *framework.PodInfo, nodeLabels map[string]string, ns framework.NamespaceLabels) {
	for i := range terms {
		t := &terms[i]
		if v, ok := nodeLabels[t.TopologyKey]; ok && t.Matches(existing.Pod, ns) {
			counts[topologyPair{t.TopologyKey, v}]++
		}
	}
}

// Filter implements framework.FilterPlugin.
func (InterPodAffinity) Filter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	s, _ := state.Read(affinityFilterKey).(*affinityState)
	if s == nil {
		return nil
	}
	nodeLabels := node.Node().Labels
	if len(s.existingAnti) > 0 {
		for k, v := range nodeLabels {
			if s.existingAnti[topologyPair{k, v}] > 0 {
				return framework.NewStatus(framework.Unschedulable, ReasonExistingAntiAffinityRulesNotMatch)
			}
		}
	}
	for i := range pod.RequiredAntiAffinityTerms {
		t := &pod.RequiredAntiAffinityTerms[i]
		if v, ok := nodeLabels[t.TopologyKey]; ok && s.anti[topologyPair{t.TopologyKey, v}] > 0 {
			return framework.NewStatus(framework.Unschedulable, ReasonAntiAffinityRulesNotMatch)
		}
	}
	if len(pod.RequiredAffinityTerms) > 0 {
		matchesAll := true
		for i := range pod.RequiredAffinityTerms {
			t := &pod.RequiredAffinityTerms[i]
			v, ok := nodeLabels[t.TopologyKey]
			if !ok {
				return framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonAffinityRulesNotMatch)
			}
			if s.affinity[topologyPair{t.TopologyKey, v}] == 0 {
				matchesAll = false
			}
		}
		// The first pod of a group that selects itself may go anywhere
		// the topology keys exist, as long as no pod matches anywhere.
		if !matchesAll && !(len(s.affinity) == 0 && s.selfMatch) {
			return framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonAffinityRulesNotMatch)
		}
	}
	return nil
}

type affinityScoreState struct {
	scores map[string]map[string]int64 // topology key -> value -> score
}

// PreScore implements framework.PreScorePlugin.
func (InterPodAffinity) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, snap *framework.Snapshot, _ []*framework.NodeInfo) *framework.Status {
	hasPreferred := len(pod.PreferredAffinityTerms)+len(pod.PreferredAntiAffinityTerms) > 0
	nodes := snap.HavePodsWithAffinity
	if hasPreferred {
		nodes = snap.NodeInfoList
	}
	if len(nodes) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	s := &affinityScoreState{scores: map[string]map[string]int64{}}
	add := func(key string, nodeLabels map[string]string, w int64) {
		v, ok := nodeLabels[key]
		if !ok || w == 0 {
			return
		}
		m := s.scores[key]
		if m == nil {
			m = map[string]int64{}
			s.scores[key] = m
		}
		m[v] += w
	}
	ns := snap.NamespaceLabels
	for _, ni := range nodes {
		nodeLabels := ni.Node().Labels
		pods := ni.PodsWithAffinity
		if hasPreferred {
			pods = ni.Pods
		}
		for _, existing := range pods {
			for i := range pod.PreferredAffinityTerms {
				t := &pod.PreferredAffinityTerms[i]
				if t.Matches(existing.Pod, ns) {
					add(t.TopologyKey, nodeLabels, int64(t.Weight))
				}
			}
			for i := range pod.PreferredAntiAffinityTerms {
				t := &pod.PreferredAntiAffinityTerms[i]
				if t.Matches(existing.Pod, ns) {
					add(t.TopologyKey, nodeLabels, -int64(t.Weight))
				}
			}
			for i := range existing.RequiredAffinityTerms {
				t := &existing.RequiredAffinityTerms[i]
				if t.Matches(pod.Pod, ns) {
					add(t.TopologyKey, nodeLabels, hardPodAffinityWeight)
				}
			}
			for i := range existing.PreferredAffinityTerms {
				t := &existing.PreferredAffinityTerms[i]
				if t.Matches(pod.Pod, ns) {
					add(t.TopologyKey, nodeLabels, int64(t.Weight))
				}
			}
			for i := range existing.PreferredAntiAffinityTerms {
				t := &existing.PreferredAntiAffinityTerms[i]
				if t.Matches(pod.Pod, ns) {
					add(t.TopologyKey, nodeLabels, -int64(t.Weight))
				}
			}
		}
	}
	if len(s.scores) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(affinityScoreKey, s)
	return nil
}

// Score implements framework.ScorePlugin.
func (InterPodAffinity) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	s, _ := state.Read(affinityScoreKey).(*affinityScoreState)
	if s == nil {
		return 0, nil
	}
	var score int64
	for key, values := range s.scores {
		if v, ok := node.Node().Labels[key]; ok {
			score += values[v]
		}
	}
	return score, nil
}

// NormalizeScore implements framework.ScoreNormalizer: min-max to
// [0, MaxNodeScore].
func (InterPodAffinity) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores []int64) *framework.Status {
	var min, max int64 = math.MaxInt64, math.MinInt64
	for _, s := range scores {
		if s < min {
			min = s
		}
		if s > max {
			max = s
		}
	}
	diff := max - min
	for i, s := range scores {
		if diff > 0 {
			scores[i] = framework.MaxNodeScore * (s - min) / diff
		} else {
			scores[i] = 0
		}
	}
	return nil
}
