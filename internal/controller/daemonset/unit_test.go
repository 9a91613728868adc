package daemonset

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-dev/skiff/internal/controller/history"
)

func TestEligibility(t *testing.T) {
	type result struct{ Run, Continue bool }
	taint := func(key string, effect corev1.TaintEffect) corev1.Taint {
		return corev1.Taint{Key: key, Effect: effect}
	}
	tests := []struct {
		name   string
		spec   corev1.PodSpec
		labels map[string]string
		taints []corev1.Taint
		want   result
	}{
		{"plain node", corev1.PodSpec{}, nil, nil, result{true, true}},
		{"node selector matches", corev1.PodSpec{NodeSelector: map[string]string{"a": "b"}}, map[string]string{"a": "b"}, nil, result{true, true}},
		{"node selector does not match", corev1.PodSpec{NodeSelector: map[string]string{"a": "b"}}, nil, nil, result{false, false}},
		{"required affinity does not match", corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"z1"}}},
			}}},
		}}}, map[string]string{"zone": "z2"}, nil, result{false, false}},
		{"nodeName elsewhere", corev1.PodSpec{NodeName: "other"}, nil, nil, result{false, false}},
		{"untolerated NoSchedule keeps running pods", corev1.PodSpec{}, nil, []corev1.Taint{taint("x", corev1.TaintEffectNoSchedule)}, result{false, true}},
		{"untolerated NoExecute evicts", corev1.PodSpec{}, nil, []corev1.Taint{taint("x", corev1.TaintEffectNoExecute)}, result{false, false}},
		{"PreferNoSchedule is ignored", corev1.PodSpec{}, nil, []corev1.Taint{taint("x", corev1.TaintEffectPreferNoSchedule)}, result{true, true}},
		{"tolerated taint", corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "x", Operator: corev1.TolerationOpExists}}}, nil, []corev1.Taint{taint("x", corev1.TaintEffectNoExecute)}, result{true, true}},
		{"unschedulable is tolerated automatically", corev1.PodSpec{}, nil, []corev1.Taint{taint(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)}, result{true, true}},
		{"not-ready NoExecute is tolerated automatically", corev1.PodSpec{}, nil, []corev1.Taint{taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute)}, result{true, true}},
		{"network-unavailable only for host network", corev1.PodSpec{}, nil, []corev1.Taint{taint(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)}, result{false, true}},
		{"network-unavailable with host network", corev1.PodSpec{HostNetwork: true}, nil, []corev1.Taint{taint(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)}, result{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: tt.spec}}}
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: tt.labels}, Spec: corev1.NodeSpec{Taints: tt.taints}}
			run, cont := eligibility(ds, node)
			if diff := cmp.Diff(tt.want, result{run, cont}); diff != "" {
				t.Errorf("eligibility (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(i int32) *intstr.IntOrString { v := intstr.FromInt32(i); return &v }
	tests := []struct {
		name                  string
		ru                    *appsv1.RollingUpdateDaemonSet
		desired               int
		surge, maxUnavailable int
	}{
		{"default", nil, 10, 0, 1},
		{"numbers", &appsv1.RollingUpdateDaemonSet{MaxUnavailable: num(2), MaxSurge: num(0)}, 10, 0, 2},
		{"percent rounds up", &appsv1.RollingUpdateDaemonSet{MaxUnavailable: pct("25%")}, 10, 0, 3},
		{"surge", &appsv1.RollingUpdateDaemonSet{MaxUnavailable: num(0), MaxSurge: pct("10%")}, 10, 1, 0},
		{"both zero means one unavailable", &appsv1.RollingUpdateDaemonSet{MaxUnavailable: num(0), MaxSurge: num(0)}, 10, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType, RollingUpdate: tt.ru}}}
			s, u := limits(ds, tt.desired)
			if s != tt.surge || u != tt.maxUnavailable {
				t.Errorf("limits = (%d, %d), want (%d, %d)", s, u, tt.surge, tt.maxUnavailable)
			}
		})
	}
}

func TestDuplicates(t *testing.T) {
	pod := func(name, hash string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{history.HashLabel: hash}}}
	}
	tests := []struct {
		name  string
		pods  []*corev1.Pod
		surge bool
		want  []string
	}{
		{"one pod", []*corev1.Pod{pod("a", "new")}, false, nil},
		{"keeps the oldest", []*corev1.Pod{pod("a", "old"), pod("b", "new"), pod("c", "new")}, false, []string{"b", "c"}},
		{"surge keeps one of each", []*corev1.Pod{pod("a", "old"), pod("b", "new"), pod("c", "new"), pod("d", "old")}, true, []string{"c", "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range duplicates(tt.pods, "new", tt.surge) {
				got = append(got, p.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("duplicates (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTargetNode(t *testing.T) {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns"}}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"pinned", newPod(ds, "n1", "h"), "n1"},
		{"bound", &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n2"}}, "n2"},
		{"neither", &corev1.Pod{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := targetNode(tt.pod); got != tt.want {
				t.Errorf("targetNode = %q, want %q", got, tt.want)
			}
		})
	}
}
