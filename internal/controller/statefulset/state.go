package statefulset

import (
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// state is one sync's view of a set: its pods split into the replicas it
// wants (by ordinal) and the condemned ones, and its two revisions.
type state struct {
	set         *appsv1.StatefulSet
	currentRev  string
	updateRev   string
	currentTmpl *corev1.PodTemplateSpec
	now         time.Time

	start     int           // the first ordinal
	replicas  []*corev1.Pod // index i is ordinal start+i; nil when missing
	condemned []*corev1.Pod // pods outside the range, highest ordinal first
	all       []*corev1.Pod // every owned pod
}

// split sorts owned pods into replicas and condemned.
func (s *state) split(pods []*corev1.Pod) {
	n := 0
	if s.set.Spec.Replicas != nil {
		n = int(*s.set.Spec.Replicas)
	}
	if s.set.Spec.Ordinals != nil {
		s.start = int(s.set.Spec.Ordinals.Start)
	}
	s.replicas = make([]*corev1.Pod, n)
	s.all = pods
	for _, p := range pods {
		ord := ordinal(s.set.Name, p.Name)
		if ord >= s.start && ord < s.start+n {
			s.replicas[ord-s.start] = p
			continue
		}
		s.condemned = append(s.condemned, p)
	}
	slices.SortFunc(s.condemned, func(a, b *corev1.Pod) int {
		return ordinal(s.set.Name, b.Name) - ordinal(s.set.Name, a.Name)
	})
}

// ordinal returns the ordinal in a pod name "<set>-<ordinal>", or -1.
func ordinal(set, pod string) int {
	rest, ok := strings.CutPrefix(pod, set+"-")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || strconv.Itoa(n) != rest {
		return -1
	}
	return n
}

// podName is the name of the pod of set with ordinal ord.
func podName(set *appsv1.StatefulSet, ord int) string {
	return set.Name + "-" + strconv.Itoa(ord)
}

func terminating(p *corev1.Pod) bool { return p.DeletionTimestamp != nil }

func finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
}

// readySince returns when the pod became Ready, and whether it is Running
// and Ready.
func readySince(p *corev1.Pod) (time.Time, bool) {
	if p.Status.Phase != corev1.PodRunning {
		return time.Time{}, false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time, c.Status == corev1.ConditionTrue
		}
	}
	return time.Time{}, false
}

// runningAndReady reports whether p is Running with Ready true.
func runningAndReady(p *corev1.Pod) bool {
	_, ok := readySince(p)
	return ok
}

// available reports whether p has been Ready for minReadySeconds at now;
// if it is Ready but not yet available, wait is how long until it is.
func available(p *corev1.Pod, minReadySeconds int32, now time.Time) (ok bool, wait time.Duration) {
	since, ready := readySince(p)
	if !ready {
		return false, 0
	}
	if minReadySeconds <= 0 {
		return true, 0
	}
	at := since.Add(time.Duration(minReadySeconds) * time.Second)
	if !now.Before(at) {
		return true, 0
	}
	return false, at.Sub(now)
}

// healthy is upstream's progress condition: Running, Ready, available,
// and not terminating.
func (s *state) healthy(p *corev1.Pod) bool {
	if p == nil || terminating(p) {
		return false
	}
	ok, _ := available(p, s.set.Spec.MinReadySeconds, s.now)
	return ok
}

// status computes the set's status from the pods observed at the start of
// the sync; the writes of this sync show up in the next one.
func (s *state) status(collisions int32) appsv1.StatefulSetStatus {
	st := appsv1.StatefulSetStatus{
		ObservedGeneration: s.set.Generation,
		CurrentRevision:    s.currentRev,
		UpdateRevision:     s.updateRev,
		CollisionCount:     &collisions,
	}
	for _, p := range s.all {
		st.Replicas++
		if runningAndReady(p) {
			st.ReadyReplicas++
			if ok, _ := available(p, s.set.Spec.MinReadySeconds, s.now); ok {
				st.AvailableReplicas++
			}
		}
		if terminating(p) {
			continue
		}
		if p.Labels[appsv1.StatefulSetRevisionLabel] == s.currentRev {
			st.CurrentReplicas++
		}
		if p.Labels[appsv1.StatefulSetRevisionLabel] == s.updateRev {
			st.UpdatedReplicas++
		}
	}
	// A finished rolling update makes the update revision current.
	if s.set.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType &&
		st.UpdatedReplicas == st.Replicas && st.ReadyReplicas == st.Replicas {
		st.CurrentRevision = st.UpdateRevision
		st.CurrentReplicas = st.UpdatedReplicas
	}
	return st
}
