package nodelifecycle

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func at(s int) metav1.Time { return metav1.NewTime(t0.Add(time.Duration(s) * time.Second)) }

func TestLastHeartbeat(t *testing.T) {
	ready := func(s int) []corev1.NodeCondition {
		return []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: at(s)}}
	}
	lease := func(s int) *coordinationv1.Lease {
		r := metav1.NewMicroTime(at(s).Time)
		return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{RenewTime: &r}}
	}
	tests := []struct {
		name  string
		conds []corev1.NodeCondition
		lease *coordinationv1.Lease
		want  metav1.Time
	}{
		{name: "nothing: creation", want: at(-100)},
		{name: "ready heartbeat", conds: ready(5), want: at(5)},
		{name: "lease newer", conds: ready(5), lease: lease(9), want: at(9)},
		{name: "heartbeat newer", conds: ready(12), lease: lease(9), want: at(12)},
		{name: "lease only", lease: lease(3), want: at(3)},
		{name: "lease without renewTime", conds: ready(5), lease: &coordinationv1.Lease{}, want: at(5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: at(-100)}}
			node.Status.Conditions = tt.conds
			if got := lastHeartbeat(node, tt.lease); !got.Equal(tt.want.Time) {
				t.Errorf("lastHeartbeat() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMarkUnknown(t *testing.T) {
	now := t0.Add(time.Minute)
	cond := func(ct corev1.NodeConditionType, s corev1.ConditionStatus, reason string, hb, tr int) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: ct, Status: s, Reason: reason, LastHeartbeatTime: at(hb), LastTransitionTime: at(tr)}
		switch reason {
		case reasonUnknown:
			c.Message = messageUnknown
		case reasonNeverUpdated:
			c.Message = messageNeverUpdate
		}
		return c
	}
	tests := []struct {
		name        string
		in          []corev1.NodeCondition
		want        []corev1.NodeCondition
		wantChanged bool
	}{
		{
			name: "never posted",
			want: []corev1.NodeCondition{
				cond(corev1.NodeReady, corev1.ConditionUnknown, reasonNeverUpdated, -100, 60),
				cond(corev1.NodeMemoryPressure, corev1.ConditionUnknown, reasonNeverUpdated, -100, 60),
				cond(corev1.NodeDiskPressure, corev1.ConditionUnknown, reasonNeverUpdated, -100, 60),
				cond(corev1.NodePIDPressure, corev1.ConditionUnknown, reasonNeverUpdated, -100, 60),
			},
			wantChanged: true,
		},
		{
			name: "stopped posting keeps heartbeats and other conditions",
			in: []corev1.NodeCondition{
				cond(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "RouteCreated", 1, 1),
				cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", 10, 2),
				cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", 10, 2),
				cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", 10, 2),
				cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", 10, 2),
			},
			want: []corev1.NodeCondition{
				cond(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "RouteCreated", 1, 1),
				cond(corev1.NodeReady, corev1.ConditionUnknown, reasonUnknown, 10, 60),
				cond(corev1.NodeMemoryPressure, corev1.ConditionUnknown, reasonUnknown, 10, 60),
				cond(corev1.NodeDiskPressure, corev1.ConditionUnknown, reasonUnknown, 10, 60),
				cond(corev1.NodePIDPressure, corev1.ConditionUnknown, reasonUnknown, 10, 60),
			},
			wantChanged: true,
		},
		{
			name: "already unknown",
			in: []corev1.NodeCondition{
				cond(corev1.NodeReady, corev1.ConditionUnknown, reasonUnknown, 10, 50),
				cond(corev1.NodeMemoryPressure, corev1.ConditionUnknown, reasonUnknown, 10, 50),
				cond(corev1.NodeDiskPressure, corev1.ConditionUnknown, reasonUnknown, 10, 50),
				cond(corev1.NodePIDPressure, corev1.ConditionUnknown, reasonUnknown, 10, 50),
			},
			want: []corev1.NodeCondition{
				cond(corev1.NodeReady, corev1.ConditionUnknown, reasonUnknown, 10, 50),
				cond(corev1.NodeMemoryPressure, corev1.ConditionUnknown, reasonUnknown, 10, 50),
				cond(corev1.NodeDiskPressure, corev1.ConditionUnknown, reasonUnknown, 10, 50),
				cond(corev1.NodePIDPressure, corev1.ConditionUnknown, reasonUnknown, 10, 50),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := append([]corev1.NodeCondition(nil), tt.in...)
			got, changed := markUnknown(tt.in, at(-100), now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if diff := cmp.Diff(before, tt.in); diff != "" {
				t.Errorf("input modified (-before +after):\n%s", diff)
			}
		})
	}
}

func TestDesiredTaints(t *testing.T) {
	now := t0.Add(time.Minute)
	added := at(5)
	nowT := metav1.NewTime(now)
	ready := func(s corev1.ConditionStatus) corev1.NodeCondition {
		return corev1.NodeCondition{Type: corev1.NodeReady, Status: s}
	}
	taint := func(key string, effect corev1.TaintEffect, when *metav1.Time) corev1.Taint {
		return corev1.Taint{Key: key, Effect: effect, TimeAdded: when}
	}
	user := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoExecute}
	tests := []struct {
		name          string
		conds         []corev1.NodeCondition
		unschedulable bool
		taints        []corev1.Taint
		want          []corev1.Taint
		wantChanged   bool
	}{
		{name: "ready, nothing", conds: []corev1.NodeCondition{ready(corev1.ConditionTrue)}},
		{
			name:   "unknown adds unreachable",
			conds:  []corev1.NodeCondition{ready(corev1.ConditionUnknown)},
			taints: []corev1.Taint{user},
			want: []corev1.Taint{user,
				taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, &nowT),
				taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, nil)},
			wantChanged: true,
		},
		{
			name:  "unknown keeps TimeAdded",
			conds: []corev1.NodeCondition{ready(corev1.ConditionUnknown)},
			taints: []corev1.Taint{
				taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, nil),
				taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, &added)},
			want: []corev1.Taint{
				taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, nil),
				taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, &added)},
		},
		{
			name:  "false swaps unreachable for not-ready",
			conds: []corev1.NodeCondition{ready(corev1.ConditionFalse)},
			taints: []corev1.Taint{
				taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, nil),
				taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, &added)},
			want: []corev1.Taint{
				taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute, &nowT),
				taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoSchedule, nil)},
			wantChanged: true,
		},
		{
			name:  "recovery removes ours, keeps the user's",
			conds: []corev1.NodeCondition{ready(corev1.ConditionTrue)},
			taints: []corev1.Taint{
				taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoSchedule, nil), user,
				taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute, &added)},
			want:        []corev1.Taint{user},
			wantChanged: true,
		},
		{
			name: "no Ready condition leaves NoExecute alone, clears NoSchedule",
			taints: []corev1.Taint{
				taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoSchedule, nil),
				taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, &added)},
			want:        []corev1.Taint{taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, &added)},
			wantChanged: true,
		},
		{
			name: "pressure conditions and unschedulable",
			conds: []corev1.NodeCondition{ready(corev1.ConditionTrue),
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue},
				{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse},
				{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue}},
			unschedulable: true,
			want: []corev1.Taint{
				taint(corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule, nil),
				taint(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule, nil),
				taint(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule, nil)},
			wantChanged: true,
		},
		{
			name:        "duplicates are dropped",
			conds:       []corev1.NodeCondition{ready(corev1.ConditionUnknown)},
			taints:      []corev1.Taint{taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, nil), taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, nil), taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, &added)},
			want:        []corev1.Taint{taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, nil), taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, &added)},
			wantChanged: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := &corev1.Node{Spec: corev1.NodeSpec{Unschedulable: tt.unschedulable, Taints: tt.taints}}
			node.Status.Conditions = tt.conds
			got, changed := desiredTaints(node, now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("taints (-want +got):\n%s", diff)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
		})
	}
}

