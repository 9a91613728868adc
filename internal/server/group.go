package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// group runs the server's components and stops them in the reverse of the
// order they were added, each one only after everything added later has
// returned. It is the supervisor: the first component to return on its
// own (error or not) is the cause of the shutdown.
//
// Lifecycle of one component:
//
//	Go ──> running ──(returns by itself)──> failed: Exited() closes, cause set
//	          │
//	          └──(Shutdown cancels its ctx)──> stopped
//
// Go and OnStop are called from one goroutine (Run's), before Shutdown.
type group struct {
	log *slog.Logger

	exited   chan struct{} // closed once a component returned on its own
	exitOnce sync.Once
	cause    error // set before exited is closed; read after

	members []member // in start order; only touched by Run's goroutine
}

// member is either a goroutine (done != nil) or a stop function.
type member struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    *error // the goroutine's result, valid after done is closed
	// own is true when the goroutine returned before being asked to; its
	// error is then reported as (or after) the cause, not as a stop error.
	own  *bool
	stop func() error
}

func newGroup(log *slog.Logger) *group {
	return &group{log: log, exited: make(chan struct{})}
}

// Go starts fn in a goroutine with its own context, cancelled by Shutdown
// at fn's place in the stop order.
func (g *group) Go(name string, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	var own bool
	g.members = append(g.members, member{name: name, cancel: cancel, done: done, err: &err, own: &own})
	go func() {
		defer close(done)
		err = fn(ctx)
		if ctx.Err() != nil {
			return // asked to stop
		}
		own = true
		if err == nil {
			g.fail(fmt.Errorf("%s exited unexpectedly", name))
			return
		}
		g.fail(fmt.Errorf("%s: %w", name, err))
	}()
}

// OnStop registers stop to run at this place in the stop order (for things
// that are not goroutines: the etcd member, the watch caches' context).
func (g *group) OnStop(name string, stop func() error) {
	g.members = append(g.members, member{name: name, stop: stop})
}

// Exited is closed when a component returned on its own; Cause then says
// why.
func (g *group) Exited() <-chan struct{} { return g.exited }

// Cause is the first component exit, or nil. Only meaningful after Exited
// is closed.
func (g *group) Cause() error {
	select {
	case <-g.exited:
		return g.cause
	default:
		return nil
	}
}

func (g *group) fail(err error) {
	g.exitOnce.Do(func() {
		g.cause = err
		close(g.exited)
	})
}

// Shutdown stops every member in reverse start order, giving each up to
// timeout to return, and returns the errors they reported while stopping
// (context.Canceled is not an error). It does not include Cause.
func (g *group) Shutdown(timeout time.Duration) error {
	var errs []error
	for i := len(g.members) - 1; i >= 0; i-- {
		m := g.members[i]
		start := time.Now()
		if m.stop != nil {
			if err := m.stop(); err != nil {
				errs = append(errs, fmt.Errorf("stopping %s: %w", m.name, err))
			}
			g.log.Debug("stopped", "component", m.name, "took", time.Since(start))
			continue
		}
		m.cancel()
		t := time.NewTimer(timeout)
		select {
		case <-m.done:
			t.Stop()
			if err := *m.err; err != nil && !*m.own && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("stopping %s: %w", m.name, err))
			}
		case <-t.C:
			errs = append(errs, fmt.Errorf("stopping %s: still running after %v", m.name, timeout))
		}
		g.log.Debug("stopped", "component", m.name, "took", time.Since(start))
	}
	g.members = nil
	return errors.Join(errs...)
}
