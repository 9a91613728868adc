package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-dev/skiff/internal/etcd/etcdtest"
)

// etcdWatchers reads etcd's process-wide watcher gauge.
func etcdWatchers(t *testing.T) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "etcd_debugging_mvcc_watcher_total" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("etcd watcher gauge not found")
	return 0
}

// Not parallel: etcd's watcher gauge is shared by every embedded member in
// the process, and parallel tests start only after this one.
func TestOneEtcdWatchServesManyWatchers(t *testing.T) {
	s, _ := newTestStore(t, nil, nil)
	ctx := context.Background()
	// Wait until the cache's own etcd watch delivers, then count.
	p0 := mustCreate(t, s, pod("ns", "first", nil, ""))
	eventually(t, 10*time.Second, func() error {
		if rv, _ := s.CurrentRevision(ctx); fmt.Sprint(rv) != p0.ResourceVersion {
			return fmt.Errorf("cache at %d, want %s", rv, p0.ResourceVersion)
		}
		return nil
	})
	before := etcdWatchers(t)

	const n = 200
	var ws []watch.Interface
	for i := range n {
		prefix := ""
		if i%2 == 1 {
			prefix = "ns/"
		}
		w, err := s.Watch(ctx, prefix, WatchOptions{ResourceVersion: p0.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		ws = append(ws, w)
	}
	p := mustCreate(t, s, pod("ns", "a", nil, ""))
	for i, w := range ws {
		got, _ := next(t, w)
		if diff := cmp.Diff(seen{Type: watch.Added, Name: "a", RV: p.ResourceVersion}, got); diff != "" {
			t.Fatalf("watcher %d (-want +got):\n%s", i, diff)
		}
	}
	if after := etcdWatchers(t); after != before {
		t.Errorf("etcd watchers went from %v to %v with %d API watchers; want no change", before, after, n)
	}
}

// relistHarness provokes a re-watch of the cache's etcd watch and runs
// fn while no etcd watch is open.
type relistHarness struct {
	armed atomic.Pointer[func()]
}

func (h *relistHarness) hook() {
	if fn := h.armed.Swap(nil); fn != nil {
		(*fn)()
	}
}

// restart runs fn before the next etcd watch and ends the current one.
func (h *relistHarness) restart(t *testing.T, s *Store, fn func()) {
	t.Helper()
	var cancel context.CancelFunc
	eventually(t, 10*time.Second, func() error {
		s.cache.mu.Lock()
		defer s.cache.mu.Unlock()
		if cancel = s.cache.cancelWatch; cancel == nil {
			return errors.New("no etcd watch yet")
		}
		return nil
	})
	h.armed.Store(&fn)
	cancel()
}

func TestCacheRewatchKeepsWatchers(t *testing.T) {
	t.Parallel()
	var h relistHarness
	s, _ := newTestStore(t, nil, func(c *Config) { c.beforeWatch = h.hook })
	ctx := context.Background()
	w, err := s.Watch(ctx, "", WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var created *corev1.Pod
	h.restart(t, s, func() { created = mustCreate(t, s, pod("ns", "during", nil, "")) })
	got, _ := next(t, w)
	if diff := cmp.Diff(seen{Type: watch.Added, Name: "during", RV: created.ResourceVersion}, got); diff != "" {
		t.Errorf("event written while re-watching (-want +got):\n%s", diff)
	}
}

func TestCacheRelistAfterCompaction(t *testing.T) {
	t.Parallel()
	var h relistHarness
	s, client := newTestStore(t, nil, func(c *Config) { c.beforeWatch = h.hook })
	ctx := context.Background()
	a := mustCreate(t, s, pod("ns", "a", nil, ""))
	mustCreate(t, s, pod("ns", "b", nil, ""))
	mustCreate(t, s, pod("ns", "c", nil, ""))
	w, err := s.Watch(ctx, "", WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	nextN(t, w, 3)

	h.restart(t, s, func() {
		mustCreate(t, s, pod("ns", "d", nil, ""))
		if _, err := s.Delete(ctx, "ns/b", nil, nil); err != nil {
			t.Error(err)
		}
		out, err := s.GuaranteedUpdate(ctx, "ns/c", false, setLabel("new"))
		if err != nil {
			t.Error(err)
		}
		if _, err := client.Compact(ctx, int64(mustAtoi(rvOf(t, out)))); err != nil {
			t.Error(err)
		}
	})

	// Events between the old and the new state are lost: watchers end.
	if ev, ok := next(t, w); ok {
		t.Fatalf("watcher survived a re-list; got %+v", ev)
	}
	eventually(t, 10*time.Second, func() error {
		list, err := s.List(ctx, "", ListOptions{ResourceVersion: "0"})
		if err != nil {
			return err
		}
		got := names(t, list)
		if diff := cmp.Diff([]string{"ns/a", "ns/c", "ns/d"}, got); diff != "" {
			return errors.New(diff)
		}
		for _, it := range list.(*corev1.PodList).Items {
			etcdRV := rvOf(t, mustGet(t, s, it.Namespace+"/"+it.Name))
			if it.ResourceVersion != etcdRV {
				return fmt.Errorf("%s: cache RV %s, etcd RV %s", it.Name, it.ResourceVersion, etcdRV)
			}
		}
		return nil
	})
	// Resuming from before the re-list is 410.
	old, err := s.Watch(ctx, "", WatchOptions{ResourceVersion: a.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := next(t, old); got.Type != watch.Error || got.Note != string(metav1.StatusReasonExpired) {
		t.Errorf("watch from before the re-list: %+v, want 410 ERROR", got)
	}
	// New watches work.
	nw, err := s.Watch(ctx, "", WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Stop()
	nextN(t, nw, 3)
	e := mustCreate(t, s, pod("ns", "e", nil, ""))
	if got, _ := next(t, nw); got.Name != "e" || got.RV != e.ResourceVersion {
		t.Errorf("event after re-list: %+v", got)
	}
}

func TestRunCompactor(t *testing.T) {
	t.Parallel()
	_, client := newTestStore(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- RunCompactor(ctx, client, 20*time.Millisecond, nil) }()
	put, err := client.Put(ctx, "/k", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Put(ctx, "/k", "v2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		_, err := client.Get(ctx, "/k", clientv3WithRev(put.Header.Revision))
		if errors.Is(err, rpctypes.ErrCompacted) {
			return nil
		}
		if err != nil && !strings.Contains(err.Error(), "compacted") {
			return err
		}
		return fmt.Errorf("revision %d not compacted yet", put.Header.Revision)
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunCompactor returned %v", err)
	}
}

// Writes start from the cache's copy; a stale copy must never turn into a
// wrong Conflict, NotFound or veto.
func TestWritesFromStaleCache(t *testing.T) {
	t.Parallel()
	var h relistHarness
	s, _ := newTestStore(t, nil, func(c *Config) { c.beforeWatch = h.hook })
	ctx := context.Background()
	mustCreate(t, s, pod("ns", "a", nil, ""))
	mustCreate(t, s, pod("ns", "b", nil, ""))
	eventually(t, 10*time.Second, func() error {
		list, err := s.List(ctx, "", ListOptions{})
		if err != nil || len(list.(*corev1.PodList).Items) != 2 {
			return fmt.Errorf("cache not filled: %v", err)
		}
		return nil
	})
	done := make(chan struct{})
	h.restart(t, s, func() {
		defer close(done)
		// No etcd watch runs now: the cache keeps the old copies.
		first, err := s.GuaranteedUpdate(ctx, "ns/a", false, setLabel("one"))
		if err != nil {
			t.Errorf("first update: %v", err)
			return
		}
		second, err := s.GuaranteedUpdate(ctx, "ns/a", false, func(cur runtime.Object) (runtime.Object, error) {
			p := cur.(*corev1.Pod)
			if p.Labels["app"] != "one" {
				return nil, fmt.Errorf("stale state %v", p.Labels)
			}
			p.Labels["app"] = "two"
			p.ResourceVersion = rvOf(t, first) // what a client read last
			return p, nil
		})
		if err != nil {
			t.Errorf("update with the newest resourceVersion over a stale cache: %v", err)
			return
		}
		if _, err := s.Delete(ctx, "ns/a", &Preconditions{ResourceVersion: rvOf(t, second)}, nil); err != nil {
			t.Errorf("delete with the newest resourceVersion over a stale cache: %v", err)
		}
		if _, err := s.Delete(ctx, "ns/b", nil, nil); err != nil {
			t.Errorf("delete: %v", err)
		}
		if _, err := s.GuaranteedUpdate(ctx, "ns/b", false, setLabel("x")); !apierrors.IsNotFound(err) {
			t.Errorf("update of a key deleted behind the cache = %v, want NotFound", err)
		}
	})
	<-done
}

// TestRingGrows checks that the event ring starts small, grows in order
// up to its capacity and then evicts the oldest events.
func TestRingGrows(t *testing.T) {
	c := &cache{ringCap: 10, ring: make([]*event, 3)}
	var want []int64
	for rev := int64(1); rev <= 25; rev++ {
		c.appendEvent(&event{rev: rev})
		want = append(want, rev)
		if len(want) > 10 {
			want = want[1:]
		}
		if len(c.ring) > c.ringCap {
			t.Fatalf("after rev %d the ring holds %d slots, more than its capacity %d", rev, len(c.ring), c.ringCap)
		}
		var got []int64
		for _, ev := range c.eventsAfter(0) {
			got = append(got, ev.rev)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("after rev %d: events %v, want %v", rev, got, want)
		}
	}
	if c.floor != 15 {
		t.Errorf("floor = %d, want 15 (the last evicted revision)", c.floor)
	}
}

// earlyProgressWatcher reproduces an etcd ordering on a shared watch
// stream: a progress notification made for the stream's other watchers
// before a new watch was registered reaches the new watch right after its
// created response, ahead of the events etcd still owes it. It forwards
// the created response, then a progress notification at the created
// revision, and only after delay the rest.
type earlyProgressWatcher struct {
	clientv3.Watcher
	prefix string
	delay  time.Duration
}

func (w *earlyProgressWatcher) Watch(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	in := w.Watcher.Watch(ctx, key, opts...)
	if key != w.prefix {
		return in
	}
	out := make(chan clientv3.WatchResponse)
	go func() {
		defer close(out)
		for resp := range in {
			select {
			case out <- resp:
			case <-ctx.Done():
				return
			}
			if resp.Created {
				progress := clientv3.WatchResponse{Header: resp.Header}
				select {
				case out <- progress:
				case <-ctx.Done():
					return
				}
				time.Sleep(w.delay)
			}
		}
	}()
	return out
}

// TestConsistentListIgnoresEarlyProgress: objects written between the
// cache's list and its watch's registration reach the cache as the
// watch's first events; a progress notification at the watch's created
// revision that overtakes them must not make a consistent list serve the
// cache without them.
func TestConsistentListIgnoresEarlyProgress(t *testing.T) {
	t.Parallel()
	client := etcdtest.Start(t)
	written := []string{"ns/a", "ns/b"}
	var once atomic.Bool
	s, _ := newTestStore(t, client, func(c *Config) {
		client.Watcher = &earlyProgressWatcher{Watcher: client.Watcher, prefix: c.Prefix, delay: 300 * time.Millisecond}
		c.beforeWatch = func() {
			if !once.CompareAndSwap(false, true) {
				return
			}
			// Written under the prefix after the cache's list, before
			// its watch: the watch starts below etcd's revision.
			for _, key := range written {
				ns, name, _ := strings.Cut(key, "/")
				p := pod(ns, name, nil, "")
				data, err := runtime.Encode(c.Codec, p)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := client.Put(context.Background(), c.Prefix+key, string(data)); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	// Let the watch be created and the early progress arrive.
	time.Sleep(100 * time.Millisecond)
	list, err := s.List(context.Background(), "", ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range list.(*corev1.PodList).Items {
		got = append(got, p.Namespace+"/"+p.Name)
	}
	if diff := cmp.Diff(written, got); diff != "" {
		t.Errorf("consistent list (-written +listed):\n%s", diff)
	}
}
