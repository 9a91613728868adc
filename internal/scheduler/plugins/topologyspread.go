package plugins

import (
	"context"
	"math"
	"strings"

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
//
// The zero value works; NewPodTopologySpread adds a memo of the per-node
// counts, so that a cycle costs O(nodes) rather than O(pods) when few
// nodes changed since the last one.
type PodTopologySpread struct {
	counts *nodeMemo[int]
	// sums keeps the per-domain counts of the common case (every node
	// with the keys is eligible) from cycle to cycle.
	sums *domainSumsMemo
}

// NewPodTopologySpread returns the plugin with its memos. The states its
// PreFilter and PreScore write share the memo's maps: they are valid
// until the plugin's next PreFilter or PreScore, which the framework
// never runs before the cycle is done.
func NewPodTopologySpread() PodTopologySpread {
	return PodTopologySpread{counts: newNodeMemo[int](), sums: newDomainSumsMemo()}
}

// everyNodeEligible reports whether, for every constraint, a node is
// eligible just by carrying the topology key: the pod has no node
// selector or required node affinity to honor, and taints are ignored.
func everyNodeEligible(pod *framework.PodInfo, cs []constraint) bool {
	spec := &pod.Pod.Spec
	hasReq := len(spec.NodeSelector) > 0 ||
		(spec.Affinity != nil && spec.Affinity.NodeAffinity != nil && spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil)
	for i := range cs {
		if cs[i].honorTaints || (cs[i].honorAff && hasReq) {
			return false
		}
	}
	return true
}

// countAll fills counts[i] with constraint i's matching pods per domain
// by visiting every node (per-node counts memoized). When all is set, a
// node counts only if it carries every constraint's key (the filter's
// rule).
func (pl PodTopologySpread) countAll(counts []map[string]int, cs []constraint, pod *framework.PodInfo, req *nodeaffinity.RequiredNodeAffinity, snap *framework.Snapshot, all bool) {
	passes := make([]memoPass[int], len(cs))
	pl.counts.lock()
	defer pl.counts.unlock()
	for i := range cs {
		counts[i] = make(map[string]int, domainsHint(cs[i].key, snap))
		passes[i] = pl.countPass(&cs[i], pod)
	}
	for _, ni := range snap.NodeInfoList {
		if all {
			carries := true
			for i := range cs {
				if _, ok := ni.Node().Labels[cs[i].key]; !ok {
					carries = false
					break
				}
			}
			if !carries {
				continue
			}
		}
		for i := range cs {
			c := &cs[i]
			if !c.eligible(pod, req, ni) {
				continue
			}
			counts[i][ni.Node().Labels[c.key]] += passes[i].get(ni)
		}
	}
}

// sumCounts fills counts[i] with constraint i's matching pods per domain
// from the memo. When all is set, a node counts only if it carries every
// constraint's key (the filter's rule); otherwise its own key suffices.
// It returns the sums used, one per constraint.
func (pl PodTopologySpread) sumCounts(counts []map[string]int, cs []constraint, pod *framework.PodInfo, snap *framework.Snapshot, all bool) []*domainSums {
	used := make([]*domainSums, len(cs))
	var keys []string
	prefix := "score\x00"
	if all {
		for i := range cs {
			keys = append(keys, cs[i].key)
		}
		prefix = "filter\x00" + strings.Join(keys, ",") + "\x00"
	}
	for i := range cs {
		c := &cs[i]
		d := pl.sums.get(prefix+c.key+"\x00"+selectorKey(pod.Pod.Namespace, c.selector), snap.NodeInfoList, func(ni *framework.NodeInfo) []contribution {
			nodeLabels := ni.Node().Labels
			for _, k := range keys {
				if _, ok := nodeLabels[k]; !ok {
					return nil
				}
			}
			return []contribution{{topoKey: c.key, n: countMatching(c, pod, ni)}}
		})
		used[i] = d
		counts[i] = d.sums[""]
		if counts[i] == nil {
			counts[i] = map[string]int{}
		}
	}
	return used
}

var (
	_ framework.PreFilterPlugin = PodTopologySpread{}
	_ framework.FilterPlugin    = PodTopologySpread{}
	_ framework.PositionFilter  = PodTopologySpread{}
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
	// sums[i] holds constraint i's counts by node position in list
	// (memoized path only; nil otherwise).
	sums []*domainSums
	list []*framework.NodeInfo
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

// countPass starts a (memoized) pass counting c's matching pods per node;
// the caller holds the memo's lock.
func (pl PodTopologySpread) countPass(c *constraint, pod *framework.PodInfo) memoPass[int] {
	return pl.counts.pass(selectorKey(pod.Pod.Namespace, c.selector), func(ni *framework.NodeInfo) int {
		return countMatching(c, pod, ni)
	})
}

// selectorKey names a selector in a namespace for memos. Everything and
// Nothing both print as "", so emptiness is part of the key.
func selectorKey(namespace string, sel labels.Selector) string {
	kind := "S"
	if sel.Empty() {
		kind = "E"
	}
	return namespace + "\x00" + kind + sel.String()
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
func (pl PodTopologySpread) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, snap *framework.Snapshot) *framework.Status {
	cs, err := parseConstraints(pod, v1.DoNotSchedule)
	if err != nil {
		return framework.AsStatus(err)
	}
	if len(cs) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	req := nodeaffinity.GetRequiredNodeAffinity(pod.Pod)
	s := &spreadState{constraints: cs, counts: make([]map[string]int, len(cs)), minMatch: make([]int, len(cs))}
	pl.sums.lock()
	defer pl.sums.unlock()
	if pl.sums != nil && everyNodeEligible(pod, cs) {
		s.sums = pl.sumCounts(s.counts, cs, pod, snap, true)
		s.list = snap.NodeInfoList
	} else {
		pl.countAll(s.counts, cs, pod, &req, snap, true)
	}
	for i := range cs {
		min := math.MaxInt
		if s.sums != nil {
			// The same minimum, by domain number.
			if m, ok := s.sums[i].minSum(""); ok {
				min = m
			}
		} else {
			for _, n := range s.counts[i] {
				if n < min {
					min = n
				}
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

// domainsHint sizes a per-domain count map: one domain per node for the
// hostname key, few otherwise.
func domainsHint(key string, snap *framework.Snapshot) int {
	if key == v1.LabelHostname {
		return len(snap.NodeInfoList)
	}
	return 0
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

// FilterByPosition implements framework.PositionFilter: with the
// memoized counts, a node's domain count is read by its position in the
// list (an interned domain number: no label lookup, no hashing), which
// decides most nodes without reading them when few domains can take the
// pod (maxSkew 1 late in a spread).
func (PodTopologySpread) FilterByPosition(state *framework.CycleState, snap *framework.Snapshot) func(int) framework.Verdict {
	s, _ := state.Read(spreadFilterKey).(*spreadState)
	if s == nil || s.sums == nil || len(s.list) != len(snap.NodeInfoList) || (len(s.list) > 0 && &s.list[0] != &snap.NodeInfoList[0]) {
		return nil
	}
	byID := make([][]int, len(s.sums))
	for k, d := range s.sums {
		if len(d.nodes) != len(s.list) {
			return nil
		}
		byID[k] = d.byID[""]
	}
	list := s.list
	return func(i int) framework.Verdict {
		for k, d := range s.sums {
			if d.nodes[i] != list[i] {
				return framework.Unknown
			}
			ids := d.ids[i]
			if len(ids) == 0 {
				return framework.Rejects // missing a topology key
			}
			c := &s.constraints[k]
			if sumAt(byID[k], ids[0])+c.selfMatch-s.minMatch[k] > int(c.maxSkew) {
				return framework.Rejects
			}
		}
		return framework.Passes
	}
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
// domain of the ScheduleAnyway constraints over the eligible nodes, and
// weighs each constraint by the number of domains among the filtered
// nodes.
func (pl PodTopologySpread) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, snap *framework.Snapshot, filtered []*framework.NodeInfo) *framework.Status {
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
	pl.sums.lock()
	defer pl.sums.unlock()
	if pl.sums != nil && everyNodeEligible(pod, cs) {
		pl.sumCounts(s.counts, cs, pod, snap, false)
	} else {
		pl.countAll(s.counts, cs, pod, &req, snap, false)
	}
	// More domains weigh more (upstream: log(domains + 2)), counting the
	// domains of the nodes that passed the filters and carry the keys
	// (every key, unless the constraints are the system defaults).
	for i := range cs {
		domains := make(map[string]struct{}, domainsHint(cs[i].key, snap))
	nodes:
		for _, ni := range filtered {
			nodeLabels := ni.Node().Labels
			if !systemDefaulted {
				for j := range cs {
					if _, ok := nodeLabels[cs[j].key]; !ok {
						continue nodes
					}
				}
			}
			if v, ok := nodeLabels[cs[i].key]; ok {
				domains[v] = struct{}{}
			}
		}
		s.weights[i] = math.Log(float64(len(domains) + 2))
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
