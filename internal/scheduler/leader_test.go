package scheduler_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/scheduler"
	"github.com/skiff-dev/skiff/internal/testserver"
)

func TestLeaderElection(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	e := &env{client: testserver.Client(t, cfg)}
	ctx := context.Background()

	type instance struct {
		cancel context.CancelFunc
		done   chan error
	}
	start := func(name string) instance {
		c, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		logger := slog.New(slog.DiscardHandler).With("instance", name)
		go func() {
			done <- scheduler.Run(c, scheduler.Config{RestConfig: cfg, LeaderElection: true, Logger: logger})
		}()
		return instance{cancel, done}
	}
	a, b := start("a"), start("b")
	t.Cleanup(func() {
		for _, in := range []instance{a, b} {
			in.cancel()
			if err := <-in.done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	})

	var holder string
	poll(t, "waiting for a leader", func() error {
		l, err := e.client.CoordinationV1().Leases("kube-system").Get(ctx, scheduler.DefaultSchedulerName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			return fmt.Errorf("no holder")
		}
		holder = *l.Spec.HolderIdentity
		return nil
	})

	ns := e.namespace(t, "leader")
	e.addNode(t, "n1", "4")
	e.addPod(t, ns, "first", "100m")
	e.waitBound(t, ns, "first")

	// Stop whichever instance leads; the other takes over the lease.
	a.cancel()
	if err := <-a.done; err != nil {
		t.Errorf("Run a: %v", err)
	}
	a.done <- nil // for the cleanup
	e.addPod(t, ns, "second", "100m")
	e.waitBound(t, ns, "second")
	l, err := e.client.CoordinationV1().Leases("kube-system").Get(ctx, scheduler.DefaultSchedulerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first holder %s, now %v", holder, *l.Spec.HolderIdentity)
}
