package plugins

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

func node(name, cpu string, lbls map[string]string, taints ...v1.Taint) *v1.Node {
	l := map[string]string{v1.LabelHostname: name}
	for k, v := range lbls {
		l[k] = v
	}
	res := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse(cpu),
		v1.ResourceMemory: resource.MustParse("4Gi"),
		v1.ResourcePods:   resource.MustParse("110"),
	}
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
		Spec:       v1.NodeSpec{Taints: taints},
		Status:     v1.NodeStatus{Allocatable: res, Capacity: res},
	}
}

func pod(ns, name, cpu, nodeName string, lbls map[string]string, mut ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), Labels: lbls},
		Spec:       v1.PodSpec{NodeName: nodeName, Containers: []v1.Container{{Name: "c", Image: "img"}}},
	}
	if cpu != "" {
		p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}
	}
	for _, m := range mut {
		m(p)
	}
	return p
}

// schedule runs the default plugins and returns the chosen node or the
// fit error message.
func schedule(t *testing.T, p *v1.Pod, nodes []*v1.Node, pods []*v1.Pod, nsLabels map[string]map[string]string) string {
	t.Helper()
	ps, w := Default()
	fw := framework.New(ps, w, framework.Options{Parallelism: 1})
	snap := framework.NewSnapshot(nodes, pods)
	snap.NamespaceLabels = func(ns string) labels.Set { return nsLabels[ns] }
	res, err := fw.Schedule(context.Background(), framework.NewPodInfo(p, 0), snap)
	var fit *framework.FitError
	if errors.As(err, &fit) {
		return fit.Error()
	}
	if err != nil {
		t.Fatalf("Schedule: %v", err)
	}
	return res.Node
}

