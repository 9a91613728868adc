package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiff-dev/skiff/internal/cachetrim"
	"github.com/skiff-dev/skiff/internal/svcendpoints"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

const (
	// serviceIndex indexes EndpointSlices by "<namespace>/<service>".
	serviceIndex = "service"
	// shutdownTimeout bounds how long Run waits for in-flight requests
	// once ctx is done.
	shutdownTimeout = 5 * time.Second
	// firstSecretsTimeout bounds how long Run waits for the TLS secrets
	// before serving the first table.
	firstSecretsTimeout = 5 * time.Second
)

// Config configures a Controller. Client is required.
type Config struct {
	Client kubernetes.Interface
	// ClassName is the IngressClass served; "" means DefaultClassName.
	// Classes whose spec.controller is ControllerName are served too.
	ClassName string
	// HTTPAddr is where plain HTTP is served; "" means ":80". Port 0
	// picks a free port (see Addrs).
	HTTPAddr string
	// HTTPSAddr is where HTTPS is served; "" means ":443".
	HTTPSAddr string
	// StatusIPs are written to status.loadBalancer.ingress of the
	// ingresses served (the node addresses); entries that are not IP
	// addresses are written as hostnames. Empty: status is not written.
	StatusIPs []string
	// Logger receives the controller's logs; nil discards them.
	Logger *slog.Logger
}

// Controller is the ingress controller: informers, the routing table,
// the HTTP and HTTPS servers and the status writer. Create it with New;
// Run it once.
type Controller struct {
	cfg      Config
	log      *slog.Logger
	status   []networkingv1.IngressLoadBalancerIngress // desired status; nil: don't write
	fallback *tls.Certificate
	proxy    http.Handler
	certs    certCache

	factory   informers.SharedInformerFactory
	ingresses networkinglisters.IngressLister
	classes   networkinglisters.IngressClassLister
	services  corelisters.ServiceLister
	slices    cache.Indexer
	// secrets watches the TLS secrets of the served ingresses, each by
	// name (see tlsSecrets).
	secrets *tlsSecrets
	synced  []cache.InformerSynced

	// table is the current routing table; replaced whole (never mutated)
	// by the rebuild loop. Never nil after New.
	table atomic.Pointer[table]
	// dirty has a token when the table must be rebuilt.
	dirty chan struct{}
	// queue holds keys of ingresses whose status to check.
	queue workqueue.TypedRateLimitingInterface[string]

	mu        sync.Mutex
	started   bool     // guarded by mu; Run was called
	httpAddr  net.Addr // guarded by mu; set once Run listens
	httpsAddr net.Addr // guarded by mu
}

