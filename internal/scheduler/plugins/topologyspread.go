package plugins

import (
	"context"
	"math"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// PodTopologySpread enforces topologySpreadConstraints: DoNotSchedule
// constraints filter (the skew after placing the pod must not exceed
// maxSkew, counting minDomains), ScheduleAnyway constraints score.
//
// Matching pods are counted in the pod's namespace on the nodes that are
// eligible: they carry every constraint's topology key and, under the
// default nodeAffinityPolicy Honor, match the pod's node selector and
// required node affinity; under nodeTaintsPolicy Honor they also have no
// untolerated NoSchedule/NoExecute taint.
type PodTopologySpread struct{}

var (
	_ framework.PreFilterPlugin = PodTopologySpread{}
	_ framework.FilterPlugin    = PodTopologySpread{}
	_ framework.PreScorePlugin  = PodTopologySpread{}
	_ framework.ScorePlugin     = PodTopologySpread{}
	_ framework.ScoreNormalizer = PodTopologySpread{}
)

// Rejection reasons.
const (
	ReasonTopologySpread             = "node(s) didn't match pod topology spread constraints"
	ReasonTopologySpreadMissingLabel = "node(s) didn't match pod topology spread constraints (missing required label)"
)

const (
	spreadFilterKey = "PodTopologySpread/filter"
	spreadScoreKey  = "PodTopologySpread/score"
)

// Name implements framework.Plugin.
func (PodTopologySpread) Name() string { return PodTopologySpreadName }

type constraint struct {
	maxSkew     int32
	minDomains  int32
	key         string
	selector    labels.Selector
	honorAff    bool
	honorTaints bool
	selfMatch   int
}

type spreadState struct {
	constraints []constraint
	// counts[i][value] is the number of matching pods in the domain
	// value of constraint i (present with 0 for empty eligible domains).
	counts []map[string]int
	// minMatch[i] is the global minimum for constraint i.
	minMatch []int
}

func parseConstraints(pod *framework.PodInfo, when v1.UnsatisfiableConstraintAction) ([]constraint, error) {
	var out []constraint
	for _, c := range pod.Pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != when {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil {
			return nil, err
		}
		if c.LabelSelector != nil {
			for _, key := range c.MatchLabelKeys {
				if v, ok := pod.Pod.Labels[key]; ok {
					r, err := labels.NewRequirement(key, selection.In, []string{v})
					if err != nil {
						return nil, err
					}
					sel = sel.Add(*r)
				}
			}
		}
		k := constraint{
			maxSkew:     c.MaxSkew,
			minDomains:  1,
			key:         c.TopologyKey,
			selector:    sel,
			honorAff:    c.NodeAffinityPolicy == nil || *c.NodeAffinityPolicy == v1.NodeInclusionPolicyHonor,
			honorTaints: c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == v1.NodeInclusionPolicyHonor,
		}
		if c.MinDomains != nil {
			k.minDomains = *c.MinDomains
		}
		if sel.Matches(labels.Set(pod.Pod.Labels)) {
			k.selfMatch = 1
		}
		out = append(out, k)
	}
	return out, nil
}

func (c *constraint) eligible(pod *framework.PodInfo, req *nodeaffinity.RequiredNodeAffinity, ni *framework.NodeInfo) bool {
	if _, ok := ni.Node().Labels[c.key]; !ok {
		return false
	}
	if c.honorAff {
		if ok, err := req.Match(ni.Node()); !ok || err != nil {
			return false
		}
	}
	if c.honorTaints && !(TaintToleration{}).Filter(context.Background(), nil, pod, ni).IsSuccess() {
		return false
	}
	return true
}

func countMatching(c *constraint, pod *framework.PodInfo, ni *framework.NodeInfo) int {
	n := 0
	for _, p := range ni.Pods {
		if p.Pod.Namespace != pod.Pod.Namespace || p.Pod.DeletionTimestamp != nil {
			continue
		}
		if c.selector.Matches(labels.Set(p.Pod.Labels)) {
			n++
		}
	}
	return n
}

// PreFilter implements framework.PreFilterPlugin.
func (PodTopologySpread) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, snap *framework.Snapshot) *framework.Status {
	cs, err := parseConstraints(pod, v1.DoNotSchedule)
	if err != nil {
		return framework.AsStatus(err)
	}
	if len(cs) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	req := nodeaffinity.GetRequiredNodeAffinity(pod.Pod)
	s := &spreadState{constraints: cs, counts: make([]map[string]int, len(cs)), minMatch: make([]int, len(cs))}
	for i := range cs {
		s.counts[i] = map[string]int{}
	}
	for _, ni := range snap.NodeInfoList {
		// A node counts only if it carries every constraint's key.
		all := true
		for i := range cs {
			if _, ok := ni.Node().Labels[cs[i].key]; !ok {
				all = false
				break
			}
		}
		if !all {
			continue
		}
		for i := range cs {
			c := &cs[i]
			if !c.eligible(pod, &req, ni) {
				continue
			}
			s.counts[i][ni.Node().Labels[c.key]] += countMatching(c, pod, ni)
		}
	}
	for i := range cs {
		min := math.MaxInt
		for _, n := range s.counts[i] {
			if n < min {
				min = n
			}
		}
		if min == math.MaxInt || int32(len(s.counts[i])) < cs[i].minDomains {
			min = 0
		}
		s.minMatch[i] = min
	}
	state.Write(spreadFilterKey, s)
	return nil
}

