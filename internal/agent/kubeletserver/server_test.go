package kubeletserver

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

const image = "skiff-test/busybox:1.35"

var t0 = time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)

// logRecord formats a CRI log record sec seconds after t0.
func logRecord(sec int, stream, content string) string {
	return fmt.Sprintf("%s %s F %s\n", t0.Add(time.Duration(sec)*time.Second).Format(time.RFC3339Nano), stream, content)
}

// node is a Fake runtime with pods in it, as the agent would make them.
type node struct {
	t      *testing.T
	rt     *cri.FakeStreaming
	logDir string
}

func newNode(t *testing.T) *node {
	return &node{t: t, rt: cri.NewFakeStreaming(cri.NewFake(image), ""), logDir: t.TempDir()}
}

// pod runs a sandbox for ns/name with uid.
func (n *node) pod(ns, name, uid string) (string, cri.SandboxConfig) {
	n.t.Helper()
	cfg := cri.SandboxConfig{
		Name: name, Namespace: ns, UID: uid,
		LogDir: filepath.Join(n.logDir, ns+"_"+name+"_"+uid),
		Labels: map[string]string{LabelPodName: name, LabelPodNamespace: ns, LabelPodUID: uid},
	}
	id, err := n.rt.RunSandbox(context.Background(), cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	return id, cfg
}

// container creates (and with start, starts) container name's attempt in
// the sandbox, its log file holding log.
func (n *node) container(sbID string, sb cri.SandboxConfig, name string, attempt uint32, start bool, log string) string {
	n.t.Helper()
	ctx := context.Background()
	logPath := fmt.Sprintf("%s/%d.log", name, attempt)
	id, err := n.rt.CreateContainer(ctx, sbID, sb, cri.ContainerConfig{
		Name: name, Attempt: attempt, Image: image, LogPath: logPath,
		Labels: map[string]string{LabelPodName: sb.Name, LabelPodNamespace: sb.Namespace, LabelPodUID: sb.UID, LabelContainerName: name},
	})
	if err != nil {
		n.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(sb.LogDir, name), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sb.LogDir, logPath), []byte(log), 0o644); err != nil {
		n.t.Fatal(err)
	}
	if start {
		if err := n.rt.StartContainer(ctx, id); err != nil {
			n.t.Fatal(err)
		}
	}
	return id
}

func newServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	if cfg.LogPollInterval == 0 {
		cfg.LogPollInterval = 5 * time.Millisecond
	}
	if cfg.AttachSettle == 0 {
		cfg.AttachSettle = -1 // TestAttachSettles covers the wait
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestContainerLogs(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	sbID, sb := n.pod("default", "web", "uid-1")
	old := n.container(sbID, sb, "app", 0, true, logRecord(0, "stdout", "first run")+logRecord(1, "stderr", "crashed"))
	n.rt.Exit(old, 1, "")
	n.container(sbID, sb, "app", 1, true, logRecord(10, "stdout", "second run")+logRecord(11, "stdout", "serving"))
	n.container(sbID, sb, "sidecar", 0, false, "")
	// A pod of the same name deleted before: its containers are not
	// this pod's.
	gone, goneSB := n.pod("default", "web", "uid-0")
	n.container(gone, goneSB, "app", 7, true, logRecord(0, "stdout", "the old pod"))
	if err := n.rt.StopSandbox(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, Config{Runtime: n.rt})

	tests := []struct {
		name     string
		path     string
		wantCode int
		want     string
	}{
		{"current", "/containerLogs/default/web/app", 200, "second run\nserving\n"},
		{"tail", "/containerLogs/default/web/app?tailLines=1", 200, "serving\n"},
		{"timestamps", "/containerLogs/default/web/app?timestamps=true&limitBytes=40",
			200, "2026-11-22T07:00:10.000000000Z second ru"},
		{"sinceTime", "/containerLogs/default/web/app?sinceTime=2026-11-22T07:00:11Z", 200, "serving\n"},
		{"sinceSeconds", "/containerLogs/default/web/app?sinceSeconds=60", 200, ""},
		{"previous", "/containerLogs/default/web/app?previous=true", 200, "first run\ncrashed\n"},
		{"previous of a first run", "/containerLogs/default/web/sidecar?previous=true",
			400, "previous terminated container \"sidecar\" in pod \"web\" not found\n"},
		{"waiting", "/containerLogs/default/web/sidecar", 400, "container \"sidecar\" in pod \"web\" is waiting to start: ContainerCreating\n"},
		{"no such pod", "/containerLogs/default/nope/app", 400, "container \"app\" in pod \"nope\" is waiting to start: ContainerCreating\n"},
		{"bad tail", "/containerLogs/default/web/app?tailLines=-1", 400, "tailLines must be at least 0\n"},
		{"since twice", "/containerLogs/default/web/app?sinceSeconds=1&sinceTime=2026-11-22T07:00:11Z",
			400, "at most one of sinceTime or sinceSeconds may be specified\n"},
		{"follow of an exited container ends", "/containerLogs/default/web/app?previous=true&follow=true", 200, "first run\ncrashed\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, ts.URL+tc.path)
			if code != tc.wantCode {
				t.Errorf("GET %s: %d %q, want %d", tc.path, code, body, tc.wantCode)
			}
			if diff := cmp.Diff(tc.want, body); diff != "" {
				t.Errorf("GET %s body (-want +got):\n%s", tc.path, diff)
			}
		})
	}
}

