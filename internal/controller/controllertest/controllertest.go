// Package controllertest runs one controller against a real, in-process
// API server for its integration tests, and polls for what it should
// bring about. It is for tests only.
package controllertest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// Runner is a constructed controller.
type Runner interface {
	Run(ctx context.Context, workers int) error
}

// Run starts an API server (etcd and API only), builds a controller with
// build from Deps over it (an informer factory, a fake event recorder and
// a logger into the test's log), starts the informers and runs the
// controller with workers until the test ends; Run's error then fails the
// test. It returns the admin client and configuration.
func Run(t *testing.T, workers int, build func(deps controller.Deps, cfg *rest.Config) (Runner, error)) (kubernetes.Interface, *rest.Config) {
	t.Helper()
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := build(controller.Deps{
		Client: client, Informers: factory, Recorder: record.NewFakeRecorder(1000), Logger: Logger(t),
	}, cfg)
	if err != nil {
		t.Fatalf("building the controller: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.StartWithContext(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, workers) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	})
	return client, cfg
}

// Eventually polls f every 20 ms until it returns nil, and fails the test
// with f's last error after 20 s.
func Eventually(t testing.TB, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met before deadline: %v", err)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// Logger sends records at Debug and above to the test's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
