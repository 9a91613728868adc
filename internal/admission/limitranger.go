package admission

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/skiff-dev/skiff/internal/nsindex"
)

// LimitRangerAnnotation records on a pod which defaults LimitRanger set.
const LimitRangerAnnotation = "kubernetes.io/limit-ranger"

// LimitRanger applies the namespace's LimitRanges, as upstream's
// LimitRanger plugin: on pod CREATE it fills unset container requests and
// limits from items of type Container (defaultRequest, default) and then
// enforces min, max and maxLimitRequestRatio for Container and Pod items;
// on PersistentVolumeClaim CREATE and UPDATE it enforces min and max of
// the PersistentVolumeClaim items. Pod updates are not checked (containers'
// resources are immutable there, as upstream reasons).
type LimitRanger struct {
	cached cache.Indexer // the LimitRanges' cache; may be nil
	client kubernetes.Interface

	// live remembers, per namespace, what a live lookup found while the
	// cache had nothing for the namespace (see liveLimitRanges). Guarded
	// by mu.
	mu    sync.Mutex
	live  map[string]liveLimitRanges
	group singleflight.Group // one live lookup per namespace at a time
}

// liveLimitRanges is one namespace's live lookup: its LimitRanges sorted
// by name (read-only, shared), usable until expiry.
type liveLimitRanges struct {
	expiry time.Time
	items  []*corev1.LimitRange
}

// A live lookup is reused for liveTTL, as upstream's LimitRanger does: it
// covers a cache that lags a LimitRange just created, and without reuse a
// namespace with no LimitRanges, the common case, cost every pod create
// two LISTs through the API server (admit and validate). At most
// maxLiveEntries namespaces are remembered.
const (
	liveTTL        = 30 * time.Second
	maxLiveEntries = 10000
)

var (
	_ Mutator   = (*LimitRanger)(nil)
	_ Validator = (*LimitRanger)(nil)
)

// NewLimitRanger returns the plugin. LimitRanges come from cached (an
// informer's cache of them; nil: none) and, when it has none for the
// namespace (a cache that lags a fresh LimitRange), live from client.
func NewLimitRanger(cached cache.Indexer, client kubernetes.Interface) *LimitRanger {
	return &LimitRanger{cached: cached, client: client}
}

// Name implements Plugin.
func (*LimitRanger) Name() string { return "LimitRanger" }

// limitRanges returns the namespace's LimitRanges sorted by name (they are
// read-only: they may come from the cache or a shared live lookup).
func (l *LimitRanger) limitRanges(ctx context.Context, ns string) ([]*corev1.LimitRange, error) {
	if l.cached != nil {
		if got := nsindex.List[*corev1.LimitRange](l.cached, ns); len(got) > 0 {
			// A fresh slice (of shared objects).
			sort.Slice(got, func(i, j int) bool { return got[i].Name < got[j].Name })
			return got, nil
		}
	}
	if l.client == nil {
		return nil, nil
	}
	return l.liveLookup(ctx, ns)
}

// liveLookup lists the namespace's LimitRanges through the client, or
// returns what such a list found less than liveTTL ago. Concurrent
// lookups of one namespace share one list.
func (l *LimitRanger) liveLookup(ctx context.Context, ns string) ([]*corev1.LimitRange, error) {
	l.mu.Lock()
	e, ok := l.live[ns]
	l.mu.Unlock()
	if ok && time.Now().Before(e.expiry) {
		return e.items, nil
	}
	ch := l.group.DoChan(ns, func() (any, error) {
		// Shared by every waiter: not cancelled with the first one's
		// request.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		list, err := l.client.CoreV1().LimitRanges(ns).List(lctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing limit ranges of %s: %w", ns, err)
		}
		items := make([]*corev1.LimitRange, len(list.Items))
		for i := range list.Items {
			items[i] = &list.Items[i]
		}
		sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
		l.remember(ns, liveLimitRanges{expiry: time.Now().Add(liveTTL), items: items})
		return items, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.([]*corev1.LimitRange), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("listing limit ranges of %s: %w", ns, ctx.Err())
	}
}

// remember stores a live lookup, first dropping expired ones (or, when
// none has expired, all) once maxLiveEntries namespaces are remembered.
func (l *LimitRanger) remember(ns string, e liveLimitRanges) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live == nil {
		l.live = map[string]liveLimitRanges{}
	}
	if len(l.live) >= maxLiveEntries {
		now := time.Now()
		for k, v := range l.live {
			if now.After(v.expiry) {
				delete(l.live, k)
			}
		}
		if len(l.live) >= maxLiveEntries {
			clear(l.live)
		}
	}
	l.live[ns] = e
}

