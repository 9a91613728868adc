package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"
	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// listPageSize is the etcd page size of the cache's (re-)list.
const listPageSize = 1000

// initialRing is the size a cache's event ring starts at; it doubles up
// to the store's event buffer as events arrive.
const initialRing = 64

// entry is one cached object. Entries are immutable once published: the
// cache replaces them, never changes them.
type entry struct {
	key      string // relative to the store prefix: "ns/name" or "name"
	rev      int64  // mod revision (or delete revision for a deletion)
	obj      runtime.Object
	labels   labels.Set
	fields   fields.Set
	attrsErr bool // Attrs failed: only the empty predicate matches
	// sum is the SHA-256 of the encoded object as stored (before any
	// Transformer): an update that would store the same bytes changes
	// nothing (see GuaranteedUpdate), and comparing digests spares
	// re-encoding the cached object for every update. Zero for the
	// entries of deletions.
	sum [sha256.Size]byte

	// memo holds obj encoded by the first two ItemEncoders that asked
	// (JSON and protobuf, see encoded); obj never changes, so neither do
	// its encodings.
	memo [2]atomic.Pointer[encodedItem]
}

type encodedItem struct {
	id   string
	data []byte
}

// encoded returns e.obj encoded by enc, memoized for enc.ID. Concurrent
// callers may both encode; one result wins, and both are equal.
func (e *entry) encoded(enc *ItemEncoder) ([]byte, error) {
	for i := range e.memo {
		if m := e.memo[i].Load(); m != nil && m.id == enc.ID {
			return m.data, nil
		}
	}
	data, err := enc.Encode(e.obj)
	if err != nil {
		return nil, err
	}
	item := &encodedItem{id: enc.ID, data: data}
	for i := range e.memo {
		if e.memo[i].CompareAndSwap(nil, item) {
			break
		}
		if m := e.memo[i].Load(); m != nil && m.id == enc.ID {
			break // a concurrent caller memoized the same encoding
		}
	}
	return data, nil
}

// event is one change in the cache's ring. For a deletion cur holds the
// last state with the delete revision as its resourceVersion, and the
// attributes of that last state.
type event struct {
	typ  watch.EventType // Added, Modified or Deleted
	key  string
	rev  int64
	cur  *entry
	prev *entry // nil for Added
}

// cache is the watch cache of one Store.
type cache struct {
	mu sync.RWMutex
	// items is every current object, ordered by key: a B-tree, so that an
	// insert or delete costs O(log n) rather than moving half of a sorted
	// slice (at 30,000 pods that memmove, with GC write barriers, was a
	// tenth of the server's CPU per create). Guarded by mu; only the run
	// goroutine changes it.
	items *btree.BTreeG[*entry]
	// rev is the revision items reflect. Guarded by mu.
	rev int64
	// revCh is closed (and replaced) whenever rev advances. Guarded by mu.
	revCh chan struct{}
	// ring holds the most recent events, oldest at ringStart; floor is the
	// revision after which ring holds every event. It starts small and
	// doubles up to ringCap (the store's event buffer), so that the sixty
	// or so resources of an idle server do not each hold a full ring of
	// empty slots. Guarded by mu.
	ring      []*event
	ringStart int
	ringLen   int
	ringCap   int
	floor     int64
	// watchers are the open watchers grouped by watch prefix. Guarded by mu.
	watchers map[string]map[*watcher]struct{}
	// wait is how long dispatch may still block on full watcher buffers.
	// Guarded by mu.
	wait waitBudget
	// stopped is set when the cache's ctx is done. Guarded by mu.
	stopped bool
	// cancelWatch ends the current etcd watch (tests use it to provoke a
	// re-watch). Guarded by mu.
	cancelWatch context.CancelFunc
}

// startCache lists the prefix, then watches it in a goroutine until ctx is
// done.
func (s *Store) startCache(ctx context.Context) error {
	c := &s.cache
	c.revCh = make(chan struct{})
	c.ringCap = s.eventBuffer
	c.ring = make([]*event, min(initialRing, c.ringCap))
	c.watchers = make(map[string]map[*watcher]struct{})
	items, rev, err := s.listAll(ctx)
	if err != nil {
		return err
	}
	c.items, c.rev, c.floor = newItems(items), rev, rev
	go s.runCache(ctx)
	return nil
}

