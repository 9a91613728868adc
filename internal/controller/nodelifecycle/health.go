package nodelifecycle

import (
	"cmp"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kubeletConditions are the conditions the kubelet posts, which become
// Unknown when it stops posting (upstream's nodeConditionTypes).
var kubeletConditions = []corev1.NodeConditionType{
	corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure,
}

// Reasons and messages of conditions set to Unknown, as upstream's.
const (
	reasonUnknown      = "NodeStatusUnknown"
	messageUnknown     = "Kubelet stopped posting node status."
	reasonNeverUpdated = "NodeStatusNeverUpdated"
	messageNeverUpdate = "Kubelet never posted node status."
)

// lastHeartbeat returns when the node last proved to be alive: the later of
// its Lease's renewTime and its Ready condition's heartbeat, or its
// creation time when it has neither. lease may be nil.
func lastHeartbeat(node *corev1.Node, lease *coordinationv1.Lease) time.Time {
	var last time.Time
	if c := findCondition(node.Status.Conditions, corev1.NodeReady); c != nil {
		last = c.LastHeartbeatTime.Time
	}
	if lease != nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.After(last) {
		last = lease.Spec.RenewTime.Time
	}
	if last.IsZero() {
		last = node.CreationTimestamp.Time
	}
	return last
}

// markUnknown returns conds with every kubelet condition Unknown: those
// present and not Unknown get reason NodeStatusUnknown and a transition at
// now (their heartbeat is kept), missing ones are added with reason
// NodeStatusNeverUpdated. It reports whether anything changed; conds is
// not modified.
func markUnknown(conds []corev1.NodeCondition, created metav1.Time, now time.Time) ([]corev1.NodeCondition, bool) {
	out := append([]corev1.NodeCondition(nil), conds...)
	changed := false
	for _, t := range kubeletConditions {
		i := conditionIndex(out, t)
		if i < 0 {
			out = append(out, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown,
				Reason: reasonNeverUpdated, Message: messageNeverUpdate,
				LastHeartbeatTime: created, LastTransitionTime: metav1.NewTime(now),
			})
			changed = true
			continue
		}
		if out[i].Status == corev1.ConditionUnknown {
			continue
		}
		out[i].Status = corev1.ConditionUnknown
		out[i].Reason = reasonUnknown
		out[i].Message = messageUnknown
		out[i].LastTransitionTime = metav1.NewTime(now)
		changed = true
	}
	return out, changed
}

// noScheduleByCondition maps a condition type and status to the NoSchedule
// taint the node gets for it (upstream's TaintNodesByCondition).
var noScheduleByCondition = map[corev1.NodeConditionType]map[corev1.ConditionStatus]string{
	corev1.NodeReady: {
		corev1.ConditionFalse:   corev1.TaintNodeNotReady,
		corev1.ConditionUnknown: corev1.TaintNodeUnreachable,
	},
	corev1.NodeMemoryPressure:     {corev1.ConditionTrue: corev1.TaintNodeMemoryPressure},
	corev1.NodeDiskPressure:       {corev1.ConditionTrue: corev1.TaintNodeDiskPressure},
	corev1.NodePIDPressure:        {corev1.ConditionTrue: corev1.TaintNodePIDPressure},
	corev1.NodeNetworkUnavailable: {corev1.ConditionTrue: corev1.TaintNodeNetworkUnavailable},
}

// managedNoSchedule are the NoSchedule taint keys this controller owns.
var managedNoSchedule = map[string]bool{
	corev1.TaintNodeNotReady:           true,
	corev1.TaintNodeUnreachable:        true,
	corev1.TaintNodeMemoryPressure:     true,
	corev1.TaintNodeDiskPressure:       true,
	corev1.TaintNodePIDPressure:        true,
	corev1.TaintNodeNetworkUnavailable: true,
	corev1.TaintNodeUnschedulable:      true,
}

// managedNoExecute are the NoExecute taint keys this controller owns.
var managedNoExecute = map[string]bool{
	corev1.TaintNodeNotReady:    true,
	corev1.TaintNodeUnreachable: true,
}

// desiredTaints returns the node's taints as they should be: taints this
// controller does not own are kept in order; owned NoSchedule taints follow
// the conditions and spec.unschedulable; owned NoExecute taints follow the
// Ready condition, and are left alone when there is none. A taint already
// present keeps its TimeAdded; a new NoExecute taint gets now. It reports
// whether the result differs from node.Spec.Taints.
func desiredTaints(node *corev1.Node, now time.Time) ([]corev1.Taint, bool) {
	want := map[corev1.Taint]bool{} // keyed by Key and Effect only
	for _, c := range node.Status.Conditions {
		if key, ok := noScheduleByCondition[c.Type][c.Status]; ok {
			want[corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule}] = true
		}
	}
	if node.Spec.Unschedulable {
		want[corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}] = true
	}
	ready := findCondition(node.Status.Conditions, corev1.NodeReady)
	if ready != nil {
		switch ready.Status {
		case corev1.ConditionFalse:
			want[corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}] = true
		case corev1.ConditionUnknown:
			want[corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}] = true
		}
	}
	owned := func(t corev1.Taint) bool {
		switch t.Effect {
		case corev1.TaintEffectNoSchedule:
			return managedNoSchedule[t.Key]
		case corev1.TaintEffectNoExecute:
			return ready != nil && managedNoExecute[t.Key]
		}
		return false
	}

	var out []corev1.Taint
	have := map[corev1.Taint]bool{}
	changed := false
	for _, t := range node.Spec.Taints {
		id := corev1.Taint{Key: t.Key, Effect: t.Effect}
		if owned(t) && (!want[id] || have[id] || t.Value != "") {
			changed = true // no longer wanted, a duplicate, or not ours as written
			continue
		}
		have[id] = true
		out = append(out, t)
	}
	// Add the missing ones in a stable order.
	for _, id := range sortedTaints(want) {
		if have[id] {
			continue
		}
		t := id
		if t.Effect == corev1.TaintEffectNoExecute {
			added := metav1.NewTime(now)
			t.TimeAdded = &added
		}
		out = append(out, t)
		changed = true
	}
	return out, changed
}

// sortedTaints returns the set's taints ordered by key, then effect.
func sortedTaints(set map[corev1.Taint]bool) []corev1.Taint {
	out := make([]corev1.Taint, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b corev1.Taint) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(string(a.Effect), string(b.Effect)))
	})
	return out
}

func findCondition(conds []corev1.NodeCondition, t corev1.NodeConditionType) *corev1.NodeCondition {
	if i := conditionIndex(conds, t); i >= 0 {
		return &conds[i]
	}
	return nil
}

func conditionIndex(conds []corev1.NodeCondition, t corev1.NodeConditionType) int {
	for i := range conds {
		if conds[i].Type == t {
			return i
		}
	}
	return -1
}
