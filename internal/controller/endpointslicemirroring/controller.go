// Package endpointslicemirroring mirrors the Endpoints of Services without
// a selector into EndpointSlices, as upstream's EndpointSliceMirroring
// controller does: whoever manages such a Service's Endpoints by hand (an
// external database behind a Service, say) reaches every consumer of
// EndpointSlices (the service proxy, cluster DNS) too.
//
// For each Endpoints object whose Service exists, has no selector, and
// whose Endpoints are not labelled endpointslice.kubernetes.io/skip-mirror
// = "true", it keeps one EndpointSlice per subset and address family: the
// subset's ports, its addresses (ready) and notReadyAddresses (not ready),
// labelled kubernetes.io/service-name=<service> and
// endpointslice.kubernetes.io/managed-by=
// endpointslicemirroring-controller.k8s.io (with the Endpoints' other
// labels), owned by the Endpoints. Otherwise the mirrored slices of that
// name are deleted.
//
// It never acts on a slice cache that has not caught up with its own
// writes (package slicewrites), which would mirror an Endpoints twice.
//
// Inputs: Endpoints, Services and EndpointSlices (informers). Outputs:
// EndpointSlice creates, updates and deletes, only of slices it manages.
package endpointslicemirroring

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
	"github.com/skiff-dev/skiff/internal/controller/slicewrites"
)

const (
	// Name is the controller's name in logs and the work queue.
	Name = "endpointslicemirroring-controller"
	// ManagedBy is the endpointslice.kubernetes.io/managed-by label value
	// of the slices it manages.
	ManagedBy = "endpointslicemirroring-controller.k8s.io"
	// SkipMirrorLabel on Endpoints set to "true" stops the mirroring.
	SkipMirrorLabel = "endpointslice.kubernetes.io/skip-mirror"
	// staleRetry is how soon an Endpoints is looked at again when the
	// slice cache has not caught up with this controller's writes.
	staleRetry = 50 * time.Millisecond
)

// Controller mirrors Endpoints into EndpointSlices.
type Controller struct {
	client    kubernetes.Interface
	endpoints corelisters.EndpointsLister
	services  corelisters.ServiceLister
	slices    discoverylisters.EndpointSliceLister
	synced    []cache.InformerSynced
	log       *slog.Logger
	loop      *reconcile.Loop
	// writes tells a slice cache that has not caught up with this
	// controller's own writes: a sync acting on it would mirror twice.
	writes *slicewrites.Tracker
}

// New registers the informers the controller needs on deps.Informers.
func New(deps controller.Deps) *Controller {
	log := deps.Log()
	epInf := deps.Informers.Core().V1().Endpoints()
	svcInf := deps.Informers.Core().V1().Services()
	sliceInf := deps.Informers.Discovery().V1().EndpointSlices()
	c := &Controller{
		client:    deps.Client,
		endpoints: epInf.Lister(),
		services:  svcInf.Lister(),
		slices:    sliceInf.Lister(),
		synced:    []cache.InformerSynced{epInf.Informer().HasSynced, svcInf.Informer().HasSynced, sliceInf.Informer().HasSynced},
		log:       log,
		writes:    slicewrites.New(),
	}
	c.loop = reconcile.New(Name, c.sync, log)
	for _, h := range []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{epInf.Informer(), c.loop.Handler()},
		{svcInf.Informer(), c.loop.Handler()},
		{sliceInf.Informer(), c.loop.HandlerFor(func(obj any) []string {
			s, ok := obj.(*discovery.EndpointSlice)
			if !ok || s.Labels[discovery.LabelManagedBy] != ManagedBy || s.Labels[discovery.LabelServiceName] == "" {
				return nil
			}
			return []string{s.Namespace + "/" + s.Labels[discovery.LabelServiceName]}
		})},
	} {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			log.Info("cannot add event handler", "err", err)
		}
	}
	return c
}

// Run waits for the caches and runs workers workers until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced...)
}

