package resourcequota

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	resourcehelper "k8s.io/component-helpers/resource"
)

// objects is what a namespace holds of the counted kinds.
type objects struct {
	pods   []*corev1.Pod
	svcs   []*corev1.Service
	claims []*corev1.PersistentVolumeClaim
	// counts holds the number of objects of the other kinds, by their
	// count/ name ("configmaps", "deployments.apps").
	counts map[string]int64
}

// legacyCounts maps the pre-count/ names of object counts to their count/
// resource.
var legacyCounts = map[corev1.ResourceName]string{
	corev1.ResourceConfigMaps:             "configmaps",
	corev1.ResourceSecrets:                "secrets",
	corev1.ResourceReplicationControllers: "replicationcontrollers",
	corev1.ResourceQuotas:                 "resourcequotas",
}

const storageClassSuffix = ".storageclass.storage.k8s.io/"

// scopeMatcher decides whether a pod falls under a quota's scopes.
type scopeMatcher struct {
	scopes    []corev1.ResourceQuotaScope
	selectors []corev1.ScopedResourceSelectorRequirement
}

func newScopeMatcher(q *corev1.ResourceQuota) scopeMatcher {
	m := scopeMatcher{scopes: q.Spec.Scopes}
	if q.Spec.ScopeSelector != nil {
		m.selectors = q.Spec.ScopeSelector.MatchExpressions
	}
	return m
}

func (m scopeMatcher) scoped() bool { return len(m.scopes) > 0 || len(m.selectors) > 0 }

// matches reports whether pod is selected by every scope.
func (m scopeMatcher) matches(pod *corev1.Pod) (bool, error) {
	for _, s := range m.scopes {
		if !scopeMatches(s, pod) {
			return false, nil
		}
	}
	for _, sel := range m.selectors {
		ok, err := selectorMatches(sel, pod)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func scopeMatches(s corev1.ResourceQuotaScope, pod *corev1.Pod) bool {
	switch s {
	case corev1.ResourceQuotaScopeTerminating:
		return pod.Spec.ActiveDeadlineSeconds != nil && *pod.Spec.ActiveDeadlineSeconds >= 0
	case corev1.ResourceQuotaScopeNotTerminating:
		return pod.Spec.ActiveDeadlineSeconds == nil || *pod.Spec.ActiveDeadlineSeconds < 0
	case corev1.ResourceQuotaScopeBestEffort:
		return bestEffort(pod)
	case corev1.ResourceQuotaScopeNotBestEffort:
		return !bestEffort(pod)
	case corev1.ResourceQuotaScopePriorityClass:
		return pod.Spec.PriorityClassName != ""
	case corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return crossNamespaceAffinity(pod)
	}
	return false
}

// selectorMatches evaluates one scopeSelector expression against a pod.
func selectorMatches(sel corev1.ScopedResourceSelectorRequirement, pod *corev1.Pod) (bool, error) {
	switch sel.ScopeName {
	case corev1.ResourceQuotaScopePriorityClass:
		var op selection.Operator
		switch sel.Operator {
		case corev1.ScopeSelectorOpIn:
			op = selection.In
		case corev1.ScopeSelectorOpNotIn:
			op = selection.NotIn
		case corev1.ScopeSelectorOpExists:
			op = selection.Exists
		case corev1.ScopeSelectorOpDoesNotExist:
			op = selection.DoesNotExist
		default:
			return false, fmt.Errorf("%q is not a valid scope selector operator", sel.Operator)
		}
		req, err := labels.NewRequirement(string(sel.ScopeName), op, sel.Values)
		if err != nil {
			return false, fmt.Errorf("parsing scope selector: %w", err)
		}
		set := labels.Set{}
		if pod.Spec.PriorityClassName != "" {
			set[string(sel.ScopeName)] = pod.Spec.PriorityClassName
		}
		return labels.NewSelector().Add(*req).Matches(set), nil
	default:
		// Scopes without values (Terminating, BestEffort, …) use Exists.
		return scopeMatches(sel.ScopeName, pod), nil
	}
}

// bestEffort reports whether no container of pod requests or limits cpu or
// memory (the BestEffort QoS class).
func bestEffort(pod *corev1.Pod) bool {
	if pod.Spec.Resources != nil && (len(pod.Spec.Resources.Requests) > 0 || len(pod.Spec.Resources.Limits) > 0) {
		return false
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, list := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
				for name := range list {
					if name == corev1.ResourceCPU || name == corev1.ResourceMemory {
						return false
					}
				}
			}
		}
	}
	return true
}

func crossNamespaceAffinity(pod *corev1.Pod) bool {
	a := pod.Spec.Affinity
	if a == nil {
		return false
	}
	cross := func(t corev1.PodAffinityTerm) bool { return len(t.Namespaces) > 0 || t.NamespaceSelector != nil }
	if a.PodAffinity != nil {
		for _, t := range a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			if cross(t) {
				return true
			}
		}
		for _, t := range a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			if cross(t.PodAffinityTerm) {
				return true
			}
		}
	}
	if a.PodAntiAffinity != nil {
		for _, t := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			if cross(t) {
				return true
			}
		}
		for _, t := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			if cross(t.PodAffinityTerm) {
				return true
			}
		}
	}
	return false
}

