package testserver

import (
	"context"

	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/internal/server"
)

// Options tune Start.
type Options struct {
	// Components also run against the server (by default only etcd and
	// the API server run).
	Components []server.Component
}

// Start runs a server for the rest of the test and returns an admin client
// configuration for it (not rate limited). Server logs go to t.Log when the
// environment variable SKIFF_TEST_LOG is set.
func Start(t testing.TB, opts Options) *rest.Config {
	t.Helper()
	dir := t.TempDir()
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
			DataDir:    dir,
			Listen:     listen,
			Components: opts.Components,
			Logger:     logger,
			Progress:   io.Discard,
			// As upstream's integration tests: without a service account
			// controller no pod would be admitted. Tests of that plugin
			// (and the e2e tests, with the real binary) have it.
			DisableAdmissionPlugins: []string{"ServiceAccount"},
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
	return cfg
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
