package framework_test

import (
	"context"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"

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
