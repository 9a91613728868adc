package plugins

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// positionScored counts the nodes scores checked against a
// PositionScorer.
var positionScored int

// scores runs one score plugin over every node of the snapshot and
// returns the normalized scores by node name; a PositionScorer's scores
// must equal Score's.
func scores(t *testing.T, p framework.ScorePlugin, pi *framework.PodInfo, snap *framework.Snapshot) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	state := framework.NewCycleState()
	if ps, ok := p.(framework.PreScorePlugin); ok {
		if st := ps.PreScore(ctx, state, pi, snap, snap.NodeInfoList); st.IsSkip() {
			return nil
		} else if !st.IsSuccess() {
			t.Fatalf("PreScore: %v", st.Err())
		}
	}
	var at func(int) int64
	if ps, ok := p.(framework.PositionScorer); ok {
		at = ps.ScoreByPosition(state, snap)
	}
	raw := make([]int64, len(snap.NodeInfoList))
	for i, ni := range snap.NodeInfoList {
		s, st := p.Score(ctx, state, pi, ni)
		if !st.IsSuccess() {
			t.Fatalf("Score: %v", st.Err())
		}
		if at != nil {
			positionScored++
			if at(i) != s {
				t.Errorf("node %s: score by position %d, Score %d", ni.Name(), at(i), s)
			}
		}
		raw[i] = s
	}
	if n, ok := p.(framework.ScoreNormalizer); ok {
		n.NormalizeScore(ctx, state, pi, raw)
	}
	out := map[string]int64{}
	for i, ni := range snap.NodeInfoList {
		out[ni.Name()] = raw[i]
	}
	return out
}