// TestContainerLogsFollow streams a running container's log until it
// exits.
func TestContainerLogsFollow(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	sbID, sb := n.pod("default", "web", "uid-1")
	id := n.container(sbID, sb, "app", 0, true, logRecord(0, "stdout", "one"))
	ts := newServer(t, Config{Runtime: n.rt})

	resp, err := http.Get(ts.URL + "/containerLogs/default/web/app?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	r := bufio.NewReader(resp.Body)
	readLine := func(want string) {
		t.Helper()
		line, err := r.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("read %q, %v; want %q", line, err, want)
		}
	}
	readLine("one\n")
	f, err := os.OpenFile(filepath.Join(sb.LogDir, "app/0.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(logRecord(1, "stdout", "two"))
	readLine("two\n")
	f.WriteString(logRecord(2, "stderr", "three"))
	n.rt.Exit(id, 0, "")
	readLine("three\n")
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Errorf("after the exit: %q, %v; want the end of the stream", rest, err)
	}
}

// upgradeEcho is a streaming server as containerd's: it answers an upgrade
// request with 101, then echoes what it reads; when the client half-closes
// it sends "bye" and closes.
type upgradeEcho struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (u *upgradeEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.reqs = append(u.reqs, r.Clone(context.Background()))
	u.mu.Unlock()
	if r.Header.Get("Upgrade") == "" {
		http.Error(w, "Upgrade request required", http.StatusBadRequest)
		return
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\nX-Stream-Protocol-Version: %s\r\n\r\n",
		r.Header.Get("Upgrade"), r.Header.Get("X-Stream-Protocol-Version"))
	io.Copy(conn, buf)
	conn.Write([]byte("bye"))
}

func (u *upgradeEcho) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.reqs...)
}

// upgrade sends an upgrade request on a new connection to addr (over TLS
// with tlsCfg when set) and returns the connection once it reads a 101.
func upgrade(t *testing.T, addr string, tlsCfg *tls.Config, method, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	var conn net.Conn
	var err error
	if tlsCfg != nil {
		conn, err = tls.Dial("tcp", addr, tlsCfg)
	} else {
		conn, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n", method, path, addr)
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: %s %q, want 101", method, path, resp.Status, b)
	}
	if got := resp.Header.Get("X-Stream-Protocol-Version"); got != "v4.channel.k8s.io" {
		t.Errorf("X-Stream-Protocol-Version = %q, want v4.channel.k8s.io", got)
	}
	return conn, r
}

// echoRoundTrip checks bytes flow both ways and a half-close is passed on.
func echoRoundTrip(t *testing.T, conn net.Conn, r *bufio.Reader) {
	t.Helper()
	conn.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
	conn.Write([]byte(" again"))
	buf = make([]byte, 6)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != " again" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
	if err := conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "bye" {
		t.Errorf("after the half-close: %q, %v; want %q and the end", rest, err, "bye")
	}
}

