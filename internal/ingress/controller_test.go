package ingress

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/testserver"
)

// TestController runs the controller against a real API server, with
// services whose EndpointSlices point at httptest backends on loopback.
// The controller uses a node's credential, as in the node agent: the node
// authorizer and RBAC's skiff:node-network roles must let it read what it
// needs (the TLS secret by name) and write ingress status.
func TestController(t *testing.T) {
	srv := testserver.StartServer(t, testserver.Options{})
	client := testserver.Client(t, srv.Admin)
	nodeClient := testserver.Client(t, srv.ConfigFor(t, "system:node:ingress-node", "system:nodes"))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	const ns = "default"

	webA, webB, apiA, fb := backendServer(t, "web-a"), backendServer(t, "web-b"), backendServer(t, "api-a"), backendServer(t, "fallback-a")
	createService(ctx, t, client, ns, "web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")})
	createService(ctx, t, client, ns, "api", corev1.ServicePort{Name: "main", Port: 80, TargetPort: intstr.FromInt32(8080)})
	createService(ctx, t, client, ns, "empty", corev1.ServicePort{Name: "http", Port: 80})
	createService(ctx, t, client, ns, "fallback", corev1.ServicePort{Port: 80})
	createSlice(ctx, t, client, ns, "web-a", "web", "http", webA)
	createSlice(ctx, t, client, ns, "web-b", "web", "http", webB)
	createSlice(ctx, t, client, ns, "api-a", "api", "main", apiA)
	createSlice(ctx, t, client, ns, "fallback-a", "fallback", "", fb)

	certPEM, keyPEM := selfSignedPEM(t, "web.example.com")
	if _, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "web-tls"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating secret: %v", err)
	}
	if err := EnsureClass(ctx, client, "skiff", true); err != nil {
		t.Fatalf("EnsureClass: %v", err)
	}
	if err := EnsureClass(ctx, client, "skiff", true); err != nil {
		t.Fatalf("EnsureClass again: %v", err)
	}

	prefix, exact := networkingv1.PathTypePrefix, networkingv1.PathTypeExact
	createIngress(ctx, t, client, ns, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "main"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("skiff"),
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{"web.example.com"}, SecretName: "web-tls"}},
			Rules: []networkingv1.IngressRule{
				rule("web.example.com",
					hpath(prefix, "/", ingBackend("web", "http")),
					hpath(prefix, "/api", ingBackend("api", 80)),
					hpath(exact, "/api/web", ingBackend("web", "http"))),
				rule("api.example.com", hpath(prefix, "/", ingBackend("api", "main"))),
				rule("empty.example.com", hpath(prefix, "/", ingBackend("empty", 80))),
			},
		},
	})
	createIngress(ctx, t, client, ns, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy", Annotations: map[string]string{LegacyClassAnnotation: "skiff"}},
		Spec:       networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{rule("legacy.example.com", hpath(prefix, "/", ingBackend("api", 80)))}},
	})
	createIngress(ctx, t, client, ns, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "classless"},
		Spec:       networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{rule("classless.example.com", hpath(prefix, "/", ingBackend("api", 80)))}},
	})
	createIngress(ctx, t, client, ns, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "foreign"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("nginx"),
			Rules:            []networkingv1.IngressRule{rule("foreign.example.com", hpath(prefix, "/", ingBackend("api", 80)))},
		},
	})

	c, err := New(Config{
		Client:    nodeClient,
		HTTPAddr:  "127.0.0.1:0",
		HTTPSAddr: "127.0.0.1:0",
		StatusIPs: []string{"192.0.2.10"},
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return within 30s")
		}
	})
	var httpAddr, httpsAddr net.Addr
	eventually(t, func() error {
		if httpAddr, httpsAddr = c.Addrs(); httpAddr == nil {
			return fmt.Errorf("not listening yet")
		}
		return nil
	})
	plain := &proxyClient{addr: httpAddr.String(), scheme: "http"}

	t.Run("routing", func(t *testing.T) {
		for _, tc := range []struct {
			host, path string
			status     int
			backends   []string // any of
		}{
			{"web.example.com", "/", 200, []string{"web-a", "web-b"}},
			{"web.example.com", "/index.html", 200, []string{"web-a", "web-b"}},
			{"WEB.example.com:80", "/", 200, []string{"web-a", "web-b"}},
			{"web.example.com", "/api", 200, []string{"api-a"}},
			{"web.example.com", "/api/x", 200, []string{"api-a"}},
			{"web.example.com", "/apix", 200, []string{"web-a", "web-b"}},
			{"web.example.com", "/api/web", 200, []string{"web-a", "web-b"}},
			{"web.example.com", "/api/../web", 200, []string{"web-a", "web-b"}},
			{"web.example.com", "//api//x", 200, []string{"api-a"}},
			{"api.example.com", "/anything", 200, []string{"api-a"}},
			{"legacy.example.com", "/", 200, []string{"api-a"}},
			{"classless.example.com", "/", 200, []string{"api-a"}},
			{"foreign.example.com", "/", 404, nil},
			{"unknown.example.com", "/", 404, nil},
			{"empty.example.com", "/", 503, nil},
		} {
			t.Run(tc.host+tc.path, func(t *testing.T) {
				eventually(t, func() error {
					r, err := plain.get(tc.host, tc.path)
					if err != nil {
						return err
					}
					if r.status != tc.status {
						return fmt.Errorf("status %d, want %d", r.status, tc.status)
					}
					if tc.backends != nil && !contains(tc.backends, r.backend) {
						return fmt.Errorf("served by %q, want one of %q", r.backend, tc.backends)
					}
					return nil
				})
			})
		}
	})

	t.Run("forwarded headers", func(t *testing.T) {
		r, err := plain.get("web.example.com", "/hdr?q=1")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(httpAddr.String())
		want := map[string]string{
			"Host": "web.example.com", "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http",
			"X-Forwarded-Host": "web.example.com", "X-Forwarded-Port": port, "X-Real-Ip": "127.0.0.1", "Uri": "/hdr?q=1",
		}
		if diff := cmp.Diff(want, r.seen); diff != "" {
			t.Errorf("request seen by the backend (-want +got):\n%s", diff)
		}
	})

	t.Run("round robin", func(t *testing.T) {
		seen := map[string]int{}
		for range 10 {
			r, err := plain.get("web.example.com", "/")
			if err != nil {
				t.Fatal(err)
			}
			seen[r.backend]++
		}
		if diff := cmp.Diff(map[string]int{"web-a": 5, "web-b": 5}, seen); diff != "" {
			t.Errorf("requests per backend (-want +got):\n%s", diff)
		}
	})

	t.Run("tls", func(t *testing.T) {
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(certPEM)
		secure := &proxyClient{addr: httpsAddr.String(), scheme: "https", tls: &tls.Config{RootCAs: roots}}
		// The secret's watch may start after the first table.
		var r *response
		eventually(t, func() error {
			var err error
			r, err = secure.get("web.example.com", "/")
			return err
		})
		if r.status != 200 || r.seen["X-Forwarded-Proto"] != "https" {
			t.Errorf("got status %d, X-Forwarded-Proto %q; want 200, https", r.status, r.seen["X-Forwarded-Proto"])
		}
		if n := c.secrets.watching(); n != 1 {
			t.Errorf("watching %d secrets, want 1 (web-tls)", n)
		}

		// No spec.tls entry for this name: the fallback certificate.
		insecure := &proxyClient{addr: httpsAddr.String(), scheme: "https", tls: &tls.Config{InsecureSkipVerify: true}}
		r, err := insecure.get("api.example.com", "/")
		if err != nil {
			t.Fatal(err)
		}
		if r.status != 200 || r.peerCN != FallbackCommonName {
			t.Errorf("got status %d, certificate %q; want 200, %q", r.status, r.peerCN, FallbackCommonName)
		}
	})

	t.Run("status", func(t *testing.T) {
		want := []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.10"}}
		for _, name := range []string{"main", "legacy", "classless"} {
			eventually(t, func() error {
				ing, err := client.NetworkingV1().Ingresses(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				if diff := cmp.Diff(want, ing.Status.LoadBalancer.Ingress); diff != "" {
					return fmt.Errorf("ingress %s status (-want +got):\n%s", name, diff)
				}
				return nil
			})
		}
		ing, err := client.NetworkingV1().Ingresses(ns).Get(ctx, "foreign", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ing.Status.LoadBalancer.Ingress) != 0 {
			t.Errorf("status of an ingress of another class written: %v", ing.Status.LoadBalancer.Ingress)
		}
	})

	t.Run("default backend", func(t *testing.T) {
		createIngress(ctx, t, client, ns, &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: "fallback"},
			Spec: networkingv1.IngressSpec{
				IngressClassName: ptr.To("skiff"),
				DefaultBackend:   ptr.To(ingBackend("fallback", 80)),
			},
		})
		eventually(t, func() error {
			r, err := plain.get("unknown.example.com", "/")
			if err != nil {
				return err
			}
			if r.status != 200 || r.backend != "fallback-a" {
				return fmt.Errorf("got %d from %q, want 200 from fallback-a", r.status, r.backend)
			}
			return nil
		})
	})

	t.Run("class no longer default", func(t *testing.T) {
		if err := EnsureClass(ctx, client, "skiff", false); err != nil {
			t.Fatalf("EnsureClass: %v", err)
		}
		eventually(t, func() error {
			r, err := plain.get("classless.example.com", "/")
			if err != nil {
				return err
			}
			if r.backend != "fallback-a" {
				return fmt.Errorf("got %d from %q, want the default backend", r.status, r.backend)
			}
			return nil
		})
	})

	t.Run("endpoint removed", func(t *testing.T) {
		es, err := client.DiscoveryV1().EndpointSlices(ns).Get(ctx, "web-b", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		es.Endpoints[0].Conditions.Ready = ptr.To(false)
		if _, err := client.DiscoveryV1().EndpointSlices(ns).Update(ctx, es, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, func() error {
			for range 6 {
				r, err := plain.get("web.example.com", "/")
				if err != nil {
					return err
				}
				if r.backend != "web-a" {
					return fmt.Errorf("served by %q, want only web-a", r.backend)
				}
			}
			return nil
		})

		if err := client.DiscoveryV1().EndpointSlices(ns).Delete(ctx, "web-a", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, func() error {
			r, err := plain.get("web.example.com", "/")
			if err != nil {
				return err
			}
			if r.status != 503 {
				return fmt.Errorf("status %d from %q, want 503", r.status, r.backend)
			}
			return nil
		})
	})
}

