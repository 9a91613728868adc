package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1beta1 "k8s.io/apimachinery/pkg/apis/meta/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/version"

	"github.com/skiff-dev/skiff/internal/audit"
	"github.com/skiff-dev/skiff/internal/kubeletclient"
	"github.com/skiff-dev/skiff/internal/registry"
)

// Config is everything the API server needs. Stores and Scheme are required.
type Config struct {
	// Stores holds one store per served resource; store.Resource describes it.
	Stores []*registry.Store
	// Scheme knows every served type plus the meta types (Status, Table,
	// PartialObjectMetadata, WatchEvent) and autoscaling/v1 Scale.
	Scheme *runtime.Scheme
	// Discovery serves exactly /api, /api/v1, /apis, /apis/<g>, /apis/<g>/<v>.
	// Nil means 404 there.
	Discovery http.Handler
	// OpenAPI serves /openapi/v2, /openapi/v3 and below. Nil means 404.
	OpenAPI http.Handler
	// IssuerDiscovery serves the service account issuer's OpenID
	// discovery documents, /.well-known/openid-configuration and
	// /openid/v1/jwks (see tokens.Issuer.DiscoveryHandler). Nil means 404.
	IssuerDiscovery http.Handler
	// ClientCAs verifies client certificates (user = CN, groups = O). It is
	// set on the tls.Config given to Serve when that has none.
	ClientCAs *x509.CertPool
	// Ready reports readiness (etcd reachable); nil means always ready.
	Ready func(ctx context.Context) error
	// Logger receives one Debug record per request; nil discards.
	Logger *slog.Logger
	// MaxBodyBytes limits request bodies; 0 means 3 MiB.
	MaxBodyBytes int64
	// MaxInFlight limits concurrent non-long-running requests before 429;
	// 0 means 400.
	MaxInFlight int
	// Version is served at /version.
	Version version.Info
	// TypeConverter, when set, enables server-side apply and managedFields
	// tracking (build it with managedfields.NewTypeConverter from
	// openapi.Schemas). Nil means apply patches are 415.
	TypeConverter managedfields.TypeConverter
	// Kubelet reaches the kubelets for pods/log, pods/exec, pods/attach,
	// pods/portforward and nodes/proxy. Nil means those answer 503.
	Kubelet *kubeletclient.Client
	// TokenRequest serves serviceaccounts/token; nil answers 503.
	TokenRequest TokenRequester
	// Authenticator checks bearer tokens (service account and bootstrap
	// tokens). Nil means every bearer token is refused (401); client
	// certificates are verified against ClientCAs either way.
	Authenticator TokenAuthenticator
	// Authorizer decides every authenticated request (system:masters
	// excepted). Nil means any authenticated user may do anything and
	// anonymous users may reach only /healthz, /livez, /readyz and /version.
	Authorizer Authorizer
	// Rules answers SelfSubjectRulesReview; nil answers it as incomplete.
	Rules RuleResolver
	// Admission runs on every create, update and patch (through the main
	// resource, status and scale) inside the store's write, after its
	// defaulting and around its validation; nil admits everything.
	Admission Admitter
	// Groups serves API groups not backed by stores (metrics.k8s.io),
	// by group name: every resource path of the group goes to its handler,
	// after authentication; discovery of the group is Discovery's.
	Groups map[string]http.Handler
	// Aggregated, when not nil, returns the handler of a group version an
	// extension API server serves (an APIService naming a service), or
	// nil: its resource paths and its /apis/<group>/<version> document go
	// there, after authentication and authorization (no admission: the
	// extension server runs its own), as upstream's aggregator proxies.
	Aggregated func(group, version string) http.Handler
	// Audit receives one audit event per request stage (see audit.go);
	// nil logs nothing. The caller closes it after the server stops.
	Audit *audit.Logger
}

const (
	defaultMaxBodyBytes = 3 << 20
	defaultMaxInFlight  = 400
	// requestTimeout bounds every non-long-running request (504 after).
	requestTimeout = 60 * time.Second
	// minWatchTimeout and maxWatchTimeout bound the server's default
	// watch timeout, randomised so watchers do not reconnect in lockstep.
	minWatchTimeout = 30 * time.Minute
	maxWatchTimeout = 60 * time.Minute
)

// Server is the HTTP API server. It is safe for concurrent use; Serve may be
// called once.
type Server struct {
	cfg     Config
	log     *slog.Logger
	codecs  serializer.CodecFactory
	scheme  *runtime.Scheme
	metrics *metrics
	// params decodes query parameters into the metav1 option types.
	params  runtime.ParameterCodec
	handler http.Handler

	// fieldManagers holds each store's managedFields trackers; empty
	// without Config.TypeConverter.
	fieldManagers map[*registry.Store]*fieldManagers
	// objTypes holds the Go type of each served resource's objects.
	objTypes map[*registry.Resource]reflect.Type

	// resources indexes the stores by group/version and resource name.
	resources map[schema.GroupVersion]map[string]*registry.Store
	// custom holds the stores of custom resources, replaced as a whole
	// by SetCustomStores; customMu serializes the replacements.
	custom   atomic.Pointer[customRoutes]
	customMu sync.Mutex

	inflight chan struct{}
	// handlers runs non-long-running requests (see withTimeout).
	handlers *handlerPool
	// events memoizes the encodings of watch event objects (see watch).
	events *eventMemo

	// shutdown is closed when Serve begins shutting down; watches end and
	// /readyz fails from then on.
	shutdown     chan struct{}
	shutdownOnce sync.Once

	// watchTimeout returns the default timeout of one watch.
	watchTimeout func() time.Duration
}