func TestStreamingProxy(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	sbID, sb := n.pod("default", "web", "uid-1")
	old := n.container(sbID, sb, "app", 0, true, "")
	n.rt.Exit(old, 1, "")
	app := n.container(sbID, sb, "app", 1, true, "")
	n.container(sbID, sb, "waiting", 0, false, "")
	term, err := n.rt.CreateContainer(context.Background(), sbID, sb, cri.ContainerConfig{
		Name: "term", Image: image, LogPath: "term/0.log", Annotations: map[string]string{cri.AnnotationTTY: "true"},
		Labels: map[string]string{LabelPodName: "web", LabelPodNamespace: "default", LabelPodUID: "uid-1", LabelContainerName: "term"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.rt.StartContainer(context.Background(), term); err != nil {
		t.Fatal(err)
	}
	backend := &upgradeEcho{}
	streaming := httptest.NewServer(backend)
	t.Cleanup(streaming.Close)
	n.rt.SetStreamingURL(streaming.URL)
	ts := newServer(t, Config{Runtime: n.rt})
	addr := strings.TrimPrefix(ts.URL, "http://")

	tests := []struct {
		name, method, path string
		want               cri.StreamingEntry
	}{
		{"exec", "POST", "/exec/default/web/app?command=sh&command=-c&command=echo+hi&stdin=1&stdout=1&stderr=1",
			cri.StreamingEntry{Exec: &cri.ExecRequest{ContainerID: app, Cmd: []string{"sh", "-c", "echo hi"}, Stdin: true, Stdout: true, Stderr: true}}},
		{"exec with uid and tty", "GET", "/exec/default/web/uid-1/app?command=sh&stdin=true&stdout=true&stderr=true&tty=true",
			cri.StreamingEntry{Exec: &cri.ExecRequest{ContainerID: app, Cmd: []string{"sh"}, TTY: true, Stdin: true, Stdout: true}}},
		{"attach", "POST", "/attach/default/web/app?stdout=1",
			cri.StreamingEntry{Attach: &cri.AttachRequest{ContainerID: app, Stdout: true}}},
		// kubectl run -it without a terminal asks for no TTY; the
		// container has one, and that decides (stderr goes with it).
		{"attach to a TTY container", "POST", "/attach/default/web/term?stdin=1&stdout=1&stderr=1",
			cri.StreamingEntry{Attach: &cri.AttachRequest{ContainerID: term, TTY: true, Stdin: true, Stdout: true}}},
		{"portForward", "POST", "/portForward/default/web",
			cri.StreamingEntry{PortForward: &cri.PortForwardEntry{SandboxID: sbID}}},
		{"portForward with uid and ports", "GET", "/portForward/default/web/uid-1?port=8080&port=53",
			cri.StreamingEntry{PortForward: &cri.PortForwardEntry{SandboxID: sbID, Ports: []int32{8080, 53}}}},
	}
	for i, tc := range tests {
		conn, r := upgrade(t, addr, nil, tc.method, tc.path)
		echoRoundTrip(t, conn, r)
		sessions := n.rt.Sessions()
		if len(sessions) != i+1 {
			t.Fatalf("%s: %d sessions, want %d", tc.name, len(sessions), i+1)
		}
		got := sessions[i]
		if diff := cmp.Diff(tc.want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".URL" }, cmp.Ignore())); diff != "" {
			t.Errorf("%s: runtime call (-want +got):\n%s", tc.name, diff)
		}
		reqs := backend.requests()
		req := reqs[len(reqs)-1]
		if req.URL.Path != strings.TrimPrefix(got.URL, streaming.URL) || req.Method != tc.method ||
			req.Header.Get("Upgrade") != "SPDY/3.1" || req.Header.Get("X-Stream-Protocol-Version") != "v4.channel.k8s.io" {
			t.Errorf("%s: streaming server got %s %s with %v; want %s %s with the upgrade headers", tc.name, req.Method, req.URL, req.Header, tc.method, got.URL)
		}
	}

	errs := []struct {
		name, path string
		wantCode   int
		want       string
	}{
		{"no such container", "/exec/default/web/nope?command=sh&stdout=1", 404, "container not found (\"nope\")\n"},
		{"not running", "/exec/default/web/waiting?command=sh&stdout=1", 400, "container \"waiting\" in pod \"web\" is not running\n"},
		{"no command", "/exec/default/web/app?stdout=1", 400, "you must specify at least one command for the container\n"},
		{"no streams", "/exec/default/web/app?command=sh", 400, "you must specify at least 1 of stdin, stdout, stderr\n"},
		{"no such pod", "/portForward/default/nope", 404, "pod \"default/nope\" not found\n"},
		{"other uid", "/portForward/default/web/uid-2", 404, "pod \"default/web\" not found\n"},
		{"bad port", "/portForward/default/web?port=x", 400, "invalid port \"x\"\n"},
		{"streaming server refuses", "/exec/default/web/app?command=sh&stdout=1", 400, "Upgrade request required\n"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, ts.URL+tc.path)
			if code != tc.wantCode || body != tc.want {
				t.Errorf("GET %s = %d %q, want %d %q", tc.path, code, body, tc.wantCode, tc.want)
			}
		})
	}
}

