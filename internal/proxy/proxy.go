package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skiff-dev/skiff/internal/cachetrim"
	"github.com/skiff-dev/skiff/internal/svcendpoints"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/knftables"
)

// DefaultMinSyncInterval is used when Config.MinSyncInterval is 0.
const DefaultMinSyncInterval = 100 * time.Millisecond

// serviceIndex indexes EndpointSlices by "<ns>/<service>".
const serviceIndex = "service"

// Config configures Run. Client and NodeName are required.
type Config struct {
	Client   kubernetes.Interface
	NodeName string
	// NodeIPs are the IPv4 addresses NodePorts answer on; empty means
	// every local address but 127.0.0.0/8. They are also the load
	// balancer ingress when no Node has an InternalIP.
	NodeIPs []string
	// PodCIDR is this node's pod range: traffic from it to an endpoint in
	// it is masqueraded (pods share a bridge; without br_netfilter the
	// replies would bypass conntrack). Empty: only hairpin traffic is.
	PodCIDR string
	// ClusterCIDR is every pod's range ("10.42.0.0/16"): traffic to a
	// cluster IP from outside it is masqueraded. Empty: PodCIDR is used.
	ClusterCIDR string
	// NFT programs the table; nil means knftables.New(knftables.InetFamily,
	// TableName), and then Run also sets net.ipv4.ip_forward=1. A
	// non-nil NFT must be for family inet and table TableName.
	NFT knftables.Interface
	// MinSyncInterval is the least time between two transactions: changes
	// arriving meanwhile are coalesced. 0 means DefaultMinSyncInterval.
	MinSyncInterval time.Duration
	// Logger receives the proxy's logs; nil discards them.
	Logger *slog.Logger
	// OnSync, if set, is called by the sync goroutine after every
	// transaction that succeeded (and after syncs with nothing to do); it
	// must not block. Benchmarks use it to time programming latency.
	OnSync func(SyncResult)
}

// SyncResult describes one successful sync.
type SyncResult struct {
	// Full is true for a rebuild of the whole table (the first sync, and
	// the one after a failure).
	Full bool
	// Services are the keys ("ns/name") of the services written; for a
	// full sync, every service with rules.
	Services []string
	// Operations is the number of operations in the transaction.
	Operations int
	// Duration is the time spent computing and applying.
	Duration time.Duration
}

// Run watches Services, EndpointSlices and Nodes, and programs the node's
// nftables table until ctx ends: it rebuilds the table from scratch once
// the caches are synced, then applies the changed services incrementally,
// at most once per MinSyncInterval. It also keeps the load balancer
// ingress of LoadBalancer services (without a loadBalancerClass) set to
// the nodes' addresses. A failed transaction is logged and retried, with
// backoff, as a full rebuild. Run returns nil when ctx ends, an error only
// when it cannot start. The table is left in place on return: service
// traffic keeps flowing while the proxy restarts.
func Run(ctx context.Context, cfg Config) error {
	p, err := newProxier(cfg)
	if err != nil {
		return err
	}
	return p.run(ctx)
}

// proxier is the state of one Run.
type proxier struct {
	cfg  Config
	log  *slog.Logger
	node node

	factory  informers.SharedInformerFactory
	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	slices   cache.Indexer
	applier  *applier
	lb       *lbStatus

	mu    sync.Mutex
	dirty map[string]bool // service keys to resync; guarded by mu
	kick  chan struct{}   // capacity 1: a sync is wanted
}

