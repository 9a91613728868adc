// Package gctune owns the garbage collector's target of a skiff process
// (what GOGC sets). It reads the live heap after every collection (from
// runtime/metrics) and writes the GC percent (debug.SetGCPercent).
//
// Go's default, GOGC=100, lets the heap grow to twice what was live after
// the last collection. For a large heap that is the right trade of memory
// for CPU; for the 20-odd MiB of an idle server it means another 20 MiB of
// garbage resident between collections, a fifth of the process. So while
// the live heap is small the percent is low: minPercent up to smallHeap
// (leaving at least minHeadroom of room), then rising linearly to the
// default 100 at fullHeap. Under load the heap grows past fullHeap and
// nothing changes; at idle, collections come a little more often (an idle
// server allocates some 100 KiB a second: a collection every ten seconds
// or so, about 1% of a core) and the heap stays close to what is live.
//
// A GOGC set in the environment is the operator's choice: Start then does
// nothing.
package gctune

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

const (
	// fullHeap is the live heap from which the default percent applies.
	fullHeap = 64 << 20
	// smallHeap is the live heap up to which minPercent applies; from
	// there the percent rises linearly to the default at fullHeap.
	smallHeap = 24 << 20
	// minPercent is the lowest percent used.
	minPercent = 10
	// minHeadroom is the least room left for new allocations.
	minHeadroom = 2 << 20
	// defaultPercent is Go's default GOGC.
	defaultPercent = 100
)

// Percent returns the GC percent for a live heap of live bytes.
func Percent(live uint64) int {
	if live >= fullHeap {
		return defaultPercent
	}
	p := minPercent
	if live > smallHeap {
		p = minPercent + int((live-smallHeap)*(defaultPercent-minPercent)/(fullHeap-smallHeap))
	}
	if live > 0 {
		p = max(p, int((minHeadroom*defaultPercent+live-1)/live))
	}
	return min(max(p, minPercent), defaultPercent)
}

// Start tunes the GC percent after every collection until ctx is done.
// It returns at once; the work runs on the runtime's finalizer goroutine.
func Start(ctx context.Context) {
	if os.Getenv("GOGC") != "" {
		return
	}
	t := &tuner{ctx: ctx, last: defaultPercent}
	t.adjust()
	t.arm()
}

type tuner struct {
	ctx  context.Context
	last int
}

// sentinel is allocated for its finalizer, which runs after the first
// collection that finds it unreachable. It holds a pointer so that it is
// never a tiny allocation (finalizers of those may never run).
type sentinel struct {
	_ *int
	_ [16]byte
}

// arm sets up the next after-collection callback.
func (t *tuner) arm() {
	runtime.SetFinalizer(new(sentinel), func(*sentinel) {
		if t.ctx.Err() != nil {
			return
		}
		t.adjust()
		t.arm()
	})
}

// adjust sets the percent for the live heap now.
func (t *tuner) adjust() {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	p := Percent(s[0].Value.Uint64())
	if p == t.last {
		return
	}
	debug.SetGCPercent(p)
	t.last = p
}
