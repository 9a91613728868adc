package admission

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/skiff-dev/skiff/internal/nsindex"
)

// storageClassSuffix joins a class name and a per-class quota resource.
const storageClassSuffix = ".storageclass.storage.k8s.io/"

// ResourceQuota enforces the namespace's ResourceQuotas on writes, as
// upstream's ResourceQuota plugin (it runs last in the chain):
//   - CREATE of any resource is charged its object count (count/<resource>
//     and count/<resource>.<group>, plus the legacy names pods, services,
//     configmaps, secrets, persistentvolumeclaims, replicationcontrollers,
//     resourcequotas); pods also their compute (requests.*, limits.*, bare
//     cpu/memory/ephemeral-storage, hugepages, extended resources),
//     services services.loadbalancers and services.nodeports, claims their
//     storage (also per storage class);
//   - UPDATE of services and claims is charged the growth only;
//   - a quota on cpu or memory requires every container to set them
//     (403 `failed quota: q: must specify limits.memory for: c`);
//   - a quota whose status does not yet cover a charged resource refuses
//     (403 `status unknown for quota: …`), as upstream;
//   - exceeding refuses with 403 `exceeded quota: q, requested: pods=1,
//     used: pods=2, limited: pods=2`.
//
// Admission charges the usage into each quota's status.used at once with
// an optimistic-concurrency UpdateStatus (retrying on conflict against the
// fresh quota), so that concurrent creations cannot both pass. Like
// upstream it does not un-charge when the write fails later or when a
// second quota refuses after a first was charged: the quota controller
// recomputes status.used at its next sync. Scoped quotas (scopes,
// scopeSelector) select pods only. DryRun requests are checked, not
// charged.
type ResourceQuota struct {
	cached cache.Indexer // the quotas' cache; may be nil
	client kubernetes.Interface
	// retries bounds the conflict retries per quota.
	retries int
}

var _ Validator = (*ResourceQuota)(nil)

// NewResourceQuota returns the plugin. cached (an informer's cache of the
// quotas; nil: none) only tells whether the namespace has a quota that
// limits the request at all (so that most writes cost no extra read; a
// quota limits nothing before the quota controller, itself
// informer-driven, has filled its status.hard); the quotas are then read
// and charged live through client, never from the cache, whose lag would
// let usage through.
func NewResourceQuota(cached cache.Indexer, client kubernetes.Interface) *ResourceQuota {
	return &ResourceQuota{cached: cached, client: client, retries: 20}
}

