package aggregator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	discoveryv1listers "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/skiff-dev/skiff/internal/auth"
	"github.com/skiff-dev/skiff/internal/discovery"
	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/internal/svcendpoints"
)

// The identity discovery documents are fetched with.
const (
	aggregatorUser  = "system:kube-aggregator"
	aggregatorGroup = "system:masters"
)

// refreshPeriod is how often the extension servers' discovery documents
// are fetched again.
const refreshPeriod = 30 * time.Second

// RemoteGroups receives the groups extension servers serve
// (discovery.Dynamic).
type RemoteGroups interface {
	SetRemoteGroups([]discovery.ExtraGroup)
}

// RemoteOpenAPI receives the OpenAPI v3 documents extension servers serve
// for their group versions (openapi.Handler).
type RemoteOpenAPI interface {
	SetRemoteV3(docs map[string][]byte) error
}

// UserFunc returns the authenticated caller of a request.
type UserFunc func(ctx context.Context) (auth.User, bool)

// Config is what the aggregator needs before the API server runs.
type Config struct {
	// FrontProxy is the client identity towards extension servers.
	FrontProxy *pki.FrontProxy
	// ClientCAPEM is the cluster's client CA, published for extension
	// servers that authenticate clients themselves.
	ClientCAPEM []byte
	// Discovery receives the remote groups.
	Discovery RemoteGroups
	// OpenAPI receives their OpenAPI v3 documents; nil drops them.
	OpenAPI RemoteOpenAPI
	// User reads the caller from a request's context.
	User UserFunc
	// Logger; nil discards.
	Logger *slog.Logger
}

// Aggregator routes and proxies requests to extension API servers. Handler
// may be called before Run (it then routes nothing).
type Aggregator struct {
	cfg Config
	log *slog.Logger

	// backends maps "group/version" to the backend serving it.
	backends atomic.Pointer[map[string]*backend]
	refresh  chan struct{}

	services corev1listers.ServiceLister
	slices   discoveryv1listers.EndpointSliceLister
}

// New returns an aggregator that routes nothing until Run.
func New(cfg Config) *Aggregator {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Aggregator{cfg: cfg, log: log.With("component", "aggregator"), refresh: make(chan struct{}, 1)}
	a.backends.Store(&map[string]*backend{})
	return a
}

// Handler returns the handler of group/version when an extension server
// serves it, else nil.
func (a *Aggregator) Handler(group, version string) http.Handler {
	if b := (*a.backends.Load())[group+"/"+version]; b != nil {
		return b
	}
	return nil
}

// Sources are what Run reads through: the API server's in-process clients
// and the listers of services and endpoint slices it already keeps (the
// admission webhooks' informers).
type Sources struct {
	Client   kubernetes.Interface
	Services corev1listers.ServiceLister
	Slices   discoveryv1listers.EndpointSliceLister
	// APIServices is the informer of APIServices (shared with
	// internal/apiservice); the caller starts it.
	APIServices informers.GenericInformer
}

// Run bootstraps the extension-apiserver-authentication config map and
// its reader role, then follows the APIServices until ctx ends.
func (a *Aggregator) Run(ctx context.Context, src Sources) error {
	client := src.Client
	for delay := time.Second; ; delay = min(2*delay, time.Minute) {
		err := a.bootstrap(ctx, client)
		if err == nil {
			break
		}
		a.log.Error("bootstrap failed; retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
	a.services, a.slices = src.Services, src.Slices
	apis := src.APIServices
	changed := func(any) { a.rebuild(apis.Lister()) }
	if _, err := apis.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: changed, UpdateFunc: func(_, o any) { changed(o) }, DeleteFunc: changed,
	}); err != nil {
		return fmt.Errorf("aggregator: watching APIServices: %w", err)
	}
	if !cache.WaitForCacheSync(ctx.Done(), apis.Informer().HasSynced) {
		return nil // ctx ended
	}
	a.rebuild(apis.Lister())
	tick := time.NewTicker(refreshPeriod)
	defer tick.Stop()
	for {
		a.refreshDiscovery(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-a.refresh:
		}
	}
}

