package apiserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFilters(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	env := newTestEnv(t, func(c *Config) {
		c.MaxInFlight = 1
		c.Discovery = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/apis":
				entered <- struct{}{}
				<-release
			case "/api":
				panic("boom")
			case "/apis/slow":
				<-r.Context().Done()
				<-release
				_, _ = w.Write([]byte("too late"))
			}
		})
	})
	done := make(chan int)
	go func() {
		code, _, _ := doWith(t, env.user, "GET", env.ts.URL+"/apis", nil, "")
		done <- code
	}()
	<-entered
	code, header, body := doWith(t, env.user, "GET", env.ts.URL+"/api/v1/namespaces/default/configmaps", nil, "")
	var st metav1.Status
	_ = json.Unmarshal([]byte(body), &st)
	if code != http.StatusTooManyRequests || st.Reason != metav1.StatusReasonTooManyRequests || header.Get("Retry-After") != "1" {
		t.Errorf("over the in-flight limit: %d %v %s", code, header, body)
	}
	// Watches are long-running and not limited.
	req, err := http.NewRequest("GET", env.ts.URL+"/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := env.user.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Errorf("watch while limited: %d", resp.StatusCode)
	}
	// system:masters is exempt from the limit.
	if code, _, body := env.do(t, "GET", "/api/v1/namespaces/default/configmaps", nil, ""); code != 200 {
		t.Errorf("admin while limited: %d %s", code, body)
	}
	start := time.Now()
	_, _ = resp.Body.Read(make([]byte, 1)) // ends at timeoutSeconds
	resp.Body.Close()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("watch with timeoutSeconds=1 lasted %v", d)
	}
	close(release)
	if code := <-done; code != 200 {
		t.Errorf("blocked request finished with %d", code)
	}

	code, header, body = env.do(t, "GET", "/apis/slow?timeout=200ms", nil, "")
	st = metav1.Status{}
	_ = json.Unmarshal([]byte(body), &st)
	if code != http.StatusGatewayTimeout || st.Reason != metav1.StatusReasonTimeout || header.Get("Retry-After") == "" {
		t.Errorf("slow request: %d %v %s", code, header, body)
	}
	code, _, body = env.do(t, "GET", "/api", nil, "")
	st = metav1.Status{}
	_ = json.Unmarshal([]byte(body), &st)
	if code != 500 || st.Reason != metav1.StatusReasonInternalError {
		t.Errorf("panicking handler: %d %s", code, body)
	}
	if code, _, _ := env.do(t, "GET", "/api/v1/namespaces/default/configmaps", nil, ""); code != 200 {
		t.Errorf("after a panic: %d", code)
	}
}

func TestYAML(t *testing.T) {
	env := newTestEnv(t)
	hdr := map[string]string{"Content-Type": "application/yaml", "Accept": "application/yaml"}
	code, header, body := env.do(t, "POST", "/api/v1/namespaces/default/configmaps", hdr, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yml\ndata:\n  k: v\n")
	if code != 201 || header.Get("Content-Type") != "application/yaml" || !strings.Contains(body, "kind: ConfigMap") || !strings.Contains(body, "k: v") {
		t.Errorf("YAML create: %d %v\n%s", code, header, body)
	}
	code, _, body = env.do(t, "POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", hdr, "metadata:\n  name: z\nbogus: 1\n")
	if code != 400 || !strings.Contains(body, `unknown field \"bogus\"`) {
		t.Errorf("YAML strict: %d %s", code, body)
	}
}

func TestServeShutdown(t *testing.T) {
	env := newTestEnv(t)
	ca, caKey := newCA(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "server"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- env.server.Serve(ctx, ln, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	}()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	// The admin certificate from the test env is signed by another CA:
	// reuse its key pair through the env's transport settings.
	adminTLS := env.admin.Transport.(*http.Transport).TLSClientConfig.Clone()
	adminTLS.RootCAs = roots
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: adminTLS}}
	defer client.CloseIdleConnections()
	url := "https://" + ln.Addr().String()
	var resp *http.Response
	poll(t, 10*time.Second, func() error {
		var err error
		resp, err = client.Get(url + "/api/v1/namespaces/default/configmaps?watch=true")
		return err
	})
	if resp.StatusCode != 200 {
		t.Fatalf("watch over Serve: %d", resp.StatusCode)
	}
	if code, _, _ := doWith(t, client, "GET", url+"/readyz", nil, ""); code != 200 {
		t.Errorf("readyz before shutdown: %d", code)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	_, err = resp.Body.Read(make([]byte, 1))
	if err == nil {
		t.Errorf("watch still open after shutdown")
	}
	resp.Body.Close()
}

// A watch asked for once the server is shutting down gets a 429 with
// Retry-After rather than a stream that ends at once: client-go's
// reflectors retry the former from their resource version, but relist
// after the latter.
func TestWatchWhileShuttingDown(t *testing.T) {
	env := newTestEnv(t)
	env.server.beginShutdown()
	code, header, body := env.do(t, "GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1", nil, "")
	if code != http.StatusTooManyRequests || header.Get("Retry-After") != "1" || !strings.Contains(body, `"reason":"TooManyRequests"`) {
		t.Errorf("watch while shutting down: %d Retry-After=%q\n%s", code, header.Get("Retry-After"), body)
	}
}
