package pods

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestKeyQueue(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		runs    = map[types.UID]int{}
		active  = map[types.UID]int{}
		overlap atomic.Bool
	)
	release := make(chan struct{})
	q := newKeyQueue(func(_ context.Context, uid types.UID) {
		mu.Lock()
		runs[uid]++
		active[uid]++
		if active[uid] > 1 {
			overlap.Store(true)
		}
		mu.Unlock()
		if uid == "slow" {
			<-release
		}
		mu.Lock()
		active[uid]--
		mu.Unlock()
	})
	count := func(uid types.UID) int {
		mu.Lock()
		defer mu.Unlock()
		return runs[uid]
	}
	want := func(uid types.UID, n int) func() error {
		return func() error {
			if got := count(uid); got != n {
				return fmt.Errorf("%s ran %d times, want %d", uid, got, n)
			}
			return nil
		}
	}

	q.Add("a") // held until Start
	q.Add("a")
	if got := count("a"); got != 0 {
		t.Fatalf("ran %d times before Start", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	q.Start(ctx)
	poll(t, 5*time.Second, "held key runs once", want("a", 1))

	// A slow key: Adds while it runs collapse into one more run, and do
	// not hold up other keys.
	q.Add("slow")
	poll(t, 5*time.Second, "slow started", want("slow", 1))
	q.Add("slow")
	q.Add("slow")
	q.Add("b")
	poll(t, 5*time.Second, "other key runs meanwhile", want("b", 1))
	release <- struct{}{}
	poll(t, 5*time.Second, "slow reruns", want("slow", 2))
	release <- struct{}{}

	// AddAfter: the earliest wins.
	q.AddAfter("c", time.Hour)
	q.AddAfter("c", 20*time.Millisecond)
	q.AddAfter("c", time.Hour)
	poll(t, 5*time.Second, "delayed key runs", want("c", 1))

	cancel()
	q.Wait()
	if overlap.Load() {
		t.Errorf("a key ran twice at once")
	}
	q.Add("d")
	if got := count("d"); got != 0 {
		t.Errorf("ran after shutdown")
	}
}
