package prober

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// Execer runs a command in a running container; cri.Client and cri.Fake
// satisfy it. A non-zero exit is not an error.
type Execer interface {
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (cri.ExecResult, error)
}

var (
	_ Execer = (*cri.Client)(nil)
	_ Execer = (*cri.Fake)(nil)
)

// Config configures a Manager.
type Config struct {
	// Runtime runs exec probes and exec hooks. Required.
	Runtime Execer
	// Recorder receives Unhealthy and ProbeWarning events; nil records none.
	Recorder record.EventRecorder
	// Logger is the component's logger; nil discards.
	Logger *slog.Logger
	// OnChange, if set, is called from a probe goroutine, with no lock
	// held, after Ready, Started or Liveness of a container of the pod
	// changed. It must not block for long (queue the pod and return).
	OnChange func(uid types.UID)
}

// Manager runs the probes of the containers the pod sync engine started and
// keeps their results. All methods are safe for concurrent use.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	http *http.Client

	// second is the unit of the probes' *Seconds fields: a second, shorter
	// in this package's tests.
	second time.Duration
	// jitter returns a random duration in [0, max); rand by default.
	jitter func(max time.Duration) time.Duration

	// ctx is cancelled when Run returns; every probe goroutine runs under it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // counts probe goroutines

	mu         sync.Mutex
	containers map[string]*container // guarded by mu; by container ID
}

// container is the probe state of one started container. Its fields other
// than the immutable ones are guarded by Manager.mu.
type container struct {
	// Immutable after Start.
	id        string
	uid       types.UID
	name      string
	spec      *v1.Container
	startedAt time.Time
	// ctx is the probes' context; cancel ends them (Stop).
	ctx    context.Context
	cancel context.CancelFunc
	// startedCh is closed once the container counts as started (at once
	// without a startup probe).
	startedCh chan struct{}
	// done is closed when every probe goroutine of the container ended.
	done chan struct{}
	// kicks wake the workers for an immediate probe (the pod got an IP).
	kicks []chan struct{}

	pod          *v1.Pod // guarded by mu; the newest pod handed to Start
	hasReadiness bool    // immutable
	started      bool    // guarded by mu
	ready        bool    // guarded by mu; the readiness probe's result
	failed       bool    // guarded by mu; liveness or startup failed
	failMsg      string  // guarded by mu
}

// New returns a Manager. Start may be called before Run; probes run until
// Run's context is done.
func New(cfg Config) *Manager {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		cfg:        cfg,
		log:        log,
		http:       newHTTPClient(),
		second:     time.Second,
		jitter:     func(max time.Duration) time.Duration { return rand.N(max) },
		ctx:        ctx,
		cancel:     cancel,
		containers: map[string]*container{},
	}
}

// Run blocks until ctx is done, then stops every probe and waits for the
// probe goroutines to end. It returns nil. Start after Run returned is a
// no-op.
func (m *Manager) Run(ctx context.Context) error {
	<-ctx.Done()
	// Under mu, so that no Start adds a goroutine after Wait began.
	m.mu.Lock()
	m.cancel()
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// Start begins probing container c of pod, running as containerID (without
// "containerd://"), which the runtime started at startedAt. It is
// idempotent per containerID: another call for the same ID only replaces
// the pod the probes read their target IP from (pod.Status.PodIP, or
// HostIP for a host-network pod), and probes at once if the pod just got
// its IP. Start does not block.
//
// When pod.Status already reports this container (same container ID) as
// started or ready, as after an agent restart, the results begin there
// instead of at not-started/not-ready. pod and c are not modified and must
// not be modified by the caller afterwards.
func (m *Manager) Start(pod *v1.Pod, c *v1.Container, containerID string, startedAt time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, workers := m.addLocked(pod, c, containerID, startedAt)
	if s == nil {
		return
	}
	if len(workers) == 0 {
		close(s.done)
		return
	}
	ctx := s.ctx
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer wg.Done()
			w.run(ctx)
		}()
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		wg.Wait()
		close(s.done)
	}()
}