// Admit fills unset container requests and limits of a new pod.
func (l *LimitRanger) Admit(ctx context.Context, r *Request) error {
	if r.Operation != Create || !r.is("", "pods", "") {
		return nil
	}
	pod, ok := r.Object.(*corev1.Pod)
	if !ok {
		return nil
	}
	lrs, err := l.limitRanges(ctx, r.Namespace)
	if err != nil {
		return err
	}
	for _, lr := range lrs {
		applyDefaults(pod, lr)
	}
	return nil
}

// Validate enforces min, max and ratios.
func (l *LimitRanger) Validate(ctx context.Context, r *Request) error {
	var check func(lr *corev1.LimitRange) []error
	switch {
	case r.Operation == Create && r.is("", "pods", ""):
		pod, ok := r.Object.(*corev1.Pod)
		if !ok {
			return nil
		}
		check = func(lr *corev1.LimitRange) []error { return validatePodLimits(pod, lr) }
	case (r.Operation == Create || r.Operation == Update) && r.is("", "persistentvolumeclaims", ""):
		pvc, ok := r.Object.(*corev1.PersistentVolumeClaim)
		if !ok {
			return nil
		}
		check = func(lr *corev1.LimitRange) []error { return validateClaimLimits(pvc, lr) }
	default:
		return nil
	}
	lrs, err := l.limitRanges(ctx, r.Namespace)
	if err != nil {
		return err
	}
	var errs []error
	for _, lr := range lrs {
		errs = append(errs, check(lr)...)
	}
	if len(errs) > 0 {
		return forbidden(r, utilerrors.NewAggregate(errs))
	}
	return nil
}

// containerDefaults merges the Container items of lr, applying the API's
// own LimitRange defaulting (default from max, defaultRequest from default
// then min) in case the stored object lacks it.
func containerDefaults(lr *corev1.LimitRange) (requests, limits corev1.ResourceList) {
	requests, limits = corev1.ResourceList{}, corev1.ResourceList{}
	for _, it := range lr.Spec.Limits {
		if it.Type != corev1.LimitTypeContainer {
			continue
		}
		def, defReq := corev1.ResourceList{}, corev1.ResourceList{}
		for k, v := range it.Default {
			def[k] = v
		}
		for k, v := range it.Max {
			if _, ok := def[k]; !ok {
				def[k] = v
			}
		}
		for k, v := range it.DefaultRequest {
			defReq[k] = v
		}
		for _, src := range []corev1.ResourceList{def, it.Min} {
			for k, v := range src {
				if _, ok := defReq[k]; !ok {
					defReq[k] = v
				}
			}
		}
		for k, v := range def {
			limits[k] = v.DeepCopy()
		}
		for k, v := range defReq {
			requests[k] = v.DeepCopy()
		}
	}
	return requests, limits
}

// applyDefaults fills what pod's containers leave unset from lr and
// records it in the LimitRangerAnnotation, as upstream words it.
func applyDefaults(pod *corev1.Pod, lr *corev1.LimitRange) {
	requests, limits := containerDefaults(lr)
	if len(requests) == 0 && len(limits) == 0 {
		return
	}
	var notes []string
	merge := func(c *corev1.Container, kind string) {
		var setReq, setLim []string
		for k, v := range limits {
			if _, ok := c.Resources.Limits[k]; !ok {
				if c.Resources.Limits == nil {
					c.Resources.Limits = corev1.ResourceList{}
				}
				c.Resources.Limits[k] = v.DeepCopy()
				setLim = append(setLim, string(k))
			}
		}
		for k, v := range requests {
			if _, ok := c.Resources.Requests[k]; !ok {
				if c.Resources.Requests == nil {
					c.Resources.Requests = corev1.ResourceList{}
				}
				c.Resources.Requests[k] = v.DeepCopy()
				setReq = append(setReq, string(k))
			}
		}
		if len(setReq) > 0 {
			sort.Strings(setReq)
			notes = append(notes, fmt.Sprintf("%s request for %s %s", strings.Join(setReq, ", "), kind, c.Name))
		}
		if len(setLim) > 0 {
			sort.Strings(setLim)
			notes = append(notes, fmt.Sprintf("%s limit for %s %s", strings.Join(setLim, ", "), kind, c.Name))
		}
	}
	for i := range pod.Spec.Containers {
		merge(&pod.Spec.Containers[i], "container")
	}
	for i := range pod.Spec.InitContainers {
		merge(&pod.Spec.InitContainers[i], "init container")
	}
	if len(notes) > 0 {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[LimitRangerAnnotation] = "LimitRanger plugin set: " + strings.Join(notes, "; ")
	}
}

