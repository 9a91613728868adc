package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/managedfields"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/skiff-dev/skiff/internal/admission/webhook"
	"github.com/skiff-dev/skiff/internal/aggregator"
	"github.com/skiff-dev/skiff/internal/apiextensions"
	"github.com/skiff-dev/skiff/internal/apiextensions/crdcontroller"
	"github.com/skiff-dev/skiff/internal/apiserver"
	"github.com/skiff-dev/skiff/internal/apiservice"
	"github.com/skiff-dev/skiff/internal/auth/tokens"
	"github.com/skiff-dev/skiff/internal/cachetrim"
	"github.com/skiff-dev/skiff/internal/discovery"
	"github.com/skiff-dev/skiff/internal/etcd"
	"github.com/skiff-dev/skiff/internal/flowcontrol"
	"github.com/skiff-dev/skiff/internal/informerhub"
	"github.com/skiff-dev/skiff/internal/lazyclient"
	"github.com/skiff-dev/skiff/internal/metricsapi"
	"github.com/skiff-dev/skiff/internal/nodeaddr"
	"github.com/skiff-dev/skiff/internal/openapi"
	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/registry/builtin"
	"github.com/skiff-dev/skiff/internal/servicealloc"
	"github.com/skiff-dev/skiff/internal/storage"
)

const (
	// Version is skiff's own version.
	Version = "0.1.0-dev"
	// KubernetesVersion is the Kubernetes API version skiff serves, as
	// reported at /version.
	KubernetesVersion = "v1.33.0"

	// DefaultListen is the default --listen address.
	DefaultListen = "127.0.0.1:6443"

	// compactInterval is how often etcd history is compacted (upstream's
	// default).
	compactInterval = 5 * time.Minute
	// readyTimeout bounds the wait for the API to serve after start.
	readyTimeout = 60 * time.Second
	// stopTimeout bounds the wait for one component to stop.
	stopTimeout = 20 * time.Second
)

// Config is the configuration of one server, built from flags. DataDir is
// required; the zero value of every other field is usable.
type Config struct {
	// DataDir holds etcd's data (DataDir/etcd, unless EtcdServers is set),
	// the certificates (DataDir/pki), the admin kubeconfig and the lock.
	DataDir string
	// Listen is the API's host:port; empty means DefaultListen. Port 0
	// picks a free port.
	Listen string
	// AdvertiseAddress is the IP pods reach the API at (the kubernetes
	// service's endpoint); empty means the listen IP when it is a network
	// address, else the node's IP. When the API listens on loopback only
	// and this is another address, the API listens on it too, at the same
	// port.
	AdvertiseAddress string
	// EtcdServers, when not empty, are the client URLs of an external etcd
	// cluster to use instead of the embedded member.
	EtcdServers []string
	// ServiceCIDR is the range Services' cluster IPs come from; empty means
	// 10.96.0.0/12. Its first address is the "kubernetes" Service's.
	ServiceCIDR string
	// Components run once the API serves, as clients of it with the admin
	// identity (the scheduler and the controller manager, from cmd/skiff).
	// None means etcd and the API server only, which is what tests of those
	// components want.
	Components []Component
	// AuditConfig is the audit log (audit.go); its zero value logs at
	// Metadata level to DataDir/audit.log.
	AuditConfig
	// EventTTL is how long an event is kept after its last update (core
	// and events.k8s.io events; upstream's --event-ttl); 0 means
	// DefaultEventTTL.
	EventTTL time.Duration
	// DisableAdmissionPlugins names admission plugins not to run (see
	// admission.DefaultPluginNames); tests without a service account
	// controller disable "ServiceAccount".
	DisableAdmissionPlugins []string
	// Logger receives component logs; nil discards them.
	Logger *slog.Logger
	// Progress receives one short line per start-up stage; nil means
	// os.Stderr.
	Progress io.Writer
}

// Component is a long-running client of the API server that Run starts
// once the API serves and stops before the API server. Run blocks until
// ctx is done and returns nil then; any other return shuts the server down
// with that cause.
type Component struct {
	Name string
	Run  func(ctx context.Context, env Env) error
	// Identity, when set, is the user the component acts as: it gets a
	// client certificate of its own (DataDir/pki/<Identity.CertName>.crt)
	// instead of the admin's.
	Identity *Identity
}

// sharedResync is the shared informers' resync, the controller manager's
// safety net (upstream's is 12 to 24 hours).
const sharedResync = 12 * time.Hour

