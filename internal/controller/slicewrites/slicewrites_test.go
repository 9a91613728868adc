package slicewrites

import (
	"testing"
	"time"

	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func slice(uid, rv string) *discovery.EndpointSlice {
	return &discovery.EndpointSlice{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), ResourceVersion: rv}}
}

// TestStale: a cache is stale while it lacks a slice written, holds an
// older version of it, or still holds a slice deleted; writes it has
// caught up with, and writes older than the TTL, are forgotten.
func TestStale(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name   string
		record func(*Tracker)
		cached []*discovery.EndpointSlice
		at     time.Time
		want   bool
	}{
		{"nothing written", func(*Tracker) {}, nil, t0, false},
		{"created, not in the cache yet", func(w *Tracker) { w.Wrote("ns/a", slice("u1", "10"), t0) }, nil, t0, true},
		{"created, in the cache", func(w *Tracker) { w.Wrote("ns/a", slice("u1", "10"), t0) }, []*discovery.EndpointSlice{slice("u1", "10")}, t0, false},
		{"updated, cache has the older version", func(w *Tracker) { w.Wrote("ns/a", slice("u1", "12"), t0) }, []*discovery.EndpointSlice{slice("u1", "10")}, t0, true},
		{"updated, cache is newer still", func(w *Tracker) { w.Wrote("ns/a", slice("u1", "12"), t0) }, []*discovery.EndpointSlice{slice("u1", "15")}, t0, false},
		{"deleted, still in the cache", func(w *Tracker) { w.Deleted("ns/a", slice("u1", "10"), t0) }, []*discovery.EndpointSlice{slice("u1", "10")}, t0, true},
		{"deleted, gone from the cache", func(w *Tracker) { w.Deleted("ns/a", slice("u1", "10"), t0) }, nil, t0, false},
		{"another service's write", func(w *Tracker) { w.Wrote("ns/b", slice("u1", "10"), t0) }, nil, t0, false},
		{"write past the TTL", func(w *Tracker) { w.Wrote("ns/a", slice("u1", "10"), t0) }, nil, t0.Add(expectationTTL + time.Second), false},
		{"forgotten", func(w *Tracker) { w.Wrote("ns/a", slice("u1", "10"), t0); w.Forget("ns/a") }, nil, t0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := New()
			tc.record(w)
			if got := w.Stale("ns/a", tc.cached, tc.at); got != tc.want {
				t.Errorf("Stale = %v, want %v", got, tc.want)
			}
		})
	}

	// What the cache caught up with is forgotten: a later cache without
	// the slice (deleted by someone else) is not stale.
	w := New()
	w.Wrote("ns/a", slice("u1", "10"), t0)
	if w.Stale("ns/a", []*discovery.EndpointSlice{slice("u1", "10")}, t0) {
		t.Fatal("stale with the write in the cache")
	}
	if w.Stale("ns/a", nil, t0) {
		t.Error("stale after the write was seen and the slice went")
	}
}
