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
// default 100 at fullHeap. At idle, collections come a little more often
// (an idle server allocates some 100 KiB a second: a collection every ten
// seconds or so, about 1% of a core) and the heap stays close to what is
// live.
//
// A large live heap means a large cluster, and a server that allocates
// at a high rate: there the collector's cost (proportional to the
// allocation rate divided by the percent, whatever the heap's size) is
// the largest single item of a busy server's CPU profile. So above
// fullHeap the percent keeps rising, to maxPercent at bigHeap, trading
// memory for CPU, but only while the heap's goal (live × (1 + percent/100))
// stays within a quarter of the memory the process may use (the machine's,
// or its cgroup's or GOMEMLIMIT's when lower); past that it falls back
// towards the default, never below it. At bigHeap (a cluster of a few
// thousand nodes) a heap of 128 MiB live may grow to 384 MiB between
// collections instead of 256 MiB.
//
// A GOGC set in the environment is the operator's choice: Start then does
// nothing.
package gctune

import (
	"context"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"

	"github.com/skiff-dev/skiff/internal/meminfo"
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
	// bigHeap is the live heap from which maxPercent applies; from
	// fullHeap the percent rises linearly to it.
	bigHeap = 128 << 20
	// maxPercent is the highest percent used.
	maxPercent = 200
	// budgetShare: the heap's goal stays within 1/budgetShare of the
	// memory the process may use.
	budgetShare = 4
)

// Percent returns the GC percent for a live heap of live bytes in a
// process that may use memory bytes (0: unknown, the percent then stops
// at the default).
func Percent(live, memory uint64) int {
	if live >= fullHeap {
		p := defaultPercent + int((min(live, bigHeap)-fullHeap)*(maxPercent-defaultPercent)/(bigHeap-fullHeap))
		budget := memory / budgetShare
		if budget <= live {
			return defaultPercent
		}
		// The goal live*(100+p)/100 must stay within budget.
		return max(defaultPercent, min(p, int((budget-live)*100/live)))
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
	t := &tuner{ctx: ctx, last: defaultPercent, memory: memoryLimit()}
	t.adjust()
	t.arm()
}

type tuner struct {
	ctx    context.Context
	last   int
	memory uint64 // what the process may use; 0: unknown
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
	p := Percent(s[0].Value.Uint64(), t.memory)
	if p == t.last {
		return
	}
	debug.SetGCPercent(p)
	t.last = p
}

// memoryLimit returns the memory the process may use: the machine's
// (MemTotal), or its cgroup's limit (v2 memory.max, v1
// memory.limit_in_bytes) or a GOMEMLIMIT when lower; 0 when none can be
// read.
func memoryLimit() uint64 {
	var limit uint64
	if m, err := meminfo.Read("/proc/meminfo"); err == nil {
		limit = m["MemTotal"]
	}
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// "max" (v2) and a huge page-rounded number (v1) mean no limit.
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 && (limit == 0 || v < limit) {
			limit = v
		}
	}
	// A GOMEMLIMIT (or debug.SetMemoryLimit) is the operator's bound.
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 && (limit == 0 || uint64(l) < limit) {
		limit = uint64(l)
	}
	return limit
}