// New checks cfg, makes the fallback certificate and sets up the
// informers; nothing is watched or served until Run.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil {
		return nil, errors.New("ingress: no API client")
	}
	if cfg.ClassName == "" {
		cfg.ClassName = DefaultClassName
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = ":80"
	}
	if cfg.HTTPSAddr == "" {
		cfg.HTTPSAddr = ":443"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Controller{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "ingress"),
		dirty: make(chan struct{}, 1),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "ingress-status"}),
	}
	for _, s := range cfg.StatusIPs {
		if _, err := netip.ParseAddr(s); err == nil {
			c.status = append(c.status, networkingv1.IngressLoadBalancerIngress{IP: s})
		} else if s != "" {
			c.status = append(c.status, networkingv1.IngressLoadBalancerIngress{Hostname: s})
		}
	}
	fallback, err := selfSigned(time.Now())
	if err != nil {
		return nil, fmt.Errorf("ingress: %w", err)
	}
	c.fallback = fallback
	c.proxy = newProxy(c.log)
	c.table.Store(buildTable(nil, nil, nil))

	c.factory = informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0, cachetrim.Option())
	ingInf := c.factory.Networking().V1().Ingresses()
	classInf := c.factory.Networking().V1().IngressClasses()
	svcInf := c.factory.Core().V1().Services()
	sliceInf := c.factory.Discovery().V1().EndpointSlices()
	if err := sliceInf.Informer().AddIndexers(cache.Indexers{serviceIndex: svcendpoints.ServiceKey}); err != nil {
		return nil, fmt.Errorf("ingress: indexing endpoint slices: %w", err)
	}
	c.ingresses = ingInf.Lister()
	c.classes = classInf.Lister()
	c.services = svcInf.Lister()
	c.slices = sliceInf.Informer().GetIndexer()
	c.secrets = newTLSSecrets(cfg.Client, c.dirtyHandler())

	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{ingInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { c.markDirty(); c.enqueue(obj) },
			UpdateFunc: func(old, obj any) {
				if ingressRoutingChanged(old, obj) {
					c.markDirty()
				}
				c.enqueue(obj)
			},
			DeleteFunc: func(any) { c.markDirty() },
		}},
		{classInf.Informer(), cache.ResourceEventHandlerFuncs{
			// Which ingresses are ours may change with the classes.
			AddFunc:    func(any) { c.markDirty(); c.enqueueAll() },
			UpdateFunc: func(any, any) { c.markDirty(); c.enqueueAll() },
			DeleteFunc: func(any) { c.markDirty(); c.enqueueAll() },
		}},
		{svcInf.Informer(), c.dirtyHandler()},
		{sliceInf.Informer(), c.dirtyHandler()},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("ingress: adding event handler: %w", err)
		}
		c.synced = append(c.synced, h.inf.HasSynced)
	}
	return c, nil
}

// Addrs returns the addresses served, once Run listens (nil before);
// useful with port 0.
func (c *Controller) Addrs() (httpAddr, httpsAddr net.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.httpAddr, c.httpsAddr
}

// Run listens on HTTPAddr and HTTPSAddr, starts the informers, and once
// they have synced and the first table is built serves requests (until
// then connections wait in the listen backlog), rebuilds the table on
// every change and writes ingress status. It blocks until ctx is done,
// then stops accepting, lets in-flight requests finish for a few seconds
// and returns nil; it returns an error when it cannot listen or a server
// fails. Run may be called only once.
//
//	New ──> Run: listen ──> informers synced ──> first table ──> serving
//	                                                   │
//	                 ctx done ──> shutdown servers ──> return
func (c *Controller) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("ingress: Run called twice")
	}
	c.started = true
	c.mu.Unlock()

	var lc net.ListenConfig
	httpLn, err := lc.Listen(ctx, "tcp", c.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("ingress: listening for http: %w", err)
	}
	httpsLn, err := lc.Listen(ctx, "tcp", c.cfg.HTTPSAddr)
	if err != nil {
		httpLn.Close()
		return fmt.Errorf("ingress: listening for https: %w", err)
	}
	c.mu.Lock()
	c.httpAddr, c.httpsAddr = httpLn.Addr(), httpsLn.Addr()
	c.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	c.factory.StartWithContext(ctx)
	c.secrets.start(ctx)
	defer func() {
		cancel() // before waiting for the informers, which stop on it
		c.queue.ShutDown()
		c.factory.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		httpLn.Close()
		httpsLn.Close()
		return nil // ctx is done
	}
	// The first table has the certificates it can get within a few
	// seconds; later ones arrive as events and rebuild the table.
	c.secrets.want(tlsSecretNames(c.ours()))
	c.secrets.waitSynced(ctx, firstSecretsTimeout)
	c.rebuild()
	c.log.Info("ingress controller serving", "http", httpLn.Addr().String(), "https", httpsLn.Addr().String(), "class", c.cfg.ClassName)

	errLog := slog.NewLogLogger(c.log.Handler(), slog.LevelDebug)
	httpSrv := &http.Server{Handler: c, ReadHeaderTimeout: 30 * time.Second, ErrorLog: errLog}
	httpsSrv := &http.Server{
		Handler:           c,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          errLog,
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: c.getCertificate,
		},
	}

	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := httpSrv.Serve(httpLn); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("ingress: serving http: %w", err)
		}
	})
	wg.Go(func() {
		if err := httpsSrv.ServeTLS(httpsLn, "", ""); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("ingress: serving https: %w", err)
		}
	})
	wg.Go(func() { c.rebuildLoop(ctx) })
	wg.Go(func() { c.statusLoop(ctx) })

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	c.queue.ShutDown()
	sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer scancel()
	for _, srv := range []*http.Server{httpSrv, httpsSrv} {
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}
	wg.Wait()
	return runErr
}