// rebuild recomputes the backends from the APIServices and asks for a
// discovery refresh.
func (a *Aggregator) rebuild(lister cache.GenericLister) {
	objs, err := lister.List(labels.Everything())
	if err != nil {
		a.log.Error("listing APIServices", "err", err)
		return
	}
	old := *a.backends.Load()
	next := map[string]*backend{}
	for _, o := range objs {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		as := &apiregistrationv1.APIService{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, as); err != nil {
			a.log.Error("reading APIService", "apiservice", u.GetName(), "err", err)
			continue
		}
		if as.Spec.Service == nil {
			continue
		}
		key := as.Spec.Group + "/" + as.Spec.Version
		if b := old[key]; b != nil && b.generation == as.Generation && b.uid == string(as.UID) {
			next[key] = b // unchanged spec: keep its connections
			continue
		}
		b, err := a.newBackend(as)
		if err != nil {
			a.log.Error("cannot proxy to APIService", "apiservice", as.Name, "err", err)
			continue
		}
		next[key] = b
	}
	a.backends.Store(&next)
	for key, b := range old {
		if next[key] != b {
			b.transport.CloseIdleConnections()
		}
	}
	select {
	case a.refresh <- struct{}{}:
	default:
	}
}

// backend is one APIService naming a service.
type backend struct {
	a          *Aggregator
	name       string // the APIService's
	uid        string
	generation int64
	gv         schema.GroupVersion
	namespace  string
	service    string
	port       int32
	transport  *http.Transport
	proxy      *httputil.ReverseProxy
}

func (a *Aggregator) newBackend(as *apiregistrationv1.APIService) (*backend, error) {
	svc := as.Spec.Service
	port := int32(443)
	if svc.Port != nil {
		port = *svc.Port
	}
	tlsCfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: svc.Name + "." + svc.Namespace + ".svc",
		NextProtos: []string{"http/1.1"}, // upgrades (exec, port-forward) need HTTP/1.1
	}
	if a.cfg.FrontProxy != nil {
		tlsCfg.Certificates = []tls.Certificate{a.cfg.FrontProxy.Client}
	}
	switch {
	case as.Spec.InsecureSkipTLSVerify:
		tlsCfg.InsecureSkipVerify = true
	case len(as.Spec.CABundle) > 0:
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(as.Spec.CABundle) {
			return nil, errors.New("spec.caBundle holds no PEM certificate")
		}
		tlsCfg.RootCAs = pool
	}
	b := &backend{
		a: a, name: as.Name, uid: string(as.UID), generation: as.Generation,
		gv:        schema.GroupVersion{Group: as.Spec.Group, Version: as.Spec.Version},
		namespace: svc.Namespace, service: svc.Name, port: port,
		transport: &http.Transport{
			TLSClientConfig:     tlsCfg,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     90 * time.Second,
			MaxIdleConnsPerHost: 16,
		},
	}
	b.proxy = &httputil.ReverseProxy{
		Rewrite:       b.rewrite,
		Transport:     b.transport,
		FlushInterval: -1, // watches stream
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			writeStatus(w, apierrors.NewServiceUnavailable(fmt.Sprintf("error trying to reach service: %v", err)))
		},
	}
	return b, nil
}

type targetKey struct{}

// ServeHTTP proxies an authenticated, authorized request.
func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, ok := b.a.cfg.User(r.Context())
	if !ok {
		writeStatus(w, apierrors.NewUnauthorized("no user"))
		return
	}
	target, err := b.endpoint()
	if err != nil {
		writeStatus(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	ctx := context.WithValue(r.Context(), targetKey{}, target)
	ctx = auth.WithUser(ctx, user)
	b.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// rewrite points the request at the endpoint and replaces the caller's
// credentials with its identity in the X-Remote-* headers.
func (b *backend) rewrite(pr *httputil.ProxyRequest) {
	target := pr.In.Context().Value(targetKey{}).(*url.URL)
	pr.Out.URL.Scheme = target.Scheme
	pr.Out.URL.Host = target.Host
	pr.Out.Host = target.Host
	for k := range pr.Out.Header {
		ck := http.CanonicalHeaderKey(k)
		if ck == "Authorization" || strings.HasPrefix(ck, "Impersonate-") || strings.HasPrefix(ck, "X-Remote-") {
			pr.Out.Header.Del(k)
		}
	}
	user, _ := auth.UserFrom(pr.In.Context())
	setIdentity(pr.Out.Header, user)
}

// setIdentity writes user as the requestheader headers.
func setIdentity(h http.Header, user auth.User) {
	h.Set("X-Remote-User", user.Name)
	if user.UID != "" {
		h.Set("X-Remote-Uid", user.UID)
	}
	for _, g := range user.Groups {
		h.Add("X-Remote-Group", g)
	}
	for k, vs := range user.Extra {
		for _, v := range vs {
			h.Add("X-Remote-Extra-"+url.PathEscape(k), v)
		}
	}
}

// endpoint picks a ready endpoint of the backend's service for its port.
func (b *backend) endpoint() (*url.URL, error) {
	lister := b.a.services
	if lister == nil {
		return nil, errors.New("service unavailable")
	}
	svc, err := lister.Services(b.namespace).Get(b.service)
	if err != nil {
		return nil, fmt.Errorf("service %q not found in namespace %q", b.service, b.namespace)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return &url.URL{Scheme: "https", Host: net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(int(b.port)))}, nil
	}
	portName, found := svcendpoints.PortName(svc, b.port)
	if !found {
		return nil, fmt.Errorf("service %q has no port %d", b.service, b.port)
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: b.service})
	eps, err := b.a.slices.EndpointSlices(b.namespace).List(sel)
	if err != nil {
		return nil, err
	}
	candidates := svcendpoints.Ready(eps, portName)
	if len(candidates) == 0 {
		return nil, fmt.Errorf("no endpoints available for service %q", b.service)
	}
	return &url.URL{Scheme: "https", Host: candidates[pick(len(candidates))]}, nil
}

