package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/endpoints"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
	"github.com/skiff-dev/skiff/internal/controller/slicewrites"
)

const (
	// Name is the controller's name in logs and the work queue.
	Name = "endpointslice-controller"
	// ManagedBy is the endpointslice.kubernetes.io/managed-by label value
	// of the slices this controller owns.
	ManagedBy = "endpointslice-controller.k8s.io"
	// DefaultMaxEndpointsPerSlice is upstream's --max-endpoints-per-slice
	// default.
	DefaultMaxEndpointsPerSlice = 100
	// ReasonFailedToUpdateEndpointSlices is the Warning event recorded on a
	// Service whose slices could not be written.
	ReasonFailedToUpdateEndpointSlices = "FailedToUpdateEndpointSlices"

	// staleRetry is how soon a service is looked at again when the cache
	// has not caught up with our own writes.
	staleRetry = 50 * time.Millisecond
	// missingNodeRetry is how soon a service is looked at again when some
	// of its pods run on nodes that do not exist (yet).
	missingNodeRetry = 5 * time.Second
)

// Controller keeps the EndpointSlices of selector Services. See the
// package documentation. Run it once.
type Controller struct {
	client   kubernetes.Interface
	services corelisters.ServiceLister
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	slices   discoverylisters.EndpointSliceLister
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time
	loop     *reconcile.Loop
	triggers *endpoints.TriggerTimes
	writes   *slicewrites.Tracker
	// maxPerSlice is the most endpoints a slice holds; set before Run.
	maxPerSlice int
}

// New returns an EndpointSlice controller and registers its informers
// (services, pods, nodes, endpointslices) on deps.Informers; start the
// factory after calling it, then call Run.
func New(deps controller.Deps) *Controller {
	log := deps.Log()
	rec := deps.Events()
	svcInf := deps.Informers.Core().V1().Services()
	podInf := deps.Informers.Core().V1().Pods()
	nodeInf := deps.Informers.Core().V1().Nodes()
	sliceInf := deps.Informers.Discovery().V1().EndpointSlices()
	c := &Controller{
		client:   deps.Client,
		services: svcInf.Lister(),
		pods:     podInf.Lister(),
		nodes:    nodeInf.Lister(),
		slices:   sliceInf.Lister(),
		synced: []cache.InformerSynced{
			svcInf.Informer().HasSynced, podInf.Informer().HasSynced,
			nodeInf.Informer().HasSynced, sliceInf.Informer().HasSynced,
		},
		recorder:    rec,
		log:         log,
		now:         deps.Clock(),
		triggers:    endpoints.NewTriggerTimes(),
		writes:      slicewrites.New(),
		maxPerSlice: DefaultMaxEndpointsPerSlice,
	}
	c.loop = reconcile.New(Name, c.sync, log)
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{svcInf.Informer(), c.loop.Handler()},
		{podInf.Informer(), c.loop.HandlerFor(endpoints.ServiceKeysForPod(svcInf.Informer().GetIndexer()))},
		{sliceInf.Informer(), c.loop.HandlerFor(serviceKeyOfSlice)},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			log.Info("cannot add event handler", "err", err)
		}
	}
	return c
}

// serviceKeyOfSlice maps a slice this controller manages to its service.
func serviceKeyOfSlice(obj any) []string {
	s, ok := obj.(*discovery.EndpointSlice)
	if !ok || s.Labels[discovery.LabelManagedBy] != ManagedBy || s.Labels[discovery.LabelServiceName] == "" {
		return nil
	}
	return []string{s.Namespace + "/" + s.Labels[discovery.LabelServiceName]}
}

// Run waits for the caches, runs workers workers and blocks until ctx is
// done. It returns nil on cancellation.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced...)
}

