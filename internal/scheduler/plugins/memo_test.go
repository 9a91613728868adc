package plugins

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// filterCodes runs p's PreFilter and Filter and returns each node's code
// ("" for success), or nil when the plugin skips. When p is a
// PositionFilter, it checks that every node rejected by position is
// rejected by Filter, and adds the nodes so rejected to *positional.
func filterCodes(t *testing.T, positional *int, p interface {
	framework.PreFilterPlugin
	framework.FilterPlugin
}, pi *framework.PodInfo, snap *framework.Snapshot) map[string]string {
	t.Helper()
	ctx := context.Background()
	state := framework.NewCycleState()
	if st := p.PreFilter(ctx, state, pi, snap); st.IsSkip() {
		return nil
	} else if !st.IsSuccess() {
		return map[string]string{"prefilter": st.Message()}
	}
	var at func(int) framework.Verdict
	if pf, ok := p.(framework.PositionFilter); ok {
		at = pf.FilterByPosition(state, snap)
	}
	out := map[string]string{}
	for i, ni := range snap.NodeInfoList {
		st := p.Filter(ctx, state, pi, ni)
		if !st.IsSuccess() {
			out[ni.Name()] = st.Message()
		}
		if at == nil {
			continue
		}
		switch at(i) {
		case framework.Rejects:
			*positional++
			if st.IsSuccess() {
				t.Errorf("node %s rejected by position, but its Filter passes", ni.Name())
			}
		case framework.Passes:
			if !st.IsSuccess() {
				t.Errorf("node %s passes by position, but its Filter says %v", ni.Name(), st.Message())
			}
		}
	}
	return out
}

// TestMemoizedPluginsMatchWalk checks that the plugins with their
// cross-cycle memos decide exactly as the zero-value plugins (which walk
// every pod each cycle) while a snapshot changes the way the cache
// changes it: a changed node is a new clone at the same position.
func TestMemoizedPluginsMatchWalk(t *testing.T) {
	sel := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	spread := func(key string, when v1.UnsatisfiableConstraintAction) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, v1.TopologySpreadConstraint{
				MaxSkew: 1, TopologyKey: key, WhenUnsatisfiable: when, LabelSelector: sel("a"),
			})
		}
	}
	preferredAnti := func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{
				Weight: 50, PodAffinityTerm: v1.PodAffinityTerm{LabelSelector: sel("a"), TopologyKey: v1.LabelHostname},
			}},
		}}
	}
	preferredAff := func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{
				Weight: 20, PodAffinityTerm: v1.PodAffinityTerm{LabelSelector: sel("b"), TopologyKey: v1.LabelTopologyZone},
			}},
		}}
	}
	zoneSelector := func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{v1.LabelTopologyZone: "z1"} }

	tests := []struct {
		name string
		pod  *v1.Pod
	}{
		{"hostname spread, filter", pod("ns", "new", "", "", map[string]string{"app": "a"}, spread(v1.LabelHostname, v1.DoNotSchedule))},
		{"zone spread, score", pod("ns", "new", "", "", map[string]string{"app": "a"}, spread(v1.LabelTopologyZone, v1.ScheduleAnyway))},
		{"two constraints", pod("ns", "new", "", "", map[string]string{"app": "a"}, spread(v1.LabelHostname, v1.DoNotSchedule), spread(v1.LabelTopologyZone, v1.DoNotSchedule))},
		{"spread with node selector (walk path)", pod("ns", "new", "", "", map[string]string{"app": "a"}, spread(v1.LabelHostname, v1.DoNotSchedule), zoneSelector)},
		{"preferred anti-affinity", pod("ns", "new", "", "", map[string]string{"app": "a"}, preferredAnti)},
		{"preferred affinity", pod("ns", "new", "", "", map[string]string{"app": "b"}, preferredAff)},
		{"plain pod among affinity pods", pod("ns", "new", "", "", map[string]string{"app": "a"})},
		{"other namespace", pod("other", "new", "", "", map[string]string{"app": "a"}, spread(v1.LabelHostname, v1.DoNotSchedule), preferredAnti)},
	}
	positional := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var nodes []*v1.Node
			for i := range 12 {
				lbls := map[string]string{v1.LabelTopologyZone: fmt.Sprintf("z%d", i%3)}
				if i == 11 {
					lbls = nil // no zone
				}
				nodes = append(nodes, node(fmt.Sprintf("n%02d", i), "8", lbls))
			}
			snap := framework.NewSnapshot(nodes, nil)
			var names []string
			for _, ni := range snap.NodeInfoList {
				names = append(names, ni.Name())
			}
			memoSpread, memoAff := NewPodTopologySpread(), NewInterPodAffinity()
			pi := framework.NewPodInfo(tt.pod, 0)
			var placed []*framework.PodInfo
			for step := range 40 {
				want := []any{
					filterCodes(t, &positional, PodTopologySpread{}, pi, snap), scores(t, PodTopologySpread{}, pi, snap),
					filterCodes(t, &positional, InterPodAffinity{}, pi, snap), scores(t, InterPodAffinity{}, pi, snap),
				}
				got := []any{
					filterCodes(t, &positional, memoSpread, pi, snap), scores(t, memoSpread, pi, snap),
					filterCodes(t, &positional, memoAff, pi, snap), scores(t, memoAff, pi, snap),
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("step %d: memoized plugins differ from the walk (-walk +memo):\n%s", step, diff)
				}
				// Change one node as the cache would: a new clone in place.
				name := names[(step*7)%len(names)]
				clone := snap.NodeInfoMap[name].Clone()
				if step%5 == 4 && len(placed) > 0 {
					victim := placed[0]
					placed = placed[1:]
					name = victim.Pod.Spec.NodeName
					clone = snap.NodeInfoMap[name].Clone()
					clone.RemovePod(victim.Pod.UID)
				} else {
					app := []string{"a", "b"}[step%2]
					ns := []string{"ns", "other"}[step%3/2]
					mut := []func(*v1.Pod){preferredAnti, preferredAff, func(*v1.Pod) {}}[step%3]
					p := framework.NewPodInfo(pod(ns, fmt.Sprintf("p%d", step), "", name, map[string]string{"app": app}, mut), 0)
					clone.AddPod(p)
					placed = append(placed, p)
				}
				snap.NodeInfoMap[name] = clone
				snap.RebuildOrdered(names)
			}
		})
	}
	if positional == 0 {
		t.Error("no node was ever rejected by position")
	}
	if positionScored == 0 {
		t.Error("no node was ever scored by position")
	}
}