// Env is what a component runs with.
type Env struct {
	// Config reaches the API server (in-process) as the component's user.
	Config *rest.Config
	// Logger names the component.
	Logger *slog.Logger
	// Informers are the informers every in-process component shares,
	// listing and watching as the server's own loopback user: a component
	// reads through a Scope of it per run and still writes as itself.
	Informers *informerhub.Hub
}

// Identity is a component's user and groups.
type Identity struct {
	// CertName names the certificate files; User and Groups are its
	// subject (CN and O).
	CertName, User string
	Groups         []string
}

// Run starts the server and blocks until ctx is done or a component fails.
// It returns nil after a shutdown caused by ctx, and otherwise the first
// failure. It writes DataDir/kubeconfig once the API serves and the system
// namespaces exist, and removes an old one at start, so that the file's
// appearance means "ready".
//
// Start-up order, each stage gated on the previous one being ready:
//
//	lock data dir ─> listen ─> certificates ─> etcd ─> watch caches
//	  ─> API server ─> (serving) ─> system namespaces ─> compactor,
//	  namespace controller ─> kubeconfig
//
// Shutdown runs the other way: controllers stop, the API stops accepting
// and ends its watches, the watch caches stop, etcd closes, the lock is
// released.
func Run(ctx context.Context, cfg Config) (err error) {
	start := time.Now()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	progress := cfg.Progress
	if progress == nil {
		progress = os.Stderr
	}
	say := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultListen
	}
	listenHost, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("invalid listen address %q: %w", listen, err)
	}

	if cfg.DataDir == "" {
		return errors.New("no data dir given (--data-dir)")
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("invalid data dir %q: %w", cfg.DataDir, err)
	}
	lock, err := lockDataDir(dir)
	if err != nil {
		return err
	}
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	if err := os.Remove(kubeconfigPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		_ = lock.Unlock()
		return fmt.Errorf("removing old kubeconfig: %w", err)
	}

	g := newGroup(log.With("component", "server"))
	g.OnStop("data dir lock", lock.Unlock)
	defer func() {
		if err != nil && ctx.Err() != nil && g.Cause() == nil {
			// Asked to stop while starting: whatever the interrupted stage
			// reported is a consequence of the request, not a failure.
			log.Debug("start-up interrupted", "err", err)
			err = nil
		}
		if serr := g.Shutdown(stopTimeout); serr != nil {
			err = errors.Join(err, serr)
		}
		if err == nil {
			say("stopped")
		}
	}()

	// Listen before anything slow so that a taken port fails at once.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("cannot listen on %s: the address is already in use (another skiff or kube-apiserver?); pick another with --listen", listen)
		}
		return fmt.Errorf("cannot listen on %s: %w", listen, err)
	}
	g.OnStop("listener", func() error {
		// Serve closes it; closing again only matters if Serve never ran.
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})

	// Building the OpenAPI documents is CPU work that takes about a second;
	// do it while etcd and the watch caches start.
	type openapiResult struct {
		h   *openapi.Handler
		tc  managedfields.TypeConverter
		err error
	}
	openapiDone := make(chan openapiResult, 1)
	go func() {
		h, tc, err := buildOpenAPI(builtin.Resources())
		log.Debug("OpenAPI documents built", "elapsed", time.Since(start))
		openapiDone <- openapiResult{h, tc, err}
	}()

	// Pods reach the API through the kubernetes service: at its cluster
	// IP (which the serving certificate must name, as in-cluster clients
	// verify it), forwarded to an address of this node they can reach.
	advertise, extraLn, err := advertiseAddress(listenHost, cfg.AdvertiseAddress, ln, log)
	if err != nil {
		return err
	}
	if extraLn != nil {
		g.OnStop("advertise listener", func() error {
			if err := extraLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				return err
			}
			return nil
		})
	}
	serviceCIDR, err := parseServiceCIDR(cfg.ServiceCIDR)
	if err != nil {
		return err
	}
	// The kubernetes service's cluster IP: the range's first address.
	kubeServiceIP := serviceCIDR.Addr().Next().String()
	certs, err := pki.Ensure(pki.Options{Dir: filepath.Join(dir, "pki"), Hosts: []string{listenHost, advertise, kubeServiceIP}})
	if err != nil {
		return fmt.Errorf("preparing certificates: %w", err)
	}
	if len(certs.Issued) > 0 {
		log.Info("issued certificates", "files", certs.Issued)
	}

	client, err := startEtcd(ctx, g, dir, cfg.EtcdServers, log, say)
	if err != nil {
		return err
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	if err := apiregistrationv1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	if err := builtin.AddConversions(scheme); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}

	// The watch caches live until the API server has stopped.
	storageCtx, stopStorage := context.WithCancel(context.Background())
	g.OnStop("watch caches", func() error { stopStorage(); return nil })
	resources := builtin.Resources()
	alloc, err := servicealloc.New(servicealloc.Config{
		Client:      client,
		Prefix:      "/registry/ranges/",
		ServiceCIDR: serviceCIDR,
		Logger:      log.With("component", "servicealloc"),
	})
	if err != nil {
		return fmt.Errorf("service allocation: %w", err)
	}
	for _, res := range resources {
		if res.GVR.Group == "" && res.GVR.Resource == "services" {
			res.Allocator = alloc
		}
	}
	// Secrets are encrypted at rest under the keys in DIR/pki; the loop
	// re-encrypts them when the keys rotate.
	secretsTr, secretsLoop, err := secretsTransformer(dir, client, log)
	if err != nil {
		return err
	}
	g.Go("secrets encryption", secretsLoop)
	eventTTL := cfg.EventTTL
	if eventTTL <= 0 {
		eventTTL = DefaultEventTTL
	}
	stores, err := newStores(storageCtx, client, scheme, resources, secretsTr, eventTTL, log)
	if err != nil {
		return err
	}
	if err := repairServiceAllocations(ctx, stores, alloc); err != nil {
		return err
	}
	log.Debug("watch caches started", "resources", len(stores), "elapsed", time.Since(start))

	kubelets, metricsAPI, err := kubeletAccess(certs, stores, log)
	if err != nil {
		return err
	}
	issuer, err := newIssuer(dir)
	if err != nil {
		return err
	}
	sec := newSecurity(cfg.DisableAdmissionPlugins)
	disc := discovery.NewDynamic(resources, append(discovery.ReviewGroups(), metricsapi.Group())...)
	oa := <-openapiDone
	if oa.err != nil {
		return fmt.Errorf("building OpenAPI documents: %w", oa.err)
	}
	oapi := oa.h
	auditLog, err := newAuditLogger(dir, cfg.AuditConfig, log)
	if err != nil {
		return err
	}
	g.OnStop("audit log", auditLog.Close) // after the API server
	serverURL := (&url.URL{Scheme: "https", Host: clientHostPort(ln.Addr(), listenHost)}).String()
	// Token verifiers fetch the keys from the address the server
	// advertises (where pods reach it; a loopback listen address is
	// unreachable from them), as upstream derives the JWKS URI from its
	// external address.
	issuerDiscovery, err := issuer.DiscoveryHandler(advertiseURL(serverURL, advertise) + tokens.JWKSPath)
	if err != nil {
		return fmt.Errorf("service account issuer discovery: %w", err)
	}
	frontProxy, err := certs.FrontProxy()
	if err != nil {
		return fmt.Errorf("front-proxy certificates: %w", err)
	}
	agg := aggregator.New(aggregator.Config{
		FrontProxy:  frontProxy,
		ClientCAPEM: certs.CAPEM,
		Discovery:   disc,
		OpenAPI:     oapi,
		User:        apiserver.UserFrom,
		Logger:      log,
	})
	api, err := apiserver.New(apiserver.Config{
		Stores:          stores,
		Scheme:          scheme,
		Discovery:       disc,
		OpenAPI:         oapi,
		IssuerDiscovery: issuerDiscovery,
		ClientCAs:       certs.ClientCAs(),
		Ready:           etcdReady(client),
		Logger:          log,
		Version:         versionInfo(),
		// Server-side apply needs the schemas to merge by list keys.
		TypeConverter: oa.tc,
		Kubelet:       kubelets,
		TokenRequest:  tokenRequester(issuer, stores),
		Authenticator: tokenAuthenticator(issuer, stores),
		Authorizer:    sec,
		Rules:         sec,
		Admission:     sec,
		Audit:         auditLog,
		Groups:        map[string]http.Handler{metricsapi.GroupVersion.Group: metricsAPI},
		Aggregated:    agg.Handler,
	})
	if err != nil {
		return fmt.Errorf("building API server: %w", err)
	}
	// CRD conversion webhooks are called through the admission webhooks'
	// client; it learns services and endpoint slices once the security
	// informers run (sec.start).
	sec.conversion = webhook.NewCaller(nil, nil)
	crds, err := customResources(client, stores, api, disc, oapi, sec.conversion, log)
	if err != nil {
		return err
	}
	g.Go("custom resources", crds.Run)
	tlsCfg := certs.ServerTLSConfig()
	g.Go("API server", func(ctx context.Context) error { return api.Serve(ctx, ln, tlsCfg) })
	if extraLn != nil {
		g.Go("API server (advertised address)", func(ctx context.Context) error { return api.Serve(ctx, extraLn, tlsCfg) })
	}

	say("API serving on %s", serverURL)

	restCfg := &rest.Config{
		Host: serverURL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   certs.CAPEM,
			CertData: certs.AdminCertPEM,
			KeyData:  certs.AdminKeyPEM,
		},
		QPS:       -1, // in-process components are not rate limited
		UserAgent: "skiff-server/" + Version,
		// Protobuf, as upstream's components speak by default
		// (--kube-api-content-type). client-go's typed clients pick it
		// anyway when nothing is set; this makes it explicit, and holds
		// for the components' other REST clients too.
		ContentConfig: rest.ContentConfig{
			ContentType:        runtime.ContentTypeProtobuf,
			AcceptContentTypes: runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON,
		},
	}
	if err := inProcess(api, restCfg); err != nil {
		return err
	}
	clients, err := lazyclient.New(restCfg)
	if err != nil {
		return fmt.Errorf("building admin client: %w", err)
	}
	if err := waitReady(ctx, g, clients); err != nil {
		return err
	}
	log.Debug("API ready", "elapsed", time.Since(start))
	// Like upstream's crd-informer-synced: the custom resources that
	// exist are served before the server says it is ready.
	select {
	case <-crds.Synced():
	case <-ctx.Done():
		return nil
	case <-g.Exited():
		return g.Cause()
	}
	// The APIService controller (started below) follows CRDs through the
	// CRD controller's informer.
	var apiServicesCtl atomic.Pointer[apiservice.Controller]
	servedChanged := func() {
		if c := apiServicesCtl.Load(); c != nil {
			c.ServedChanged()
		}
	}
	g.Go("CRD controller", func(ctx context.Context) error {
		return crdcontroller.Run(ctx, restCfg, log.With("component", "crd-controller"), servedChanged)
	})
	// Authorization and admission read the API through informers; they
	// live as long as the API server.
	secCtx, stopSec := context.WithCancel(context.Background())
	g.OnStop("authorization informers", func() error { stopSec(); return nil }) // before the API server
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("building dynamic client: %w", err)
	}
	// One informer per resource for everything in this process: the
	// authorizers and admission, then the components (see Env). They run
	// as long as the API server, resynced as the controller manager's.
	hub := informerhub.New(secCtx, clients, sharedResync, cachetrim.Option())
	if err := sec.start(ctx, secCtx, hub.Scope(), clients, dyn, log); err != nil {
		return err
	}
	// One APIService informer for the controller and the aggregator.
	apiServiceInformer := dynamicinformer.NewFilteredDynamicInformer(dyn, apiregistrationv1.SchemeGroupVersion.WithResource("apiservices"),
		metav1.NamespaceAll, 0, cache.Indexers{}, nil)
	apiServicesCtl.Store(apiservice.New(apiservice.Config{
		Dynamic:     dyn,
		Served:      disc.LocalGroupVersions,
		Core:        clients,
		APIServices: apiServiceInformer,
		Logger:      log,
	}))
	go apiServiceInformer.Informer().RunWithContext(secCtx)
	g.Go("APIService controller", apiServicesCtl.Load().Run)
	if ctx.Err() != nil {
		return nil
	}
	log.Debug("authorization ready", "elapsed", time.Since(start))
	if err := bootstrap(ctx, g, clients, log); err != nil {
		return err
	}
	g.Go("aggregator", func(ctx context.Context) error {
		return agg.Run(ctx, aggregator.Sources{Client: clients, Services: sec.services, Slices: sec.slices, APIServices: apiServiceInformer})
	})
	if err := bootstrapKubernetesService(ctx, clients, alloc.KubernetesServiceIP(), advertiseURL(serverURL, advertise), log); err != nil {
		return err
	}
	if err := ensureDefaultServiceCIDR(ctx, clients, serviceCIDR); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil // asked to stop before we were ready
	}

	// API priority and fairness: the bootstrap FlowSchemas and priority
	// levels, kept as upstream's API server keeps them (skiff does not
	// queue requests by them).
	g.Go("flowcontrol configuration", func(ctx context.Context) error {
		return flowcontrol.Run(ctx, clients, hub.Scope(), log) // it names its own component
	})
	g.Go("admission policy status", sec.policyStatus)
	g.Go("compactor", func(ctx context.Context) error {
		return storage.RunCompactor(ctx, client, compactInterval, log.With("component", "compactor"))
	})
	for _, c := range cfg.Components {
		run := c.Run
		clog := log.With("component", c.Name)
		ccfg := rest.CopyConfig(restCfg)
		if id := c.Identity; id != nil {
			certPEM, keyPEM, err := certs.ClientCert(id.CertName, id.User, id.Groups)
			if err != nil {
				return fmt.Errorf("certificate of %s: %w", c.Name, err)
			}
			ccfg.TLSClientConfig.CertData, ccfg.TLSClientConfig.KeyData = certPEM, keyPEM
			if err := inProcess(api, ccfg); err != nil {
				return err
			}
		}
		g.Go(c.Name, func(ctx context.Context) error { return run(ctx, Env{Config: ccfg, Logger: clog, Informers: hub}) })
	}

	if err := pki.WriteKubeconfig(kubeconfigPath, serverURL, certs.CAPEM, certs.AdminCertPEM, certs.AdminKeyPEM); err != nil {
		return err
	}
	// Start-up (the OpenAPI documents above all) leaves garbage behind; hand
	// it back to the system now rather than whenever the scavenger gets to
	// it, so the idle footprint is what the server really holds.
	debug.FreeOSMemory()
	say("ready in %dms", time.Since(start).Milliseconds())
	say("kubectl --kubeconfig %s get nodes", kubeconfigPath)
	say("to join another machine: skiff token create --data-dir %s (prints its skiff agent command)", dir)
	log.Info("ready", "listen", serverURL, "dataDir", dir, "took", time.Since(start))

	select {
	case <-ctx.Done():
		say("shutting down")
		log.Info("shutting down", "cause", context.Cause(ctx))
		return nil
	case <-g.Exited():
		say("shutting down: %v", g.Cause())
		return g.Cause()
	}
}