// sync converges the mirrored slices of the Endpoints named key.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	existing, err := c.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{
		discovery.LabelServiceName: name, discovery.LabelManagedBy: ManagedBy,
	}))
	if err != nil {
		return 0, fmt.Errorf("listing the mirrored slices of %s: %w", key, err)
	}
	now := time.Now()
	if c.writes.Stale(key, existing, now) {
		return staleRetry, nil
	}
	var want []*discovery.EndpointSlice
	svc, svcErr := c.services.Services(ns).Get(name)
	ep, epErr := c.endpoints.Endpoints(ns).Get(name)
	if svcErr == nil && epErr == nil && len(svc.Spec.Selector) == 0 && ep.Labels[SkipMirrorLabel] != "true" {
		want = desired(ep)
	}
	// Slices already right stay; the others of the same address type are
	// updated in place (the type is immutable); then create and delete
	// the rest. The lister's order is arbitrary: match by content.
	same := func(cur, w *discovery.EndpointSlice) bool {
		return cur.AddressType == w.AddressType && equality.Semantic.DeepEqual(cur.Endpoints, w.Endpoints) &&
			equality.Semantic.DeepEqual(cur.Ports, w.Ports) && equality.Semantic.DeepEqual(cur.Labels, w.Labels)
	}
	used := make([]bool, len(existing))
	var pending []*discovery.EndpointSlice
	for _, w := range want {
		found := false
		for i, cur := range existing {
			if !used[i] && same(cur, w) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			pending = append(pending, w)
		}
	}
	for _, w := range pending {
		idx := -1
		for i, cur := range existing {
			if !used[i] && cur.AddressType == w.AddressType {
				idx = i
				break
			}
		}
		if idx < 0 {
			if err := c.create(ctx, key, w, now); err != nil {
				return 0, err
			}
			continue
		}
		used[idx] = true
		upd := existing[idx].DeepCopy()
		upd.Endpoints, upd.Ports, upd.Labels, upd.OwnerReferences = w.Endpoints, w.Ports, w.Labels, w.OwnerReferences
		got, err := c.client.DiscoveryV1().EndpointSlices(ns).Update(ctx, upd, metav1.UpdateOptions{})
		if err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return staleRetry, nil // the cache catches up
			}
			return 0, fmt.Errorf("updating mirrored slice %s/%s: %w", ns, upd.Name, err)
		}
		c.writes.Wrote(key, got, now)
	}
	for i, cur := range existing {
		if !used[i] {
			if err := c.delete(ctx, key, cur, now); err != nil {
				return 0, err
			}
		}
	}
	if len(want) == 0 && len(existing) == 0 {
		c.writes.Forget(key)
	}
	return 0, nil
}

func (c *Controller) create(ctx context.Context, key string, s *discovery.EndpointSlice, now time.Time) error {
	got, err := c.client.DiscoveryV1().EndpointSlices(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			return nil // the namespace is going away
		}
		return fmt.Errorf("creating a mirrored slice of %s/%s: %w", s.Namespace, s.Labels[discovery.LabelServiceName], err)
	}
	c.writes.Wrote(key, got, now)
	return nil
}

func (c *Controller) delete(ctx context.Context, key string, s *discovery.EndpointSlice, now time.Time) error {
	err := c.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &s.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting mirrored slice %s/%s: %w", s.Namespace, s.Name, err)
	}
	c.writes.Deleted(key, s, now)
	return nil
}

// desired returns the slices mirroring ep: one per subset and address
// family, in subset order (IPv4 before IPv6).
func desired(ep *corev1.Endpoints) []*discovery.EndpointSlice {
	lbls := maps.Clone(ep.Labels)
	if lbls == nil {
		lbls = map[string]string{}
	}
	delete(lbls, SkipMirrorLabel)
	lbls[discovery.LabelServiceName] = ep.Name
	lbls[discovery.LabelManagedBy] = ManagedBy
	owner := metav1.NewControllerRef(ep, corev1.SchemeGroupVersion.WithKind("Endpoints"))
	var out []*discovery.EndpointSlice
	for _, ss := range ep.Subsets {
		var ports []discovery.EndpointPort
		for _, p := range ss.Ports {
			ports = append(ports, discovery.EndpointPort{
				Name: ptr.To(p.Name), Port: ptr.To(p.Port), Protocol: ptr.To(p.Protocol), AppProtocol: p.AppProtocol,
			})
		}
		byType := map[discovery.AddressType][]discovery.Endpoint{}
		add := func(a corev1.EndpointAddress, ready bool) {
			ip, err := netip.ParseAddr(a.IP)
			if err != nil {
				return // not an IP: nothing a slice can hold
			}
			typ := discovery.AddressTypeIPv4
			if ip.Is6() && !ip.Is4In6() {
				typ = discovery.AddressTypeIPv6
			}
			e := discovery.Endpoint{
				Addresses:  []string{ip.Unmap().String()},
				Conditions: discovery.EndpointConditions{Ready: ptr.To(ready)},
				NodeName:   a.NodeName,
				TargetRef:  a.TargetRef,
			}
			if a.Hostname != "" {
				e.Hostname = ptr.To(a.Hostname)
			}
			byType[typ] = append(byType[typ], e)
		}
		for _, a := range ss.Addresses {
			add(a, true)
		}
		for _, a := range ss.NotReadyAddresses {
			add(a, false)
		}
		for _, typ := range []discovery.AddressType{discovery.AddressTypeIPv4, discovery.AddressTypeIPv6} {
			eps, ok := byType[typ]
			if !ok {
				continue
			}
			l := maps.Clone(lbls)
			out = append(out, &discovery.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{
					GenerateName: ep.Name + "-", Namespace: ep.Namespace, Labels: l,
					OwnerReferences: []metav1.OwnerReference{*owner},
				},
				AddressType: typ,
				Endpoints:   eps,
				Ports:       ports,
			})
		}
	}
	return out
}