// getCertificate picks the certificate for a TLS handshake by SNI.
func (c *Controller) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if cert := c.table.Load().certificate(normalizeHost(hello.ServerName)); cert != nil {
		return cert, nil
	}
	return c.fallback, nil
}

func (c *Controller) markDirty() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

func (c *Controller) dirtyHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.markDirty() },
		UpdateFunc: func(any, any) { c.markDirty() },
		DeleteFunc: func(any) { c.markDirty() },
	}
}

// ingressRoutingChanged reports whether an ingress update can change
// routing (not, for example, our own status writes).
func ingressRoutingChanged(oldObj, newObj any) bool {
	o, ok1 := oldObj.(*networkingv1.Ingress)
	n, ok2 := newObj.(*networkingv1.Ingress)
	if !ok1 || !ok2 {
		return true
	}
	return !reflect.DeepEqual(o.Spec, n.Spec) || o.Annotations[LegacyClassAnnotation] != n.Annotations[LegacyClassAnnotation] ||
		!o.CreationTimestamp.Equal(&n.CreationTimestamp)
}

// rebuildLoop rebuilds the table whenever it is marked dirty; changes
// arriving during a rebuild coalesce into one more.
func (c *Controller) rebuildLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.dirty:
		}
		c.rebuild()
	}
}

// rebuild builds a table from the caches and swaps it in.
func (c *Controller) rebuild() {
	start := time.Now()
	ours := c.ours()
	c.secrets.want(tlsSecretNames(ours))
	prev := c.table.Load()
	t := buildTable(ours, cacheState{c}, prev)
	c.table.Store(t)
	c.certs.retain(c.secrets.uids())
	if !slices.Equal(t.warnings, prev.warnings) {
		for _, w := range t.warnings {
			c.log.Info("ingress configuration problem", "problem", w)
		}
	}
	c.log.Debug("routing table rebuilt", "ingresses", len(ours), "duration", time.Since(start))
}

// ours returns the ingresses this controller serves, from the cache.
func (c *Controller) ours() []*networkingv1.Ingress {
	all, err := c.ingresses.List(labels.Everything())
	if err != nil {
		return nil // listing a cache does not fail
	}
	classes, _ := c.classes.List(labels.Everything())
	var ours []*networkingv1.Ingress
	for _, ing := range all {
		if owns(ing, classes, c.cfg.ClassName) {
			ours = append(ours, ing)
		}
	}
	return ours
}

// cacheState is the state of a table build read from the informers.
type cacheState struct{ c *Controller }

var _ state = cacheState{}

func (s cacheState) service(namespace, name string) *corev1.Service {
	svc, err := s.c.services.Services(namespace).Get(name)
	if err != nil {
		return nil
	}
	return svc
}

func (s cacheState) endpointSlices(namespace, service string) []*discoveryv1.EndpointSlice {
	objs, err := s.c.slices.ByIndex(serviceIndex, namespace+"/"+service)
	if err != nil {
		return nil
	}
	out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if es, ok := o.(*discoveryv1.EndpointSlice); ok {
			out = append(out, es)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s cacheState) certificate(namespace, name string) (*tls.Certificate, error) {
	secret := s.c.secrets.get(namespace, name)
	if secret == nil {
		return nil, errors.New("not found (or not readable)")
	}
	return s.c.certs.get(secret)
}