// pki is a CA and a client certificate it signed.
type pki struct {
	pool   *x509.CertPool
	client tls.Certificate
}

func newPKI(t *testing.T) pki {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, clientKey := key(), key()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver-kubelet-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &clientKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pki{pool: pool, client: tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: clientKey}}
}

// TestServe serves over TLS with a self-signed certificate and checks
// client certificates, the stats summary, and an exec proxied over TLS.
func TestServe(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	n := newNode(t)
	sbID, sb := n.pod("default", "web", "uid-1")
	n.container(sbID, sb, "app", 0, true, logRecord(0, "stdout", "hi"))
	streaming := httptest.NewServer(&upgradeEcho{})
	t.Cleanup(streaming.Close)
	n.rt.SetStreamingURL(streaming.URL)
	s, err := New(Config{
		Runtime:   n.rt,
		ClientCAs: p.pool,
		Summary: func(context.Context) (any, error) {
			return map[string]any{"node": map[string]string{"nodeName": "node-1"}}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := SelfSignedCert(t.TempDir(), []string{"node-1", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, cert) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(3 * time.Second): // less than Serve's grace for requests
			t.Errorf("Serve did not return within 3s of its context's end")
		}
	}
	t.Cleanup(stop)

	servingCA := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	servingCA.AddCert(leaf)
	withCert := &tls.Config{RootCAs: servingCA, Certificates: []tls.Certificate{p.client}}
	withoutCert := &tls.Config{RootCAs: servingCA}
	base := "https://" + ln.Addr().String()
	tests := []struct {
		name     string
		tls      *tls.Config
		path     string
		wantCode int
		want     string
	}{
		{"healthz needs no cert", withoutCert, "/healthz", 200, "ok"},
		{"logs need a cert", withoutCert, "/containerLogs/default/web/app", 401, "Unauthorized\n"},
		{"logs", withCert, "/containerLogs/default/web/app", 200, "hi\n"},
		{"summary", withCert, "/stats/summary", 200, `{"node":{"nodeName":"node-1"}}`},
		{"unknown path", withCert, "/spec", 404, "404 page not found\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc.tls}}
			defer c.CloseIdleConnections()
			resp, err := c.Get(base + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode || string(b) != tc.want {
				t.Errorf("GET %s = %d %q, want %d %q", tc.path, resp.StatusCode, b, tc.wantCode, tc.want)
			}
		})
	}
	t.Run("exec over TLS", func(t *testing.T) {
		withCert := withCert.Clone()
		withCert.NextProtos = []string{"http/1.1"}
		conn, r := upgrade(t, ln.Addr().String(), withCert, "POST", "/exec/default/web/app?command=sh&stdin=1&stdout=1")
		echoRoundTrip(t, conn, r)
	})
	t.Run("shutdown ends open streams", func(t *testing.T) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: withCert}}
		resp, err := c.Get(base + "/containerLogs/default/web/app?follow=true")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "hi\n" {
			t.Fatalf("follow: %q, %v", line, err)
		}
		stop()
		if _, err := io.ReadAll(resp.Body); err != nil {
			t.Logf("stream ended with %v", err)
		}
	})
}

