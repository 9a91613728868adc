package storage

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

func setLabel(value string) UpdateFunc {
	return func(cur runtime.Object) (runtime.Object, error) {
		p := cur.(*corev1.Pod)
		p.Labels = map[string]string{"app": value}
		return p, nil
	}
}

func TestWatchFromRevisions(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, nil)
	ctx := context.Background()
	a := mustCreate(t, s, pod("ns", "a", nil, ""))
	b := mustCreate(t, s, pod("ns", "b", nil, ""))
	mustCreate(t, s, pod("other", "c", nil, ""))

	for _, rv := range []string{"", "0"} {
		t.Run("rv="+rv, func(t *testing.T) {
			w, err := s.Watch(ctx, "ns/", WatchOptions{ResourceVersion: rv})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			got := nextN(t, w, 2)
			want := []seen{{Type: watch.Added, Name: "a", RV: a.ResourceVersion}, {Type: watch.Added, Name: "b", RV: b.ResourceVersion}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("initial events (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("from N", func(t *testing.T) {
		w, err := s.Watch(ctx, "ns/", WatchOptions{ResourceVersion: a.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		upd, err := s.GuaranteedUpdate(ctx, "ns/a", false, setLabel("x"))
		if err != nil {
			t.Fatal(err)
		}
		del, err := s.Delete(ctx, "ns/b", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := nextN(t, w, 3)
		want := []seen{
			{Type: watch.Added, Name: "b", RV: b.ResourceVersion},
			{Type: watch.Modified, Name: "a", RV: rvOf(t, upd)},
			{Type: watch.Deleted, Name: "b", RV: rvOf(t, del)},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

func TestWatchFilterTransitions(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, nil)
	ctx := context.Background()
	mustCreate(t, s, pod("ns", "a", map[string]string{"app": "web"}, ""))
	w, err := s.Watch(ctx, "", WatchOptions{
		ResourceVersion: "0",
		Predicate:       Predicate{Label: labels.SelectorFromSet(labels.Set{"app": "web"})},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var want []seen
	want = append(want, seen{Type: watch.Added, Name: "a", RV: rvOf(t, mustGet(t, s, "ns/a"))})

	steps := []struct {
		label string
		typ   watch.EventType
	}{
		{"db", watch.Deleted}, // stops matching
		{"db2", ""},           // still not matching: nothing
		{"web", watch.Added},  // matches again
		{"web", ""},           // no-op update: no write, no event
	}
	for _, st := range steps {
		out, err := s.GuaranteedUpdate(ctx, "ns/a", false, setLabel(st.label))
		if err != nil {
			t.Fatal(err)
		}
		if st.typ != "" {
			want = append(want, seen{Type: st.typ, Name: "a", RV: rvOf(t, out)})
		}
	}
	out, err := s.GuaranteedUpdate(ctx, "ns/a", false, func(cur runtime.Object) (runtime.Object, error) {
		p := cur.(*corev1.Pod)
		p.Spec.NodeName = "n1"
		return p, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, seen{Type: watch.Modified, Name: "a", RV: rvOf(t, out)})
	del, err := s.Delete(ctx, "ns/a", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, seen{Type: watch.Deleted, Name: "a", RV: rvOf(t, del)})

	if diff := cmp.Diff(want, nextN(t, w, len(want))); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func mustGet(t testing.TB, s *Store, key string) runtime.Object {
	t.Helper()
	obj, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestWatchBookmarks(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, func(c *Config) { c.BookmarkInterval = 50 * time.Millisecond })
	ctx := context.Background()
	a := mustCreate(t, s, pod("ns", "a", nil, ""))

	t.Run("initial events end", func(t *testing.T) {
		w, err := s.Watch(ctx, "", WatchOptions{ResourceVersion: "", SendInitialEvents: true, AllowBookmarks: true})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		got := nextN(t, w, 2)
		rv, _ := s.CurrentRevision(ctx)
		want := []seen{
			{Type: watch.Added, Name: "a", RV: a.ResourceVersion},
			{Type: watch.Bookmark, RV: strconv.FormatInt(rv, 10), Note: "true"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
	t.Run("periodic", func(t *testing.T) {
		w, err := s.Watch(ctx, "", WatchOptions{ResourceVersion: a.ResourceVersion, AllowBookmarks: true})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		b := mustCreate(t, s, pod("ns", "b", nil, ""))
		got := nextN(t, w, 2)
		want := []seen{
			{Type: watch.Added, Name: "b", RV: b.ResourceVersion},
			{Type: watch.Bookmark, RV: b.ResourceVersion},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
	t.Run("none unless allowed", func(t *testing.T) {
		w, err := s.Watch(ctx, "", WatchOptions{ResourceVersion: a.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		nextN(t, w, 1) // b
		expectQuiet(t, w, 200*time.Millisecond)
	})
}

func TestWatchTooOld(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, func(c *Config) { c.EventBuffer = 4 })
	ctx := context.Background()
	first := mustCreate(t, s, pod("ns", "p0", nil, ""))
	var last *corev1.Pod
	for i := 1; i < 10; i++ {
		last = mustCreate(t, s, pod("ns", fmt.Sprintf("p%d", i), nil, ""))
	}
	eventually(t, 5*time.Second, func() error {
		if rv, _ := s.CurrentRevision(ctx); strconv.FormatInt(rv, 10) != last.ResourceVersion {
			return fmt.Errorf("cache at %d, want %s", rv, last.ResourceVersion)
		}
		return nil
	})
	w, err := s.Watch(ctx, "", WatchOptions{ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := next(t, w)
	if diff := cmp.Diff(seen{Type: watch.Error, Note: string(metav1.StatusReasonExpired)}, got); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	if _, ok := next(t, w); ok {
		t.Error("error watch not closed")
	}
	// Still inside the ring: fine.
	w, err = s.Watch(ctx, "", WatchOptions{ResourceVersion: strconv.Itoa(mustAtoi(last.ResourceVersion) - 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if got := nextN(t, w, 2); got[1].Name != last.Name {
		t.Errorf("resumed events %v, want the last two creates", got)
	}
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func TestWatchSlowWatcherClosed(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, func(c *Config) { c.WatcherBuffer = 4 })
	ctx := context.Background()
	w, err := s.Watch(ctx, "", WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	fast, err := s.Watch(ctx, "", WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Stop()
	const n = 50
	// Each create waits until the fast watcher has seen it, so only the
	// watcher that never reads falls behind.
	for i := range n {
		p := mustCreate(t, s, pod("ns", fmt.Sprintf("p%d", i), nil, ""))
		if got, _ := next(t, fast); got.Name != p.Name {
			t.Fatalf("fast watcher got %+v, want %s", got, p.Name)
		}
	}
	// The slow watcher is closed once its buffer overflows; what was
	// buffered may still be delivered.
	received := 0
	for {
		_, ok := next(t, w)
		if !ok {
			break
		}
		received++
	}
	if received >= n {
		t.Errorf("slow watcher received all %d events; want it closed", received)
	}
}

// A watcher that keeps reading, only more slowly than a burst of writes
// arrives, is waited for rather than closed.
func TestWatchBurstWaitsForReadingWatcher(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, func(c *Config) { c.WatcherBuffer = 2 })
	ctx := context.Background()
	w, err := s.Watch(ctx, "", WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	const n = 30
	got := make(chan int, 1)
	go func() {
		received := 0
		for range w.ResultChan() {
			received++
			if received == n {
				break
			}
			time.Sleep(time.Millisecond) // slower than the writes below
		}
		got <- received
	}()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { mustCreate(t, s, pod("ns", fmt.Sprintf("p%d", i), nil, "")) })
	}
	wg.Wait()
	select {
	case received := <-got:
		if received != n {
			t.Errorf("watcher received %d of %d events before it was closed", received, n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not receive the burst")
	}
}

func TestWaitBudget(t *testing.T) {
	t.Parallel()
	var b waitBudget
	t0 := time.Unix(1000, 0)
	if got := b.take(t0); got != maxDispatchWait {
		t.Fatalf("first take = %v, want the whole budget %v", got, maxDispatchWait)
	}
	if got := b.take(t0); got != 0 {
		t.Fatalf("take right after = %v, want 0", got)
	}
	b.giveBack(30 * time.Millisecond)
	if got := b.take(t0); got != 30*time.Millisecond {
		t.Fatalf("take after giving back 30ms = %v", got)
	}
	// Half a second earns back half of dispatchWaitPerSecond.
	if got, want := b.take(t0.Add(500*time.Millisecond)), dispatchWaitPerSecond/2; got != want {
		t.Fatalf("take after 500ms = %v, want %v", got, want)
	}
	// Never more than the maximum, however long the pause.
	if got := b.take(t0.Add(time.Hour)); got != maxDispatchWait {
		t.Fatalf("take after an hour = %v, want %v", got, maxDispatchWait)
	}
}

func TestWatchStopAndContext(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.Watch(ctx, "", WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, ok := next(t, w); ok {
		t.Error("watch not closed after ctx cancel")
	}
	w, err = s.Watch(context.Background(), "", WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	w.Stop()
	w.Stop()
	if _, ok := next(t, w); ok {
		t.Error("watch not closed after Stop")
	}
	eventually(t, 5*time.Second, func() error {
		s.cache.mu.RLock()
		defer s.cache.mu.RUnlock()
		if n := len(s.cache.watchers); n != 0 {
			return fmt.Errorf("%d watcher groups still registered", n)
		}
		return nil
	})
}
