package framework_test

import (
	"context"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
	"github.com/skiff-dev/skiff/internal/scheduler/plugins"
)

// BenchmarkSchedule measures one decision over 5,000 nodes holding
// 10 pods each, with the adaptive sampling.
func BenchmarkSchedule(b *testing.B) {
	var nodes []*v1.Node
	var pods []*v1.Pod
	for i := 0; i < 5000; i++ {
		n := node(fmt.Sprintf("node-%05d", i), "32")
		nodes = append(nodes, n)
		for j := 0; j < 10; j++ {
			pods = append(pods, pod(fmt.Sprintf("p-%d-%d", i, j), "100m", n.Name, 0))
		}
	}
	ps, w := plugins.Default()
	fw := framework.New(ps, w, framework.Options{})
	snap := framework.NewSnapshot(nodes, pods)
	pi := framework.NewPodInfo(pod("new", "100m", "", 0), 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := fw.Schedule(context.Background(), pi, snap); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScheduleConstrained measures one decision over 5,000 nodes
// holding one pod each, for a pod with a hostname spread constraint
// (maxSkew 1, DoNotSchedule) and a preferred anti-affinity selecting the
// pods already placed (the constrained pods of bench/scheduler).
func BenchmarkScheduleConstrained(b *testing.B) {
	constrained := func(p *v1.Pod) *v1.Pod {
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
	var nodes []*v1.Node
	var pods []*v1.Pod
	for i := 0; i < 5000; i++ {
		n := node(fmt.Sprintf("node-%05d", i), "32")
		n.Labels = map[string]string{v1.LabelHostname: n.Name}
		nodes = append(nodes, n)
		if i%2 == 0 {
			pods = append(pods, constrained(pod(fmt.Sprintf("p-%d", i), "100m", n.Name, 0)))
		}
	}
	ps, w := plugins.Default()
	fw := framework.New(ps, w, framework.Options{})
	snap := framework.NewSnapshot(nodes, pods)
	pi := framework.NewPodInfo(constrained(pod("new", "100m", "", 0)), 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := fw.Schedule(context.Background(), pi, snap); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScheduleConstrainedLayer places 5,000 constrained pods (the
// pods of BenchmarkScheduleConstrained) one after the other on 5,000
// nodes that already hold one each, as bench/scheduler's second half
// does: early on most nodes fit, at the end of the layer almost none, so
// a decision filters from 500 nodes up to all of them. It reports the
// CPU time per decision ("ns/pod"), with the spread plugin's position
// filter ("position") and without it ("filters"), to show what skipping
// the nodes it rejects saves.
func BenchmarkScheduleConstrainedLayer(b *testing.B) {
	const n = 5000
	var nodes []*v1.Node
	var pods []*v1.Pod
	for i := 0; i < n; i++ {
		nd := node(fmt.Sprintf("node-%05d", i), "32")
		nodes = append(nodes, nd)
		pods = append(pods, spreadPod(fmt.Sprintf("p-%d", i), "100m", nd.Name))
	}
	withPos, without := frameworks(0)
	for _, bc := range []struct {
		name string
		fw   *framework.Framework
	}{{"position", withPos}, {"filters", without}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				snap := framework.NewSnapshot(nodes, pods)
				index := map[string]int{}
				for j, ni := range snap.NodeInfoList {
					index[ni.Name()] = j
				}
				b.StartTimer()
				for j := 0; j < n; j++ {
					p := spreadPod(fmt.Sprintf("q-%d", j), "100m", "")
					res, err := bc.fw.Schedule(context.Background(), framework.NewPodInfo(p, 0), snap)
					if err != nil {
						b.Fatal(err)
					}
					// As the cache does: a new clone in place.
					ni := snap.Get(res.Node).Clone()
					p.Spec.NodeName = res.Node
					ni.AddPod(framework.NewPodInfo(p, 0))
					snap.NodeInfoMap[res.Node] = ni
					snap.NodeInfoList[index[res.Node]] = ni
					snap.RebuildIndexes()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/pod")
		})
	}
}
