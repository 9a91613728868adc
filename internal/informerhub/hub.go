package informerhub

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/informers/admissionregistration"
	"k8s.io/client-go/informers/apiserverinternal"
	"k8s.io/client-go/informers/apps"
	"k8s.io/client-go/informers/autoscaling"
	"k8s.io/client-go/informers/batch"
	"k8s.io/client-go/informers/certificates"
	"k8s.io/client-go/informers/coordination"
	"k8s.io/client-go/informers/core"
	"k8s.io/client-go/informers/discovery"
	"k8s.io/client-go/informers/events"
	"k8s.io/client-go/informers/extensions"
	"k8s.io/client-go/informers/flowcontrol"
	"k8s.io/client-go/informers/internalinterfaces"
	"k8s.io/client-go/informers/lifecycle"
	"k8s.io/client-go/informers/networking"
	"k8s.io/client-go/informers/node"
	"k8s.io/client-go/informers/policy"
	"k8s.io/client-go/informers/rbac"
	"k8s.io/client-go/informers/resource"
	"k8s.io/client-go/informers/scheduling"
	"k8s.io/client-go/informers/storage"
	"k8s.io/client-go/informers/storagemigration"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Hub holds the shared informers. Its methods are safe for concurrent use.
type Hub struct {
	ctx     context.Context
	factory informers.SharedInformerFactory

	mu sync.Mutex
	// fanouts are keyed by the informers' indexers: client-go hands out
	// a new typed wrapper of an informer on every Informer() call.
	fanouts map[cache.Indexer]*fanout
}

// New returns a hub whose informers list and watch through client, resync
// their handlers every resync (0: never, and then no handler can ask for a
// resync), keep objects as opts' transform leaves them, and run until ctx
// is done.
func New(ctx context.Context, client kubernetes.Interface, resync time.Duration, opts ...informers.SharedInformerOption) *Hub {
	return &Hub{ctx: ctx, factory: informers.NewSharedInformerFactoryWithOptions(client, resync, opts...),
		fanouts: make(map[cache.Indexer]*fanout)}
}

// fanoutFor returns the fanout of the hub informer inf.
func (h *Hub) fanoutFor(inf cache.SharedIndexInformer) *fanout {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := inf.GetIndexer()
	f := h.fanouts[key]
	if f == nil {
		f = &fanout{ctx: h.ctx}
		h.fanouts[key] = f
	}
	return f
}

// detach removes a handler added through a scope.
func detach(inf cache.SharedIndexInformer, reg cache.ResourceEventHandlerRegistration) error {
	if m, ok := reg.(*member); ok {
		if !m.f.leave(m) {
			return errors.New("informerhub: the event handler was already removed")
		}
		return nil
	}
	return inf.RemoveEventHandler(reg)
}

// Scope returns a factory for one run of one component (see the package
// documentation). Its signature fits the components' NewInformers hooks.
func (h *Hub) Scope() informers.SharedInformerFactory {
	return &scope{hub: h}
}

// errShutdown refuses handlers added to a scope after its Shutdown.
var errShutdown = errors.New("informerhub: the component's informer scope is shut down")

// scope is a SharedInformerFactory over the hub's factory that keeps the
// event handlers added through it, so that Shutdown can remove them.
type scope struct {
	hub *Hub

	mu       sync.Mutex
	handlers map[cache.ResourceEventHandlerRegistration]cache.SharedIndexInformer
	shut     bool
}

var _ informers.SharedInformerFactory = (*scope)(nil)

// InformerFor returns the hub's informer for obj's type, as seen by s.
func (s *scope) InformerFor(obj runtime.Object, newFunc internalinterfaces.NewInformerFunc) cache.SharedIndexInformer {
	return s.wrap(s.hub.factory.InformerFor(obj, newFunc))
}

// InformerName is the hub's (metrics identity of its informers).
func (s *scope) InformerName() *cache.InformerName { return s.hub.factory.InformerName() }

