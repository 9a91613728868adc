package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1listers "k8s.io/client-go/listers/core/v1"
	discoveryv1listers "k8s.io/client-go/listers/discovery/v1"

	"github.com/skiff-dev/skiff/internal/svcendpoints"
)

// maxResponseBytes bounds a webhook's answer; a longer one is a failed
// call. It leaves room for a patch of an object of the API server's
// largest request body (3 MiB).
const maxResponseBytes = 8 << 20

// maxClients bounds the client cache; the least recently used client is
// dropped (and its idle connections closed) beyond it.
const maxClients = 64

// clientKey is a TLS identity: the CA bundle's digest and the server name
// ("" for a url webhook: the URL's host).
type clientKey struct {
	ca         [sha256.Size]byte
	serverName string
}

type clientEntry struct {
	client   *http.Client
	lastUsed uint64
}

// clientCache holds one http.Client per TLS identity, so connections to
// a webhook are reused across requests. Safe for concurrent use.
type clientCache struct {
	mu      sync.Mutex
	clients map[clientKey]*clientEntry // guarded by mu
	tick    uint64                     // guarded by mu
}

// get returns the client verifying servers against caBundle (the system
// roots when empty) as serverName.
func (c *clientCache) get(caBundle []byte, serverName string) (*http.Client, error) {
	key := clientKey{ca: sha256.Sum256(caBundle), serverName: serverName}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	if e, ok := c.clients[key]; ok {
		e.lastUsed = c.tick
		return e.client, nil
	}
	client, err := newHTTPClient(caBundle, serverName)
	if err != nil {
		return nil, err
	}
	if c.clients == nil {
		c.clients = map[clientKey]*clientEntry{}
	}
	if len(c.clients) >= maxClients {
		var oldest clientKey
		var min uint64 = ^uint64(0)
		for k, e := range c.clients {
			if e.lastUsed < min {
				oldest, min = k, e.lastUsed
			}
		}
		c.clients[oldest].client.CloseIdleConnections()
		delete(c.clients, oldest)
	}
	c.clients[key] = &clientEntry{client: client, lastUsed: c.tick}
	return client, nil
}

func newHTTPClient(caBundle []byte, serverName string) (*http.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if len(caBundle) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caBundle) {
			return nil, errors.New("unable to load root certificates: unable to parse bytes as PEM block")
		}
		tlsConfig.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil, // webhooks are called directly
		DialContext:         dialer.DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}}, nil
}

// target is where one call goes.
type target struct {
	url        *url.URL
	host       string // Host header; "" for the URL's host
	serverName string // TLS server name; "" for the URL's host
}

// resolver turns a webhook's client config into a target.
type resolver struct {
	services corev1listers.ServiceLister
	slices   discoveryv1listers.EndpointSliceLister
}

// resolve returns cc's target: its url as given, or a random ready
// endpoint of its service (an ExternalName service's external name).
func (res resolver) resolve(cc *admissionregistrationv1.WebhookClientConfig) (target, error) {
	if cc.URL != nil {
		u, err := url.Parse(*cc.URL)
		if err != nil {
			return target{}, fmt.Errorf("parsing url: %w", err)
		}
		return target{url: u}, nil
	}
	ref := cc.Service
	if ref == nil {
		return target{}, errors.New("webhook has neither url nor service")
	}
	port := int32(443)
	if ref.Port != nil {
		port = *ref.Port
	}
	path := ""
	if ref.Path != nil {
		path = *ref.Path
	}
	dnsName := ref.Name + "." + ref.Namespace + ".svc"
	t := target{host: net.JoinHostPort(dnsName, strconv.Itoa(int(port))), serverName: dnsName}
	if res.services == nil {
		return target{}, fmt.Errorf("service %s/%s: no service lister", ref.Namespace, ref.Name)
	}
	svc, err := res.services.Services(ref.Namespace).Get(ref.Name)
	if err != nil {
		return target{}, fmt.Errorf("resolving service %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	var hostPort string
	switch svc.Spec.Type {
	case corev1.ServiceTypeExternalName:
		hostPort = net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(int(port)))
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, "":
		portName, ok := svcendpoints.PortName(svc, port)
		if !ok {
			return target{}, fmt.Errorf("no service port %d found for service %q", port, svc.Name)
		}
		hostPort, err = res.endpoint(svc, portName)
		if err != nil {
			return target{}, err
		}
	default:
		return target{}, fmt.Errorf("unsupported service type %q", svc.Spec.Type)
	}
	t.url = &url.URL{Scheme: "https", Host: hostPort, Path: path}
	return t, nil
}

// endpoint picks a random ready endpoint address of svc's EndpointSlices
// serving the service port named portName (its number is the target port).
func (res resolver) endpoint(svc *corev1.Service, portName string) (string, error) {
	var candidates []string
	if res.slices != nil {
		slices, err := res.slices.EndpointSlices(svc.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name}))
		if err != nil {
			return "", fmt.Errorf("listing endpoint slices of service %s/%s: %w", svc.Namespace, svc.Name, err)
		}
		candidates = svcendpoints.Ready(slices, portName)
	}
	if len(candidates) == 0 {
		return "", fmt.Errorf("no endpoints available for service %q", svc.Name)
	}
	return candidates[rand.IntN(len(candidates))], nil
}