// listAll reads every object under the prefix at one revision.
func (s *Store) listAll(ctx context.Context) ([]*entry, int64, error) {
	var items []*entry
	var rev int64
	key := s.prefix
	end := clientv3.GetPrefixRangeEnd(s.prefix)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPageSize)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.client.Get(ctx, key, opts...)
		if err != nil {
			return nil, 0, fmt.Errorf("listing %s: %w", s.prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			e, err := s.newEntry(kv.Key, kv.Value, kv.ModRevision)
			if err != nil {
				s.logger.Info("skipping undecodable object", "key", string(kv.Key), "err", err)
				continue
			}
			items = append(items, e)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return items, rev, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// newEntry decodes a stored value into a cache entry.
func (s *Store) newEntry(fullKey, value []byte, rev int64) (*entry, error) {
	data, _, err := s.open(fullKey, value)
	if err != nil {
		return nil, err
	}
	obj, err := s.decodePlain(data, rev)
	if err != nil {
		return nil, err
	}
	e := &entry{key: strings.TrimPrefix(string(fullKey), s.prefix), rev: rev, obj: obj, sum: sha256.Sum256(data)}
	e.labels, e.fields, err = s.attrs(obj)
	if err != nil {
		e.attrsErr = true
	}
	return e, nil
}

// runCache keeps the cache in step with etcd until ctx is done: it
// re-watches from the last revision after a watch failure and re-lists
// when that revision was compacted.
func (s *Store) runCache(ctx context.Context) {
	defer s.stopCache()
	backoff := 100 * time.Millisecond
	for {
		compacted, err := s.watchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if s.client.Ctx().Err() != nil {
			s.logger.Info("watch cache stopping: etcd client closed")
			return
		}
		if compacted {
			s.logger.Info("watch cache re-listing after compaction", "revision", s.currentRev())
			items, rev, err := s.listAll(ctx)
			if err == nil {
				s.replace(items, rev)
				backoff = 100 * time.Millisecond
				continue
			}
			s.logger.Info("watch cache re-list failed", "err", err)
		} else if err != nil {
			s.logger.Info("watch cache re-watching", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// watchCtx returns the context the etcd watch and progress requests share;
// they must carry the same metadata to use the same gRPC stream.
func watchCtx(ctx context.Context) context.Context {
	return clientv3.WithRequireLeader(ctx)
}

// watchOnce runs one etcd watch from the cache's revision until it fails.
// compacted reports that the revision is gone and the cache must re-list.
func (s *Store) watchOnce(ctx context.Context) (compacted bool, err error) {
	if s.beforeWatch != nil {
		s.beforeWatch()
	}
	wctx, cancel := context.WithCancel(watchCtx(ctx))
	defer cancel()
	s.cache.mu.Lock()
	s.cache.cancelWatch = cancel
	from := s.cache.rev + 1
	s.cache.mu.Unlock()
	wch := s.client.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithProgressNotify(), clientv3.WithCreatedNotify())
	// created is etcd's revision when it registered the watch (the
	// created response's header, read after registering). Until the cache
	// has reached it, a progress notification at or below it may be one
	// etcd made for the stream's other watchers before this one existed:
	// etcd sends such broadcasts ahead of the events it holds back for a
	// watch it has not announced yet, so one can arrive here before the
	// events between the cache's revision and it. Only a notification
	// above it, or one once the cache has reached it, proves the cache
	// current.
	created := int64(math.MaxInt64)
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return true, nil
		}
		if err := resp.Err(); err != nil {
			return false, fmt.Errorf("watching %s: %w", s.prefix, err)
		}
		if resp.Created {
			created = resp.Header.Revision
			continue
		}
		if resp.IsProgressNotify() {
			if rev := resp.Header.Revision; rev > created || s.currentRev() >= created {
				s.advance(rev)
			}
			continue
		}
		s.apply(resp.Events)
	}
	return false, errors.New("etcd watch channel closed")
}

// apply decodes a batch of etcd events and publishes them. Only the run
// goroutine calls it, so it reads items without the lock.
func (s *Store) apply(evs []*clientv3.Event) {
	c := &s.cache
	out := make([]*event, 0, len(evs))
	pending := make(map[string]*entry, len(evs)) // state after earlier events of this batch
	lookup := func(key string) *entry {
		if e, ok := pending[key]; ok {
			return e
		}
		return c.get(key)
	}
	for _, ev := range evs {
		key := strings.TrimPrefix(string(ev.Kv.Key), s.prefix)
		prev := lookup(key)
		switch ev.Type {
		case clientv3.EventTypePut:
			cur, err := s.newEntry(ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision)
			if err != nil {
				s.logger.Info("skipping undecodable object", "key", string(ev.Kv.Key), "err", err)
				continue
			}
			typ := watch.Modified
			if prev == nil {
				typ = watch.Added
			}
			out = append(out, &event{typ: typ, key: key, rev: cur.rev, cur: cur, prev: prev})
			pending[key] = cur
		case clientv3.EventTypeDelete:
			if prev == nil {
				continue
			}
			last := prev.obj.DeepCopyObject()
			if acc, err := meta.Accessor(last); err == nil {
				acc.SetResourceVersion(fmt.Sprint(ev.Kv.ModRevision))
			}
			cur := &entry{key: key, rev: ev.Kv.ModRevision, obj: last, labels: prev.labels, fields: prev.fields, attrsErr: prev.attrsErr}
			out = append(out, &event{typ: watch.Deleted, key: key, rev: cur.rev, cur: cur, prev: prev})
			pending[key] = nil
		}
	}
	var rev int64
	if n := len(evs); n > 0 {
		rev = evs[n-1].Kv.ModRevision
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range out {
		if ev.typ == watch.Deleted {
			c.remove(ev.key)
		} else {
			c.upsert(ev.cur)
		}
		c.appendEvent(ev)
		c.dispatch(ev)
	}
	c.advanceLocked(rev)
}

// covers reports whether key is under prefix: "" covers everything, a
// prefix ending in "/" covers the keys below it, and anything else is a
// single key ("ns/name") covering only itself.
func covers(prefix, key string) bool {
	if prefix == "" || strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(key, prefix)
	}
	return key == prefix
}

// rangeEnd is the etcd range end of the keys prefix covers.
func (s *Store) rangeEnd(prefix string) string {
	if prefix == "" || strings.HasSuffix(prefix, "/") {
		return clientv3.GetPrefixRangeEnd(s.prefix + prefix)
	}
	return s.prefix + prefix + "\x00"
}

// itemsDegree is the B-tree's degree: nodes of up to 63 entries.
const itemsDegree = 32

func lessEntry(a, b *entry) bool { return a.key < b.key }

// newItems returns a tree of sorted (or any) entries.
func newItems(sorted []*entry) *btree.BTreeG[*entry] {
	t := btree.NewG(itemsDegree, lessEntry)
	for _, e := range sorted {
		t.ReplaceOrInsert(e)
	}
	return t
}

// get returns the entry of key, or nil. Called with mu held (read or
// write), or from the run goroutine.
func (c *cache) get(key string) *entry {
	e, _ := c.items.Get(&entry{key: key})
	return e
}

// under calls fn, in key order, for every entry whose key prefix covers,
// until fn returns false. Called with mu held (read or write).
func (c *cache) under(prefix string, fn func(*entry) bool) {
	c.items.AscendGreaterOrEqual(&entry{key: prefix}, func(e *entry) bool {
		return covers(prefix, e.key) && fn(e)
	})
}

// entriesUnder returns the entries prefix covers, in key order. Called
// with mu held (read or write).
func (c *cache) entriesUnder(prefix string) []*entry {
	var out []*entry
	if prefix == "" {
		out = make([]*entry, 0, c.items.Len())
	}
	c.under(prefix, func(e *entry) bool {
		out = append(out, e)
		return true
	})
	return out
}

// upsert puts e into items. Called with mu held.
func (c *cache) upsert(e *entry) {
	c.items.ReplaceOrInsert(e)
}

// remove deletes key from items. Called with mu held.
func (c *cache) remove(key string) {
	c.items.Delete(&entry{key: key})
}

// appendEvent adds ev to the ring, evicting the oldest event when full.
// Called with mu held.
func (c *cache) appendEvent(ev *event) {
	if c.ringLen == len(c.ring) && len(c.ring) < c.ringCap {
		grown := make([]*event, min(2*len(c.ring), c.ringCap))
		n := copy(grown, c.ring[c.ringStart:])
		copy(grown[n:], c.ring[:c.ringStart])
		c.ring, c.ringStart = grown, 0
	}
	if c.ringLen == len(c.ring) {
		c.floor = c.ring[c.ringStart].rev
		c.ring[c.ringStart] = nil
		c.ringStart = (c.ringStart + 1) % len(c.ring)
		c.ringLen--
	}
	c.ring[(c.ringStart+c.ringLen)%len(c.ring)] = ev
	c.ringLen++
}

// eventsAfter returns the ring's events with a revision above rev; the
// caller has checked rev >= floor. Called with mu held.
func (c *cache) eventsAfter(rev int64) []*event {
	at := func(i int) *event { return c.ring[(c.ringStart+i)%len(c.ring)] }
	first := sort.Search(c.ringLen, func(i int) bool { return at(i).rev > rev })
	out := make([]*event, 0, c.ringLen-first)
	for i := first; i < c.ringLen; i++ {
		out = append(out, at(i))
	}
	return out
}

// dispatch hands ev to every watcher whose prefix covers its key. A
// watcher whose buffer is full is waited for within the cache's wait
// budget (a burst of writes should not cost a watcher that keeps reading
// its stream a re-watch), then closed: it is too slow. Called with mu
// held, so a wait holds back this resource's reads and writes too, which
// is the point: the writers slow down instead of the watchers breaking.
func (c *cache) dispatch(ev *event) {
	for prefix, set := range c.watchers {
		if !covers(prefix, ev.key) {
			continue
		}
		for w := range set {
			select {
			case w.input <- ev:
				continue
			default:
			}
			if !c.waitFor(w, ev) {
				c.closeWatcherLocked(w)
			}
		}
	}
}

// waitFor blocks until w takes ev, w's stream ends, or the wait budget
// runs out, and reports whether w took ev. Called with mu held.
func (c *cache) waitFor(w *watcher, ev *event) bool {
	now := time.Now()
	budget := c.wait.take(now)
	if budget <= 0 {
		return false
	}
	t := time.NewTimer(budget)
	defer t.Stop()
	select {
	case w.input <- ev:
		c.wait.giveBack(budget - time.Since(now))
		return true
	case <-w.exited:
	case <-t.C:
	}
	return false
}

// Bounds of the time dispatch may block on slow watchers: up to
// maxDispatchWait at once, earned back at dispatchWaitPerSecond. A
// watcher that keeps up on average survives bursts; one that stopped
// reading costs the others at most maxDispatchWait before it is closed.
const (
	maxDispatchWait       = 100 * time.Millisecond
	dispatchWaitPerSecond = 100 * time.Millisecond
)

// waitBudget is a token bucket of blocking time.
type waitBudget struct {
	avail time.Duration
	last  time.Time
}

// take refills the bucket for the time since the last call and returns
// (and removes) what it holds.
func (b *waitBudget) take(now time.Time) time.Duration {
	if b.last.IsZero() {
		b.avail = maxDispatchWait
	} else {
		b.avail += time.Duration(float64(now.Sub(b.last)) * float64(dispatchWaitPerSecond) / float64(time.Second))
	}
	b.avail = min(b.avail, maxDispatchWait)
	b.last = now
	out := b.avail
	b.avail = 0
	return out
}

// giveBack returns the unused part of what take handed out.
func (b *waitBudget) giveBack(d time.Duration) {
	if d > 0 {
		b.avail = min(b.avail+d, maxDispatchWait)
	}
}

// addWatcher registers w. Called with mu held.
func (c *cache) addWatcher(w *watcher) {
	set := c.watchers[w.prefix]
	if set == nil {
		set = make(map[*watcher]struct{})
		c.watchers[w.prefix] = set
	}
	set[w] = struct{}{}
}

// closeWatcherLocked unregisters w and closes its input, once. Called with
// mu held.
func (c *cache) closeWatcherLocked(w *watcher) {
	if w.inputClosed {
		return
	}
	w.inputClosed = true
	close(w.input)
	if set := c.watchers[w.prefix]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(c.watchers, w.prefix)
		}
	}
}

// advance moves the cache revision forward (from a progress notification).
func (s *Store) advance(rev int64) {
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	s.cache.advanceLocked(rev)
}

// advanceLocked sets rev when it is newer and wakes waiters. Called with
// mu held.
func (c *cache) advanceLocked(rev int64) {
	if rev <= c.rev {
		return
	}
	c.rev = rev
	close(c.revCh)
	c.revCh = make(chan struct{})
}

// replace installs a fresh list after a compaction: the ring restarts at
// rev and every watcher is closed, since events between the old and new
// state are lost; clients re-watch (and re-list on 410).
func (s *Store) replace(items []*entry, rev int64) {
	c := &s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items = newItems(items)
	for i := range c.ring {
		c.ring[i] = nil
	}
	c.ringStart, c.ringLen = 0, 0
	c.floor = rev
	for _, set := range c.watchers {
		for w := range set {
			c.closeWatcherLocked(w)
		}
	}
	if rev > c.rev {
		c.rev = rev
	}
	close(c.revCh)
	c.revCh = make(chan struct{})
}

// stopCache closes every watcher and fails later reads.
func (s *Store) stopCache() {
	c := &s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	for _, set := range c.watchers {
		for w := range set {
			c.closeWatcherLocked(w)
		}
	}
	close(c.revCh)
	c.revCh = make(chan struct{})
}

func (s *Store) currentRev() int64 {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return s.cache.rev
}

// errStopped is returned by reads after the cache's ctx is done.
func (s *Store) errStopped() error {
	return apierrors.NewServiceUnavailable(fmt.Sprintf("storage of %s is stopped", s.resource))
}

// waitRev waits until the cache reaches rev. With progress set it asks
// etcd for progress notifications meanwhile (the cache's own events may not
// move it to a revision written under another prefix). It returns false
// on timeout.
func (s *Store) waitRev(ctx context.Context, rev int64, progress bool) (bool, error) {
	timer := time.NewTimer(s.freshnessTimeout)
	defer timer.Stop()
	var tick <-chan time.Time
	if progress {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	for {
		c := &s.cache
		c.mu.RLock()
		cur, ch, stopped := c.rev, c.revCh, c.stopped
		c.mu.RUnlock()
		if stopped {
			return false, s.errStopped()
		}
		if cur >= rev {
			return true, nil
		}
		if progress {
			s.requestProgress(ctx)
		}
		select {
		case <-ch:
		case <-tick:
		case <-timer.C:
			return false, nil
		case <-ctx.Done():
			return false, apierrors.NewTimeoutError(fmt.Sprintf("waiting for %s at revision %d: %v", s.resource, rev, ctx.Err()), 1)
		}
	}
}

// requestProgress asks etcd to send the cache's watch a progress
// notification carrying its current revision. The context must carry the
// same gRPC metadata as the watch's so that it reaches the same stream
// (watchCtx replaces any metadata ctx has). Errors only delay the caller
// until its next attempt or its timeout, so they are dropped.
func (s *Store) requestProgress(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = s.client.RequestProgress(watchCtx(ctx))
}

// etcdRevision returns etcd's current revision with a cheap linearizable
// read of a single key.
func (s *Store) etcdRevision(ctx context.Context) (int64, error) {
	resp, err := s.client.Get(ctx, s.prefix, clientv3.WithKeysOnly())
	if err != nil {
		return 0, s.etcdError(ctx, "reading revision of", s.prefix, err)
	}
	return resp.Header.Revision, nil
}

// waitFresh waits until the cache reflects etcd's current revision; false
// when it did not in time.
func (s *Store) waitFresh(ctx context.Context) (bool, error) {
	rev, err := s.etcdRevision(ctx)
	if err != nil {
		return false, err
	}
	return s.waitRev(ctx, rev, true)
}
