package etcdtest

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiff-dev/skiff/internal/etcd"
)

// Start starts a fresh embedded etcd member and returns a client connected
// to it (in-process, as the server's own). The member and client are
// closed when t's cleanups run; the caller must not Close the client.
func Start(t testing.TB) *clientv3.Client {
	t.Helper()
	return start(t).Client()
}

// StartEndpoints is Start, and also returns the member's client URLs, for
// tests of components that connect to an external etcd.
func StartEndpoints(t testing.TB) (*clientv3.Client, []string) {
	t.Helper()
	e := start(t)
	return e.Client(), e.Endpoints()
}

func start(t testing.TB) *etcd.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &testWriter{t: t}
	e, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{
		DataDir:       filepath.Join(t.TempDir(), "etcd"),
		UnsafeNoFsync: true,
		Logger:        slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("starting embedded etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("stopping embedded etcd: %v", err)
		}
		w.done.Store(true) // etcd goroutines may log after the test ends
	})
	return e
}

// testWriter sends log lines to t.Log until done is set.
type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(string(p))
	}
	return len(p), nil
}
