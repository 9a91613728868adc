package scheduler

import (
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/internal/nsindex"
)

// defaultSpreadSelector returns the selector of the pods that belong to
// the same services, replication controllers, replica sets and stateful
// sets as pod (upstream's DefaultSelector): the AND of every selector
// that selects pod. It returns nil when nothing selects the pod.
func (s *Scheduler) defaultSpreadSelector(pod *v1.Pod) labels.Selector {
	podLabels := labels.Set(pod.Labels)
	sel := labels.NewSelector()
	found := false
	addMap := func(m map[string]string) {
		if len(m) == 0 {
			return
		}
		ms := labels.SelectorFromSet(m)
		if !ms.Matches(podLabels) {
			return
		}
		reqs, _ := ms.Requirements()
		sel = sel.Add(reqs...)
		found = true
	}
	addSelector := func(ls *metav1.LabelSelector) {
		ms, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil || ms.Empty() || !ms.Matches(podLabels) {
			return
		}
		reqs, _ := ms.Requirements()
		sel = sel.Add(reqs...)
		found = true
	}
	for _, svc := range nsindex.List[*v1.Service](s.svcIndex, pod.Namespace) {
		addMap(svc.Spec.Selector)
	}
	for _, rc := range nsindex.List[*v1.ReplicationController](s.rcIndex, pod.Namespace) {
		addMap(rc.Spec.Selector)
	}
	for _, rs := range nsindex.List[*appsv1.ReplicaSet](s.rsIndex, pod.Namespace) {
		addSelector(rs.Spec.Selector)
	}
	for _, ss := range nsindex.List[*appsv1.StatefulSet](s.ssIndex, pod.Namespace) {
		addSelector(ss.Spec.Selector)
	}
	if !found {
		return nil
	}
	return sel
}
