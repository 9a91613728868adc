package endpoints

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/nsindex"
)

// The pod-to-endpoint rules below are shared with the EndpointSlice
// controller (internal/controller/endpointslice), so that Endpoints and
// EndpointSlices always agree on which pods back a Service.

// ShouldPodBeInEndpoints reports whether pod can be an endpoint at all:
// it is not terminal (Succeeded or Failed), it has an IP, and, unless
// includeTerminating, it is not being deleted. Readiness is decided
// separately.
func ShouldPodBeInEndpoints(pod *corev1.Pod, includeTerminating bool) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if pod.Status.PodIP == "" && len(pod.Status.PodIPs) == 0 {
		return false
	}
	if !includeTerminating && pod.DeletionTimestamp != nil {
		return false
	}
	return true
}

// IsPodReady reports whether the pod's Ready condition is True.
func IsPodReady(pod *corev1.Pod) bool {
	c := readyCondition(pod)
	return c != nil && c.Status == corev1.ConditionTrue
}

func readyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// ShouldSetHostname reports whether an endpoint for pod in svc carries the
// pod's hostname: the pod sets spec.hostname and its spec.subdomain names
// svc in the same namespace.
func ShouldSetHostname(pod *corev1.Pod, svc *corev1.Service) bool {
	return pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace
}

// PodIPForFamily returns the first of the pod's IPs (status.podIPs, or
// status.podIP when that is empty) of the given family, or "" if it has
// none.
func PodIPForFamily(pod *corev1.Pod, family corev1.IPFamily) string {
	ips := make([]string, 0, len(pod.Status.PodIPs)+1)
	for _, ip := range pod.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && pod.Status.PodIP != "" {
		ips = append(ips, pod.Status.PodIP)
	}
	for _, s := range ips {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		if addr.Is4() || addr.Is4In6() {
			if family == corev1.IPv4Protocol {
				return s
			}
		} else if family == corev1.IPv6Protocol {
			return s
		}
	}
	return ""
}

// ServiceIPFamily is the family whose pod IPs the service's Endpoints
// list: spec.ipFamilies[0], else the family of spec.clusterIP, else IPv4.
func ServiceIPFamily(svc *corev1.Service) corev1.IPFamily {
	if len(svc.Spec.IPFamilies) > 0 {
		return svc.Spec.IPFamilies[0]
	}
	if addr, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil && addr.Is6() && !addr.Is4In6() {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}

// IsHeadless reports whether svc has no cluster IP ("None" or unset).
func IsHeadless(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone
}

// FindPort resolves a service port's targetPort for pod: a number is used
// as is (0 means the service port itself); a name is looked up among the
// ports of the pod's containers (and sidecar init containers) with the
// same protocol. It returns an error when the pod has no such named port.
func FindPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, error) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return sp.Port, nil
		}
		return tp.IntVal, nil
	}
	proto := sp.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	find := func(cs []corev1.Container) (int32, bool) {
		for _, c := range cs {
			for _, p := range c.Ports {
				pp := p.Protocol
				if pp == "" {
					pp = corev1.ProtocolTCP
				}
				if p.Name == tp.StrVal && pp == proto {
					return p.ContainerPort, true
				}
			}
		}
		return 0, false
	}
	if n, ok := find(pod.Spec.Containers); ok {
		return n, nil
	}
	var sidecars []corev1.Container
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars = append(sidecars, c)
		}
	}
	if n, ok := find(sidecars); ok {
		return n, nil
	}
	return 0, fmt.Errorf("pod %s/%s has no %s port named %q", pod.Namespace, pod.Name, proto, tp.StrVal)
}

// ServiceKeysForPod returns the key function for pod events of both
// controllers: the keys of the services (from the services' cache) in the
// pod's namespace whose selector matches the pod's labels (services with
// a nil selector match nothing).
func ServiceKeysForPod(services cache.Indexer) func(obj any) []string {
	return func(obj any) []string { return serviceKeysForPod(services, obj) }
}

func serviceKeysForPod(services cache.Indexer, obj any) []string {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	var keys []string
	for _, svc := range nsindex.List[*corev1.Service](services, pod.Namespace) {
		if svc.Spec.Selector == nil {
			continue
		}
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			key, err := cache.MetaNamespaceKeyFunc(svc)
			if err == nil {
				keys = append(keys, key)
			}
		}
	}
	return keys
}

// TriggerTimes computes the value of the
// endpoints.kubernetes.io/last-change-trigger-time annotation: the
// earliest time among the changes a sync observes for the first time (the
// last transition of a pod's Ready condition, for pods newly seen or whose
// transition time moved, and the service's creation when the service is
// newly seen). It remembers, per service, what the last successful sync
// saw. Safe for concurrent use.
type TriggerTimes struct {
	mu sync.Mutex
	// services maps "namespace/name" to the last observed state; guarded by mu.
	services map[string]triggerState
}

type triggerState struct {
	service time.Time
	pods    map[string]time.Time
}

// NewTriggerTimes returns an empty tracker.
func NewTriggerTimes() *TriggerTimes {
	return &TriggerTimes{services: map[string]triggerState{}}
}

// Observe returns the earliest of the service's and pods' trigger times
// that changed since the last committed observation for the same service
// (zero if none did), and commit, which the caller runs once the state it
// computed from this observation is written. A sync whose write fails does
// not commit, so its retry reports the same trigger time instead of none.
func (t *TriggerTimes) Observe(key string, svc *corev1.Service, pods []*corev1.Pod) (min time.Time, commit func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, seen := t.services[key]
	now := triggerState{service: svc.CreationTimestamp.Time, pods: make(map[string]time.Time, len(pods))}
	consider := func(ts time.Time) {
		if ts.IsZero() {
			return
		}
		if min.IsZero() || ts.Before(min) {
			min = ts
		}
	}
	for _, pod := range pods {
		var ts time.Time
		if c := readyCondition(pod); c != nil {
			ts = c.LastTransitionTime.Time
		}
		now.pods[pod.Name] = ts
		if prev, ok := old.pods[pod.Name]; !ok || !prev.Equal(ts) {
			consider(ts)
		}
	}
	if !seen || !old.service.Equal(now.service) {
		consider(now.service)
	}
	return min, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.services[key] = now
	}
}

// Forget drops what was remembered for the service key.
func (t *TriggerTimes) Forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.services, key)
}