// TestSpreadScoreWeighsFilteredDomains: a ScheduleAnyway constraint
// weighs log(domains + 2) over the domains of the filtered nodes only.
func TestSpreadScoreWeighsFilteredDomains(t *testing.T) {
	var nodes []*v1.Node
	for i := range 6 {
		nodes = append(nodes, node(fmt.Sprintf("n%d", i), "8", map[string]string{v1.LabelTopologyZone: fmt.Sprintf("z%d", i%3)}))
	}
	nodes = append(nodes, node("nozone", "8", nil))
	snap := framework.NewSnapshot(nodes, nil)
	p := pod("ns", "new", "", "", map[string]string{"app": "a"}, func(p *v1.Pod) {
		for _, key := range []string{v1.LabelTopologyZone, v1.LabelHostname} {
			p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, v1.TopologySpreadConstraint{
				MaxSkew: 1, TopologyKey: key, WhenUnsatisfiable: v1.ScheduleAnyway,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			})
		}
	})
	pi := framework.NewPodInfo(p, 0)
	// n0 and n3 (zone z0) and nozone (lacks the zone key) passed the filters.
	filtered := []*framework.NodeInfo{snap.Get("n0"), snap.Get("n3"), snap.Get("nozone")}
	for _, pl := range []PodTopologySpread{{}, NewPodTopologySpread()} {
		state := framework.NewCycleState()
		if st := pl.PreScore(context.Background(), state, pi, snap, filtered); !st.IsSuccess() {
			t.Fatalf("PreScore: %v", st)
		}
		s := state.Read(spreadScoreKey).(*spreadScoreState)
		want := []float64{math.Log(1 + 2), math.Log(2 + 2)}
		if diff := cmp.Diff(want, s.weights); diff != "" {
			t.Errorf("weights (-want +got):\n%s", diff)
		}
	}
}
