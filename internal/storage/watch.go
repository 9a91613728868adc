package storage

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// InitialEventsAnnotation marks the BOOKMARK that ends the initial events
// of a watch with SendInitialEvents.
const InitialEventsAnnotation = "k8s.io/initial-events-end"

// watcher is one API watch fed by the cache. The cache sends to input
// (never blocking; a full input closes the watcher) and the watcher's
// goroutine filters and forwards to result.
//
//	registered ──input closed (slow, re-list, cache stop)──> draining ──> result closed
//	     └──────Stop / ctx done──────────────────────────────────────────┘
type watcher struct {
	s       *Store
	prefix  string
	m       matcher
	input   chan *event
	result  chan watch.Event
	done    chan struct{} // closed by Stop
	exited  chan struct{} // closed when run stops reading input
	stop    sync.Once
	bookmks bool

	// inputClosed is set once input is closed. Guarded by s.cache.mu.
	inputClosed bool
}

var _ watch.Interface = (*watcher)(nil)

// Watch implements Interface. Event objects are shared with the cache and
// must not be mutated.
func (s *Store) Watch(ctx context.Context, prefix string, opts WatchOptions) (watch.Interface, error) {
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.ResourceVersion == "":
		// Start at the most recent state; if the cache lags etcd for
		// longer than the freshness timeout, start from what it has (still
		// a consistent snapshot followed by every later change).
		if _, err := s.waitFresh(ctx); err != nil {
			return nil, err
		}
	case rv > 0:
		if _, err := s.waitCache(ctx, rv); err != nil {
			return nil, err
		}
	}
	initial := opts.SendInitialEvents || rv == 0

	w := &watcher{
		s:       s,
		prefix:  prefix,
		m:       newMatcher(opts.Predicate),
		input:   make(chan *event, s.watcherBuffer),
		result:  make(chan watch.Event),
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
		bookmks: opts.AllowBookmarks,
	}
	c := &s.cache
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil, s.errStopped()
	}
	if !initial && rv < c.floor {
		floor := c.floor
		c.mu.Unlock()
		return newErrorWatch(apierrors.NewResourceExpired(
			fmt.Sprintf("too old resource version: %d (%d)", rv, floor))), nil
	}
	var state []*entry
	var backlog []*event
	if initial {
		state = c.entriesUnder(prefix)
	} else {
		backlog = c.eventsAfter(rv)
	}
	startRev := c.rev
	c.addWatcher(w)
	c.mu.Unlock()

	go w.run(ctx, state, backlog, startRev, opts.SendInitialEvents)
	return w, nil
}

// Stop ends the watch; ResultChan is closed soon after. Idempotent.
func (w *watcher) Stop() { w.stop.Do(func() { close(w.done) }) }

// ResultChan returns the events; it is closed when the watch ends.
func (w *watcher) ResultChan() <-chan watch.Event { return w.result }

func (w *watcher) run(ctx context.Context, state []*entry, backlog []*event, startRev int64, initialEnd bool) {
	defer close(w.result)
	defer func() {
		close(w.exited) // before taking mu: dispatch may hold it, waiting for us
		w.s.cache.mu.Lock()
		w.s.cache.closeWatcherLocked(w)
		w.s.cache.mu.Unlock()
	}()
	send := func(ev watch.Event) bool {
		select {
		case w.result <- ev:
			return true
		case <-w.done:
		case <-ctx.Done():
		}
		return false
	}
	for _, e := range state {
		if w.m.matches(e) && !send(watch.Event{Type: watch.Added, Object: e.obj}) {
			return
		}
	}
	if initialEnd && !send(watch.Event{Type: watch.Bookmark, Object: w.bookmark(startRev, true)}) {
		return
	}
	for _, ev := range backlog {
		if out, ok := w.convert(ev); ok && !send(out) {
			return
		}
	}
	var tick <-chan time.Time
	if w.bookmks {
		t := time.NewTicker(w.s.bookmarkInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case ev, ok := <-w.input:
			if !ok {
				return
			}
			if out, ok := w.convert(ev); ok && !send(out) {
				return
			}
		case <-tick:
			// Every event up to the cache's revision has reached us when
			// our input is empty (the cache sends and advances under mu).
			// A dispatch waiting for us holds mu: skip this bookmark.
			if !w.s.cache.mu.TryRLock() {
				continue
			}
			rev, idle := w.s.cache.rev, len(w.input) == 0
			w.s.cache.mu.RUnlock()
			if idle && !send(watch.Event{Type: watch.Bookmark, Object: w.bookmark(rev, false)}) {
				return
			}
		case <-w.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// convert applies the predicate to a change: an object that stops matching
// is DELETED, one that starts matching is ADDED.
func (w *watcher) convert(ev *event) (watch.Event, bool) {
	if !covers(w.prefix, ev.key) {
		return watch.Event{}, false
	}
	if ev.typ == watch.Deleted {
		if w.m.matches(ev.prev) {
			return watch.Event{Type: watch.Deleted, Object: ev.cur.obj}, true
		}
		return watch.Event{}, false
	}
	cur := w.m.matches(ev.cur)
	prev := ev.prev != nil && w.m.matches(ev.prev)
	switch {
	case cur && prev:
		return watch.Event{Type: watch.Modified, Object: ev.cur.obj}, true
	case cur:
		return watch.Event{Type: watch.Added, Object: ev.cur.obj}, true
	case prev:
		return watch.Event{Type: watch.Deleted, Object: ev.cur.obj}, true
	}
	return watch.Event{}, false
}

// bookmark returns an empty object of the resource's kind at rev.
func (w *watcher) bookmark(rev int64, initialEnd bool) runtime.Object {
	obj := w.s.newFunc()
	if acc, err := meta.Accessor(obj); err == nil {
		acc.SetResourceVersion(strconv.FormatInt(rev, 10))
		if initialEnd {
			acc.SetAnnotations(map[string]string{InitialEventsAnnotation: "true"})
		}
	}
	return obj
}

// errorWatch delivers one ERROR event and closes, as upstream does for a
// watch that cannot start (410 Gone).
type errorWatch struct{ ch chan watch.Event }

func newErrorWatch(err *apierrors.StatusError) watch.Interface {
	status := err.Status()
	if status.Code == 0 {
		status.Code = http.StatusInternalServerError
	}
	ch := make(chan watch.Event, 1)
	ch <- watch.Event{Type: watch.Error, Object: &status}
	close(ch)
	return errorWatch{ch: ch}
}

func (e errorWatch) Stop()                          {}
func (e errorWatch) ResultChan() <-chan watch.Event { return e.ch }
