// Package slicewrites remembers the EndpointSlice writes of a controller
// (the EndpointSlice and EndpointSliceMirroring controllers), so that a
// sync can tell an informer cache that has not caught up with them yet.
// It reads and writes nothing itself.
package slicewrites

import (
	"strconv"
	"sync"
	"time"

	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// expectationTTL bounds how long a write is waited for: a slice created
// and deleted by someone else before the cache saw it must not block its
// service forever.
const expectationTTL = 10 * time.Second

// Tracker remembers, per service, the slices a controller wrote and the
// resource version each write produced (or that it deleted them), so that
// a sync can tell an informer cache that has not caught up with its
// writes yet: acting on it would create duplicate slices. This is the
// role of upstream's endpointSliceTracker and "expectations". Safe for
// concurrent use.
//
// Resource versions are compared as numbers, which holds for skiff's API
// server (they are etcd revisions) though not promised by the API.
type Tracker struct {
	mu sync.Mutex
	// services maps "namespace/name" to the slices written; guarded by mu.
	services map[string]map[types.UID]expectation
}

type expectation struct {
	rv      uint64 // the resource version written; 0: deleted
	expires time.Time
}

// New returns an empty tracker.
func New() *Tracker {
	return &Tracker{services: map[string]map[types.UID]expectation{}}
}

// Wrote records a create or update of s that the server answered with s.
func (w *Tracker) Wrote(key string, s *discovery.EndpointSlice, now time.Time) {
	rv, err := strconv.ParseUint(s.ResourceVersion, 10, 64)
	if err != nil {
		return
	}
	w.set(key, s.UID, expectation{rv: rv, expires: now.Add(expectationTTL)})
}

// Deleted records the deletion of s.
func (w *Tracker) Deleted(key string, s *discovery.EndpointSlice, now time.Time) {
	w.set(key, s.UID, expectation{expires: now.Add(expectationTTL)})
}

func (w *Tracker) set(key string, uid types.UID, e expectation) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.services[key]
	if m == nil {
		m = map[types.UID]expectation{}
		w.services[key] = m
	}
	m[uid] = e
}

// Stale reports whether cached (the service's slices in the informer
// cache) misses one of our writes. Writes the cache has caught up with are
// forgotten.
func (w *Tracker) Stale(key string, cached []*discovery.EndpointSlice, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.services[key]
	if len(m) == 0 {
		return false
	}
	seen := make(map[types.UID]uint64, len(cached))
	for _, s := range cached {
		rv, _ := strconv.ParseUint(s.ResourceVersion, 10, 64)
		seen[s.UID] = rv
	}
	stale := false
	for uid, e := range m {
		rv, ok := seen[uid]
		switch {
		case now.After(e.expires):
			delete(m, uid)
		case e.rv == 0 && ok, e.rv > 0 && (!ok || rv < e.rv):
			stale = true
		default:
			delete(m, uid)
		}
	}
	if len(m) == 0 {
		delete(w.services, key)
	}
	return stale
}

// Forget drops what was remembered for the service key.
func (w *Tracker) Forget(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.services, key)
}
