package replicaset

import (
	"math"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// deletionCostAnnotation lets users say which pods to delete first on scale
// down: lower cost first (upstream's controller.kubernetes.io/pod-deletion-cost).
const deletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

// podsToDelete returns the n least valuable of pods (n <= len(pods)), in
// the order upstream deletes them: see lessValuable. related are the
// active pods of the owner and its siblings (the ReplicaSets of the same
// Deployment); a pod sharing its node with more of them goes first. The
// result is a new slice; pods is not reordered.
func podsToDelete(pods, related []*corev1.Pod, n int, now time.Time) []*corev1.Pod {
	if n <= 0 {
		return nil
	}
	onNode := map[string]int{}
	for _, p := range related {
		if p.Spec.NodeName != "" && isActive(p) {
			onNode[p.Spec.NodeName]++
		}
	}
	ranked := make([]rankedPod, len(pods))
	for i, p := range pods {
		ranked[i] = rankedPod{pod: p}
		if p.Spec.NodeName != "" {
			ranked[i].colocated = onNode[p.Spec.NodeName]
		}
	}
	if n < len(pods) {
		sort.SliceStable(ranked, func(i, j int) bool { return lessValuable(ranked[i], ranked[j], now) })
	} else {
		n = len(pods)
	}
	out := make([]*corev1.Pod, n)
	for i := range out {
		out[i] = ranked[i].pod
	}
	return out
}

// rankedPod is a pod with the number of related pods on its node.
type rankedPod struct {
	pod       *corev1.Pod
	colocated int
}

// lessValuable reports whether a should be deleted before b. The order is
// upstream's (ActivePodsWithRanks with logarithmic scale-down):
//  1. unassigned before assigned;
//  2. Pending before Unknown before Running;
//  3. not ready before ready;
//  4. lower pod-deletion-cost before higher;
//  5. more related pods on the same node before fewer;
//  6. both ready since different times: ready for less time first, in
//     log2 buckets of the duration; within one bucket by uid;
//  7. more container restarts before fewer;
//  8. created more recently before earlier (log2 buckets; no time first);
//  9. otherwise by uid, which spreads deletions semi-randomly.
func lessValuable(a, b rankedPod, now time.Time) bool {
	pa, pb := a.pod, b.pod
	if (pa.Spec.NodeName == "") != (pb.Spec.NodeName == "") {
		return pa.Spec.NodeName == ""
	}
	if ra, rb := phaseRank(pa.Status.Phase), phaseRank(pb.Status.Phase); ra != rb {
		return ra < rb
	}
	readyA, readyB := readyCondition(pa), readyCondition(pb)
	isReadyA := readyA != nil && readyA.Status == corev1.ConditionTrue
	isReadyB := readyB != nil && readyB.Status == corev1.ConditionTrue
	if isReadyA != isReadyB {
		return !isReadyA
	}
	if ca, cb := deletionCost(pa), deletionCost(pb); ca != cb {
		return ca < cb
	}
	if a.colocated != b.colocated {
		return a.colocated > b.colocated
	}
	if isReadyA && isReadyB {
		if ta, tb := readyA.LastTransitionTime, readyB.LastTransitionTime; !ta.Equal(&tb) {
			if d := logRankDiff(ta, tb, now); d != 0 {
				return d < 0
			}
			return pa.UID < pb.UID
		}
	}
	if ra, rb := maxRestarts(pa), maxRestarts(pb); ra != rb {
		return ra > rb
	}
	if ta, tb := pa.CreationTimestamp, pb.CreationTimestamp; !ta.Equal(&tb) {
		if d := logRankDiff(ta, tb, now); d != 0 {
			return d < 0
		}
	}
	return pa.UID < pb.UID
}

// phaseRank orders phases from least to most valuable.
func phaseRank(p corev1.PodPhase) int {
	switch p {
	case corev1.PodPending:
		return 0
	case corev1.PodUnknown:
		return 1
	case corev1.PodRunning:
		return 2
	default:
		return 0
	}
}

// logRankDiff compares how long ago t1 and t2 were, in powers of two of
// nanoseconds: negative when t1 is in a more recent bucket than t2. A zero
// time counts as most recent of all (upstream: "empty < newer < older").
func logRankDiff(t1, t2 metav1.Time, now time.Time) int64 {
	return logBucket(t1, now) - logBucket(t2, now)
}

func logBucket(t metav1.Time, now time.Time) int64 {
	if t.IsZero() {
		return -2
	}
	d := now.Sub(t.Time)
	if d <= 0 {
		return -1
	}
	return int64(math.Log2(float64(d)))
}

func deletionCost(p *corev1.Pod) int32 {
	v, ok := p.Annotations[deletionCostAnnotation]
	if !ok {
		return 0
	}
	c, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0 // invalid values are refused by validation; treat as default
	}
	return int32(c)
}

func maxRestarts(p *corev1.Pod) int32 {
	var m int32
	for _, s := range p.Status.ContainerStatuses {
		m = max(m, s.RestartCount)
	}
	return m
}

// readyCondition returns the pod's Ready condition or nil.
func readyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// isReady reports whether the pod's Ready condition is True.
func isReady(p *corev1.Pod) bool {
	c := readyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// availableIn returns whether the pod counts as available at now (ready
// for minReady seconds) and, when it is ready but not yet available, how
// long until it is.
func availableIn(p *corev1.Pod, minReady int32, now time.Time) (available bool, wait time.Duration) {
	c := readyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false, 0
	}
	if minReady == 0 {
		return true, 0
	}
	if c.LastTransitionTime.IsZero() {
		return false, 0
	}
	at := c.LastTransitionTime.Add(time.Duration(minReady) * time.Second)
	if at.Before(now) {
		return true, 0
	}
	return false, at.Sub(now) + time.Second
}

// isActive reports whether the pod counts as a replica: not finished and
// not being deleted.
func isActive(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// isTerminating reports whether the pod is being deleted but not finished.
func isTerminating(p *corev1.Pod) bool {
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}
