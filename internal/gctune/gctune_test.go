package gctune

import (
	"context"
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
	tests := []struct {
		name string
		live uint64
		want int
	}{
		{"nothing measured yet", 0, minPercent},
		{"tiny heap keeps minHeadroom of room", 8 << 20, 25},
		{"idle server", 20 << 20, minPercent},
		{"at smallHeap the minimum", smallHeap, minPercent},
		{"half way to fullHeap", (smallHeap + fullHeap) / 2, 55},
		{"at fullHeap the default", fullHeap, 100},
		{"large heap the default", 1 << 30, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percent(tt.live); got != tt.want {
				t.Errorf("Percent(%d MiB) = %d, want %d", tt.live>>20, got, tt.want)
			}
		})
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