// Filter implements framework.FilterPlugin.
func (PodTopologySpread) Filter(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	s, _ := state.Read(spreadFilterKey).(*spreadState)
	if s == nil {
		return nil
	}
	for i := range s.constraints {
		c := &s.constraints[i]
		value, ok := node.Node().Labels[c.key]
		if !ok {
			return framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonTopologySpreadMissingLabel)
		}
		skew := s.counts[i][value] + c.selfMatch - s.minMatch[i]
		if skew > int(c.maxSkew) {
			return framework.NewStatus(framework.Unschedulable, ReasonTopologySpread)
		}
	}
	return nil
}

// systemDefaultConstraints are upstream's cluster-level defaults for
// pods without constraints that belong to a service or workload: spread
// softly by node (maxSkew 3) and by zone (maxSkew 5).
func systemDefaultConstraints(pod *framework.PodInfo) []constraint {
	mk := func(key string, skew int32) constraint {
		return constraint{maxSkew: skew, minDomains: 1, key: key, selector: pod.DefaultSpreadSelector, honorAff: true, selfMatch: 1}
	}
	return []constraint{mk(v1.LabelHostname, 3), mk(v1.LabelTopologyZone, 5)}
}

type spreadScoreState struct {
	// systemDefaulted: the constraints are the cluster defaults, and a
	// node missing a key just skips that constraint.
	systemDefaulted bool
	constraints     []constraint
	counts          []map[string]int
	weights         []float64
}

// PreScore implements framework.PreScorePlugin: counts matching pods per
// domain of the ScheduleAnyway constraints over the eligible nodes.
func (PodTopologySpread) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, snap *framework.Snapshot, _ []*framework.NodeInfo) *framework.Status {
	cs, err := parseConstraints(pod, v1.ScheduleAnyway)
	if err != nil {
		return framework.AsStatus(err)
	}
	systemDefaulted := false
	if len(pod.Pod.Spec.TopologySpreadConstraints) == 0 && pod.DefaultSpreadSelector != nil && !pod.DefaultSpreadSelector.Empty() {
		cs = systemDefaultConstraints(pod)
		systemDefaulted = true
	}
	if len(cs) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	req := nodeaffinity.GetRequiredNodeAffinity(pod.Pod)
	s := &spreadScoreState{systemDefaulted: systemDefaulted, constraints: cs, counts: make([]map[string]int, len(cs)), weights: make([]float64, len(cs))}
	for i := range cs {
		s.counts[i] = map[string]int{}
	}
	for _, ni := range snap.NodeInfoList {
		for i := range cs {
			c := &cs[i]
			if !c.eligible(pod, &req, ni) {
				continue
			}
			s.counts[i][ni.Node().Labels[c.key]] += countMatching(c, pod, ni)
		}
	}
	for i := range cs {
		// More domains weigh more (upstream: log(domains + 2)).
		s.weights[i] = math.Log(float64(len(s.counts[i]) + 2))
	}
	state.Write(spreadScoreKey, s)
	return nil
}

// Score implements framework.ScorePlugin: the weighted number of
// matching pods in the node's domains (lower is better; normalized in
// reverse). Nodes missing a key score -1 and end up with 0.
func (PodTopologySpread) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	s, _ := state.Read(spreadScoreKey).(*spreadScoreState)
	if s == nil {
		return 0, nil
	}
	var score float64
	for i := range s.constraints {
		c := &s.constraints[i]
		value, ok := node.Node().Labels[c.key]
		if !ok {
			if s.systemDefaulted {
				continue
			}
			return -1, nil
		}
		score += float64(s.counts[i][value])*s.weights[i] + float64(c.maxSkew-1)
	}
	return int64(math.Round(score)), nil
}

// NormalizeScore implements framework.ScoreNormalizer.
func (PodTopologySpread) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores []int64) *framework.Status {
	var min, max int64 = math.MaxInt64, 0
	for _, s := range scores {
		if s < 0 {
			continue
		}
		if s < min {
			min = s
		}
		if s > max {
			max = s
		}
	}
	for i, s := range scores {
		switch {
		case s < 0:
			scores[i] = 0
		case max == 0:
			scores[i] = framework.MaxNodeScore
		default:
			scores[i] = framework.MaxNodeScore * (max + min - s) / max
		}
	}
	return nil
}
