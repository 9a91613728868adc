package gctune

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// percentNow reads the GC percent in effect.
func percentNow() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

func TestPercent(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name   string
		live   uint64
		memory uint64
		want   int
	}{
		{"nothing measured yet", 0, 16 * gib, minPercent},
		{"tiny heap keeps minHeadroom of room", 8 << 20, 16 * gib, 25},
		{"idle server", 20 << 20, 16 * gib, minPercent},
		{"at smallHeap the minimum", smallHeap, 16 * gib, minPercent},
		{"half way to fullHeap", (smallHeap + fullHeap) / 2, 16 * gib, 55},
		{"small heaps ignore the memory", (smallHeap + fullHeap) / 2, 0, 55},
		{"at fullHeap the default", fullHeap, 16 * gib, 100},
		{"half way to bigHeap", (fullHeap + bigHeap) / 2, 16 * gib, 150},
		{"at bigHeap the maximum", bigHeap, 16 * gib, maxPercent},
		{"larger heaps the maximum", 1 * gib, 16 * gib, maxPercent},
		{"memory unknown: the default", bigHeap, 0, 100},
		// A quarter of 1 GiB is 256 MiB: a 160 MiB live heap may grow
		// by 96 MiB (60%), less than the default.
		{"small machine: the default", 160 << 20, 1 * gib, 100},
		// A quarter of 3 GiB is 768 MiB: 256 MiB live may grow by
		// 512 MiB (200%); 300 MiB live by 468 MiB (156%).
		{"goal at the budget", 256 << 20, 3 * gib, maxPercent},
		{"goal capped by the budget", 300 << 20, 3 * gib, 156},
		{"live heap over the budget", 2 * gib, 4 * gib, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percent(tt.live, tt.memory); got != tt.want {
				t.Errorf("Percent(%d MiB, %d MiB) = %d, want %d", tt.live>>20, tt.memory>>20, got, tt.want)
			}
		})
	}
}

func TestMemoryLimit(t *testing.T) {
	got := memoryLimit()
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skip("no /proc/meminfo on this machine")
	}
	if got < 64<<20 || got > 1<<50 {
		t.Errorf("memoryLimit() = %d bytes, want a plausible amount of memory", got)
	}
}

// TestStartTunesAfterCollection checks that Start sets the percent for the
// live heap, and keeps doing so after collections, until ctx is done.
func TestStartTunesAfterCollection(t *testing.T) {
	t.Setenv("GOGC", "") // Start honours a GOGC from the environment
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)

	// A live heap of about 44 MiB: half way from smallHeap to fullHeap,
	// so the percent is about 55.
	live := make([]byte, 44<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	Start(ctx)
	// The finalizer runs on its own goroutine soon after a collection.
	deadline := time.Now().Add(10 * time.Second)
	got := percentNow()
	for (got < 50 || got > 62) && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		got = percentNow()
	}
	if got < 50 || got > 62 {
		t.Fatalf("GC percent = %d after collections with 44 MiB live, want about 55", got)
	}
	runtime.KeepAlive(live)
}
