package plugins

import (
	"context"
	"math"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// InterPodAffinity enforces required pod affinity and anti-affinity (the
// incoming pod's terms and the anti-affinity terms of pods already
// placed, for any topologyKey and across namespaces by namespaces or
// namespaceSelector) and scores the preferred terms of both sides.
//
// The zero value works; NewInterPodAffinity adds memos of per-node term
// matches, so that a cycle costs O(nodes) rather than O(pods) when few
// nodes changed since the last one.
type InterPodAffinity struct {
	// counts memoizes, per term, the node's pods the term selects.
	counts *nodeMemo[int]
	// existing memoizes, per node, the terms of the pods on it, merged
	// by identical term.
	existing *nodeMemo[[]mergedTerm]
	// sums keeps the scoring sums per domain from cycle to cycle.
	sums *domainSumsMemo
}

// NewInterPodAffinity returns the plugin with its memos. The score
// states its PreScore writes share the memo's maps: they are valid until
// the plugin's next PreScore, which the framework never runs before the
// cycle is done.
func NewInterPodAffinity() InterPodAffinity {
	return InterPodAffinity{counts: newNodeMemo[int](), existing: newNodeMemo[[]mergedTerm](), sums: newDomainSumsMemo()}
}

// mergedTerm is the sum of the score weights of identical terms held by
// the pods on one node.
type mergedTerm struct {
	key    string
	term   *framework.AffinityTerm
	weight int64
}

// termKey names what an affinity term selects (namespaces, namespace
// selector, selector) and its topology key.
func termKey(t *framework.AffinityTerm) string {
	ns := sets.List(t.Namespaces)
	nsSel := "-"
	if t.NamespaceSelector != nil {
		nsSel = selectorKey("", t.NamespaceSelector)
	}
	return strings.Join(ns, ",") + "\x00" + nsSel + "\x00" + selectorKey("", t.Selector) + "\x00" + t.TopologyKey
}

// termCountPass starts a pass counting the pods on each node that t
// selects. Terms with a namespace selector depend on namespace labels,
// which change without the node changing: they are not memoized.
func (pl InterPodAffinity) termCountPass(t *framework.AffinityTerm, ns framework.NamespaceLabels) memoPass[int] {
	compute := func(ni *framework.NodeInfo) int {
		n := 0
		for _, existing := range ni.Pods {
			if t.Matches(existing.Pod, ns) {
				n++
			}
		}
		return n
	}
	if t.NamespaceSelector != nil {
		return (*nodeMemo[int])(nil).pass("", compute)
	}
	return pl.counts.pass(termKey(t), compute)
}

// mergeExisting merges the scoring terms of the pods with affinity on ni:
// required affinity terms weigh hardPodAffinityWeight, preferred ones
// their weight, preferred anti-affinity ones minus their weight.
func mergeExisting(ni *framework.NodeInfo) []mergedTerm {
	var out []mergedTerm
	add := func(t *framework.AffinityTerm, w int64) {
		k := termKey(t)
		for i := range out {
			if out[i].key == k {
				out[i].weight += w
				return
			}
		}
		out = append(out, mergedTerm{key: k, term: t, weight: w})
	}
	for _, existing := range ni.PodsWithAffinity {
		for i := range existing.RequiredAffinityTerms {
			add(&existing.RequiredAffinityTerms[i], hardPodAffinityWeight)
		}
		for i := range existing.PreferredAffinityTerms {
			add(&existing.PreferredAffinityTerms[i].AffinityTerm, int64(existing.PreferredAffinityTerms[i].Weight))
		}
		for i := range existing.PreferredAntiAffinityTerms {
			add(&existing.PreferredAntiAffinityTerms[i].AffinityTerm, -int64(existing.PreferredAntiAffinityTerms[i].Weight))
		}
	}
	return out
}

var (
	_ framework.PreFilterPlugin = InterPodAffinity{}
	_ framework.FilterPlugin    = InterPodAffinity{}
	_ framework.PreScorePlugin  = InterPodAffinity{}
	_ framework.ScorePlugin     = InterPodAffinity{}
	_ framework.PositionScorer  = InterPodAffinity{}
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
func (pl InterPodAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, snap *framework.Snapshot) *framework.Status {
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
		pl.counts.lock()
		countTerms(s.affinity, pl.termPasses(pod.RequiredAffinityTerms, snap.NamespaceLabels), pod.RequiredAffinityTerms, snap)
		countTerms(s.anti, pl.termPasses(pod.RequiredAntiAffinityTerms, snap.NamespaceLabels), pod.RequiredAntiAffinityTerms, snap)
		pl.counts.unlock()
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

func (pl InterPodAffinity) termPasses(terms []framework.AffinityTerm, ns framework.NamespaceLabels) []memoPass[int] {
	out := make([]memoPass[int], len(terms))
	for i := range terms {
		out[i] = pl.termCountPass(&terms[i], ns)
	}
	return out
}

// countTerms counts, per topology pair, the existing pods every term
// selects (as upstream, a pod matching several terms counts once per
// term). passes[i] counts terms[i] per node.
func countTerms(counts map[topologyPair]int, passes []memoPass[int], terms []framework.AffinityTerm, snap *framework.Snapshot) {
	for _, ni := range snap.NodeInfoList {
		nodeLabels := ni.Node().Labels
		for i := range terms {
			v, ok := nodeLabels[terms[i].TopologyKey]
			if !ok {
				continue
			}
			if n := passes[i].get(ni); n > 0 {
				counts[topologyPair{terms[i].TopologyKey, v}] += n
			}
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
	components []scoreComponent
	// list is the node list the components' positions index (memoized
	// path only).
	list []*framework.NodeInfo
}

// scoreComponent adds factor × values[v] to a node whose key label is v.
// On the memoized path, ids numbers each node's value by its position in
// the list and byID holds values by those numbers.
type scoreComponent struct {
	key    string
	values map[string]int
	factor int64
	ids    []int32
	byID   []int
}

// PreScore implements framework.PreScorePlugin.
func (pl InterPodAffinity) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, snap *framework.Snapshot, _ []*framework.NodeInfo) *framework.Status {
	hasPreferred := len(pod.PreferredAffinityTerms)+len(pod.PreferredAntiAffinityTerms) > 0
	if !hasPreferred && len(snap.HavePodsWithAffinity) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	if pl.sums == nil {
		return pl.preScoreWalk(state, pod, snap)
	}
	for i := range pod.PreferredAffinityTerms {
		if pod.PreferredAffinityTerms[i].NamespaceSelector != nil {
			return pl.preScoreWalk(state, pod, snap)
		}
	}
	for i := range pod.PreferredAntiAffinityTerms {
		if pod.PreferredAntiAffinityTerms[i].NamespaceSelector != nil {
			return pl.preScoreWalk(state, pod, snap)
		}
	}
	ns := snap.NamespaceLabels
	st := &affinityScoreState{}
	pl.sums.lock()
	defer pl.sums.unlock()
	// The incoming pod's preferred terms, counting the pods they select.
	own := func(t *framework.AffinityTerm, w int64) {
		d := pl.sums.get("own\x00"+termKey(t), snap.NodeInfoList, func(ni *framework.NodeInfo) []contribution {
			n := 0
			for _, existing := range ni.Pods {
				if t.Matches(existing.Pod, ns) {
					n++
				}
			}
			if n == 0 {
				return nil
			}
			return []contribution{{topoKey: t.TopologyKey, n: n}}
		})
		if len(d.sums[""]) > 0 {
			st.components = append(st.components, scoreComponent{
				key: t.TopologyKey, values: d.sums[""], factor: w,
				ids: pl.sums.positions(t.TopologyKey, snap.NodeInfoList), byID: d.byID[""],
			})
		}
	}
	for i := range pod.PreferredAffinityTerms {
		own(&pod.PreferredAffinityTerms[i].AffinityTerm, int64(pod.PreferredAffinityTerms[i].Weight))
	}
	for i := range pod.PreferredAntiAffinityTerms {
		own(&pod.PreferredAntiAffinityTerms[i].AffinityTerm, -int64(pod.PreferredAntiAffinityTerms[i].Weight))
	}
	// The existing pods' terms that select the incoming pod, merged by
	// identical term; terms remembers one of each group.
	terms := map[string]*framework.AffinityTerm{}
	d := pl.sums.get("existing", snap.NodeInfoList, func(ni *framework.NodeInfo) []contribution {
		var out []contribution
		for _, m := range mergeExisting(ni) {
			if m.weight != 0 {
				out = append(out, contribution{group: m.key, topoKey: m.term.TopologyKey, n: int(m.weight)})
			}
		}
		return out
	})
	if len(d.sums) > 0 {
		pl.existing.lock()
		merged := pl.existing.pass("", mergeExisting)
		defer pl.existing.unlock()
		for _, ni := range snap.HavePodsWithAffinity {
			for _, m := range merged.get(ni) {
				if _, want := d.sums[m.key]; !want {
					continue
				}
				if _, ok := terms[m.key]; !ok {
					terms[m.key] = m.term
				}
			}
			if len(terms) >= len(d.sums) {
				break
			}
		}
	}
	for group, values := range d.sums {
		t := terms[group]
		if len(values) == 0 || t == nil || !t.Matches(pod.Pod, ns) {
			continue
		}
		st.components = append(st.components, scoreComponent{
			key: t.TopologyKey, values: values, factor: 1,
			ids: pl.sums.positions(t.TopologyKey, snap.NodeInfoList), byID: d.byID[group],
		})
	}
	if len(st.components) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	st.list = snap.NodeInfoList
	state.Write(affinityScoreKey, st)
	return nil
}

// preScoreWalk is PreScore by visiting every node's pods (per-node
// results memoized); it handles what the sums cannot.
func (pl InterPodAffinity) preScoreWalk(state *framework.CycleState, pod *framework.PodInfo, snap *framework.Snapshot) *framework.Status {
	hasPreferred := len(pod.PreferredAffinityTerms)+len(pod.PreferredAntiAffinityTerms) > 0
	nodes := snap.HavePodsWithAffinity
	if hasPreferred {
		nodes = snap.NodeInfoList
	}
	if len(nodes) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	st := &affinityScoreState{}
	s := struct{ scores map[string]map[string]int }{scores: map[string]map[string]int{}}
	add := func(key string, nodeLabels map[string]string, w int64) {
		v, ok := nodeLabels[key]
		if !ok || w == 0 {
			return
		}
		m := s.scores[key]
		if m == nil {
			m = make(map[string]int, domainsHint(key, snap))
			s.scores[key] = m
		}
		m[v] += int(w)
	}
	ns := snap.NamespaceLabels

	// The incoming pod's preferred terms, over every pod.
	type weighted struct {
		t    *framework.AffinityTerm
		w    int64
		pass memoPass[int]
	}
	var own []weighted
	pl.counts.lock()
	defer pl.counts.unlock()
	for i := range pod.PreferredAffinityTerms {
		t := &pod.PreferredAffinityTerms[i]
		own = append(own, weighted{&t.AffinityTerm, int64(t.Weight), pl.termCountPass(&t.AffinityTerm, ns)})
	}
	for i := range pod.PreferredAntiAffinityTerms {
		t := &pod.PreferredAntiAffinityTerms[i]
		own = append(own, weighted{&t.AffinityTerm, -int64(t.Weight), pl.termCountPass(&t.AffinityTerm, ns)})
	}
	// The existing pods' terms that select the incoming pod.
	pl.existing.lock()
	defer pl.existing.unlock()
	existing := pl.existing.pass("", mergeExisting)
	selects := map[string]bool{} // term key -> the term selects pod
	for _, ni := range nodes {
		nodeLabels := ni.Node().Labels
		for _, o := range own {
			if n := o.pass.get(ni); n > 0 {
				add(o.t.TopologyKey, nodeLabels, o.w*int64(n))
			}
		}
		if len(ni.PodsWithAffinity) == 0 {
			continue
		}
		for _, m := range existing.get(ni) {
			match, ok := selects[m.key]
			if !ok {
				match = m.term.Matches(pod.Pod, ns)
				selects[m.key] = match
			}
			if match {
				add(m.term.TopologyKey, nodeLabels, m.weight)
			}
		}
	}
	if len(s.scores) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	for key, values := range s.scores {
		st.components = append(st.components, scoreComponent{key: key, values: values, factor: 1})
	}
	state.Write(affinityScoreKey, st)
	return nil
}

// Score implements framework.ScorePlugin.
func (InterPodAffinity) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	s, _ := state.Read(affinityScoreKey).(*affinityScoreState)
	if s == nil {
		return 0, nil
	}
	var score int64
	for _, c := range s.components {
		if v, ok := node.Node().Labels[c.key]; ok {
			score += int64(c.values[v]) * c.factor
		}
	}
	return score, nil
}

// ScoreByPosition implements framework.PositionScorer: on the memoized
// path, a node's score is read by its position (numbered label values
// and sums by number: no label lookup, no hashing).
func (InterPodAffinity) ScoreByPosition(state *framework.CycleState, snap *framework.Snapshot) func(int) int64 {
	s, _ := state.Read(affinityScoreKey).(*affinityScoreState)
	list := snap.NodeInfoList
	if s == nil || len(s.list) != len(list) || len(list) == 0 || &s.list[0] != &list[0] {
		return nil
	}
	for _, c := range s.components {
		if len(c.ids) != len(list) {
			return nil
		}
	}
	return func(i int) int64 {
		var score int64
		for _, c := range s.components {
			score += int64(sumAt(c.byID, c.ids[i])) * c.factor
		}
		return score
	}
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