// New validates cfg and builds the server. It starts nothing.
func New(cfg Config) (*Server, error) {
	if cfg.Scheme == nil {
		return nil, errors.New("apiserver: Config.Scheme is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = defaultMaxBodyBytes
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = defaultMaxInFlight
	}
	if err := addMetaTypes(cfg.Scheme); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:           cfg,
		log:           logger.With("component", "apiserver"),
		scheme:        cfg.Scheme,
		codecs:        serializer.NewCodecFactory(cfg.Scheme),
		metrics:       newMetrics(),
		resources:     map[schema.GroupVersion]map[string]*registry.Store{},
		fieldManagers: map[*registry.Store]*fieldManagers{},
		objTypes:      map[*registry.Resource]reflect.Type{},
		inflight:      make(chan struct{}, cfg.MaxInFlight),
		handlers:      newHandlerPool(),
		events:        newEventMemo(eventMemoSize),
		shutdown:      make(chan struct{}),
		watchTimeout: func() time.Duration {
			return minWatchTimeout + rand.N(maxWatchTimeout-minWatchTimeout)
		},
	}
	if cfg.Audit != nil {
		s.metrics.registry.MustRegister(cfg.Audit.Collectors()...)
	}
	paramScheme := runtime.NewScheme()
	metav1.AddToGroupVersion(paramScheme, metav1.SchemeGroupVersion)
	s.params = runtime.NewParameterCodec(paramScheme)
	for _, st := range cfg.Stores {
		if st == nil || st.Resource == nil || st.Resource.Strategy == nil {
			return nil, errors.New("apiserver: every store needs a Resource with a Strategy")
		}
		if err := route(s.resources, st); err != nil {
			return nil, err
		}
		s.objTypes[st.Resource] = reflect.TypeOf(st.Resource.Strategy.New())
		if cfg.TypeConverter != nil {
			fm, err := s.newFieldManagers(cfg.TypeConverter, st.Resource)
			if err != nil {
				return nil, fmt.Errorf("apiserver: %w", err)
			}
			s.fieldManagers[st] = fm
		}
	}
	s.handler = s.buildHandler()
	return s, nil
}

// Handler returns the full handler chain. Requests without a verified TLS
// client certificate are anonymous.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves HTTPS on ln until ctx is done, then shuts down gracefully:
// watches are ended, and in-flight requests get up to 10 seconds. It
// returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	if tlsConfig == nil {
		return errors.New("apiserver: serving needs a TLS config")
	}
	tc := tlsConfig.Clone()
	if tc.ClientCAs == nil {
		tc.ClientCAs = s.cfg.ClientCAs
	}
	if tc.ClientAuth == tls.NoClientCert {
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if len(tc.NextProtos) == 0 {
		tc.NextProtos = []string{"h2", "http/1.1"}
	}
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		TLSConfig:         tc,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		s.beginShutdown()
		return fmt.Errorf("serving API: %w", err)
	case <-ctx.Done():
	}
	s.beginShutdown()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
		<-errc
		return fmt.Errorf("shutting down API server: %w", err)
	}
	<-errc
	return nil
}

// shuttingDown reports whether beginShutdown has run.
func (s *Server) shuttingDown() bool {
	select {
	case <-s.shutdown:
		return true
	default:
		return false
	}
}

// beginShutdown ends every watch and fails /readyz. Idempotent.
func (s *Server) beginShutdown() {
	s.shutdownOnce.Do(func() { close(s.shutdown) })
}

// addMetaTypes registers in scheme the meta.k8s.io kinds the server
// decodes and renders (Table, PartialObjectMetadata, options, WatchEvent)
// when they are missing. It is idempotent.
func addMetaTypes(scheme *runtime.Scheme) error {
	if !scheme.Recognizes(metav1.SchemeGroupVersion.WithKind("Table")) {
		if err := metav1.AddMetaToScheme(scheme); err != nil {
			return fmt.Errorf("registering meta.k8s.io/v1 types: %w", err)
		}
		metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	}
	if !scheme.Recognizes(metav1beta1.SchemeGroupVersion.WithKind("Table")) {
		if err := metav1beta1.AddMetaToScheme(scheme); err != nil {
			return fmt.Errorf("registering meta.k8s.io/v1beta1 types: %w", err)
		}
	}
	return nil
}
