package framework_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
	"github.com/skiff-dev/skiff/internal/scheduler/plugins"
)

func node(name, cpu string) *v1.Node {
	res := v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("4Gi"), v1.ResourcePods: resource.MustParse("110")}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelHostname: name}}, Status: v1.NodeStatus{Allocatable: res}}
}

func pod(name, cpu, nodeName string, prio int32) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name), Labels: map[string]string{"app": name}},
		Spec: v1.PodSpec{NodeName: nodeName, Priority: &prio, Containers: []v1.Container{{
			Name: "c", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}},
		}}},
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	tests := []struct {
		percentage int32
		nodes      int
		want       int
	}{
		{0, 50, 50},
		{0, 100, 50 * 100 / 100 * 2}, // 100 nodes: 49% -> 49, raised to the minimum 100
		{0, 1000, 420},               // 50 - 8 = 42%
		{0, 5000, 500},               // 50 - 40 = 10%
		{0, 10000, 500},              // floor of 5%
		{10, 5000, 500},
		{1, 5000, 100}, // never fewer than 100
		{100, 5000, 5000},
	}
	for _, tt := range tests {
		if got := framework.NumFeasibleNodesToFind(tt.percentage, tt.nodes); got != tt.want {
			t.Errorf("NumFeasibleNodesToFind(%d, %d) = %d, want %d", tt.percentage, tt.nodes, got, tt.want)
		}
	}
}

func TestScheduleSamplesAndRotates(t *testing.T) {
	var nodes []*v1.Node
	for i := 0; i < 1000; i++ {
		nodes = append(nodes, node(string(rune('a'+i/26/26%26))+string(rune('a'+i/26%26))+string(rune('a'+i%26)), "4"))
	}
	ps, w := plugins.Default()
	fw := framework.New(ps, w, framework.Options{PercentageOfNodesToScore: 10, Parallelism: 2})
	snap := framework.NewSnapshot(nodes, nil)
	for i := 0; i < 3; i++ {
		res, err := fw.Schedule(context.Background(), framework.NewPodInfo(pod("p", "100m", "", 0), 0), snap)
		if err != nil {
			t.Fatal(err)
		}
		if res.Feasible != 100 || res.Evaluated < 100 {
			t.Errorf("attempt %d: feasible %d evaluated %d, want 100 feasible out of at least 100", i, res.Feasible, res.Evaluated)
		}
	}
}

// TestScheduleParallelFilters runs the filters on several goroutines
// (the scheduling goroutine and helpers that join while nodes are left)
// and checks that every node's answer is counted, whichever goroutine
// gave it: the few nodes that fit are all found, and when none fits the
// diagnosis names every node.
func TestScheduleParallelFilters(t *testing.T) {
	var nodes []*v1.Node
	for i := 0; i < 2000; i++ {
		cpu := "1"
		if i%250 == 7 { // 8 of 2,000 nodes fit
			cpu = "8"
		}
		nodes = append(nodes, node(fmt.Sprintf("n%04d", i), cpu))
	}
	ps, w := plugins.Default()
	fw := framework.New(ps, w, framework.Options{PercentageOfNodesToScore: 100, Parallelism: 4})
	snap := framework.NewSnapshot(nodes, nil)
	for i := 0; i < 20; i++ {
		res, err := fw.Schedule(context.Background(), framework.NewPodInfo(pod("p", "4", "", 0), 0), snap)
		if err != nil {
			t.Fatal(err)
		}
		if res.Feasible != 8 || res.Evaluated != 2000 {
			t.Fatalf("attempt %d: feasible %d evaluated %d, want 8 of 2000", i, res.Feasible, res.Evaluated)
		}
		_, err = fw.Schedule(context.Background(), framework.NewPodInfo(pod("big", "16", "", 0), 0), snap)
		var fit *framework.FitError
		if !errors.As(err, &fit) {
			t.Fatalf("attempt %d: got %v, want a FitError", i, err)
		}
		if n := len(fit.Diagnosis.NodeStatuses); n != 2000 {
			t.Fatalf("attempt %d: diagnosis names %d nodes, want 2000", i, n)
		}
	}
}

func TestFitErrorMessage(t *testing.T) {
	unsched := func(r ...string) *framework.Status { return framework.NewStatus(framework.Unschedulable, r...) }
	e := &framework.FitError{NumAllNodes: 5, Diagnosis: framework.Diagnosis{NodeStatuses: map[string]*framework.Status{
		"a": unsched("Insufficient cpu"), "b": unsched("Insufficient cpu", "Insufficient memory"),
		"c": unsched("node(s) had untolerated taint {dedicated: gpu}"), "d": unsched("node(s) had untolerated taint {dedicated: gpu}"),
		"e": unsched("node(s) had untolerated taint {dedicated: gpu}"),
	}}}
	want := "0/5 nodes are available: 1 Insufficient memory, 2 Insufficient cpu, 3 node(s) had untolerated taint {dedicated: gpu}."
	if diff := cmp.Diff(want, e.Error()); diff != "" {
		t.Errorf("FitError (-want +got):\n%s", diff)
	}
}

