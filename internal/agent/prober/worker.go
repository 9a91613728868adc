package prober

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	v1 "k8s.io/api/core/v1"
)

// kind is a probe's purpose.
type kind int

const (
	liveness kind = iota
	readiness
	startup
)

// String returns the kind as events spell it ("Liveness probe failed: …").
func (k kind) String() string {
	switch k {
	case liveness:
		return "Liveness"
	case readiness:
		return "Readiness"
	default:
		return "Startup"
	}
}

// worker runs one probe of one container in its own goroutine.
type worker struct {
	m     *Manager
	c     *container
	kind  kind
	probe *v1.Probe
	// kick asks for a probe now; buffered 1.
	kick chan struct{}

	// Owned by the worker's goroutine: the last result and how many times
	// in a row it came.
	last   result
	streak int
	// succeeded: the probe has succeeded at least once.
	succeeded bool
}

// run probes until ctx is done or the probe has nothing more to decide
// (startup succeeded, or liveness or startup failed).
func (w *worker) run(ctx context.Context) {
	if w.kind != startup {
		select {
		case <-w.c.startedCh:
		case <-ctx.Done():
			return
		}
	}
	unit := w.m.second
	period := seconds(w.probe.PeriodSeconds, 10, unit)
	first := w.c.startedAt.Add(time.Duration(w.probe.InitialDelaySeconds) * unit)
	now := time.Now()
	delay := max(first.Sub(now), 0)
	adopted := now.Sub(first) > period
	switch {
	case adopted && (w.kind == liveness || w.kind == readiness && w.m.Ready(w.c.id)):
		// Adopted after an agent restart with a known result: spread
		// these probes over their period.
		delay += w.m.jitter(period)
	case w.kind == liveness:
		delay += w.m.jitter(min(period, unit))
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	// Until the first success of a readiness or startup probe, extra
	// "early" probes run between the ticks, at growing intervals (a tenth
	// of a second, doubling, while under the period), so that a container
	// that needs a moment to listen becomes ready a moment later, not a
	// period later. Only their successes count; their failures are
	// dropped without event, so thresholds and events stay upstream's.
	retry := w.m.second / 10
	early := false
	for w.once(ctx, early) {
		var again <-chan time.Time
		if w.kind != liveness && !w.succeeded && retry < period {
			again = time.After(retry)
			retry *= 2
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			early = false
		case <-w.kick:
			early = false
		case <-again:
			early = true
		}
	}
}

// once runs the probe and records its result; false ends the worker. The
// result of an early probe counts only if it is a success.
func (w *worker) once(ctx context.Context, early bool) bool {
	m := w.m
	m.mu.Lock()
	if m.containers[w.c.id] != w.c {
		m.mu.Unlock()
		return false
	}
	t := target{pod: w.c.pod, container: w.c.spec, containerID: w.c.id}
	m.mu.Unlock()

	res, out, err := m.runProbe(ctx, t, w.probe)
	if ctx.Err() != nil {
		return false
	}
	if early && (err != nil || res != resultSuccess && res != resultWarning) {
		log := m.log.With("pod", t.pod.Namespace+"/"+t.pod.Name, "container", w.c.name, "probe", w.kind.String())
		log.Debug("early probe did not succeed", "output", out, "err", err)
		return true
	}
	if res == resultSuccess || res == resultWarning {
		w.succeeded = true
	}
	log := m.log.With("pod", t.pod.Namespace+"/"+t.pod.Name, "container", w.c.name, "containerID", w.c.id, "probe", w.kind.String())
	switch {
	case errors.Is(err, errNoIP):
		log.Debug("probe waits for the pod IP")
		return true
	case err != nil:
		// The probe could not run: throw the result away, as upstream.
		log.Debug("probe errored", "err", err)
		m.event(t, v1.EventTypeWarning, "Unhealthy", fmt.Sprintf("%s probe errored: %v", w.kind, err))
		return true
	case res == resultWarning:
		m.event(t, v1.EventTypeWarning, "ProbeWarning", fmt.Sprintf("%s probe warning: %s", w.kind, out))
		res = resultSuccess
	case res == resultFailure:
		log.Debug("probe failed", "output", out)
		m.event(t, v1.EventTypeWarning, "Unhealthy", fmt.Sprintf("%s probe failed: %s", w.kind, out))
	}

	if res == w.last {
		w.streak++
	} else {
		w.last, w.streak = res, 1
	}
	success := int(max(w.probe.SuccessThreshold, 1))
	if w.kind != readiness {
		success = 1 // upstream requires 1 for liveness and startup
	}
	failure := int(w.probe.FailureThreshold)
	if failure <= 0 {
		failure = 3
	}
	if res == resultFailure && w.streak < failure || res == resultSuccess && w.streak < success {
		return true
	}
	return w.set(res == resultSuccess, log)
}

// set stores a result that reached its threshold and calls OnChange if it
// changed one of Ready, Started or Liveness; false ends the worker.
func (w *worker) set(ok bool, log *slog.Logger) bool {
	m, c := w.m, w.c
	m.mu.Lock()
	if m.containers[c.id] != c {
		m.mu.Unlock()
		return false
	}
	changed, more := false, true
	switch {
	case w.kind == readiness:
		changed = c.ready != ok
		c.ready = ok
	case w.kind == startup && ok:
		changed, more = !c.started, false
		if !c.started {
			c.started = true
			close(c.startedCh)
		}
	case !ok: // liveness or startup failed
		changed, more = !c.failed, false
		c.failed = true
		c.failMsg = fmt.Sprintf("Container %s failed %s probe, will be restarted", c.name, map[kind]string{liveness: "liveness", startup: "startup"}[w.kind])
	}
	m.mu.Unlock()
	if changed {
		log.Info("probe result changed", "success", ok)
		if m.cfg.OnChange != nil {
			m.cfg.OnChange(c.uid)
		}
	}
	return more
}

// event records an event on the container of t, as upstream: on the pod,
// with the container's field path.
func (m *Manager) event(t target, eventType, reason, message string) {
	if m.cfg.Recorder == nil {
		return
	}
	m.cfg.Recorder.Event(containerRef(t.pod, t.container.Name), eventType, reason, message)
}

// containerRef is a reference to the container name of pod.
func containerRef(pod *v1.Pod, name string) *v1.ObjectReference {
	path := fmt.Sprintf("spec.containers{%s}", name)
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			path = fmt.Sprintf("spec.initContainers{%s}", name)
		}
	}
	return &v1.ObjectReference{
		Kind:            "Pod",
		APIVersion:      "v1",
		Namespace:       pod.Namespace,
		Name:            pod.Name,
		UID:             pod.UID,
		ResourceVersion: pod.ResourceVersion,
		FieldPath:       path,
	}
}