func (s *scope) wrap(inf cache.SharedIndexInformer) cache.SharedIndexInformer {
	return &scopedInformer{SharedIndexInformer: inf, s: s}
}

// Start starts the informers asked for so far under the hub's context:
// stopCh is not theirs to end.
func (s *scope) Start(<-chan struct{}) { s.hub.factory.StartWithContext(s.hub.ctx) }

// StartWithContext is Start.
func (s *scope) StartWithContext(context.Context) { s.hub.factory.StartWithContext(s.hub.ctx) }

// Shutdown removes the event handlers added through s; the informers keep
// running for the other components. Later additions are refused.
func (s *scope) Shutdown() {
	s.mu.Lock()
	handlers := s.handlers
	s.handlers, s.shut = nil, true
	s.mu.Unlock()
	for reg, inf := range handlers {
		_ = detach(inf, reg) // only fails for a stopped informer, which delivers nothing
	}
}

func (s *scope) WaitForCacheSync(stopCh <-chan struct{}) map[reflect.Type]bool {
	return s.hub.factory.WaitForCacheSync(stopCh)
}

func (s *scope) WaitForCacheSyncWithContext(ctx context.Context) cache.SyncResult {
	return s.hub.factory.WaitForCacheSyncWithContext(ctx)
}

func (s *scope) ForResource(gvr schema.GroupVersionResource) (informers.GenericInformer, error) {
	g, err := s.hub.factory.ForResource(gvr)
	if err != nil {
		return nil, err
	}
	return genericInformer{GenericInformer: g, inf: s.wrap(g.Informer())}, nil
}

// The group accessors hand s to the generated constructors, so that every
// typed informer comes through s.InformerFor. A scope sees all namespaces,
// unfiltered, as the hub lists them.
func (s *scope) Admissionregistration() admissionregistration.Interface {
	return admissionregistration.New(s, metav1.NamespaceAll, nil)
}
func (s *scope) Internal() apiserverinternal.Interface {
	return apiserverinternal.New(s, metav1.NamespaceAll, nil)
}
func (s *scope) Apps() apps.Interface { return apps.New(s, metav1.NamespaceAll, nil) }
func (s *scope) Autoscaling() autoscaling.Interface {
	return autoscaling.New(s, metav1.NamespaceAll, nil)
}
func (s *scope) Batch() batch.Interface { return batch.New(s, metav1.NamespaceAll, nil) }
func (s *scope) Certificates() certificates.Interface {
	return certificates.New(s, metav1.NamespaceAll, nil)
}
func (s *scope) Coordination() coordination.Interface {
	return coordination.New(s, metav1.NamespaceAll, nil)
}
func (s *scope) Core() core.Interface           { return core.New(s, metav1.NamespaceAll, nil) }
func (s *scope) Discovery() discovery.Interface { return discovery.New(s, metav1.NamespaceAll, nil) }
func (s *scope) Events() events.Interface       { return events.New(s, metav1.NamespaceAll, nil) }
func (s *scope) Extensions() extensions.Interface {
	return extensions.New(s, metav1.NamespaceAll, nil)
}
func (s *scope) Flowcontrol() flowcontrol.Interface {
	return flowcontrol.New(s, metav1.NamespaceAll, nil)
}
func (s *scope) Lifecycle() lifecycle.Interface { return lifecycle.New(s, metav1.NamespaceAll, nil) }
func (s *scope) Networking() networking.Interface {
	return networking.New(s, metav1.NamespaceAll, nil)
}
func (s *scope) Node() node.Interface     { return node.New(s, metav1.NamespaceAll, nil) }
func (s *scope) Policy() policy.Interface { return policy.New(s, metav1.NamespaceAll, nil) }
func (s *scope) Rbac() rbac.Interface     { return rbac.New(s, metav1.NamespaceAll, nil) }
func (s *scope) Resource() resource.Interface {
	return resource.New(s, metav1.NamespaceAll, nil)
}
func (s *scope) Scheduling() scheduling.Interface {
	return scheduling.New(s, metav1.NamespaceAll, nil)
}
func (s *scope) Storage() storage.Interface { return storage.New(s, metav1.NamespaceAll, nil) }
func (s *scope) Storagemigration() storagemigration.Interface {
	return storagemigration.New(s, metav1.NamespaceAll, nil)
}