func TestSelfSignedCert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := SelfSignedCert(dir, []string{"node-1", "10.0.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(first.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("10.0.0.5"); err != nil {
		t.Errorf("VerifyHostname(10.0.0.5): %v", err)
	}
	if err := leaf.VerifyHostname("node-1"); err != nil {
		t.Errorf("VerifyHostname(node-1): %v", err)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 364*24*time.Hour {
		t.Errorf("valid for %v, want a year", d)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want mode 0600", fi, err)
	}
	again, err := SelfSignedCert(dir, []string{"10.0.0.5", "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(first.Certificate, again.Certificate) {
		t.Errorf("a valid certificate was not reused")
	}
	other, err := SelfSignedCert(dir, []string{"node-1", "10.0.0.6"})
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Equal(first.Certificate, other.Certificate) {
		t.Errorf("the certificate was reused for a new address")
	}
}

// TestPods: /pods lists the node's pods as a v1 PodList (404 without a
// source).
func TestPods(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	running := []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "kube-system"}},
	}
	ts := newServer(t, Config{Runtime: n.rt, Pods: func() []*corev1.Pod { return running }})
	code, body := get(t, ts.URL+"/pods")
	if code != http.StatusOK {
		t.Fatalf("GET /pods: %d %s", code, body)
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	if list.Kind != "PodList" || len(list.Items) != 2 || list.Items[1].Namespace != "kube-system" {
		t.Errorf("pod list %+v", list)
	}
	if code, _ := get(t, newServer(t, Config{Runtime: n.rt}).URL+"/pods"); code != http.StatusNotFound {
		t.Errorf("GET /pods without a source: %d, want 404", code)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	text := func(s string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, s) })
	}
	ts := newServer(t, Config{Runtime: n.rt, Metrics: text("kubelet_running_pods 2\n"), ResourceMetrics: text("resource_scrape_error 0\n")})
	for path, want := range map[string]string{"/metrics": "kubelet_running_pods 2\n", "/metrics/resource": "resource_scrape_error 0\n"} {
		if code, body := get(t, ts.URL+path); code != http.StatusOK || body != want {
			t.Errorf("GET %s: %d %q, want 200 %q", path, code, body, want)
		}
	}
	bare := newServer(t, Config{Runtime: n.rt})
	for _, path := range []string{"/metrics", "/metrics/resource"} {
		if code, _ := get(t, bare.URL+path); code != http.StatusNotFound {
			t.Errorf("GET %s without a handler: %d, want 404", path, code)
		}
	}
}

// TestAttachSettles: an attach to a container that started moments ago
// waits until it has run for the settle time, and is refused when the
// container exits first (kubectl then prints its logs); one that has run
// longer is attached at once.
func TestAttachSettles(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	sbID, sb := n.pod("default", "web", "uid-1")
	n.rt.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	n.container(sbID, sb, "old", 0, true, "")
	n.rt.Now = nil
	quick := n.container(sbID, sb, "quick", 0, true, "")
	streaming := httptest.NewServer(&upgradeEcho{})
	t.Cleanup(streaming.Close)
	n.rt.SetStreamingURL(streaming.URL)

	// A settle time longer than the test: only an attach that does not
	// wait can succeed.
	long := newServer(t, Config{Runtime: n.rt, AttachSettle: time.Hour})
	conn, r := upgrade(t, strings.TrimPrefix(long.URL, "http://"), nil, "POST", "/attach/default/web/old?stdout=1")
	echoRoundTrip(t, conn, r)

	go func() {
		time.Sleep(50 * time.Millisecond)
		n.rt.Exit(quick, 0, "Completed")
	}()
	resp, err := http.Post(long.URL+"/attach/default/web/quick?stdout=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "is not running") {
		t.Errorf("attach to a container exiting while it settles: %s %q, want 400 and not running", resp.Status, body)
	}

	const settle = 200 * time.Millisecond
	short := newServer(t, Config{Runtime: n.rt, AttachSettle: settle})
	start := time.Now()
	n.container(sbID, sb, "fresh", 0, true, "")
	conn, r = upgrade(t, strings.TrimPrefix(short.URL, "http://"), nil, "POST", "/attach/default/web/fresh?stdout=1")
	if d := time.Since(start); d < settle {
		t.Errorf("attach to a fresh container answered after %v, want it to wait for the settle time (%v)", d, settle)
	}
	echoRoundTrip(t, conn, r)
}