// TestRunListenError: Run fails at once when it cannot listen.
func TestRunListenError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if _, err := New(Config{}); err == nil {
		t.Errorf("New without a client: no error")
	}
	c, err := New(Config{Client: kubernetes.New(nil), HTTPAddr: taken.Addr().String(), HTTPSAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); err == nil {
		t.Errorf("Run on a port in use: no error")
	}
	if err := c.Run(context.Background()); err == nil {
		t.Errorf("second Run: no error")
	}
}

// backendServer is an HTTP backend that names itself in X-Backend and
// echoes what it received in X-Seen-* headers.
func backendServer(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-Uri", r.RequestURI)
		for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Real-Ip"} {
			w.Header().Set("X-Seen-"+h, r.Header.Get(h))
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

func createService(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string, ports ...corev1.ServicePort) {
	t.Helper()
	if _, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Ports: ports},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating service %s: %v", name, err)
	}
}

// createSlice points service's port portName at one ready endpoint, the
// address of backend.
func createSlice(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name, service, portName string, backend *httptest.Server) {
	t.Helper()
	u, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(int32(port)), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{u.Hostname()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating endpoint slice %s: %v", name, err)
	}
}

func createIngress(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string, ing *networkingv1.Ingress) {
	t.Helper()
	if _, err := client.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ingress %s: %v", ing.Name, err)
	}
}

// selfSignedPEM makes a self-signed serving certificate for host.
func selfSignedPEM(t *testing.T, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// proxyClient sends requests for any host to the controller's address
// (SNI and Host from the URL, as a client resolving the host to the node
// would).
type proxyClient struct {
	addr, scheme string
	tls          *tls.Config
}

type response struct {
	status  int
	backend string
	seen    map[string]string // X-Seen-* headers without the prefix, when a backend answered
	peerCN  string
}

func (pc *proxyClient) get(host, path string) (*response, error) {
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, pc.addr)
		},
		TLSClientConfig:   pc.tls,
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get(pc.scheme + "://" + host + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return nil, err
	}
	r := &response{status: resp.StatusCode, backend: resp.Header.Get("X-Backend")}
	if r.backend != "" {
		r.seen = map[string]string{}
		for _, h := range []string{"Host", "Uri", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Real-Ip"} {
			r.seen[h] = resp.Header.Get("X-Seen-" + h)
		}
	}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		r.peerCN = resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	return r, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// eventually polls check until it succeeds, failing the test with its
// last error after 20 seconds.
func eventually(t *testing.T, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 20s: %v", err)
		}
		<-tick.C
	}
}

// testWriter sends logs to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
