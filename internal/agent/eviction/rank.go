package eviction

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
)

// systemCriticalPriority is the lowest priority of system-critical pods
// (upstream's scheduling.SystemCriticalPriority).
const systemCriticalPriority = 2 * 1000000000

// Annotations marking static and mirror pods.
const (
	configSourceAnnotation = "kubernetes.io/config.source"
	mirrorPodAnnotation    = "kubernetes.io/config.mirror"
)

// Rank returns pods in the order upstream's kubelet evicts them for
// pressure on res (memory, or ephemeral-storage for disk): pods without
// usage first, then pods using more than they request, then lower
// priority, then the larger usage above request. For "pids" (no per-pod
// process counts here) it is priority alone. The order is stable; pods is
// not modified.
func Rank(pods []*corev1.Pod, usage map[types.UID]PodUsage, res corev1.ResourceName) []*corev1.Pod {
	type ranked struct {
		pod      *corev1.Pod
		found    bool
		exceeds  bool
		priority int32
		excess   int64 // usage - request, bytes
	}
	rs := make([]ranked, 0, len(pods))
	for _, p := range pods {
		r := ranked{pod: p}
		if p.Spec.Priority != nil {
			r.priority = *p.Spec.Priority
		}
		if res == "pids" {
			r.found = true
			rs = append(rs, r)
			continue
		}
		var used uint64
		var u PodUsage
		u, r.found = usage[p.UID]
		if res == corev1.ResourceMemory {
			used = u.MemoryWorkingSetBytes
		} else {
			used = u.EphemeralStorageBytes
		}
		req := requestOf(p, res)
		r.excess = int64(used) - req.Value()
		r.exceeds = r.excess > 0
		rs = append(rs, r)
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		return cmp.Or(
			trueFirst(!a.found, !b.found),
			trueFirst(a.exceeds, b.exceeds),
			cmp.Compare(a.priority, b.priority),
			cmp.Compare(b.excess, a.excess),
		)
	})
	out := make([]*corev1.Pod, len(rs))
	for i, r := range rs {
		out[i] = r.pod
	}
	return out
}

// trueFirst orders true before false.
func trueFirst(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// requestOf returns the pod's effective request of res (containers summed,
// init containers' maximum, overhead), as the scheduler counts it.
func requestOf(pod *corev1.Pod, res corev1.ResourceName) resource.Quantity {
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	if q, ok := reqs[res]; ok {
		return q
	}
	return *resource.NewQuantity(0, resource.BinarySI)
}

// evictable returns the pods that may be evicted: not terminal, not
// critical.
func evictable(pods []*corev1.Pod) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(pods))
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || critical(p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// critical reports whether the kubelet never evicts pod: static and mirror
// pods, and pods of system-critical priority (upstream's IsCriticalPod).
func critical(pod *corev1.Pod) bool {
	if src, ok := pod.Annotations[configSourceAnnotation]; ok && src != "api" {
		return true
	}
	if _, ok := pod.Annotations[mirrorPodAnnotation]; ok {
		return true
	}
	return pod.Spec.Priority != nil && *pod.Spec.Priority >= systemCriticalPriority
}

// bestEffort reports whether pod is of QoS class BestEffort: its status
// says so, or (before the API server set it) no container requests or
// limits cpu or memory.
func bestEffort(pod *corev1.Pod) bool {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass == corev1.PodQOSBestEffort
	}
	all := append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		for _, l := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := l[r]; ok && !q.IsZero() {
					return false
				}
			}
		}
	}
	return true
}