func TestSelectVictims(t *testing.T) {
	tests := []struct {
		name  string
		nodes []*v1.Node
		pods  []*v1.Pod
		pdb   map[string]bool // pods protected by a budget
		pod   *v1.Pod
		want  []string // node, then victims
	}{
		{
			name:  "the node whose most important victim matters least",
			nodes: []*v1.Node{node("a", "2"), node("b", "2")},
			pods: []*v1.Pod{
				pod("a1", "1", "a", 10), pod("a2", "1", "a", 10),
				pod("b1", "1", "b", 5), pod("b2", "1", "b", 20),
			},
			pod:  pod("p", "1", "", 100),
			want: []string{"b", "b1"},
		},
		{
			name:  "fewer victims when priorities tie",
			nodes: []*v1.Node{node("a", "2"), node("b", "2")},
			pods: []*v1.Pod{
				pod("a1", "2", "a", 10),
				pod("b1", "1", "b", 10), pod("b2", "1", "b", 10),
			},
			pod:  pod("p", "2", "", 100),
			want: []string{"a", "a1"},
		},
		{
			name:  "lower highest victim priority wins over count",
			nodes: []*v1.Node{node("a", "2"), node("b", "2")},
			pods: []*v1.Pod{
				pod("a1", "2", "a", 50),
				pod("b1", "1", "b", 1), pod("b2", "1", "b", 2),
			},
			pod:  pod("p", "2", "", 100),
			want: []string{"b", "b1", "b2"},
		},
		{
			name:  "pods of equal or higher priority are never victims",
			nodes: []*v1.Node{node("a", "1")},
			pods:  []*v1.Pod{pod("a1", "1", "a", 100)},
			pod:   pod("p", "1", "", 100),
			want:  nil,
		},
		{
			name:  "disruption budgets are honoured where possible",
			nodes: []*v1.Node{node("a", "2"), node("b", "2")},
			pods: []*v1.Pod{
				pod("a1", "2", "a", 1),
				pod("b1", "2", "b", 1),
			},
			pdb:  map[string]bool{"a1": true},
			pod:  pod("p", "2", "", 100),
			want: []string{"b", "b1"},
		},
		{
			name:  "only the victims needed are evicted; the most important stay",
			nodes: []*v1.Node{node("a", "3")},
			pods:  []*v1.Pod{pod("a1", "1", "a", 1), pod("a2", "1", "a", 2), pod("a3", "1", "a", 3)},
			pod:   pod("p", "1", "", 100),
			want:  []string{"a", "a1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, w := plugins.Default()
			fw := framework.New(ps, w, framework.Options{Parallelism: 1})
			snap := framework.NewSnapshot(tt.nodes, tt.pods)
			pi := framework.NewPodInfo(tt.pod, *tt.pod.Spec.Priority)
			_, err := fw.Schedule(context.Background(), pi, snap)
			var fit *framework.FitError
			if !errors.As(err, &fit) {
				t.Fatalf("Schedule: %v, want a fit error", err)
			}
			v := fw.SelectVictims(context.Background(), pi, snap, fit.Diagnosis, func(p *framework.PodInfo, _ []*framework.PodInfo) bool {
				return tt.pdb[p.Pod.Name]
			})
			var got []string
			if v != nil {
				got = append(got, v.Node)
				var names []string
				for _, p := range v.Pods {
					names = append(names, p.Pod.Name)
				}
				sort.Strings(names)
				got = append(got, names...)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("victims (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSelectVictimsBudgetCountsEarlierVictims: the victims of one budget
// use up its allowed disruptions together, so evicting three pods of a
// budget that allows one violates it twice, and another node wins.
func TestSelectVictimsBudgetCountsEarlierVictims(t *testing.T) {
	nodes := []*v1.Node{node("a", "3"), node("b", "3")}
	pods := []*v1.Pod{
		pod("a1", "1", "a", 1), pod("a2", "1", "a", 2), pod("a3", "1", "a", 3),
		pod("b1", "3", "b", 50),
	}
	inBudget := map[string]bool{"a1": true, "a2": true, "a3": true}
	const allowed = 1
	ps, w := plugins.Default()
	fw := framework.New(ps, w, framework.Options{Parallelism: 1})
	snap := framework.NewSnapshot(nodes, pods)
	pi := framework.NewPodInfo(pod("p", "3", "", 100), 100)
	_, err := fw.Schedule(context.Background(), pi, snap)
	var fit *framework.FitError
	if !errors.As(err, &fit) {
		t.Fatalf("Schedule: %v, want a fit error", err)
	}
	v := fw.SelectVictims(context.Background(), pi, snap, fit.Diagnosis, func(p *framework.PodInfo, before []*framework.PodInfo) bool {
		if !inBudget[p.Pod.Name] {
			return false
		}
		used := 0
		for _, b := range before {
			if inBudget[b.Pod.Name] {
				used++
			}
		}
		return allowed-used <= 0
	})
	if v == nil {
		t.Fatal("no victims")
	}
	got := []any{v.Node, v.PDBViolations}
	if diff := cmp.Diff([]any{"b", 0}, got); diff != "" {
		t.Errorf("node, violations (-want +got):\n%s", diff)
	}
}