func TestSchedule(t *testing.T) {
	app := func(v string) map[string]string { return map[string]string{"app": v} }
	zone := func(z string) map[string]string { return map[string]string{v1.LabelTopologyZone: z} }
	gpu := v1.Taint{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}
	antiWeb := func(namespaces []string, nsSel *metav1.LabelSelector) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: app("web")}, TopologyKey: v1.LabelHostname,
					Namespaces: namespaces, NamespaceSelector: nsSel,
				}},
			}}
		}
	}
	spread := func(max int32, minDomains *int32) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
				MaxSkew: max, TopologyKey: v1.LabelTopologyZone, WhenUnsatisfiable: v1.DoNotSchedule,
				LabelSelector: &metav1.LabelSelector{MatchLabels: app("web")}, MinDomains: minDomains,
			}}
		}
	}
	three := int32(3)
	tests := []struct {
		name     string
		pod      *v1.Pod
		nodes    []*v1.Node
		pods     []*v1.Pod
		nsLabels map[string]map[string]string
		want     string
	}{
		{
			name:  "insufficient cpu and untolerated taint",
			pod:   pod("ns", "p", "2", "", nil),
			nodes: []*v1.Node{node("a", "1", nil), node("b", "1", nil), node("c", "4", nil, gpu), node("d", "4", nil, gpu), node("e", "4", nil, gpu)},
			want:  "0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had untolerated taint {dedicated: gpu}.",
		},
		{
			name: "toleration with Exists and no key tolerates every taint",
			pod: pod("ns", "p", "2", "", nil, func(p *v1.Pod) {
				p.Spec.Tolerations = []v1.Toleration{{Operator: v1.TolerationOpExists}}
			}),
			nodes: []*v1.Node{node("a", "1", nil), node("c", "4", nil, gpu)},
			want:  "c",
		},
		{
			name: "toleration with Exists on the key ignores the value",
			pod: pod("ns", "p", "2", "", nil, func(p *v1.Pod) {
				p.Spec.Tolerations = []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}
			}),
			nodes: []*v1.Node{node("c", "4", nil, gpu)},
			want:  "c",
		},
		{
			name:  "least allocated prefers the emptier node",
			pod:   pod("ns", "p", "500m", "", nil),
			nodes: []*v1.Node{node("a", "2", nil), node("b", "2", nil)},
			pods:  []*v1.Pod{pod("ns", "x", "1", "a", nil)},
			want:  "b",
		},
		{
			name:  "node selector",
			pod:   pod("ns", "p", "", "", nil, func(p *v1.Pod) { p.Spec.NodeSelector = zone("z2") }),
			nodes: []*v1.Node{node("a", "2", zone("z1")), node("b", "2", zone("z2"))},
			want:  "b",
		},
		{
			name:  "host port taken",
			pod:   pod("ns", "p", "", "", nil, func(p *v1.Pod) { p.Spec.Containers[0].Ports = []v1.ContainerPort{{HostPort: 80, ContainerPort: 80}} }),
			nodes: []*v1.Node{node("a", "2", nil)},
			pods: []*v1.Pod{pod("ns", "x", "", "a", nil, func(p *v1.Pod) {
				p.Spec.Containers[0].Ports = []v1.ContainerPort{{HostPort: 80, ContainerPort: 80, HostIP: "10.0.0.1"}}
			})},
			want: "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.",
		},
		{
			name:  "anti-affinity ignores pods of other namespaces by default",
			pod:   pod("ns", "p", "", "", app("web"), antiWeb(nil, nil)),
			nodes: []*v1.Node{node("a", "2", nil)},
			pods:  []*v1.Pod{pod("other", "x", "", "a", app("web"))},
			want:  "a",
		},
		{
			name:  "anti-affinity to pods in a named namespace",
			pod:   pod("ns", "p", "", "", app("web"), antiWeb([]string{"other"}, nil)),
			nodes: []*v1.Node{node("a", "2", nil), node("b", "2", nil)},
			pods:  []*v1.Pod{pod("other", "x", "", "a", app("web"))},
			want:  "b",
		},
		{
			name:     "anti-affinity to pods in namespaces chosen by selector",
			pod:      pod("ns", "p", "", "", app("web"), antiWeb(nil, &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}})),
			nodes:    []*v1.Node{node("a", "2", nil)},
			pods:     []*v1.Pod{pod("other", "x", "", "a", app("web"))},
			nsLabels: map[string]map[string]string{"other": {"team": "x"}},
			want:     "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules.",
		},
		{
			name:  "existing pod's anti-affinity keeps the new pod away",
			pod:   pod("ns", "p", "", "", app("web")),
			nodes: []*v1.Node{node("a", "2", nil), node("b", "2", nil)},
			pods:  []*v1.Pod{pod("ns", "x", "", "a", app("web"), antiWeb(nil, nil))},
			want:  "b",
		},
		{
			name: "affinity: first pod of a self-selecting group may go anywhere",
			pod: pod("ns", "p", "", "", app("web"), func(p *v1.Pod) {
				p.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: app("web")}, TopologyKey: v1.LabelTopologyZone,
				}}}}
			}),
			nodes: []*v1.Node{node("a", "2", zone("z1"))},
			want:  "a",
		},
		{
			name: "affinity to a pod in another zone",
			pod: pod("ns", "p", "", "", nil, func(p *v1.Pod) {
				p.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: app("db")}, TopologyKey: v1.LabelTopologyZone,
				}}}}
			}),
			nodes: []*v1.Node{node("a", "2", zone("z1")), node("b", "2", zone("z2")), node("c", "2", zone("z2"))},
			pods:  []*v1.Pod{pod("ns", "db", "", "b", app("db"))},
			want:  "b|c",
		},
		{
			name:  "spread with zero matching pods anywhere",
			pod:   pod("ns", "p", "", "", app("web"), spread(1, nil)),
			nodes: []*v1.Node{node("a", "2", zone("z1")), node("b", "2", zone("z2"))},
			want:  "a|b",
		},
		{
			name:  "spread skew",
			pod:   pod("ns", "p", "", "", app("web"), spread(1, nil)),
			nodes: []*v1.Node{node("a", "2", zone("z1")), node("b", "2", zone("z2"))},
			pods:  []*v1.Pod{pod("ns", "x", "", "a", app("web"))},
			want:  "b",
		},
		{
			name:  "spread minDomains counts missing domains as zero",
			pod:   pod("ns", "p", "", "", app("web"), spread(1, &three)),
			nodes: []*v1.Node{node("a", "2", zone("z1")), node("b", "2", zone("z2"))},
			pods:  []*v1.Pod{pod("ns", "x", "", "a", app("web")), pod("ns", "y", "", "b", app("web"))},
			want:  "0/2 nodes are available: 2 node(s) didn't match pod topology spread constraints.",
		},
		{
			name:  "spread missing label",
			pod:   pod("ns", "p", "", "", app("web"), spread(1, nil)),
			nodes: []*v1.Node{node("a", "2", nil)},
			want:  "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label).",
		},
		{
			name:  "unschedulable node",
			pod:   pod("ns", "p", "", "", nil),
			nodes: []*v1.Node{func() *v1.Node { n := node("a", "2", nil); n.Spec.Unschedulable = true; return n }()},
			want:  "0/1 nodes are available: 1 node(s) were unschedulable.",
		},
		{
			name: "extended resource",
			pod: pod("ns", "p", "", "", nil, func(p *v1.Pod) {
				p.Spec.Containers[0].Resources.Requests = v1.ResourceList{"example.com/gpu": resource.MustParse("1")}
			}),
			nodes: []*v1.Node{node("a", "2", nil)},
			want:  "0/1 nodes are available: 1 Insufficient example.com/gpu.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := schedule(t, tt.pod, tt.nodes, tt.pods, tt.nsLabels)
			if alts := strings.Split(tt.want, "|"); len(alts) > 1 { // any of several equal nodes
				if !slices.Contains(alts, got) {
					t.Errorf("got %q, want one of %q", got, alts)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Schedule (-want +got):\n%s", diff)
			}
		})
	}
}
