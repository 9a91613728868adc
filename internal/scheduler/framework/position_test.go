package framework_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
	"github.com/skiff-dev/skiff/internal/scheduler/plugins"
)

// hiddenPosition is PodTopologySpread without its PositionFilter ability,
// so that every node runs the filters.
type hiddenPosition struct{ p plugins.PodTopologySpread }

func (h hiddenPosition) Name() string { return h.p.Name() }
func (h hiddenPosition) PreFilter(ctx context.Context, s *framework.CycleState, pi *framework.PodInfo, snap *framework.Snapshot) *framework.Status {
	return h.p.PreFilter(ctx, s, pi, snap)
}
func (h hiddenPosition) Filter(ctx context.Context, s *framework.CycleState, pi *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	return h.p.Filter(ctx, s, pi, ni)
}
func (h hiddenPosition) PreScore(ctx context.Context, s *framework.CycleState, pi *framework.PodInfo, snap *framework.Snapshot, nodes []*framework.NodeInfo) *framework.Status {
	return h.p.PreScore(ctx, s, pi, snap, nodes)
}
func (h hiddenPosition) Score(ctx context.Context, s *framework.CycleState, pi *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	return h.p.Score(ctx, s, pi, ni)
}
func (h hiddenPosition) NormalizeScore(ctx context.Context, s *framework.CycleState, pi *framework.PodInfo, scores []int64) *framework.Status {
	return h.p.NormalizeScore(ctx, s, pi, scores)
}

// frameworks returns two frameworks with the default plugins and the same
// options and seed: with the spread plugin's position filter, and without.
func frameworks(percentage int32) (withPos, without *framework.Framework) {
	ps, w := plugins.Default()
	opts := func() framework.Options {
		return framework.Options{PercentageOfNodesToScore: percentage, Parallelism: 1, Rand: rand.New(rand.NewPCG(7, 8))}
	}
	withPos = framework.New(ps, w, opts())
	ps2, _ := plugins.Default()
	for i, p := range ps2 {
		if sp, ok := p.(plugins.PodTopologySpread); ok {
			ps2[i] = hiddenPosition{sp}
		}
	}
	without = framework.New(ps2, w, opts())
	return withPos, without
}

func spreadPod(name, cpu, nodeName string) *v1.Pod {
	p := pod(name, cpu, nodeName, 0)
	p.Labels = map[string]string{"app": "c"}
	sel := &metav1.LabelSelector{MatchLabels: p.Labels}
	p.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: v1.LabelHostname, WhenUnsatisfiable: v1.DoNotSchedule, LabelSelector: sel,
	}}
	p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{
			Weight: 100, PodAffinityTerm: v1.PodAffinityTerm{LabelSelector: sel, TopologyKey: v1.LabelHostname},
		}},
	}}
	return p
}

// TestPositionFilterKeepsDecisions places spread pods one after the other
// with and without the position filter: same node every time (sampling
// included), and the same reasons once nothing fits.
func TestPositionFilterKeepsDecisions(t *testing.T) {
	tests := []struct {
		name       string
		nodes      int
		percentage int32
		pods       int
	}{
		{"every node", 60, 100, 150},
		{"sampled", 400, 0, 900},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var nodes []*v1.Node
			for i := range tt.nodes {
				nodes = append(nodes, node(fmt.Sprintf("n%03d", i), "1"))
			}
			withPos, without := frameworks(tt.percentage)
			snapA, snapB := framework.NewSnapshot(nodes, nil), framework.NewSnapshot(nodes, nil)
			failures := 0
			for i := range tt.pods {
				p := spreadPod(fmt.Sprintf("p%d", i), "400m", "")
				a, errA := withPos.Schedule(context.Background(), framework.NewPodInfo(p, 0), snapA)
				b, errB := without.Schedule(context.Background(), framework.NewPodInfo(p, 0), snapB)
				if fmt.Sprint(errA) != fmt.Sprint(errB) || a.Node != b.Node || a.Feasible != b.Feasible {
					t.Fatalf("pod %d: with position filter %+v, %v; without %+v, %v", i, a, errA, b, errB)
				}
				if errA != nil {
					var fit *framework.FitError
					if !errors.As(errA, &fit) {
						t.Fatalf("pod %d: %v", i, errA)
					}
					failures++
					continue
				}
				for _, snap := range []*framework.Snapshot{snapA, snapB} {
					ni := snap.Get(a.Node).Clone()
					placed := p.DeepCopy()
					placed.Spec.NodeName = a.Node
					ni.AddPod(framework.NewPodInfo(placed, 0))
					snap.NodeInfoMap[a.Node] = ni
					snap.Rebuild()
				}
			}
			if want := tt.pods - 2*tt.nodes; failures != want {
				t.Errorf("%d pods did not fit, want %d (two per node)", failures, want)
			}
		})
	}
}

// TestPositionFilterReasons: nodes a position filter skips still report
// the first rejecting filter's reason when nothing fits.
func TestPositionFilterReasons(t *testing.T) {
	var nodes []*v1.Node
	var pods []*v1.Pod
	for i := range 120 {
		n := node(fmt.Sprintf("n%03d", i), "1")
		nodes = append(nodes, n)
		switch {
		case i < 60: // full, no matching pod: count 0, the minimum
			pods = append(pods, pod(fmt.Sprintf("block%d", i), "1", n.Name, 0))
		case i < 70: // a matching pod and full: both reasons, cpu first
			pods = append(pods, spreadPod(fmt.Sprintf("c%d", i), "400m", n.Name), pod(fmt.Sprintf("block%d", i), "600m", n.Name, 0))
		default: // a matching pod: skew 2
			pods = append(pods, spreadPod(fmt.Sprintf("c%d", i), "400m", n.Name))
		}
	}
	want := "0/120 nodes are available: 50 node(s) didn't match pod topology spread constraints, 70 Insufficient cpu."
	withPos, without := frameworks(0)
	for name, fw := range map[string]*framework.Framework{"with position filter": withPos, "without": without} {
		_, err := fw.Schedule(context.Background(), framework.NewPodInfo(spreadPod("new", "400m", ""), 0), framework.NewSnapshot(nodes, pods))
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", name, err, want)
		}
	}
}