// mayApply reports whether the cache knows a quota of ns that limits a
// resource the item is charged for (true without a cache). It looks at
// spec.hard as well as status.hard: the cache may not yet hold the status
// the quota controller just wrote, and the live read decides then.
func (p *ResourceQuota) mayApply(ns string, it quotaItem) (bool, error) {
	if p.cached == nil {
		return true, nil
	}
	for _, q := range nsindex.List[*corev1.ResourceQuota](p.cached, ns) {
		for _, hard := range []corev1.ResourceList{q.Spec.Hard, q.Status.Hard} {
			for n := range hard {
				if it.tracked(n) {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// Name implements Plugin.
func (*ResourceQuota) Name() string { return "ResourceQuota" }

// quotaItem is what one request asks of the quotas.
type quotaItem struct {
	usage   corev1.ResourceList            // the charge (delta on update)
	pod     *corev1.Pod                    // set for pods: scopes and constraints
	tracked func(corev1.ResourceName) bool // the quota resources this kind is charged for
}

func count1() resource.Quantity { return *resource.NewQuantity(1, resource.DecimalSI) }

func countName(r *Request) corev1.ResourceName {
	if r.Resource.Group == "" {
		return corev1.ResourceName("count/" + r.Resource.Resource)
	}
	return corev1.ResourceName("count/" + r.Resource.Resource + "." + r.Resource.Group)
}

// item computes the request's charge; ok is false when nothing is charged.
func quotaItemOf(r *Request) (quotaItem, bool) {
	if r.Subresource != "" || r.Object == nil {
		return quotaItem{}, false
	}
	countRes := countName(r)
	isCount := func(n corev1.ResourceName) bool { return n == countRes }
	core := r.Resource.Group == ""
	switch {
	case core && r.Resource.Resource == "pods":
		pod, ok := r.Object.(*corev1.Pod)
		if !ok || r.Operation != Create {
			return quotaItem{}, false
		}
		return quotaItem{usage: podQuotaUsage(pod), pod: pod, tracked: podTracked}, true
	case core && r.Resource.Resource == "services":
		svc, ok := r.Object.(*corev1.Service)
		if !ok {
			return quotaItem{}, false
		}
		tracked := func(n corev1.ResourceName) bool {
			return n == corev1.ResourceServices || n == "count/services" || n == corev1.ResourceServicesLoadBalancers || n == corev1.ResourceServicesNodePorts
		}
		switch r.Operation {
		case Create:
			return quotaItem{usage: serviceQuotaUsage(svc), tracked: tracked}, true
		case Update:
			old, ok := r.OldObject.(*corev1.Service)
			if !ok {
				return quotaItem{}, false
			}
			return quotaItem{usage: growth(serviceQuotaUsage(svc), serviceQuotaUsage(old)), tracked: tracked}, true
		}
	case core && r.Resource.Resource == "persistentvolumeclaims":
		pvc, ok := r.Object.(*corev1.PersistentVolumeClaim)
		if !ok {
			return quotaItem{}, false
		}
		tracked := func(n corev1.ResourceName) bool {
			return n == corev1.ResourcePersistentVolumeClaims || n == "count/persistentvolumeclaims" ||
				n == corev1.ResourceRequestsStorage || strings.Contains(string(n), storageClassSuffix)
		}
		switch r.Operation {
		case Create:
			return quotaItem{usage: claimQuotaUsage(pvc), tracked: tracked}, true
		case Update:
			old, ok := r.OldObject.(*corev1.PersistentVolumeClaim)
			if !ok {
				return quotaItem{}, false
			}
			return quotaItem{usage: growth(claimQuotaUsage(pvc), claimQuotaUsage(old)), tracked: tracked}, true
		}
	default:
		if r.Operation != Create {
			return quotaItem{}, false
		}
		usage := corev1.ResourceList{countRes: count1()}
		if core {
			switch r.Resource.Resource {
			case "configmaps", "secrets", "replicationcontrollers", "resourcequotas":
				legacy := corev1.ResourceName(r.Resource.Resource)
				usage[legacy] = count1()
				return quotaItem{usage: usage, tracked: func(n corev1.ResourceName) bool { return n == legacy || n == countRes }}, true
			}
		}
		return quotaItem{usage: usage, tracked: isCount}, true
	}
	return quotaItem{}, false
}

func addQuantity(list corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
	if sum, ok := list[name]; ok {
		sum.Add(q)
		list[name] = sum
		return
	}
	list[name] = q.DeepCopy()
}

// podQuotaUsage is a new pod's charge.
func podQuotaUsage(pod *corev1.Pod) corev1.ResourceList {
	out := corev1.ResourceList{"count/pods": count1(), corev1.ResourcePods: count1()}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		delete(out, corev1.ResourcePods)
		return out
	}
	for name, q := range resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}) {
		switch {
		case name == corev1.ResourceCPU, name == corev1.ResourceMemory, name == corev1.ResourceEphemeralStorage,
			strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix):
			addQuantity(out, name, q)
			addQuantity(out, corev1.ResourceName("requests."+string(name)), q)
		case strings.Contains(string(name), "/") && !strings.Contains(string(name), "kubernetes.io/"):
			addQuantity(out, corev1.ResourceName("requests."+string(name)), q) // extended resources
		}
	}
	for name, q := range resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{}) {
		switch name {
		case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
			addQuantity(out, corev1.ResourceName("limits."+string(name)), q)
		}
	}
	return out
}

// podTracked: the quota resources pods are charged for.
func podTracked(n corev1.ResourceName) bool {
	switch n {
	case corev1.ResourcePods, "count/pods", corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage,
		corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory, corev1.ResourceRequestsEphemeralStorage,
		corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory, corev1.ResourceLimitsEphemeralStorage:
		return true
	}
	s := string(n)
	return strings.HasPrefix(s, corev1.ResourceHugePagesPrefix) || strings.HasPrefix(s, "requests.hugepages-") ||
		(strings.HasPrefix(s, "requests.") && strings.Contains(s, "/"))
}