// customResources builds what serves custom resources: the stores of
// every CRD's versions, added to api, discovery and OpenAPI as CRDs come
// and go.
func customResources(client *clientv3.Client, stores []*registry.Store, api *apiserver.Server, disc *discovery.Dynamic, oapi *openapi.Handler, conversion *webhook.Caller, log *slog.Logger) (*apiextensions.Serving, error) {
	var crdStore, nsStore *registry.Store
	for _, st := range stores {
		switch st.Resource.GroupResource() {
		case schema.GroupResource{Group: apiextensionsv1.GroupName, Resource: "customresourcedefinitions"}:
			crdStore = st
		case schema.GroupResource{Resource: "namespaces"}:
			nsStore = st
		}
	}
	s, err := apiextensions.New(apiextensions.Config{
		Client:     client,
		CRDs:       crdStore,
		Namespaces: nsStore,
		API:        api,
		Discovery:  disc,
		OpenAPI:    oapi,
		Conversion: conversion,
		Logger:     log,
	})
	if err != nil {
		return nil, fmt.Errorf("serving custom resources: %w", err)
	}
	return s, nil
}

// startEtcd starts the embedded member under dir/etcd, or connects to
// servers, and registers its shutdown with g.
func startEtcd(ctx context.Context, g *group, dir string, servers []string, log *slog.Logger, say func(string, ...any)) (*clientv3.Client, error) {
	if len(servers) > 0 {
		c, err := etcd.NewClient(ctx, servers, nil)
		if err != nil {
			return nil, err
		}
		g.OnStop("etcd client", c.Close)
		say("etcd ready (external, %s)", strings.Join(servers, ","))
		return c, nil
	}
	etcdDir := filepath.Join(dir, "etcd")
	emb, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{DataDir: etcdDir, Logger: log})
	if err != nil {
		return nil, err
	}
	g.OnStop("etcd", emb.Close)
	say("etcd ready (embedded, %s)", etcdDir)
	return emb.Client(), nil
}

