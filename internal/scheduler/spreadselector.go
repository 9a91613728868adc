package scheduler

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
	if svcs, err := s.svcLister.Services(pod.Namespace).List(labels.Everything()); err == nil {
		for _, svc := range svcs {
			addMap(svc.Spec.Selector)
		}
	}
	if rcs, err := s.rcLister.ReplicationControllers(pod.Namespace).List(labels.Everything()); err == nil {
		for _, rc := range rcs {
			addMap(rc.Spec.Selector)
		}
	}
	if rss, err := s.rsLister.ReplicaSets(pod.Namespace).List(labels.Everything()); err == nil {
		for _, rs := range rss {
			addSelector(rs.Spec.Selector)
		}
	}
	if sss, err := s.ssLister.StatefulSets(pod.Namespace).List(labels.Everything()); err == nil {
		for _, ss := range sss {
			addSelector(ss.Spec.Selector)
		}
	}
	if !found {
		return nil
	}
	return sel
}
