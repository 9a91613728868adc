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