// DefaultEventTTL is how long events are kept after their last update
// unless Config.EventTTL says otherwise: upstream's default.
const DefaultEventTTL = time.Hour

// isEvents reports whether res is one of the two event resources, whose
// objects expire.
func isEvents(res *registry.Resource) bool {
	return res.GVR.Resource == "events" && (res.GVR.Group == "" || res.GVR.Group == "events.k8s.io")
}

// newStores builds the storage and registry store of every resource. The
// watch caches start in parallel (each lists its prefix) and run until
// ctx is done. The namespaces store is every other store's NamespaceLookup.
// Events expire eventTTL after their last write.
func newStores(ctx context.Context, client *clientv3.Client, scheme *runtime.Scheme, resources []*registry.Resource, secretsTr storage.Transformer, eventTTL time.Duration, log *slog.Logger) ([]*registry.Store, error) {
	backends := make([]*storage.Store, len(resources))
	errs := make([]error, len(resources))
	var wg sync.WaitGroup
	for i, res := range resources {
		if res.StoredAs != nil {
			continue // a view of another version's storage, below
		}
		wg.Go(func() {
			sc := storage.Config{
				Client:      client,
				Prefix:      KeyPrefix(res),
				Resource:    res.GroupResource(),
				Codec:       storage.ProtobufCodec(scheme, res.GVR.GroupVersion()),
				NewFunc:     res.Strategy.New,
				NewListFunc: res.Strategy.NewList,
				Attrs:       res.Strategy.Attrs,
				Transformer: transformerFor(res, secretsTr),
				Logger:      log.With("component", "storage"),
			}
			if isEvents(res) {
				sc.TTL = eventTTL
			}
			backends[i], errs[i] = storage.New(ctx, sc)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	backendOf := map[schema.GroupVersionResource]storage.Interface{}
	for i, res := range resources {
		if backends[i] != nil {
			backendOf[res.GVR] = backends[i]
		}
	}
	views := make([]storage.Interface, len(resources))
	for i, res := range resources {
		if res.StoredAs == nil {
			views[i] = backends[i]
			continue
		}
		stored, ok := backendOf[res.StoredAs.GVR]
		if !ok {
			return nil, fmt.Errorf("building stores: %s is stored as %s, which has no storage", res.GVR, res.StoredAs.GVR)
		}
		views[i] = registry.NewView(stored, res)
	}

	// The namespaces store first: every namespaced store consults it.
	stores := make([]*registry.Store, len(resources))
	var nsStore *registry.Store
	for i, res := range resources {
		if res.GVR.Group == "" && res.GVR.Resource == "namespaces" {
			nsStore = registry.NewStore(res, backends[i], registry.StoreOptions{Logger: log})
			stores[i] = nsStore
		}
	}
	if nsStore == nil {
		return nil, errors.New("building stores: no namespaces resource")
	}
	for i, res := range resources {
		if stores[i] != nil {
			continue
		}
		opts := registry.StoreOptions{Logger: log}
		if res.Namespaced {
			opts.Namespaces = nsStore
		}
		stores[i] = registry.NewStore(res, views[i], opts)
	}
	return stores, nil
}

// KeyPrefix is the etcd key prefix of a resource (registry.KeyPrefix).
func KeyPrefix(res *registry.Resource) string { return registry.KeyPrefix(res.GroupResource()) }

// etcdReady is the API server's readiness check: etcd answers a
// linearizable read.
func etcdReady(client *clientv3.Client) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := client.Get(ctx, "health"); err != nil {
			return fmt.Errorf("etcd: %w", err)
		}
		return nil
	}
}

// waitReady polls /readyz as the admin until it answers ok.
func waitReady(ctx context.Context, g *group, clients kubernetes.Interface) error {
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := clients.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			return fmt.Errorf("API server not ready after %v: %w", readyTimeout, lastErr)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-g.Exited():
			return g.Cause()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// bootstrap creates the system namespaces (default, kube-system,
// kube-public, kube-node-lease) through the API. It is
// idempotent: existing namespaces are left alone.
func bootstrap(ctx context.Context, g *group, clients kubernetes.Interface, log *slog.Logger) error {
	system := []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}
	for _, name := range system {
		deadline := time.Now().Add(readyTimeout)
		for {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
			_, err := clients.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
			if err == nil {
				log.Info("created namespace", "namespace", name)
				break
			}
			if apierrors.IsAlreadyExists(err) {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("creating namespace %s: %w", name, err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-g.Exited():
				return g.Cause()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// advertiseAddress returns the address pods reach the API server at (the
// kubernetes service's endpoint): the listen host when it is a specific
// address of the network, else the node's IP (nodeaddr.DetectNodeIP).
// When the API listens on loopback only, it also listens on the node's IP
// at the same port (the second listener, nil otherwise), as upstream's API
// server serves on its advertise address; when that fails, pods cannot
// reach the API and the loopback address is advertised, with a warning.
func advertiseAddress(listenHost, configured string, ln net.Listener, log *slog.Logger) (string, net.Listener, error) {
	ip, err := netip.ParseAddr(listenHost)
	if configured == "" && err == nil && !ip.IsLoopback() && !ip.IsUnspecified() {
		return ip.String(), nil, nil
	}
	var adv netip.Addr
	if configured != "" {
		var perr error
		if adv, perr = netip.ParseAddr(configured); perr != nil {
			return "", nil, fmt.Errorf("invalid advertise address %q: %w", configured, perr)
		}
	} else {
		node, derr := nodeaddr.DetectNodeIP()
		nodeIP, perr := netip.ParseAddr(node)
		if derr != nil || perr != nil || nodeIP.IsLoopback() {
			log.Warn("no node address to advertise the API server at: pods cannot reach it", "err", derr)
			return endpointIP(listenHost), nil, nil
		}
		adv = nodeIP
	}
	loopbackOnly := err == nil && ip.IsLoopback() || listenHost == "localhost"
	if !loopbackOnly || adv.IsLoopback() {
		return adv.String(), nil, nil // reachable where the API listens
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	extra, lerr := net.Listen("tcp", net.JoinHostPort(adv.String(), port))
	if lerr != nil {
		if configured != "" {
			return "", nil, fmt.Errorf("cannot listen on the advertise address %s: %w", configured, lerr)
		}
		log.Warn("cannot listen on the node's address: pods cannot reach the API server", "address", adv, "err", lerr)
		return endpointIP(listenHost), nil, nil
	}
	return adv.String(), extra, nil
}

// advertiseURL is serverURL with its host replaced by advertise.
func advertiseURL(serverURL, advertise string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		return serverURL
	}
	u.Host = net.JoinHostPort(advertise, u.Port())
	return u.String()
}

// clientHostPort is the address clients should dial: the listen host, or
// loopback when the server listens on every address.
func clientHostPort(addr net.Addr, listenHost string) string {
	_, port, _ := net.SplitHostPort(addr.String())
	host := listenHost
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// versionInfo is what /version reports.
func versionInfo() version.Info {
	parts := strings.SplitN(strings.TrimPrefix(KubernetesVersion, "v"), ".", 3)
	info := version.Info{
		Major:      parts[0],
		Minor:      parts[1],
		GitVersion: KubernetesVersion + "+skiff-" + Version,
		GoVersion:  goruntime.Version(),
		Compiler:   goruntime.Compiler,
		Platform:   goruntime.GOOS + "/" + goruntime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				info.GitCommit = s.Value
			}
		}
	}
	return info
}

// buildOpenAPI builds the OpenAPI handler and, from the same schemas, the
// type converter server-side apply merges with.
func buildOpenAPI(resources []*registry.Resource) (*openapi.Handler, managedfields.TypeConverter, error) {
	h, err := openapi.New(resources)
	if err != nil {
		return nil, nil, err
	}
	schemas, err := openapi.Schemas(resources)
	if err != nil {
		return nil, nil, fmt.Errorf("collecting schemas: %w", err)
	}
	tc, err := managedfields.NewTypeConverter(schemas, false)
	if err != nil {
		return nil, nil, fmt.Errorf("building the apply type converter: %w", err)
	}
	return h, tc, nil
}

// repairServiceAllocations makes the cluster IP and node port reservations
// agree with the stored Services, before the API serves.
func repairServiceAllocations(ctx context.Context, stores []*registry.Store, alloc *servicealloc.Allocator) error {
	for _, st := range stores {
		if st.Resource.GVR.Group != "" || st.Resource.GVR.Resource != "services" {
			continue
		}
		list, err := st.List(ctx, "", storage.ListOptions{})
		if err != nil {
			return fmt.Errorf("listing services to repair their allocations: %w", err)
		}
		svcs, ok := list.(*corev1.ServiceList)
		if !ok {
			return fmt.Errorf("listing services: unexpected %T", list)
		}
		return alloc.Repair(ctx, svcs.Items)
	}
	return nil
}

// bootstrapKubernetesService creates, through the API, the "kubernetes"
// Service in "default" (the first cluster IP, port 443) and its Endpoints
// pointing at this API server, as upstream's API server maintains them,
// so that in-cluster clients find the API.
func bootstrapKubernetesService(ctx context.Context, clients kubernetes.Interface, ip netip.Addr, serverURL string, log *slog.Logger) error {
	u, err := url.Parse(serverURL)
	if err != nil {
		return fmt.Errorf("kubernetes service: %w", err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return fmt.Errorf("kubernetes service: port of %s: %w", serverURL, err)
	}
	labels := map[string]string{"component": "apiserver", "provider": "kubernetes"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault, Labels: labels},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: ip.String(),
			Ports: []corev1.ServicePort{{
				Name: "https", Protocol: corev1.ProtocolTCP, Port: 443, TargetPort: intstr.FromInt32(int32(port)),
			}},
		},
	}
	if _, err := clients.CoreV1().Services(metav1.NamespaceDefault).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the kubernetes service: %w", err)
	}
	// The server writes the slice itself: the Endpoints are not mirrored.
	epLabels := map[string]string{"endpointslice.kubernetes.io/skip-mirror": "true"}
	for k, v := range labels {
		epLabels[k] = v
	}
	eps := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault, Labels: epLabels},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: endpointIP(u.Hostname())}},
			Ports:     []corev1.EndpointPort{{Name: "https", Port: int32(port), Protocol: corev1.ProtocolTCP}},
		}},
	}
	cur, err := clients.CoreV1().Endpoints(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = clients.CoreV1().Endpoints(metav1.NamespaceDefault).Create(ctx, eps, metav1.CreateOptions{})
	case err == nil:
		cur.Subsets = eps.Subsets
		if cur.Labels == nil {
			cur.Labels = map[string]string{}
		}
		for k, v := range epLabels {
			cur.Labels[k] = v
		}
		_, err = clients.CoreV1().Endpoints(metav1.NamespaceDefault).Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("writing the kubernetes endpoints: %w", err)
	}
	// Its EndpointSlice too, which service proxies read; no selector means
	// no controller writes it, so the API server does, as upstream does.
	ready := true
	addressType := discoveryv1.AddressTypeIPv4
	if addr, err := netip.ParseAddr(endpointIP(u.Hostname())); err == nil && addr.Is6() {
		addressType = discoveryv1.AddressTypeIPv6
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault, Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: addressType,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{endpointIP(u.Hostname())}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("https"), Port: ptrTo(int32(port)), Protocol: ptrTo(corev1.ProtocolTCP)}},
	}
	slices := clients.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault)
	curSlice, err := slices.Get(ctx, "kubernetes", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, slice, metav1.CreateOptions{})
	case err == nil:
		curSlice.AddressType, curSlice.Endpoints, curSlice.Ports = slice.AddressType, slice.Endpoints, slice.Ports
		_, err = slices.Update(ctx, curSlice, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("writing the kubernetes endpoint slice: %w", err)
	}
	log.Debug("kubernetes service ready", "clusterIP", ip, "endpoint", u.Host)
	return nil
}