// post sends body to t with client and returns the answer's body. The
// context's deadline is also sent as the timeout query parameter (whole
// seconds, rounded up), as upstream does. A non-2xx answer is an error
// carrying its Status message when it has one.
func post(ctx context.Context, client *http.Client, t target, body []byte) ([]byte, error) {
	u := *t.url
	if deadline, ok := ctx.Deadline(); ok {
		if timeout := time.Until(deadline); timeout > 0 {
			if tr := timeout.Truncate(time.Second); tr != timeout {
				timeout = tr + time.Second
			}
			q := u.Query()
			q.Set("timeout", timeout.String())
			u.RawQuery = q.Encode()
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if t.host != "" {
		req.Host = t.host
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, */*")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	if len(data) > maxResponseBytes {
		return nil, fmt.Errorf("response body larger than %d bytes", maxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var st metav1.Status
		if json.Unmarshal(data, &st) == nil && st.Kind == "Status" && st.Message != "" {
			return nil, fmt.Errorf("the server responded with status code %d: %s", resp.StatusCode, st.Message)
		}
		const maxShown = 1024
		shown := string(data)
		if len(shown) > maxShown {
			shown = shown[:maxShown] + "..."
		}
		return nil, fmt.Errorf("an error on the server (%q) has prevented the request from succeeding (status code %d)", shown, resp.StatusCode)
	}
	return data, nil
}

// Caller posts JSON to webhooks described by a WebhookClientConfig (url,
// or a service's ready endpoint with TLS server name <svc>.<ns>.svc),
// verifying TLS against caBundle (the system roots when empty). It is
// the transport of webhooks that are not admission webhooks (CRD
// conversion); the Dispatcher keeps its own. Safe for concurrent use;
// connections are reused per TLS identity.
type Caller struct {
	resolver atomic.Pointer[resolver] // never nil
	clients  clientCache
}

// NewCaller returns a Caller resolving services through services and
// slices. Either may be nil (and set later with SetListers); until both
// are set, only url webhooks can be called.
func NewCaller(services corev1listers.ServiceLister, slices discoveryv1listers.EndpointSliceLister) *Caller {
	c := &Caller{}
	c.SetListers(services, slices)
	return c
}

// SetListers replaces the listers services are resolved through, for
// a Caller built before the informers exist. Safe to call concurrently
// with Post.
func (c *Caller) SetListers(services corev1listers.ServiceLister, slices discoveryv1listers.EndpointSliceLister) {
	c.resolver.Store(&resolver{services: services, slices: slices})
}

// Post sends body to the webhook cc describes and returns its answer's
// body. ctx bounds the call (its deadline is also sent as the timeout
// query parameter); the caller sets the timeout. A non-2xx answer is an
// error carrying its Status message when it has one.
func (c *Caller) Post(ctx context.Context, cc *admissionregistrationv1.WebhookClientConfig, body []byte) ([]byte, error) {
	t, err := c.resolver.Load().resolve(cc)
	if err != nil {
		return nil, err
	}
	client, err := c.clients.get(cc.CABundle, t.serverName)
	if err != nil {
		return nil, fmt.Errorf("could not get REST client: %w", err)
	}
	return post(ctx, client, t, body)
}