func newProxier(cfg Config) (*proxier, error) {
	if cfg.Client == nil {
		return nil, errors.New("proxy: no API client")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("proxy: no node name")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MinSyncInterval <= 0 {
		cfg.MinSyncInterval = DefaultMinSyncInterval
	}
	n, err := newNode(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.NFT == nil {
		nft, err := knftables.New(knftables.InetFamily, TableName)
		if err != nil {
			return nil, fmt.Errorf("proxy: opening nftables: %w", err)
		}
		cfg.NFT = nft
		if err := enableForwarding(); err != nil {
			return nil, err
		}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0, cachetrim.Option())
	p := &proxier{
		cfg:      cfg,
		log:      cfg.Logger,
		node:     n,
		factory:  factory,
		services: factory.Core().V1().Services().Lister(),
		nodes:    factory.Core().V1().Nodes().Lister(),
		applier:  newApplier(cfg.NFT, n),
		dirty:    map[string]bool{},
		kick:     make(chan struct{}, 1),
	}
	sliceInformer := factory.Discovery().V1().EndpointSlices().Informer()
	if err := sliceInformer.AddIndexers(cache.Indexers{serviceIndex: svcendpoints.ServiceKey}); err != nil {
		return nil, fmt.Errorf("proxy: indexing endpoint slices: %w", err)
	}
	p.slices = sliceInformer.GetIndexer()
	p.lb = newLBStatus(cfg.Client, p.services, p.nodes, cfg.NodeIPs, cfg.Logger)

	svcHandler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.serviceChanged(obj) },
		UpdateFunc: func(_, obj any) { p.serviceChanged(obj) },
		DeleteFunc: func(obj any) { p.serviceChanged(obj) },
	}
	sliceHandler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.sliceChanged(obj) },
		UpdateFunc: func(old, obj any) { p.sliceChanged(old); p.sliceChanged(obj) },
		DeleteFunc: func(obj any) { p.sliceChanged(obj) },
	}
	nodeHandler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.lb.enqueueAll() },
		UpdateFunc: func(old, obj any) { p.nodeChanged(old, obj) },
		DeleteFunc: func(any) { p.lb.enqueueAll() },
	}
	if _, err := factory.Core().V1().Services().Informer().AddEventHandler(svcHandler); err != nil {
		return nil, fmt.Errorf("proxy: watching services: %w", err)
	}
	if _, err := sliceInformer.AddEventHandler(sliceHandler); err != nil {
		return nil, fmt.Errorf("proxy: watching endpoint slices: %w", err)
	}
	if _, err := factory.Core().V1().Nodes().Informer().AddEventHandler(nodeHandler); err != nil {
		return nil, fmt.Errorf("proxy: watching nodes: %w", err)
	}
	return p, nil
}

// newNode checks the addresses of cfg.
func newNode(cfg Config) (node, error) {
	n := node{name: cfg.NodeName}
	for _, ip := range cfg.NodeIPs {
		if !isIPv4(ip) {
			return node{}, fmt.Errorf("proxy: node IP %q is not an IPv4 address", ip)
		}
	}
	n.nodePortIPs = sortedUnique(append([]string(nil), cfg.NodeIPs...))
	for _, c := range []struct {
		name string
		s    string
		dst  *netip.Prefix
	}{{"pod CIDR", cfg.PodCIDR, &n.podCIDR}, {"cluster CIDR", cfg.ClusterCIDR, &n.clusterCIDR}} {
		if c.s == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(c.s)
		if err != nil || !pfx.Addr().Is4() {
			return node{}, fmt.Errorf("proxy: %s %q is not an IPv4 prefix", c.name, c.s)
		}
		*c.dst = pfx.Masked()
	}
	return n, nil
}

// enableForwarding sets net.ipv4.ip_forward=1: service traffic from pods
// and from other hosts is routed through the node.
func enableForwarding() error {
	const path = "/proc/sys/net/ipv4/ip_forward"
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("proxy: enabling IPv4 forwarding: %w", err)
	}
	return nil
}

func (p *proxier) run(ctx context.Context) error {
	defer p.factory.Shutdown()
	p.factory.StartWithContext(ctx)
	for typ, ok := range p.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("proxy: syncing the %v cache failed", typ)
		}
	}
	p.log.Info("proxy caches synced", "node", p.node.name)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.lb.run(ctx)
	}()
	p.poke()
	p.syncLoop(ctx)
	wg.Wait()
	return nil
}