// computeRequired are the quota resources that oblige every container to
// set them (upstream's backward-compatible rule for cpu and memory).
func computeRequired(n corev1.ResourceName) bool {
	switch n {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory,
		corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory:
		return true
	}
	return false
}

// podConstraints returns upstream's "must specify …" error when a
// container leaves unset a compute resource the quota limits.
func podConstraints(pod *corev1.Pod, restricted []corev1.ResourceName) error {
	missing := map[string][]string{}
	check := func(c *corev1.Container) {
		has := map[corev1.ResourceName]bool{}
		if _, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
			has[corev1.ResourceCPU], has[corev1.ResourceRequestsCPU] = true, true
		}
		if _, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
			has[corev1.ResourceMemory], has[corev1.ResourceRequestsMemory] = true, true
		}
		if _, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
			has[corev1.ResourceLimitsCPU] = true
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			has[corev1.ResourceLimitsMemory] = true
		}
		for _, n := range restricted {
			if computeRequired(n) && !has[n] {
				missing[string(n)] = append(missing[string(n)], c.Name)
			}
		}
	}
	for i := range pod.Spec.Containers {
		check(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.InitContainers {
		check(&pod.Spec.InitContainers[i])
	}
	if len(missing) == 0 {
		return nil
	}
	names := make([]string, 0, len(missing))
	for n := range missing {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		cs := sortedSet(missing[n])
		parts[i] = fmt.Sprintf("%s for: %s", n, strings.Join(cs, ","))
	}
	return fmt.Errorf("must specify %s", strings.Join(parts, "; "))
}

func serviceQuotaUsage(svc *corev1.Service) corev1.ResourceList {
	out := corev1.ResourceList{corev1.ResourceServices: count1(), "count/services": count1()}
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		out[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(int64(len(svc.Spec.Ports)), resource.DecimalSI)
	case corev1.ServiceTypeLoadBalancer:
		out[corev1.ResourceServicesLoadBalancers] = count1()
		nodePorts := int64(len(svc.Spec.Ports))
		if svc.Spec.AllocateLoadBalancerNodePorts != nil && !*svc.Spec.AllocateLoadBalancerNodePorts {
			nodePorts = 0
			for _, p := range svc.Spec.Ports {
				if p.NodePort != 0 {
					nodePorts++
				}
			}
		}
		out[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(nodePorts, resource.DecimalSI)
	}
	return out
}

func claimQuotaUsage(pvc *corev1.PersistentVolumeClaim) corev1.ResourceList {
	out := corev1.ResourceList{corev1.ResourcePersistentVolumeClaims: count1(), "count/persistentvolumeclaims": count1()}
	class := ""
	if pvc.Spec.StorageClassName != nil {
		class = *pvc.Spec.StorageClassName
	} else if a := pvc.Annotations[corev1.BetaStorageClassAnnotation]; a != "" {
		class = a
	}
	if class != "" {
		out[corev1.ResourceName(class+storageClassSuffix+"persistentvolumeclaims")] = count1()
	}
	if req, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		out[corev1.ResourceRequestsStorage] = req.DeepCopy()
		if class != "" {
			out[corev1.ResourceName(class+storageClassSuffix+"requests.storage")] = req.DeepCopy()
		}
	}
	return out
}

// growth is now-before per resource, keeping only increases.
func growth(now, before corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range now {
		d := v.DeepCopy()
		if b, ok := before[k]; ok {
			d.Sub(b)
		}
		if d.Sign() > 0 {
			out[k] = d
		}
	}
	return out
}

// quotaMatches reports whether quota q selects the item (scoped quotas
// select pods only).
func quotaMatches(q *corev1.ResourceQuota, it quotaItem) (bool, error) {
	sels := slices.Clone(q.Spec.Scopes)
	var exprs []corev1.ScopedResourceSelectorRequirement
	if q.Spec.ScopeSelector != nil {
		exprs = q.Spec.ScopeSelector.MatchExpressions
	}
	if len(sels) == 0 && len(exprs) == 0 {
		return true, nil
	}
	if it.pod == nil {
		return false, nil
	}
	for _, s := range sels {
		if !podInScope(s, it.pod) {
			return false, nil
		}
	}
	for _, e := range exprs {
		if e.ScopeName != corev1.ResourceQuotaScopePriorityClass {
			if !podInScope(e.ScopeName, it.pod) {
				return false, nil
			}
			continue
		}
		ops := map[corev1.ScopeSelectorOperator]selection.Operator{
			corev1.ScopeSelectorOpIn: selection.In, corev1.ScopeSelectorOpNotIn: selection.NotIn,
			corev1.ScopeSelectorOpExists: selection.Exists, corev1.ScopeSelectorOpDoesNotExist: selection.DoesNotExist,
		}
		op, ok := ops[e.Operator]
		if !ok {
			return false, fmt.Errorf("%q is not a valid scope selector operator", e.Operator)
		}
		req, err := labels.NewRequirement(string(e.ScopeName), op, e.Values)
		if err != nil {
			return false, fmt.Errorf("parsing scope selector of quota %s: %w", q.Name, err)
		}
		set := labels.Set{}
		if it.pod.Spec.PriorityClassName != "" {
			set[string(e.ScopeName)] = it.pod.Spec.PriorityClassName
		}
		if !req.Matches(set) {
			return false, nil
		}
	}
	return true, nil
}

func podInScope(s corev1.ResourceQuotaScope, pod *corev1.Pod) bool {
	terminating := pod.Spec.ActiveDeadlineSeconds != nil && *pod.Spec.ActiveDeadlineSeconds >= 0
	switch s {
	case corev1.ResourceQuotaScopeTerminating:
		return terminating
	case corev1.ResourceQuotaScopeNotTerminating:
		return !terminating
	case corev1.ResourceQuotaScopeBestEffort:
		return podBestEffort(pod)
	case corev1.ResourceQuotaScopeNotBestEffort:
		return !podBestEffort(pod)
	case corev1.ResourceQuotaScopePriorityClass:
		return pod.Spec.PriorityClassName != ""
	case corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return crossNamespaceAffinity(pod)
	}
	return false
}

// podBestEffort: no cpu or memory requested or limited anywhere.
func podBestEffort(pod *corev1.Pod) bool {
	lists := []corev1.ResourceList{}
	if pod.Spec.Resources != nil {
		lists = append(lists, pod.Spec.Resources.Requests, pod.Spec.Resources.Limits)
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			lists = append(lists, c.Resources.Requests, c.Resources.Limits)
		}
	}
	for _, l := range lists {
		if _, ok := l[corev1.ResourceCPU]; ok {
			return false
		}
		if _, ok := l[corev1.ResourceMemory]; ok {
			return false
		}
	}
	return true
}