// addLocked registers a container and returns it with the workers to run
// for it, or nil when there is nothing new to run (a known ID, whose pod it
// refreshes, or a stopped Manager).
func (m *Manager) addLocked(pod *v1.Pod, c *v1.Container, containerID string, startedAt time.Time) (*container, []*worker) {
	if m.ctx.Err() != nil {
		return nil, nil
	}
	if s, ok := m.containers[containerID]; ok {
		hadIP := target{pod: s.pod}.hasIP()
		s.pod = pod
		if !hadIP && (target{pod: pod}).hasIP() {
			for _, k := range s.kicks {
				select {
				case k <- struct{}{}:
				default:
				}
			}
		}
		return nil, nil
	}
	ctx, cancel := context.WithCancel(m.ctx)
	s := &container{
		id:           containerID,
		uid:          pod.UID,
		name:         c.Name,
		spec:         c,
		startedAt:    startedAt,
		ctx:          ctx,
		cancel:       cancel,
		startedCh:    make(chan struct{}),
		done:         make(chan struct{}),
		pod:          pod,
		hasReadiness: c.ReadinessProbe != nil,
	}
	m.containers[containerID] = s

	prevStarted, prevReady := previousStatus(pod, c.Name, containerID)
	s.started = c.StartupProbe == nil || prevStarted
	s.ready = prevReady
	if s.started {
		close(s.startedCh)
	}
	var workers []*worker
	add := func(k kind, p *v1.Probe) {
		if p == nil || (k == startup && s.started) {
			return
		}
		w := &worker{m: m, c: s, kind: k, probe: p, kick: make(chan struct{}, 1)}
		s.kicks = append(s.kicks, w.kick)
		workers = append(workers, w)
	}
	add(startup, c.StartupProbe)
	add(readiness, c.ReadinessProbe)
	add(liveness, c.LivenessProbe)
	return s, workers
}

// previousStatus returns what pod.Status says of the container with this
// name and ID: whether it started and whether it was ready.
func previousStatus(pod *v1.Pod, name, id string) (started, ready bool) {
	for _, list := range [][]v1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for _, cs := range list {
			if cs.Name != name || cs.ContainerID != "containerd://"+id {
				continue
			}
			return cs.Started != nil && *cs.Started, cs.Ready
		}
	}
	return false, false
}

// Stop stops probing containerID and forgets its results. It does not wait
// for a probe in flight, which is cancelled and whose result is dropped (an
// OnChange call already under way may still complete). Stopping an unknown
// ID is a no-op.
func (m *Manager) Stop(containerID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.containers[containerID]; ok {
		s.cancel()
		delete(m.containers, containerID)
	}
}

// StopPod stops probing every container of the pod, as Stop.
func (m *Manager) StopPod(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, s := range m.containers {
		if s.uid == uid {
			s.cancel()
			delete(m.containers, id)
		}
	}
}

// Ready reports the container's readiness: without a readiness probe,
// true once Started; with one, true after successThreshold consecutive
// successes, false again after failureThreshold consecutive failures.
// False for an unknown ID.
func (m *Manager) Ready(containerID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.containers[containerID]
	if !ok || !s.started {
		return false
	}
	return !s.hasReadiness || s.ready
}

// Started reports whether the container's startup probe succeeded (true
// for a container without one). False for an unknown ID.
func (m *Manager) Started(containerID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.containers[containerID]
	return ok && s.started
}

// Liveness reports whether the container must be restarted: its liveness
// probe (probed only once Started) failed failureThreshold consecutive
// times, or its startup probe did. message is upstream's ("Container x
// failed liveness probe, will be restarted"), for the Killing event. Once
// failed, the container's liveness and startup probes stop; the answer
// stays until Stop.
func (m *Manager) Liveness(containerID string) (failed bool, message string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.containers[containerID]
	if !ok {
		return false, ""
	}
	return s.failed, s.failMsg
}

// hasIP reports whether t's pod has an address to probe.
func (t target) hasIP() bool {
	if t.pod == nil {
		return false
	}
	_, err := t.podIP()
	return err == nil
}
