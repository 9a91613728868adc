package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/internal/controllermanager"
	"github.com/skiff-dev/skiff/internal/server"
)

// sharedServer is the server most tests use, each in its own namespace.
// TestMain starts it before any test and stops it after all of them; tests
// only read it.
var sharedServer *testServer

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "skiff-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating data dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	s, err := startServer(dir, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the shared server:", err)
		return 1
	}
	sharedServer = s
	code := m.Run()
	if err := s.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the shared server:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// testServer is one in-process server: internal/server.Run in a goroutine.
type testServer struct {
	dir    string
	listen string
	cancel context.CancelFunc
	// done receives Run's result once.
	done   chan error
	config *rest.Config
}

// startupTimeout bounds the wait for a server to become ready.
const startupTimeout = 60 * time.Second

// startServer starts a server on the data dir dir, listening on listen
// (empty picks a free loopback port), and waits until it is ready: its
// kubeconfig is written and /readyz answers ok. Logs go to stderr when
// SKIFF_TEST_LOG is set, and are discarded otherwise.
func startServer(dir, listen string) (*testServer, error) {
	if listen == "" {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		listen = fmt.Sprintf("127.0.0.1:%d", port)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	// A kubeconfig left by an earlier run must not count as ready.
	if err := os.Remove(kubeconfig); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing old kubeconfig: %w", err)
	}
	logger := slog.New(slog.DiscardHandler)
	var progress io.Writer = io.Discard
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		progress = os.Stderr
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{dir: dir, listen: listen, cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- server.Run(ctx, server.Config{DataDir: dir, Listen: listen, Logger: logger, Progress: progress,
			// No service account controller runs here (see testserver).
			DisableAdmissionPlugins: []string{"ServiceAccount"}, Components: []server.Component{{
				// The namespace controller, for namespace deletion; the other
				// controllers would add their own writes to what the informer
				// tests expect to see.
				Name: "controller-manager",
				Run: func(ctx context.Context, env server.Env) error {
					return controllermanager.Run(ctx, controllermanager.Config{RestConfig: env.Config, Logger: env.Logger, Controllers: []string{"namespace"}})
				},
			}}})
	}()

	deadline := time.Now().Add(startupTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			cancel()
			return nil, fmt.Errorf("server exited during start-up: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			lastErr = err
			continue
		}
		cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			lastErr = err
			continue
		}
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		rcancel()
		if err != nil {
			lastErr = err
			continue
		}
		s.config = cfg
		return s, nil
	}
	cancel()
	<-s.done
	return nil, fmt.Errorf("server not ready within %v: %w", startupTimeout, lastErr)
}

// stop cancels the server and waits for Run to return. Cancellation is not
// an error.
func (s *testServer) stop() error {
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("server exited: %w", err)
		}
		return nil
	case <-time.After(60 * time.Second):
		return errors.New("server did not stop within 60s")
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// clients returns a typed clientset for s.
func (s *testServer) clientset(t *testing.T) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(rest.CopyConfig(s.config))
	if err != nil {
		t.Fatalf("building clientset: %v", err)
	}
	return cs
}

// nsCounter makes namespace names unique within a run.
var nsCounter atomic.Int64

// newNamespace creates a namespace named after the test and deletes it when
// the test ends (without waiting for it to go).
func newNamespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	base := strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	name := fmt.Sprintf("%s-%d", base, nsCounter.Add(1))
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %q: %v", name, err)
	}
	t.Cleanup(func() {
		err := cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Logf("deleting namespace %q: %v", name, err)
		}
	})
	return name
}

// eventually calls f until it returns nil or timeout passes, and then fails
// the test with f's last error.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done within %v: %v", what, timeout, err)
		}
		<-time.After(20 * time.Millisecond) // poll interval, bounded by the deadline
	}
}

// testContext returns a context that ends with the test or after timeout.
func testContext(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}