// DefaultServiceCIDRName is the ServiceCIDR describing the service range
// (upstream's name).
const DefaultServiceCIDRName = "kubernetes"

// ensureDefaultServiceCIDR writes the ServiceCIDR "kubernetes" for the
// service range, Ready, as upstream's default ServiceCIDR controller does.
// An existing one for another range is left alone (the range of a data
// dir does not change; the allocator uses its own).
func ensureDefaultServiceCIDR(ctx context.Context, clients kubernetes.Interface, cidr netip.Prefix) error {
	api := clients.NetworkingV1().ServiceCIDRs()
	sc, err := api.Get(ctx, DefaultServiceCIDRName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		sc, err = api.Create(ctx, &networkingv1.ServiceCIDR{
			ObjectMeta: metav1.ObjectMeta{Name: DefaultServiceCIDRName},
			Spec:       networkingv1.ServiceCIDRSpec{CIDRs: []string{cidr.Masked().String()}},
		}, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("default ServiceCIDR: %w", err)
	}
	if meta.IsStatusConditionTrue(sc.Status.Conditions, networkingv1.ServiceCIDRConditionReady) {
		return nil
	}
	meta.SetStatusCondition(&sc.Status.Conditions, metav1.Condition{
		Type: networkingv1.ServiceCIDRConditionReady, Status: metav1.ConditionTrue,
		Reason: "Ready", Message: "Kubernetes default Service CIDR is ready",
	})
	if _, err := api.UpdateStatus(ctx, sc, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("default ServiceCIDR status: %w", err)
	}
	return nil
}

// parseServiceCIDR reads Config.ServiceCIDR.
func parseServiceCIDR(v string) (netip.Prefix, error) {
	if v == "" {
		v = servicealloc.DefaultServiceCIDR
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("service CIDR %q: %w", v, err)
	}
	return p.Masked(), nil
}

// endpointIP is host when it is an IP address, and loopback otherwise (a
// server listening on a name serves on loopback here).
func endpointIP(host string) string {
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr.String()
	}
	return "127.0.0.1"
}

func ptrTo[T any](v T) *T { return &v }

// inProcess makes the clients built from cfg reach api in-process, as the
// holder of cfg's client certificate (see apiserver.InProcessTransport).
// The TLS settings stay in cfg, unused by its transport, because
// components read them: the agent trusts its CA for the API server's
// calls to it, and the root CA publisher publishes it.
func inProcess(api *apiserver.Server, cfg *rest.Config) error {
	rt, err := api.InProcessTransport(cfg.TLSClientConfig.CertData)
	if err != nil {
		return fmt.Errorf("in-process client: %w", err)
	}
	cfg.WrapTransport = func(http.RoundTripper) http.RoundTripper { return rt }
	return nil
}