func crossNamespaceAffinity(pod *corev1.Pod) bool {
	a := pod.Spec.Affinity
	if a == nil {
		return false
	}
	var terms []corev1.PodAffinityTerm
	if a.PodAffinity != nil {
		terms = append(terms, a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	if a.PodAntiAffinity != nil {
		terms = append(terms, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	for _, t := range terms {
		if len(t.Namespaces) > 0 || t.NamespaceSelector != nil {
			return true
		}
	}
	return false
}

// prettyPrint formats a resource list as upstream: sorted name=value
// pairs joined by commas.
func prettyPrint(l corev1.ResourceList) string {
	parts := make([]string, 0, len(l))
	for _, k := range sortedNames(l) {
		q := l[k]
		parts = append(parts, fmt.Sprintf("%s=%s", k, q.String()))
	}
	return strings.Join(parts, ",")
}

func prettyNames(names []corev1.ResourceName) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// evaluate checks one quota and returns its status.used with the charge
// added (nil when the quota does not limit anything the item uses).
func evaluate(r *Request, q *corev1.ResourceQuota, it quotaItem) (corev1.ResourceList, error) {
	ok, err := quotaMatches(q, it)
	if err != nil || !ok {
		return nil, err
	}
	var restricted []corev1.ResourceName
	for _, n := range sortedNames(q.Status.Hard) {
		if it.tracked(n) {
			restricted = append(restricted, n)
		}
	}
	if len(restricted) == 0 {
		return nil, nil
	}
	if it.pod != nil {
		if err := podConstraints(it.pod, restricted); err != nil {
			return nil, forbidden(r, fmt.Errorf("failed quota: %s: %w", q.Name, err))
		}
	}
	var unknown []corev1.ResourceName
	for _, n := range restricted {
		if _, ok := q.Status.Used[n]; !ok {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, forbidden(r, fmt.Errorf("status unknown for quota: %s, resources: %s", q.Name, prettyNames(unknown)))
	}
	requested := corev1.ResourceList{}
	for _, n := range restricted {
		if v, ok := it.usage[n]; ok && !v.IsZero() {
			requested[n] = v
		}
	}
	if len(requested) == 0 {
		return nil, nil
	}
	newUsed := q.Status.Used.DeepCopy()
	var exceeded []corev1.ResourceName
	for n, v := range requested {
		addQuantity(newUsed, n, v)
		if u := newUsed[n]; u.Cmp(q.Status.Hard[n]) > 0 {
			exceeded = append(exceeded, n)
		}
	}
	if len(exceeded) > 0 {
		mask := func(l corev1.ResourceList) corev1.ResourceList {
			out := corev1.ResourceList{}
			for _, n := range exceeded {
				if v, ok := l[n]; ok {
					out[n] = v
				}
			}
			return out
		}
		return nil, forbidden(r, fmt.Errorf("exceeded quota: %s, requested: %s, used: %s, limited: %s",
			q.Name, prettyPrint(mask(requested)), prettyPrint(mask(q.Status.Used)), prettyPrint(mask(q.Status.Hard))))
	}
	return newUsed, nil
}

// Validate checks every quota of the namespace and then charges them.
func (p *ResourceQuota) Validate(ctx context.Context, r *Request) error {
	if r.Operation != Create && r.Operation != Update {
		return nil
	}
	if r.Namespace == "" {
		return nil
	}
	// Most namespaces have no quota: skip computing the charge.
	if p.cached != nil && len(nsindex.List[*corev1.ResourceQuota](p.cached, r.Namespace)) == 0 {
		return nil
	}
	it, ok := quotaItemOf(r)
	if !ok || len(it.usage) == 0 {
		return nil
	}
	if apply, err := p.mayApply(r.Namespace, it); err != nil || !apply {
		return err
	}
	list, err := p.client.CoreV1().ResourceQuotas(r.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing resource quotas of %s: %w", r.Namespace, err)
	}
	if len(list.Items) == 0 {
		return nil
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	// Check all first so that a refusal charges nothing.
	var charge []*corev1.ResourceQuota
	for i := range list.Items {
		q := &list.Items[i]
		used, err := evaluate(r, q, it)
		if err != nil {
			return err
		}
		if used != nil {
			q.Status.Used = used
			charge = append(charge, q)
		}
	}
	if r.DryRun {
		return nil
	}
	for _, q := range charge {
		if err := p.charge(ctx, r, q, it); err != nil {
			return err
		}
	}
	return nil
}

// charge writes q (status.used already charged) with its resourceVersion;
// on a conflict it rereads the quota, re-evaluates and tries again.
func (p *ResourceQuota) charge(ctx context.Context, r *Request, q *corev1.ResourceQuota, it quotaItem) error {
	for attempt := 0; ; attempt++ {
		_, err := p.client.CoreV1().ResourceQuotas(q.Namespace).UpdateStatus(ctx, q, metav1.UpdateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt >= p.retries {
			return fmt.Errorf("charging resource quota %s/%s: %w", q.Namespace, q.Name, err)
		}
		fresh, err := p.client.CoreV1().ResourceQuotas(q.Namespace).Get(ctx, q.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil // the quota went away: nothing to charge
		}
		if err != nil {
			return fmt.Errorf("rereading resource quota %s/%s: %w", q.Namespace, q.Name, err)
		}
		used, err := evaluate(r, fresh, it)
		if err != nil {
			return err
		}
		if used == nil {
			return nil
		}
		fresh.Status.Used = used
		q = fresh
	}
}