// chargeable reports whether a pod's compute counts: not terminal and not
// stuck past its deletion grace period.
func chargeable(pod *corev1.Pod, now time.Time) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if pod.DeletionTimestamp != nil && pod.DeletionGracePeriodSeconds != nil {
		grace := time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
		if now.After(pod.DeletionTimestamp.Add(grace)) {
			return false
		}
	}
	return true
}

func add(list corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
	sum, ok := list[name]
	if !ok {
		list[name] = q.DeepCopy()
		return
	}
	sum.Add(q)
	list[name] = sum
}

func count(n int64) resource.Quantity { return *resource.NewQuantity(n, resource.DecimalSI) }

// podUsage is one pod's contribution.
func podUsage(pod *corev1.Pod, now time.Time) corev1.ResourceList {
	out := corev1.ResourceList{"count/pods": count(1)}
	if !chargeable(pod, now) {
		return out
	}
	out[corev1.ResourcePods] = count(1)
	for name, q := range resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}) {
		add(out, corev1.ResourceName("requests."+string(name)), q)
		switch name {
		case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
			add(out, name, q)
		}
	}
	for name, q := range resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{}) {
		add(out, corev1.ResourceName("limits."+string(name)), q)
	}
	return out
}

func serviceUsage(svc *corev1.Service) corev1.ResourceList {
	out := corev1.ResourceList{corev1.ResourceServices: count(1), "count/services": count(1)}
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		out[corev1.ResourceServicesNodePorts] = count(int64(len(svc.Spec.Ports)))
	case corev1.ServiceTypeLoadBalancer:
		var n int64
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				n++
			}
		}
		out[corev1.ResourceServicesNodePorts] = count(n)
		out[corev1.ResourceServicesLoadBalancers] = count(1)
	}
	return out
}

func claimUsage(pvc *corev1.PersistentVolumeClaim) corev1.ResourceList {
	out := corev1.ResourceList{corev1.ResourcePersistentVolumeClaims: count(1), "count/persistentvolumeclaims": count(1)}
	class := ""
	if pvc.Spec.StorageClassName != nil {
		class = *pvc.Spec.StorageClassName
	} else if a := pvc.Annotations[corev1.BetaStorageClassAnnotation]; a != "" {
		class = a
	}
	if class != "" {
		out[corev1.ResourceName(class+storageClassSuffix+"persistentvolumeclaims")] = count(1)
	}
	req, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if alloc, has := pvc.Status.AllocatedResources[corev1.ResourceStorage]; has && (!ok || alloc.Cmp(req) > 0) {
		req, ok = alloc, true
	}
	if ok {
		out[corev1.ResourceRequestsStorage] = req.DeepCopy()
		if class != "" {
			out[corev1.ResourceName(class+storageClassSuffix+"requests.storage")] = req.DeepCopy()
		}
	}
	return out
}

// known reports whether this controller computes the resource (so a
// missing usage means zero rather than "unknown").
func known(name corev1.ResourceName, counted map[string]bool) bool {
	s := string(name)
	switch {
	case name == corev1.ResourcePods, name == corev1.ResourceServices, name == corev1.ResourcePersistentVolumeClaims,
		name == corev1.ResourceServicesNodePorts, name == corev1.ResourceServicesLoadBalancers,
		name == corev1.ResourceCPU, name == corev1.ResourceMemory, name == corev1.ResourceEphemeralStorage,
		name == corev1.ResourceRequestsStorage:
		return true
	case strings.HasPrefix(s, "requests."), strings.HasPrefix(s, "limits."):
		return true
	case strings.Contains(s, storageClassSuffix):
		return true
	case strings.HasPrefix(s, "count/"):
		return counted[strings.TrimPrefix(s, "count/")]
	}
	_, ok := legacyCounts[name]
	return ok
}

// computeUsage returns the quota's status: hard from spec, used for every
// hard resource (the previous value kept for resources not computed here).
func computeUsage(q *corev1.ResourceQuota, objs objects, counted map[string]bool, now time.Time) (corev1.ResourceQuotaStatus, error) {
	total := corev1.ResourceList{}
	m := newScopeMatcher(q)
	for _, pod := range objs.pods {
		ok, err := m.matches(pod)
		if err != nil {
			return corev1.ResourceQuotaStatus{}, err
		}
		if !ok {
			continue
		}
		for name, v := range podUsage(pod, now) {
			add(total, name, v)
		}
	}
	if !m.scoped() {
		for _, svc := range objs.svcs {
			for name, v := range serviceUsage(svc) {
				add(total, name, v)
			}
		}
		for _, pvc := range objs.claims {
			for name, v := range claimUsage(pvc) {
				add(total, name, v)
			}
		}
		for name, n := range objs.counts {
			total[corev1.ResourceName("count/"+name)] = count(n)
		}
		for legacy, name := range legacyCounts {
			if n, ok := objs.counts[name]; ok {
				total[legacy] = count(n)
			}
		}
	}
	status := corev1.ResourceQuotaStatus{Hard: corev1.ResourceList{}, Used: corev1.ResourceList{}}
	for name, v := range q.Spec.Hard {
		status.Hard[name] = v.DeepCopy()
		switch u, ok := total[name]; {
		case ok:
			status.Used[name] = u
		case known(name, counted):
			status.Used[name] = resource.MustParse("0")
		default:
			if prev, ok := q.Status.Used[name]; ok {
				status.Used[name] = prev.DeepCopy()
			}
		}
	}
	return status, nil
}