// sync converges the slices of the service named key ("namespace/name").
// It is idempotent: when the slices are right it writes nothing.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil // not a key we queued
	}
	now := c.now()
	existing, err := c.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{
		discovery.LabelServiceName: name,
		discovery.LabelManagedBy:   ManagedBy,
	}))
	if err != nil {
		return 0, fmt.Errorf("listing endpointslices of %s: %w", key, err)
	}
	svc, err := c.services.Services(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("getting service %s: %w", key, err)
	}
	if svc == nil || svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.Selector == nil {
		// Gone, or no longer ours to fill: its slices go. The garbage
		// collector would delete them through their owner reference too;
		// this does not wait for it.
		if svc == nil {
			c.triggers.Forget(key)
		}
		var errs []error
		for _, s := range existing {
			if err := c.deleteSlice(ctx, key, s, now); err != nil {
				errs = append(errs, err)
			}
		}
		if len(existing) == 0 {
			c.writes.Forget(key)
		}
		return 0, errors.Join(errs...)
	}
	if c.writes.Stale(key, existing, now) {
		return staleRetry, nil
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return 0, fmt.Errorf("listing pods of service %s: %w", key, err)
	}
	triggerTime, commit := c.triggers.Observe(key, svc, pods)

	types := addressTypes(svc)
	var plan changes
	byType := map[discovery.AddressType][]*discovery.EndpointSlice{}
	for _, s := range existing {
		if !ownedBy(s, svc) || !types[s.AddressType] {
			plan.delete = append(plan.delete, s)
			continue
		}
		byType[s.AddressType] = append(byType[s.AddressType], s)
	}
	missingNodes := 0
	for _, at := range []discovery.AddressType{discovery.AddressTypeIPv4, discovery.AddressTypeIPv6} {
		if !types[at] {
			continue
		}
		desired, missing := c.desired(svc, pods, at)
		missingNodes += missing
		plan.add(planAddressType(svc, at, byType[at], desired, c.maxPerSlice))
	}
	if err := c.apply(ctx, key, svc, plan, triggerTime, now); err != nil {
		c.recorder.Eventf(svc, corev1.EventTypeWarning, ReasonFailedToUpdateEndpointSlices,
			"Error updating Endpoint Slices for Service %s/%s: %v", ns, name, err)
		return 0, err
	}
	if missingNodes > 0 {
		// Not committed: the pods left out are news to the retry that
		// adds them, and their trigger time with them.
		c.log.Debug("pods on unknown nodes left out", "service", key, "pods", missingNodes)
		return missingNodeRetry, nil
	}
	commit()
	return 0, nil
}

// apply writes plan: creates (not for a service being deleted), updates
// and deletes, stamping created and updated slices with the trigger time.
func (c *Controller) apply(ctx context.Context, key string, svc *corev1.Service, plan changes, triggerTime, now time.Time) error {
	var errs []error
	stamp := func(s *discovery.EndpointSlice) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		if triggerTime.IsZero() {
			delete(s.Annotations, corev1.EndpointsLastChangeTriggerTime)
		} else {
			s.Annotations[corev1.EndpointsLastChangeTriggerTime] = triggerTime.UTC().Format(time.RFC3339Nano)
		}
	}
	client := c.client.DiscoveryV1().EndpointSlices(svc.Namespace)
	if svc.DeletionTimestamp == nil {
		for _, s := range plan.create {
			stamp(s)
			got, err := client.Create(ctx, s, metav1.CreateOptions{})
			if err != nil {
				if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return nil // the namespace goes, and the service with it
				}
				errs = append(errs, fmt.Errorf("creating endpointslice for %s: %w", key, err))
				continue
			}
			c.writes.Wrote(key, got, now)
		}
	}
	for _, s := range plan.update {
		stamp(s)
		got, err := client.Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("updating endpointslice %s/%s: %w", s.Namespace, s.Name, err))
			continue
		}
		c.writes.Wrote(key, got, now)
	}
	for _, s := range plan.delete {
		if err := c.deleteSlice(ctx, key, s, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) deleteSlice(ctx context.Context, key string, s *discovery.EndpointSlice, now time.Time) error {
	err := c.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &s.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting endpointslice %s/%s: %w", s.Namespace, s.Name, err)
	}
	c.writes.Deleted(key, s, now)
	return nil
}

