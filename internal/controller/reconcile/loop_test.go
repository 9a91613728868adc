package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoopConcurrency checks that Run processes distinct keys in parallel
// up to its worker count, never one key twice at once, and retries
// failures.
func TestLoopConcurrency(t *testing.T) {
	const workers = 3
	var (
		mu        sync.Mutex
		running   = map[string]bool{}
		inFlight  int
		maxFlight int
		calls     = map[string]int{}
		release   = make(chan struct{})
		finished  atomic.Int32
	)
	fn := func(ctx context.Context, key string) (time.Duration, error) {
		mu.Lock()
		if running[key] {
			mu.Unlock()
			t.Errorf("key %s processed twice at once", key)
			return 0, nil
		}
		running[key] = true
		calls[key]++
		first := calls[key] == 1
		inFlight++
		maxFlight = max(maxFlight, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		running[key] = false
		inFlight--
		mu.Unlock()
		finished.Add(1)
		if key == "flaky" && first {
			return 0, errors.New("first try fails")
		}
		return 0, nil
	}
	l := New("test", fn, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, workers) }()

	for i := range 10 {
		l.Enqueue(fmt.Sprintf("k%d", i))
	}
	l.Enqueue("flaky")
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return inFlight == workers
	})
	time.Sleep(20 * time.Millisecond) // a fourth key would start now if it could
	mu.Lock()
	if maxFlight != workers {
		t.Errorf("keys in progress at once: %d, want %d", maxFlight, workers)
	}
	mu.Unlock()
	close(release)
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls["flaky"] == 2 && finished.Load() == 12
	})

	// A key added while it is being processed runs again afterwards, not
	// concurrently (fn reports that).
	for range 5 {
		l.Enqueue("k0")
	}
	waitFor(t, func() bool { return l.Len() == 0 && finished.Load() >= 13 })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	mu.Lock()
	defer mu.Unlock()
	if inFlight != 0 {
		t.Errorf("Run returned with %d keys in progress", inFlight)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLoopShutdownWaits checks that Run returns only after the key in
// progress at cancellation is done.
func TestLoopShutdownWaits(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	l := New("test", func(ctx context.Context, key string) (time.Duration, error) {
		close(started)
		<-release
		finished.Store(true)
		return 0, nil
	}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, 2) }()
	l.Enqueue("a")
	<-started
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned while a key was in progress")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !finished.Load() {
		t.Error("the key in progress did not finish")
	}
}