func TestScores(t *testing.T) {
	cpuMem := func(cpu, mem string) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem)}
		}
	}
	prefer := func(p *v1.Pod) {
		p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{
			{Weight: 10, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "disk", Operator: v1.NodeSelectorOpIn, Values: []string{"ssd"}}}}},
			{Weight: 5, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "gen", Operator: v1.NodeSelectorOpGt, Values: []string{"3"}}}}},
		}}}
	}
	preferWith := func(app string, weight int32, anti bool) func(*v1.Pod) {
		return func(p *v1.Pod) {
			term := []v1.WeightedPodAffinityTerm{{Weight: weight, PodAffinityTerm: v1.PodAffinityTerm{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}, TopologyKey: v1.LabelHostname,
			}}}
			if anti {
				p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: term}}
			} else {
				p.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: term}}
			}
		}
	}
	soft := v1.Taint{Key: "soft", Effect: v1.TaintEffectPreferNoSchedule}
	tests := []struct {
		name   string
		plugin framework.ScorePlugin
		pod    *v1.Pod
		nodes  []*v1.Node
		pods   []*v1.Pod
		// defaultSpread is the pod's DefaultSpreadSelector (a label set).
		defaultSpread map[string]string
		want          map[string]int64
	}{
		{
			name:   "least allocated",
			plugin: NodeResourcesFit{},
			pod:    pod("ns", "p", "", "", nil, cpuMem("1", "1Gi")),
			nodes:  []*v1.Node{node("a", "4", nil), node("b", "2", nil)},
			// a: cpu (4-1)/4=75, mem (4-1)/4=75; b: cpu 50, mem 75
			want: map[string]int64{"a": 75, "b": 62},
		},
		{
			name:   "least allocated counts request-less pods at the defaults",
			plugin: NodeResourcesFit{},
			pod:    pod("ns", "p", "", "", nil),
			nodes:  []*v1.Node{node("a", "1", nil)},
			// cpu (1000-100)/1000 = 90; memory 4Gi-200Mi -> 95
			want: map[string]int64{"a": 92},
		},
		{
			name:   "balanced allocation",
			plugin: BalancedAllocation{},
			pod:    pod("ns", "p", "", "", nil, cpuMem("1", "1Gi")),
			nodes:  []*v1.Node{node("a", "4", nil), node("b", "1", nil)},
			// a: 0.25 vs 0.25 -> 100; b: 1 vs 0.25 -> 1 - 0.375
			want: map[string]int64{"a": 100, "b": 62},
		},
		{
			name:   "balanced allocation skips pods without requests",
			plugin: BalancedAllocation{},
			pod:    pod("ns", "p", "", "", nil),
			nodes:  []*v1.Node{node("a", "4", nil)},
			want:   nil,
		},
		{
			name:   "taint toleration prefers fewer PreferNoSchedule taints",
			plugin: TaintToleration{},
			pod:    pod("ns", "p", "", "", nil),
			nodes:  []*v1.Node{node("a", "1", nil), node("b", "1", nil, soft), node("c", "1", nil, soft, v1.Taint{Key: "x", Effect: v1.TaintEffectPreferNoSchedule})},
			want:   map[string]int64{"a": 100, "b": 50, "c": 0},
		},
		{
			name:   "tolerated PreferNoSchedule taints do not count",
			plugin: TaintToleration{},
			pod: pod("ns", "p", "", "", nil, func(p *v1.Pod) {
				p.Spec.Tolerations = []v1.Toleration{{Key: "soft", Operator: v1.TolerationOpExists}}
			}),
			nodes: []*v1.Node{node("a", "1", nil), node("b", "1", nil, soft)},
			want:  map[string]int64{"a": 100, "b": 100},
		},
		{
			name:   "preferred node affinity, Gt operator included",
			plugin: NodeAffinity{},
			pod:    pod("ns", "p", "", "", nil, prefer),
			nodes: []*v1.Node{
				node("a", "1", map[string]string{"disk": "ssd", "gen": "4"}),
				node("b", "1", map[string]string{"disk": "ssd", "gen": "3"}),
				node("c", "1", map[string]string{"gen": "5"}),
			},
			want: map[string]int64{"a": 100, "b": 66, "c": 33},
		},
		{
			name:   "preferred pod affinity",
			plugin: InterPodAffinity{},
			pod:    pod("ns", "p", "", "", nil, preferWith("db", 10, false)),
			nodes:  []*v1.Node{node("a", "1", nil), node("b", "1", nil)},
			pods:   []*v1.Pod{pod("ns", "db", "", "b", map[string]string{"app": "db"})},
			want:   map[string]int64{"a": 0, "b": 100},
		},
		{
			name:   "preferred pod anti-affinity",
			plugin: InterPodAffinity{},
			pod:    pod("ns", "p", "", "", nil, preferWith("db", 10, true)),
			nodes:  []*v1.Node{node("a", "1", nil), node("b", "1", nil)},
			pods:   []*v1.Pod{pod("ns", "db", "", "b", map[string]string{"app": "db"})},
			want:   map[string]int64{"a": 100, "b": 0},
		},
		{
			name:   "existing pods' preferred affinity attracts the new pod",
			plugin: InterPodAffinity{},
			pod:    pod("ns", "p", "", "", map[string]string{"app": "web"}),
			nodes:  []*v1.Node{node("a", "1", nil), node("b", "1", nil)},
			pods:   []*v1.Pod{pod("ns", "cache", "", "a", nil, preferWith("web", 5, false))},
			want:   map[string]int64{"a": 100, "b": 0},
		},
		{
			name:          "default spreading by node and zone for pods of a service",
			plugin:        PodTopologySpread{},
			pod:           pod("ns", "p", "", "", map[string]string{"app": "web"}),
			defaultSpread: map[string]string{"app": "web"},
			nodes: []*v1.Node{
				node("a", "1", map[string]string{v1.LabelTopologyZone: "z1"}),
				node("b", "1", map[string]string{v1.LabelTopologyZone: "z1"}),
				node("c", "1", map[string]string{v1.LabelTopologyZone: "z2"}),
			},
			pods: []*v1.Pod{
				pod("ns", "w1", "", "a", map[string]string{"app": "web"}),
				pod("ns", "w2", "", "a", map[string]string{"app": "web"}),
				pod("other", "w3", "", "c", map[string]string{"app": "web"}), // other namespace: not counted
			},
			// raw: a 2*ln5+2 + 2*ln4+4 = 12, b 0+2 + 2*ln4+4 = 9, c 6
			want: map[string]int64{"a": 50, "b": 75, "c": 100},
		},
		{
			name:   "no spreading without constraints or a default selector",
			plugin: PodTopologySpread{},
			pod:    pod("ns", "p", "", "", map[string]string{"app": "web"}),
			nodes:  []*v1.Node{node("a", "1", nil)},
			want:   nil,
		},
		{
			name:   "image locality",
			plugin: ImageLocality{},
			pod:    pod("ns", "p", "", "", nil),
			nodes: []*v1.Node{
				func() *v1.Node {
					n := node("a", "1", nil)
					n.Status.Images = []v1.ContainerImage{{Names: []string{"img:latest"}, SizeBytes: 500 * mb}}
					return n
				}(),
				node("b", "1", nil),
			},
			// 500MB spread over 1 of 2 nodes = 250MB: (250-23)/(1000-23)
			want: map[string]int64{"a": 23, "b": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := framework.NewSnapshot(tt.nodes, tt.pods)
			pi := framework.NewPodInfo(tt.pod, 0)
			if tt.defaultSpread != nil {
				pi.DefaultSpreadSelector = labels.SelectorFromSet(tt.defaultSpread)
			}
			got := scores(t, tt.plugin, pi, snap)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("scores (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFilterCodes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		plugin framework.FilterPlugin
		pod    *v1.Pod
		node   *v1.Node
		pods   []*v1.Pod
		want   framework.Code
		reason []string
	}{
		{
			name: "cpu short now: preemption may help", plugin: NodeResourcesFit{},
			pod: pod("ns", "p", "1", "", nil), node: node("a", "1", nil), pods: []*v1.Pod{pod("ns", "x", "500m", "a", nil)},
			want: framework.Unschedulable, reason: []string{"Insufficient cpu"},
		},
		{
			name: "more than the node has: unresolvable", plugin: NodeResourcesFit{},
			pod: pod("ns", "p", "2", "", nil), node: node("a", "1", nil),
			want: framework.UnschedulableAndUnresolvable, reason: []string{"Insufficient cpu"},
		},
		{
			name: "memory and pods", plugin: NodeResourcesFit{},
			pod: pod("ns", "p", "", "", nil, func(p *v1.Pod) {
				p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceMemory: resource.MustParse("3Gi")}
			}),
			node: func() *v1.Node {
				n := node("a", "1", nil)
				n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("1")
				return n
			}(),
			pods: []*v1.Pod{pod("ns", "x", "", "a", nil, func(p *v1.Pod) {
				p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceMemory: resource.MustParse("2Gi")}
			})},
			want:   framework.Unschedulable,
			reason: []string{"Too many pods", "Insufficient memory"},
		},
		{
			name: "init containers count at their maximum", plugin: NodeResourcesFit{},
			pod: pod("ns", "p", "100m", "", nil, func(p *v1.Pod) {
				p.Spec.InitContainers = []v1.Container{{Name: "i", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1500m")}}}}
			}),
			node: node("a", "1", nil),
			want: framework.UnschedulableAndUnresolvable, reason: []string{"Insufficient cpu"},
		},
		{
			name: "host port on another IP is free", plugin: NodePorts{},
			pod:  pod("ns", "p", "", "", nil, func(p *v1.Pod) { p.Spec.Containers[0].Ports = []v1.ContainerPort{{HostPort: 80, HostIP: "10.0.0.2"}} }),
			node: node("a", "1", nil),
			pods: []*v1.Pod{pod("ns", "x", "", "a", nil, func(p *v1.Pod) { p.Spec.Containers[0].Ports = []v1.ContainerPort{{HostPort: 80, HostIP: "10.0.0.1"}} })},
			want: framework.Success,
		},
		{
			name: "same host port, other protocol", plugin: NodePorts{},
			pod: pod("ns", "p", "", "", nil, func(p *v1.Pod) {
				p.Spec.Containers[0].Ports = []v1.ContainerPort{{HostPort: 53, Protocol: v1.ProtocolUDP}}
			}),
			node: node("a", "1", nil),
			pods: []*v1.Pod{pod("ns", "x", "", "a", nil, func(p *v1.Pod) { p.Spec.Containers[0].Ports = []v1.ContainerPort{{HostPort: 53}} })},
			want: framework.Success,
		},
		{
			name: "NoExecute taint filters too", plugin: TaintToleration{},
			pod:  pod("ns", "p", "", "", nil),
			node: node("a", "1", nil, v1.Taint{Key: "k", Value: "v", Effect: v1.TaintEffectNoExecute}),
			want: framework.UnschedulableAndUnresolvable, reason: []string{"node(s) had untolerated taint {k: v}"},
		},
		{
			name: "PreferNoSchedule taint does not filter", plugin: TaintToleration{},
			pod:  pod("ns", "p", "", "", nil),
			node: node("a", "1", nil, v1.Taint{Key: "k", Effect: v1.TaintEffectPreferNoSchedule}),
			want: framework.Success,
		},
		{
			name: "toleration with Equal must match the value", plugin: TaintToleration{},
			pod: pod("ns", "p", "", "", nil, func(p *v1.Pod) {
				p.Spec.Tolerations = []v1.Toleration{{Key: "k", Operator: v1.TolerationOpEqual, Value: "other"}}
			}),
			node: node("a", "1", nil, v1.Taint{Key: "k", Value: "v", Effect: v1.TaintEffectNoSchedule}),
			want: framework.UnschedulableAndUnresolvable, reason: []string{"node(s) had untolerated taint {k: v}"},
		},
		{
			name: "unschedulable node tolerated", plugin: NodeUnschedulable{},
			pod: pod("ns", "p", "", "", nil, func(p *v1.Pod) {
				p.Spec.Tolerations = []v1.Toleration{{Key: v1.TaintNodeUnschedulable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}
			}),
			node: func() *v1.Node { n := node("a", "1", nil); n.Spec.Unschedulable = true; return n }(),
			want: framework.Success,
		},
		{
			name: "nodeName", plugin: NodeName{},
			pod: pod("ns", "p", "", "b", nil), node: node("a", "1", nil),
			want: framework.UnschedulableAndUnresolvable, reason: []string{ReasonNodeName},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := framework.NewSnapshot([]*v1.Node{tt.node}, tt.pods)
			pi := framework.NewPodInfo(tt.pod, 0)
			state := framework.NewCycleState()
			if pf, ok := tt.plugin.(framework.PreFilterPlugin); ok {
				pf.PreFilter(ctx, state, pi, snap)
			}
			st := tt.plugin.Filter(ctx, state, pi, snap.NodeInfoList[0])
			if st.Code() != tt.want {
				t.Errorf("code = %v, want %v (%s)", st.Code(), tt.want, st.Message())
			}
			if diff := cmp.Diff(tt.reason, st.Reasons()); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
		})
	}
}