// add records a handler added through s, or takes it back if s is shut.
func (s *scope) add(inf cache.SharedIndexInformer, reg cache.ResourceEventHandlerRegistration, err error) (cache.ResourceEventHandlerRegistration, error) {
	if err != nil {
		return reg, err
	}
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		_ = detach(inf, reg)
		return nil, errShutdown
	}
	if s.handlers == nil {
		s.handlers = make(map[cache.ResourceEventHandlerRegistration]cache.SharedIndexInformer)
	}
	s.handlers[reg] = inf
	s.mu.Unlock()
	return reg, nil
}

func (s *scope) forget(reg cache.ResourceEventHandlerRegistration) {
	s.mu.Lock()
	delete(s.handlers, reg)
	s.mu.Unlock()
}

// scopedInformer is a hub informer as one scope sees it: handlers are
// recorded, indexers already present are kept, and running it means
// starting it under the hub.
type scopedInformer struct {
	cache.SharedIndexInformer
	s *scope
}

func (i *scopedInformer) AddEventHandler(h cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error) {
	return i.AddEventHandlerWithOptions(h, cache.HandlerOptions{})
}

func (i *scopedInformer) AddEventHandlerWithResyncPeriod(h cache.ResourceEventHandler, resync time.Duration) (cache.ResourceEventHandlerRegistration, error) {
	reg, err := i.SharedIndexInformer.AddEventHandlerWithResyncPeriod(h, resync)
	return i.s.add(i.SharedIndexInformer, reg, err)
}

// AddEventHandlerWithOptions joins h to the informer's fanout, unless it
// asks for a resync period of its own: then it gets a listener of its own.
func (i *scopedInformer) AddEventHandlerWithOptions(h cache.ResourceEventHandler, opts cache.HandlerOptions) (cache.ResourceEventHandlerRegistration, error) {
	if opts.ResyncPeriod != nil {
		reg, err := i.SharedIndexInformer.AddEventHandlerWithOptions(h, opts)
		return i.s.add(i.SharedIndexInformer, reg, err)
	}
	m, err := i.s.hub.fanoutFor(i.SharedIndexInformer).join(i.SharedIndexInformer, h)
	if err != nil {
		return nil, err
	}
	return i.s.add(i.SharedIndexInformer, m, nil)
}

func (i *scopedInformer) RemoveEventHandler(reg cache.ResourceEventHandlerRegistration) error {
	i.s.forget(reg)
	return detach(i.SharedIndexInformer, reg)
}

// AddIndexers adds the indexers whose names the informer does not have
// yet: one of the same name is another scope's (or an earlier run's) and
// taken to be the same function.
func (i *scopedInformer) AddIndexers(indexers cache.Indexers) error {
	have := i.GetIndexer().GetIndexers()
	add := cache.Indexers{}
	for name, fn := range indexers {
		if _, ok := have[name]; !ok {
			add[name] = fn
		}
	}
	if len(add) == 0 {
		return nil
	}
	return i.SharedIndexInformer.AddIndexers(add)
}

// Run starts the informer under the hub (if it is not running yet) and
// blocks until stopCh is closed.
func (i *scopedInformer) Run(stopCh <-chan struct{}) {
	i.s.Start(stopCh)
	<-stopCh
}

// RunWithContext is Run.
func (i *scopedInformer) RunWithContext(ctx context.Context) {
	i.s.StartWithContext(ctx)
	<-ctx.Done()
}

// genericInformer is a GenericInformer whose informer is scoped.
type genericInformer struct {
	informers.GenericInformer
	inf cache.SharedIndexInformer
}

func (g genericInformer) Informer() cache.SharedIndexInformer { return g.inf }