// desired groups the endpoints of svc's pods of address type at by port
// set. Pods on nodes missing from the cache are left out (as upstream
// does) and counted.
func (c *Controller) desired(svc *corev1.Service, pods []*corev1.Pod, at discovery.AddressType) (map[string]*group, int) {
	family := corev1.IPv4Protocol
	if at == discovery.AddressTypeIPv6 {
		family = corev1.IPv6Protocol
	}
	groups := map[string]*group{}
	missing := 0
	for _, pod := range pods {
		if !endpoints.ShouldPodBeInEndpoints(pod, true) {
			continue
		}
		ports := endpointPorts(svc, pod)
		pk := portsKey(ports)
		g, ok := groups[pk]
		if !ok {
			g = &group{ports: ports, endpoints: map[string]discovery.Endpoint{}}
			groups[pk] = g
		}
		node, err := c.nodes.Get(pod.Spec.NodeName)
		if err != nil {
			missing++
			continue
		}
		ep, ok := podEndpoint(svc, pod, node, family)
		if !ok {
			continue
		}
		g.endpoints[endpointKey(&ep)] = ep
	}
	return groups, missing
}

// endpointPorts are svc's ports as pod serves them; ports whose named
// targetPort pod lacks are left out.
func endpointPorts(svc *corev1.Service, pod *corev1.Pod) []discovery.EndpointPort {
	ports := make([]discovery.EndpointPort, 0, len(svc.Spec.Ports))
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		n, err := endpoints.FindPort(pod, sp)
		if err != nil {
			continue
		}
		name, proto := sp.Name, sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		ports = append(ports, discovery.EndpointPort{Name: &name, Port: &n, Protocol: &proto, AppProtocol: sp.AppProtocol})
	}
	return ports
}

// podEndpoint is pod's endpoint in svc: its IP of family, conditions
// (serving = Ready, terminating = being deleted, ready = serving and not
// terminating, or always with publishNotReadyAddresses), node, zone,
// hostname and a Pod targetRef. ok is false when pod has no IP of family.
func podEndpoint(svc *corev1.Service, pod *corev1.Pod, node *corev1.Node, family corev1.IPFamily) (discovery.Endpoint, bool) {
	ip := endpoints.PodIPForFamily(pod, family)
	if ip == "" {
		return discovery.Endpoint{}, false
	}
	serving := endpoints.IsPodReady(pod)
	terminating := pod.DeletionTimestamp != nil
	ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
	ep := discovery.Endpoint{
		Addresses:  []string{ip},
		Conditions: discovery.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if pod.Spec.NodeName != "" {
		n := pod.Spec.NodeName
		ep.NodeName = &n
	}
	if zone := node.Labels[corev1.LabelTopologyZone]; zone != "" {
		ep.Zone = &zone
	}
	if endpoints.ShouldSetHostname(pod, svc) {
		h := pod.Spec.Hostname
		ep.Hostname = &h
	}
	return ep, true
}

// addressTypes are the address types svc gets slices for: its ipFamilies;
// without them the family of its cluster IP; for a headless service
// without either, both.
func addressTypes(svc *corev1.Service) map[discovery.AddressType]bool {
	types := map[discovery.AddressType]bool{}
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			types[discovery.AddressTypeIPv4] = true
		case corev1.IPv6Protocol:
			types[discovery.AddressTypeIPv6] = true
		}
	}
	if len(types) > 0 {
		return types
	}
	if !endpoints.IsHeadless(svc) {
		if addr, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil && addr.Is6() && !addr.Is4In6() {
			types[discovery.AddressTypeIPv6] = true
		} else {
			types[discovery.AddressTypeIPv4] = true
		}
		return types
	}
	types[discovery.AddressTypeIPv4] = true
	types[discovery.AddressTypeIPv6] = true
	return types
}

// ownedBy reports whether s's controller reference is svc (by uid).
func ownedBy(s *discovery.EndpointSlice, svc *corev1.Service) bool {
	ref := metav1.GetControllerOfNoCopy(s)
	return ref != nil && ref.Kind == "Service" && ref.UID == svc.UID
}