// sortedNames returns the keys of l in order, for stable messages.
func sortedNames(l corev1.ResourceList) []corev1.ResourceName {
	out := make([]corev1.ResourceName, 0, len(l))
	for k := range l {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkItem applies one item's min, max and ratio to observed requests
// and limits.
func checkItem(it corev1.LimitRangeItem, requests, limits corev1.ResourceList) []error {
	var errs []error
	kind := string(it.Type)
	for _, k := range sortedNames(it.Min) {
		if err := minConstraint(kind, k, it.Min[k], requests, limits); err != nil {
			errs = append(errs, err)
		}
	}
	for _, k := range sortedNames(it.Max) {
		if err := maxConstraint(kind, k, it.Max[k], requests, limits); err != nil {
			errs = append(errs, err)
		}
	}
	for _, k := range sortedNames(it.MaxLimitRequestRatio) {
		if err := ratioConstraint(kind, k, it.MaxLimitRequestRatio[k], requests, limits); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func validatePodLimits(pod *corev1.Pod, lr *corev1.LimitRange) []error {
	var errs []error
	for _, it := range lr.Spec.Limits {
		switch it.Type {
		case corev1.LimitTypeContainer:
			for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
				for _, c := range cs {
					errs = append(errs, checkItem(it, c.Resources.Requests, c.Resources.Limits)...)
				}
			}
		case corev1.LimitTypePod:
			reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{SkipPodLevelResources: false})
			lims := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{SkipPodLevelResources: false})
			errs = append(errs, checkItem(it, reqs, lims)...)
		}
	}
	return errs
}

func validateClaimLimits(pvc *corev1.PersistentVolumeClaim, lr *corev1.LimitRange) []error {
	var errs []error
	for _, it := range lr.Spec.Limits {
		if it.Type != corev1.LimitTypePersistentVolumeClaim {
			continue
		}
		kind := string(it.Type)
		reqs := pvc.Spec.Resources.Requests
		for _, k := range sortedNames(it.Min) {
			if err := minConstraint(kind, k, it.Min[k], reqs, nil); err != nil {
				errs = append(errs, err)
			}
		}
		for _, k := range sortedNames(it.Max) {
			enforced := it.Max[k]
			req, ok := reqs[k]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("maximum %s usage per %s is %s.  No request is specified", k, kind, enforced.String()))
			case req.Cmp(enforced) > 0:
				errs = append(errs, fmt.Errorf("maximum %s usage per %s is %s, but request is %s", k, kind, enforced.String(), req.String()))
			}
		}
	}
	return errs
}

// The constraint texts are upstream's, double spaces included.

func minConstraint(kind string, name corev1.ResourceName, enforced resource.Quantity, requests, limits corev1.ResourceList) error {
	req, hasReq := requests[name]
	lim, hasLim := limits[name]
	switch {
	case !hasReq:
		return fmt.Errorf("minimum %s usage per %s is %s.  No request is specified", name, kind, enforced.String())
	case req.Cmp(enforced) < 0:
		return fmt.Errorf("minimum %s usage per %s is %s, but request is %s", name, kind, enforced.String(), req.String())
	case hasLim && lim.Cmp(enforced) < 0:
		return fmt.Errorf("minimum %s usage per %s is %s, but limit is %s", name, kind, enforced.String(), lim.String())
	}
	return nil
}

func maxConstraint(kind string, name corev1.ResourceName, enforced resource.Quantity, requests, limits corev1.ResourceList) error {
	req, hasReq := requests[name]
	lim, hasLim := limits[name]
	switch {
	case !hasLim:
		return fmt.Errorf("maximum %s usage per %s is %s.  No limit is specified", name, kind, enforced.String())
	case lim.Cmp(enforced) > 0:
		return fmt.Errorf("maximum %s usage per %s is %s, but limit is %s", name, kind, enforced.String(), lim.String())
	case hasReq && req.Cmp(enforced) > 0:
		return fmt.Errorf("maximum %s usage per %s is %s, but request is %s", name, kind, enforced.String(), req.String())
	}
	return nil
}

func ratioConstraint(kind string, name corev1.ResourceName, enforced resource.Quantity, requests, limits corev1.ResourceList) error {
	req, hasReq := requests[name]
	lim, hasLim := limits[name]
	switch {
	case !hasReq || req.IsZero():
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but no request is specified or request is 0", name, kind, enforced.String())
	case !hasLim || lim.IsZero():
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but no limit is specified or limit is 0", name, kind, enforced.String())
	}
	ratio := lim.AsApproximateFloat64() / req.AsApproximateFloat64()
	if ratio > enforced.AsApproximateFloat64() {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but provided ratio is %f", name, kind, enforced.String(), ratio)
	}
	return nil
}
