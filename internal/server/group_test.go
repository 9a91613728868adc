package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestGroupStopOrder checks that members stop in reverse start order, each
// after the ones started later have returned, and that the first
// component to exit on its own is the cause.
func TestGroupStopOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		failing   string // component that returns on its own; "" for none
		failErr   error
		wantCause string
	}{
		{name: "clean shutdown"},
		{name: "component error", failing: "api", failErr: errors.New("boom"), wantCause: "api: boom"},
		{name: "component returns nil early", failing: "controller", wantCause: "controller exited unexpectedly"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var order []string
			record := func(s string) {
				mu.Lock()
				defer mu.Unlock()
				order = append(order, s)
			}
			g := newGroup(slog.New(slog.DiscardHandler))
			g.OnStop("etcd", func() error { record("etcd"); return nil })
			run := func(name string) func(ctx context.Context) error {
				return func(ctx context.Context) error {
					if name == tc.failing {
						record(name)
						return tc.failErr
					}
					<-ctx.Done()
					record(name)
					return ctx.Err() // context.Canceled is not a stop error
				}
			}
			g.Go("api", run("api"))
			g.OnStop("caches", func() error { record("caches"); return nil })
			g.Go("controller", run("controller"))

			if tc.failing != "" {
				select {
				case <-g.Exited():
				case <-time.After(10 * time.Second):
					t.Fatal("Exited not closed after a component returned")
				}
			}
			cause := ""
			if err := g.Cause(); err != nil {
				cause = err.Error()
			}
			if cause != tc.wantCause {
				t.Errorf("Cause() = %q, want %q", cause, tc.wantCause)
			}
			if err := g.Shutdown(5 * time.Second); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			want := []string{"controller", "caches", "api", "etcd"}
			if tc.failing != "" {
				// The failed component recorded itself first, then the rest
				// stopped in reverse order.
				want = []string{tc.failing}
				for _, n := range []string{"controller", "caches", "api", "etcd"} {
					if n != tc.failing {
						want = append(want, n)
					}
				}
			}
			if diff := cmp.Diff(want, order); diff != "" {
				t.Errorf("stop order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGroupShutdownReportsStopErrors(t *testing.T) {
	t.Parallel()
	g := newGroup(slog.New(slog.DiscardHandler))
	g.OnStop("etcd", func() error { return errors.New("close failed") })
	g.Go("stuck", func(ctx context.Context) error {
		<-ctx.Done()
		return errors.New("flush failed")
	})
	err := g.Shutdown(5 * time.Second)
	if err == nil {
		t.Fatal("Shutdown returned nil, want the stop errors")
	}
	for _, want := range []string{"stopping stuck: flush failed", "stopping etcd: close failed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Shutdown error %q lacks %q", err, want)
		}
	}
}