// poke asks the sync loop for a sync; it never blocks.
func (p *proxier) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *proxier) markDirty(keys ...string) {
	if len(keys) == 0 {
		return
	}
	p.mu.Lock()
	for _, k := range keys {
		p.dirty[k] = true
	}
	p.mu.Unlock()
	p.poke()
}

func (p *proxier) takeDirty() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := sortedKeys(p.dirty)
	clear(p.dirty)
	return keys
}

func (p *proxier) serviceChanged(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	p.markDirty(key)
	p.lb.enqueue(key)
}

func (p *proxier) sliceChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	keys, _ := svcendpoints.ServiceKey(obj)
	p.markDirty(keys...)
}

func (p *proxier) nodeChanged(old, obj any) {
	o, ok1 := old.(*corev1.Node)
	n, ok2 := obj.(*corev1.Node)
	if ok1 && ok2 && sameAddresses(o.Status.Addresses, n.Status.Addresses) {
		return // heartbeats
	}
	p.lb.enqueueAll()
}

func sameAddresses(a, b []corev1.NodeAddress) bool { return slices.Equal(a, b) }

// syncLoop runs syncs until ctx ends: the first one full, then
// incremental, each at least MinSyncInterval after the previous one.
func (p *proxier) syncLoop(ctx context.Context) {
	full := true
	var last time.Time
	var backoff time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		if wait := time.Until(last.Add(p.cfg.MinSyncInterval)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		keys := p.takeDirty()
		if !full && len(keys) == 0 {
			continue
		}
		err := p.sync(ctx, full, keys)
		last = time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
			p.log.Info("proxy sync failed; retrying with a full rebuild", "err", err, "retryIn", backoff)
			full = true
			p.markDirty(keys...)
			time.AfterFunc(backoff, p.poke)
			continue
		}
		backoff = 0
		full = false
	}
}

// sync computes the rules of the given services (all of them if full)
// from the caches and applies them.
func (p *proxier) sync(ctx context.Context, full bool, keys []string) error {
	start := time.Now()
	res := SyncResult{Full: full}
	if full {
		svcs, err := p.services.List(labels.Everything())
		if err != nil {
			return fmt.Errorf("listing services: %w", err)
		}
		desired := map[string]*serviceRules{}
		for _, svc := range svcs {
			if r := p.rulesFor(svc); r != nil {
				desired[svc.Namespace+"/"+svc.Name] = r
			}
		}
		if err := p.applier.full(ctx, desired); err != nil {
			return err
		}
		res.Services = sortedKeys(desired)
	} else {
		changed := map[string]*serviceRules{}
		for _, key := range keys {
			ns, name, _ := cache.SplitMetaNamespaceKey(key)
			svc, err := p.services.Services(ns).Get(name)
			switch {
			case apierrors.IsNotFound(err):
				changed[key] = nil
			case err != nil:
				return fmt.Errorf("reading service %s: %w", key, err)
			default:
				changed[key] = p.rulesFor(svc)
			}
		}
		retry, err := p.applier.update(ctx, changed)
		if err != nil {
			return err
		}
		p.markDirty(retry...)
		res.Services = keys
	}
	res.Operations = p.applier.ops
	res.Duration = time.Since(start)
	p.log.Debug("proxy synced", "full", res.Full, "services", len(res.Services), "took", res.Duration)
	if p.cfg.OnSync != nil {
		p.cfg.OnSync(res)
	}
	return nil
}

// rulesFor builds a service's rules from the caches; nil when it has none.
func (p *proxier) rulesFor(svc *corev1.Service) *serviceRules {
	objs, _ := p.slices.ByIndex(serviceIndex, svc.Namespace+"/"+svc.Name)
	owned := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if es, ok := o.(*discoveryv1.EndpointSlice); ok {
			owned = append(owned, es)
		}
	}
	slices.SortFunc(owned, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	ports := servicePorts(svc, owned, p.node)
	if len(ports) == 0 {
		return nil
	}
	return buildService(ports, p.node)
}
