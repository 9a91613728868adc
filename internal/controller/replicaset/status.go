package replicaset

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// computeStatus is o's status given its active owned pods, the number of
// its pods still terminating, and the error (if any) of this sync's
// creations or deletions. wait > 0 is when a ready pod becomes available
// (minReadySeconds), so the owner should be looked at again then.
//
// The ReplicaFailure condition is added when manageErr is not nil and not
// already there (reason FailedCreate when pods were missing, FailedDelete
// when there were too many), and removed after a sync without error.
func computeStatus(o *owner, owned []*corev1.Pod, terminating int32, manageErr error, now time.Time) (st status, wait time.Duration) {
	st.ObservedGeneration = o.meta.GetGeneration()
	st.Replicas = int32(len(owned))
	if o.hasTerminating {
		st.TerminatingReplicas = &terminating
	}
	var templateLabels labels.Selector = labels.Nothing()
	if o.template != nil {
		templateLabels = labels.SelectorFromSet(o.template.Labels)
	}
	for _, p := range owned {
		if templateLabels.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if isReady(p) {
			st.ReadyReplicas++
		}
		available, in := availableIn(p, o.minReady, now)
		if available {
			st.AvailableReplicas++
		} else if in > 0 && (wait == 0 || in < wait) {
			wait = in
		}
	}

	failure := -1
	for i, c := range o.status.Conditions {
		if c.Type == conditionReplicaFailure {
			failure = i
		}
		if c.Type != conditionReplicaFailure || manageErr != nil {
			st.Conditions = append(st.Conditions, c)
		}
	}
	if manageErr != nil && failure < 0 {
		reason := "FailedCreate"
		if len(owned) > int(o.replicas) {
			reason = "FailedDelete"
		}
		st.Conditions = append(st.Conditions, condition{
			Type:               conditionReplicaFailure,
			Status:             corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now),
			Reason:             reason,
			Message:            manageErr.Error(),
		})
	}
	if manageErr != nil {
		wait = 0
	}
	return st, wait
}

// statusEqual reports whether writing b over a would change nothing.
func statusEqual(a, b status) bool {
	if a.Replicas != b.Replicas || a.FullyLabeledReplicas != b.FullyLabeledReplicas ||
		a.ReadyReplicas != b.ReadyReplicas || a.AvailableReplicas != b.AvailableReplicas ||
		a.ObservedGeneration != b.ObservedGeneration || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	if (a.TerminatingReplicas == nil) != (b.TerminatingReplicas == nil) ||
		(a.TerminatingReplicas != nil && *a.TerminatingReplicas != *b.TerminatingReplicas) {
		return false
	}
	for i, x := range a.Conditions {
		y := b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message ||
			!x.LastTransitionTime.Equal(&y.LastTransitionTime) {
			return false
		}
	}
	return true
}
