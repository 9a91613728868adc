package apiserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/etcd/etcdtest"
	"github.com/skiff-dev/skiff/internal/openapi"
	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/registry/builtin"
	"github.com/skiff-dev/skiff/internal/storage"
)

// testResources are the built-in resources the tests serve.
var testResources = []string{"pods", "configmaps", "namespaces", "nodes", "replicationcontrollers", "services", "endpointslices",
	"deployments", "replicasets", "statefulsets", "events"}

// testEnv is one API server on a real embedded etcd, served over TLS.
type testEnv struct {
	server *Server
	ts     *httptest.Server
	// admin authenticates with a client certificate (CN admin, O
	// system:masters), user with one for CN alice, O devs; anon has no
	// certificate.
	admin, user, anon *http.Client
	adminConfig       *rest.Config
	// ca and caKey issue client certificates the server accepts.
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
}

type envOption func(*Config)

func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	client := etcdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var stores []*registry.Store
	for _, res := range builtin.Resources() {
		if !slices.Contains(testResources, res.GVR.Resource) {
			continue
		}
		st, err := storage.New(ctx, storage.Config{
			Client:      client,
			Prefix:      "/registry/" + res.GVR.Group + "/" + res.GVR.Resource + "/",
			Resource:    res.GroupResource(),
			Codec:       storage.ProtobufCodec(scheme, res.GVR.GroupVersion()),
			NewFunc:     res.Strategy.New,
			NewListFunc: res.Strategy.NewList,
			Attrs:       res.Strategy.Attrs,
			Logger:      logger,
		})
		if err != nil {
			t.Fatalf("storage for %s: %v", res.GVR, err)
		}
		stores = append(stores, registry.NewStore(res, st, registry.StoreOptions{Logger: logger}))
	}
	var served []*registry.Resource
	for _, st := range stores {
		served = append(served, st.Resource)
	}
	schemas, err := openapi.Schemas(served)
	if err != nil {
		t.Fatalf("openapi schemas: %v", err)
	}
	typeConverter, err := managedfields.NewTypeConverter(schemas, false)
	if err != nil {
		t.Fatalf("type converter: %v", err)
	}
	ca, caKey := newCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cfg := Config{
		Stores:        stores,
		Scheme:        scheme,
		ClientCAs:     pool,
		Logger:        logger,
		TypeConverter: typeConverter,
		Version:       version.Info{Major: "1", Minor: "33", GitVersion: "v1.33.0+skiff"},
		Discovery: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"kind":"APIVersions","versions":["v1"]}`)
		}),
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.EnableHTTP2 = true
	ts.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	t.Cleanup(srv.beginShutdown) // end watches before ts.Close waits for them

	certPEM, keyPEM := issueClient(t, ca, caKey, "admin", []string{"system:masters"})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	admin := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	userCert, userKey := issueClient(t, ca, caKey, "alice", []string{"devs"})
	userPair, err := tls.X509KeyPair(userCert, userKey)
	if err != nil {
		t.Fatal(err)
	}
	user := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{userPair}}}}
	t.Cleanup(user.CloseIdleConnections)
	t.Cleanup(admin.CloseIdleConnections)
	t.Cleanup(anon.CloseIdleConnections)
	return &testEnv{
		server: srv, ts: ts, admin: admin, user: user, anon: anon, ca: ca, caKey: caKey,
		adminConfig: &rest.Config{
			Host: ts.URL,
			TLSClientConfig: rest.TLSClientConfig{
				CAData:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}),
				CertData: certPEM,
				KeyData:  keyPEM,
			},
		},
	}
}

func (e *testEnv) clientset(t *testing.T) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(e.adminConfig)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// do sends one request as admin and returns status, headers and body.
func (e *testEnv) do(t *testing.T, method, path string, header map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	return doWith(t, e.admin, method, e.ts.URL+path, header, body)
}

func doWith(t *testing.T, c *http.Client, method, url string, header map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newCA(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func issueClient(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, orgs []string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// poll calls f until it returns nil or the deadline passes, then fails
// with f's last error.
func poll(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("condition not met within %v: %v", timeout, err)
		case <-tick.C:
		}
	}
}

// adminKubeconfig writes a kubeconfig for e's admin (its client
// certificate) and returns its path, for the tests with stock kubectl.
func (e *testEnv) adminKubeconfig(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	tc := e.adminConfig.TLSClientConfig
	if err := pki.WriteKubeconfig(path, e.ts.URL, tc.CAData, tc.CertData, tc.KeyData); err != nil {
		t.Fatal(err)
	}
	return path
}