var picks atomic.Uint64

// pick spreads requests over n endpoints.
func pick(n int) int { return int(picks.Add(1) % uint64(n)) }

// refreshDiscovery fetches every backend's discovery document and hands
// the groups that answered to discovery, and their OpenAPI v3 documents
// (where served) to the OpenAPI handler.
func (a *Aggregator) refreshDiscovery(ctx context.Context) {
	backends := *a.backends.Load()
	var (
		mu     sync.Mutex
		groups []discovery.ExtraGroup
		docs   = map[string][]byte{}
		wg     sync.WaitGroup
	)
	for _, b := range backends {
		wg.Go(func() {
			g, err := b.fetchDiscovery(ctx)
			if err != nil {
				a.log.Debug("extension server discovery", "apiservice", b.name, "err", err)
				return
			}
			mu.Lock()
			groups = append(groups, g)
			mu.Unlock()
			if a.cfg.OpenAPI == nil {
				return
			}
			key := "apis/" + b.gv.Group + "/" + b.gv.Version
			doc, err := b.fetch(ctx, "/openapi/v3/"+key)
			if err != nil {
				a.log.Debug("extension server OpenAPI v3", "apiservice", b.name, "err", err)
				return
			}
			mu.Lock()
			docs[key] = doc
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(groups, func(x, y discovery.ExtraGroup) int {
		return strings.Compare(x.GroupVersion.String(), y.GroupVersion.String())
	})
	a.cfg.Discovery.SetRemoteGroups(groups)
	if a.cfg.OpenAPI != nil {
		if err := a.cfg.OpenAPI.SetRemoteV3(docs); err != nil {
			a.log.Info("extension servers' OpenAPI v3 documents", "err", err)
		}
	}
}

// fetchDiscovery reads the backend's /apis/<group>/<version> document.
func (b *backend) fetchDiscovery(ctx context.Context) (discovery.ExtraGroup, error) {
	body, err := b.fetch(ctx, "/apis/"+b.gv.Group+"/"+b.gv.Version)
	if err != nil {
		return discovery.ExtraGroup{}, err
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil {
		return discovery.ExtraGroup{}, fmt.Errorf("%s: decoding: %w", b.name, err)
	}
	return extraGroup(b.gv, &list), nil
}

// fetch GETs path (JSON) from the backend as the aggregator.
func (b *backend) fetch(ctx context.Context, path string) ([]byte, error) {
	target, err := b.endpoint()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u := *target
	u.Path = path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	setIdentity(req.Header, auth.User{Name: aggregatorUser, Groups: []string{aggregatorGroup}})
	resp, err := b.transport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u.String(), resp.Status)
	}
	return body, nil
}

// extraGroup turns an extension server's resource list into discovery's
// description of it.
func extraGroup(gv schema.GroupVersion, list *metav1.APIResourceList) discovery.ExtraGroup {
	g := discovery.ExtraGroup{GroupVersion: gv}
	status := map[string]bool{}
	for _, r := range list.APIResources {
		if base, sub, ok := strings.Cut(r.Name, "/"); ok && sub == "status" {
			status[base] = true
		}
	}
	for _, r := range list.APIResources {
		if strings.Contains(r.Name, "/") {
			continue
		}
		g.Resources = append(g.Resources, discovery.ExtraResource{
			Name: r.Name, Singular: r.SingularName, Kind: r.Kind, Namespaced: r.Namespaced,
			Verbs: slices.Clone([]string(r.Verbs)), ShortNames: slices.Clone(r.ShortNames),
			Categories: slices.Clone(r.Categories), Status: status[r.Name],
		})
	}
	return g
}

// writeStatus writes err's Status as JSON.
func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.ErrStatus
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	body, _ := json.Marshal(&st)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	_, _ = w.Write(body)
}
