package testserver

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/internal/server"
)

// Options tune Start.
type Options struct {
	// Components also run against the server (by default only etcd and
	// the API server run), each as its Identity when it has one.
	Components []server.Component
	// DataDir is the server's data dir; empty means a fresh temporary
	// one. Components that read the data dir (the controller manager's
	// signing key, DataDir/pki/ca.key) need it known in advance.
	DataDir string
	// AllAdmissionPlugins runs the ServiceAccount admission plugin too;
	// pods are then refused until their namespace's service account
	// exists (no controller creates it unless Components has one).
	AllAdmissionPlugins bool
}

// Server is a server started by StartServer.
type Server struct {
	// Admin is an admin client configuration (system:masters; not rate
	// limited).
	Admin *rest.Config
	// DataDir is the server's data dir.
	DataDir string

	mu    sync.Mutex // serializes certificate issuing
	certs *pki.Bundle
}

// Start runs a server for the rest of the test and returns an admin client
// configuration for it (not rate limited). Server logs go to t.Log when the
// environment variable SKIFF_TEST_LOG is set.
func Start(t testing.TB, opts Options) *rest.Config {
	t.Helper()
	return StartServer(t, opts).Admin
}

// StartServer is Start returning the Server, which also issues client
// configurations for other users (ConfigFor).
func StartServer(t testing.TB, opts Options) *Server {
	t.Helper()
	// As upstream's integration tests: without a service account
	// controller no pod would be admitted. Tests of that plugin (and the
	// e2e tests, with the real binary) have it.
	disabled := []string{"ServiceAccount"}
	if opts.AllAdmissionPlugins {
		disabled = nil
	}
	dir := opts.DataDir
	if dir == "" {
		dir = t.TempDir()
	}
	listen, err := freeAddr()
	if err != nil {
		t.Fatalf("testserver: picking a port: %v", err)
	}
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{
			DataDir: dir,
			Listen:  listen,
			// No pods reach a test server: it stays on loopback.
			AdvertiseAddress:        "127.0.0.1",
			Components:              opts.Components,
			Logger:                  logger,
			Progress:                io.Discard,
			DisableAdmissionPlugins: disabled,
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("testserver: server stopped with: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("testserver: server did not stop within 30s")
		}
	})

	kubeconfig := filepath.Join(dir, "kubeconfig")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(kubeconfig); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("testserver: server exited before it was ready: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("testserver: server not ready within 60s")
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("testserver: reading kubeconfig: %v", err)
	}
	cfg.QPS = -1
	// The server wrote its certificates before it served; loading them
	// with the same names issues nothing new.
	certs, err := pki.Ensure(pki.Options{Dir: filepath.Join(dir, "pki"), Hosts: []string{listenHost(listen)}})
	if err != nil {
		t.Fatalf("testserver: loading the certificates: %v", err)
	}
	return &Server{Admin: cfg, DataDir: dir, certs: certs}
}

// ConfigFor returns a client configuration (not rate limited) that
// authenticates as user in groups with a client certificate from the
// cluster CA, as the server's own components and joined nodes do (for a
// node: "system:node:<name>" in "system:nodes"). The API server adds
// system:authenticated.
func (s *Server) ConfigFor(t testing.TB, user string, groups ...string) *rest.Config {
	t.Helper()
	sum := sha256.Sum256([]byte(user + "\x00" + strings.Join(groups, "\x00")))
	s.mu.Lock()
	certPEM, keyPEM, err := s.certs.ClientCert(fmt.Sprintf("test-user-%x", sum[:8]), user, groups)
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("testserver: client certificate for %s: %v", user, err)
	}
	cfg := rest.AnonymousClientConfig(s.Admin)
	cfg.TLSClientConfig.CertData, cfg.TLSClientConfig.KeyData = certPEM, keyPEM
	cfg.QPS = -1
	return cfg
}

func listenHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// Client returns a typed clientset for cfg, failing the test on error.
func Client(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("testserver: building client: %v", err)
	}
	return c
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tlogWriter sends server logs to the test's log.
type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

var _ io.Writer = tlogWriter{}