func TestEvictionTime(t *testing.T) {
	secs := func(s int64) *int64 { return &s }
	unreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: ptr(at(100))}
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute, TimeAdded: ptr(at(40))}
	dedicated := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoExecute}
	tol := func(key string, s *int64) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: s}
	}
	addedAt := func(t corev1.Taint) time.Time {
		if t.TimeAdded != nil {
			return t.TimeAdded.Time
		}
		return at(7).Time
	}
	tests := []struct {
		name        string
		taints      []corev1.Taint
		tolerations []corev1.Toleration
		defaults    *int64
		wantEvict   bool
		wantAt      time.Time
	}{
		{name: "no taints"},
		{name: "untolerated: at once", taints: []corev1.Taint{unreachable}, wantEvict: true},
		{name: "defaulted: 300 s", taints: []corev1.Taint{unreachable}, defaults: secs(300), wantEvict: true, wantAt: at(400).Time},
		{name: "explicit seconds win over the default", taints: []corev1.Taint{unreachable}, tolerations: []corev1.Toleration{tol(corev1.TaintNodeUnreachable, secs(20))}, defaults: secs(300), wantEvict: true, wantAt: at(120).Time},
		{name: "forever", taints: []corev1.Taint{unreachable}, tolerations: []corev1.Toleration{tol(corev1.TaintNodeUnreachable, nil)}, defaults: secs(300)},
		{name: "wildcard toleration, forever", taints: []corev1.Taint{unreachable, dedicated}, tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}},
		{name: "negative seconds count as zero", taints: []corev1.Taint{unreachable}, tolerations: []corev1.Toleration{tol(corev1.TaintNodeUnreachable, secs(-5))}, wantEvict: true, wantAt: at(100).Time},
		{name: "one untolerated taint among tolerated", taints: []corev1.Taint{unreachable, dedicated}, defaults: secs(300), wantEvict: true},
		{name: "earliest taint, smallest seconds", taints: []corev1.Taint{unreachable, notReady}, tolerations: []corev1.Toleration{tol(corev1.TaintNodeUnreachable, secs(30)), tol(corev1.TaintNodeNotReady, nil)}, wantEvict: true, wantAt: at(70).Time},
		{name: "taint without TimeAdded counts from first seen", taints: []corev1.Taint{dedicated}, tolerations: []corev1.Toleration{tol("dedicated", secs(10))}, wantEvict: true, wantAt: at(17).Time},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tolerations := tt.tolerations
			if tt.defaults != nil {
				tolerations = withDefaultTolerations(tolerations, *tt.defaults)
			}
			gotAt, evict := evictionTime(tt.taints, tolerations, addedAt)
			if evict != tt.wantEvict || !gotAt.Equal(tt.wantAt) {
				t.Errorf("evictionTime() = %v, %v; want %v, %v", gotAt, evict, tt.wantAt, tt.wantEvict)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
