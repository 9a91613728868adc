package cache

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

func node(name string) *v1.Node {
	res := v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourcePods: resource.MustParse("110")}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1.NodeStatus{Allocatable: res}}
}

func pod(name, nodeName string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name)},
		Spec: v1.PodSpec{NodeName: nodeName, Containers: []v1.Container{{
			Name: "c", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1")}},
		}}},
	}
}

// view summarizes a snapshot: node -> requested millicores.
func view(s *framework.Snapshot) map[string]int64 {
	out := map[string]int64{}
	for _, ni := range s.NodeInfoList {
		out[ni.Name()] = ni.Requested.MilliCPU
	}
	return out
}

func TestAssumeConfirmForget(t *testing.T) {
	c := New(nil)
	snap := &framework.Snapshot{}
	c.AddNode(node("a"))
	c.AddNode(node("b"))

	steps := []struct {
		name string
		do   func()
		want map[string]int64
	}{
		{"empty", func() {}, map[string]int64{"a": 0, "b": 0}},
		{"assume p1 on a", func() {
			if err := c.AssumePod(pod("p1", "a")); err != nil {
				t.Fatal(err)
			}
		}, map[string]int64{"a": 1000, "b": 0}},
		{"bound elsewhere: informer wins", func() {
			c.FinishBinding(pod("p1", "a"))
			c.AddPod(pod("p1", "b"))
		}, map[string]int64{"a": 0, "b": 1000}},
		{"assume p2 then forget", func() {
			if err := c.AssumePod(pod("p2", "a")); err != nil {
				t.Fatal(err)
			}
			c.ForgetPod(pod("p2", "a"))
		}, map[string]int64{"a": 0, "b": 1000}},
		{"pod on a node not yet known", func() { c.AddPod(pod("p3", "c")) }, map[string]int64{"a": 0, "b": 1000}},
		{"the node arrives", func() { c.AddNode(node("c")) }, map[string]int64{"a": 0, "b": 1000, "c": 1000}},
		{"remove pod and node", func() {
			c.RemovePod(pod("p1", "b"))
			c.RemoveNode(node("a"))
		}, map[string]int64{"b": 0, "c": 1000}},
	}
	for _, s := range steps {
		s.do()
		c.UpdateSnapshot(snap)
		if diff := cmp.Diff(s.want, view(snap)); diff != "" {
			t.Errorf("%s: snapshot (-want +got):\n%s", s.name, diff)
		}
	}
	if c.IsAssumed("p1") || c.IsAssumed("p2") {
		t.Errorf("p1 or p2 still assumed")
	}
}

func TestSnapshotIsIsolated(t *testing.T) {
	c := New(nil)
	c.AddNode(node("a"))
	snap := &framework.Snapshot{}
	c.UpdateSnapshot(snap)
	before := snap.Get("a")
	if err := c.AssumePod(pod("p1", "a")); err != nil {
		t.Fatal(err)
	}
	if before.Requested.MilliCPU != 0 || len(before.Pods) != 0 {
		t.Errorf("snapshot changed by the cache before UpdateSnapshot")
	}
	c.UpdateSnapshot(snap)
	if got := snap.Get("a").Requested.MilliCPU; got != 1000 {
		t.Errorf("requested = %d, want 1000", got)
	}
	if snap.Get("a") == before {
		t.Errorf("changed node was not cloned")
	}
}

// TestSnapshotIndexesPatched: pods with affinity terms and with required
// anti-affinity come and go; the indexes patched in place always equal
// the ones rebuilt from the list.
func TestSnapshotIndexesPatched(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f", "g"}
	c := New(nil)
	for _, n := range names {
		c.AddNode(node(n))
	}
	snap := &framework.Snapshot{}
	c.UpdateSnapshot(snap)
	term := v1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{}, TopologyKey: v1.LabelHostname}
	withTerms := func(name, nodeName string, required bool) *v1.Pod {
		p := pod(name, nodeName)
		p.Spec.Containers[0].Resources = v1.ResourceRequirements{}
		if required {
			p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{term}}}
		} else {
			p.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{Weight: 1, PodAffinityTerm: term}}}}
		}
		return p
	}
	nodeNames := func(list []*framework.NodeInfo) []string {
		var out []string
		for _, ni := range list {
			out = append(out, ni.Name())
		}
		return out
	}
	var placed []*v1.Pod
	for step := range 60 {
		if step%3 == 2 && len(placed) > 0 {
			k := (step * 5) % len(placed)
			c.RemovePod(placed[k])
			placed = append(placed[:k], placed[k+1:]...)
		} else {
			p := withTerms(fmt.Sprintf("p%d", step), names[(step*3)%len(names)], step%4 == 0)
			c.AddPod(p)
			placed = append(placed, p)
		}
		c.UpdateSnapshot(snap)
		gotAff, gotAnti := nodeNames(snap.HavePodsWithAffinity), nodeNames(snap.HavePodsWithRequiredAntiAffinity)
		snap.RebuildIndexes()
		wantAff, wantAnti := nodeNames(snap.HavePodsWithAffinity), nodeNames(snap.HavePodsWithRequiredAntiAffinity)
		if diff := cmp.Diff([][]string{wantAff, wantAnti}, [][]string{gotAff, gotAnti}); diff != "" {
			t.Fatalf("step %d: indexes (-rebuilt +patched):\n%s", step, diff)
		}
	}
}
