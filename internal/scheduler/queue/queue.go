package queue

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
)

// Back-off and safety-net durations (upstream defaults).
const (
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = 10 * time.Second
	maxInUnschedulable    = 5 * time.Minute
	flushInterval         = time.Second
)

// ErrClosed is returned by Pop once the queue is closed.
var ErrClosed = errors.New("queue: closed")

// QueuedPod is a pod handed out by Pop.
type QueuedPod struct {
	Pod      *v1.Pod
	Priority int32
	// Attempts counts scheduling attempts, this one included.
	Attempts int
	// Cycle is the scheduling cycle of this attempt.
	Cycle int64
	// Timestamp is when the pod was first queued.
	Timestamp time.Time
}

type where int

const (
	inActive where = iota
	inBackoff
	inUnschedulable
	inFlight
)

type entry struct {
	pod        *v1.Pod
	priority   int32
	timestamp  time.Time
	attempts   int
	lastFailed time.Time
	where      where
	index      int // heap index while in active or backoff
	cycle      int64
	// rejectedBy are the plugins that rejected the pod last time (empty:
	// unknown, any event moves it).
	rejectedBy map[string]bool
	// updated is set when the pod changed while in flight.
	updated bool
}

// Queue is safe for concurrent use.
type Queue struct {
	now            func() time.Time
	initialBackoff time.Duration
	maxBackoff     time.Duration

	mu   sync.Mutex
	cond *sync.Cond
	// entries holds every known pod by uid; unsched the unschedulable
	// ones; active and backoff are heaps over some of them; cycle counts Pops; moveCycle is the cycle of the
	// last MoveOnEvent (all guarded by mu).
	entries   map[types.UID]*entry
	unsched   map[types.UID]*entry
	active    entryHeap
	backoff   entryHeap
	cycle     int64
	moveCycle int64
	closed    bool
}

// New returns an empty queue; now is the clock (nil: time.Now).
func New(now func() time.Time) *Queue {
	if now == nil {
		now = time.Now
	}
	q := &Queue{
		now:            now,
		initialBackoff: DefaultInitialBackoff,
		maxBackoff:     DefaultMaxBackoff,
		entries:        map[types.UID]*entry{},
		unsched:        map[types.UID]*entry{},
		moveCycle:      -1,
	}
	q.active.less = func(a, b *entry) bool {
		if a.priority != b.priority {
			return a.priority > b.priority
		}
		return a.timestamp.Before(b.timestamp)
	}
	q.backoff.less = func(a, b *entry) bool { return q.backoffExpiry(a).Before(q.backoffExpiry(b)) }
	q.cond = sync.NewCond(&q.mu)
	return q
}

// backoffExpiry is when e may be tried again.
func (q *Queue) backoffExpiry(e *entry) time.Time {
	d := q.initialBackoff
	for i := 1; i < e.attempts && d < q.maxBackoff; i++ {
		d *= 2
	}
	if d > q.maxBackoff {
		d = q.maxBackoff
	}
	return e.lastFailed.Add(d)
}

// Add queues a new pod, or updates it if it is known.
func (q *Queue) Add(pod *v1.Pod, priority int32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.entries[pod.UID]; ok {
		q.updateLocked(e, pod, priority)
		return
	}
	e := &entry{pod: pod, priority: priority, timestamp: q.now()}
	q.entries[pod.UID] = e
	q.pushActiveLocked(e)
}

// Update replaces a queued pod's object. An unschedulable pod whose spec
// or labels changed is given another chance at once.
func (q *Queue) Update(pod *v1.Pod, priority int32) { q.Add(pod, priority) }

func (q *Queue) updateLocked(e *entry, pod *v1.Pod, priority int32) {
	old := e.pod
	e.pod = pod
	prioChanged := e.priority != priority
	e.priority = priority
	switch e.where {
	case inActive:
		if prioChanged {
			heap.Fix(&q.active, e.index)
		}
	case inBackoff:
	case inUnschedulable:
		if prioChanged || !equalLabels(old.Labels, pod.Labels) || !apiequality.Semantic.DeepEqual(old.Spec, pod.Spec) {
			q.moveLocked(e)
		}
	case inFlight:
		e.updated = true
	}
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// Delete forgets a pod wherever it is (an in-flight pod is then not
// re-queued).
func (q *Queue) Delete(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.entries[uid]
	if !ok {
		return
	}
	switch e.where {
	case inActive:
		heap.Remove(&q.active, e.index)
	case inBackoff:
		heap.Remove(&q.backoff, e.index)
	case inUnschedulable:
		delete(q.unsched, uid)
	}
	delete(q.entries, uid)
}

// Pop blocks until a pod is active and hands it out (in flight), or
// returns ErrClosed / ctx's error.
func (q *Queue) Pop(ctx context.Context) (QueuedPod, error) {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.active.Len() == 0 {
		if q.closed {
			return QueuedPod{}, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return QueuedPod{}, err
		}
		q.cond.Wait()
	}
	e := heap.Pop(&q.active).(*entry)
	q.cycle++
	e.cycle = q.cycle
	e.attempts++
	e.where = inFlight
	e.updated = false
	return QueuedPod{Pod: e.pod, Priority: e.priority, Attempts: e.attempts, Cycle: e.cycle, Timestamp: e.timestamp}, nil
}

// Done ends the in-flight state of a pod that was scheduled (assumed):
// the queue forgets it. If its bind fails, the scheduler calls Add again.
func (q *Queue) Done(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.entries[uid]; ok && e.where == inFlight {
		delete(q.entries, uid)
	}
}

// Requeue puts back an in-flight pod that could not be scheduled.
// rejectedBy names the plugins that rejected it; nil with err=true means
// an internal error (straight to back-off). A pod that was deleted, or
// is not in flight, is ignored. If a cluster event arrived while the pod
// was in flight, or the pod itself changed, it goes to back-off rather
// than waiting for another event.
func (q *Queue) Requeue(qp QueuedPod, rejectedBy []string, internalError bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.entries[qp.Pod.UID]
	if !ok || e.where != inFlight {
		return
	}
	e.lastFailed = q.now()
	e.rejectedBy = nil
	if len(rejectedBy) > 0 {
		e.rejectedBy = make(map[string]bool, len(rejectedBy))
		for _, p := range rejectedBy {
			e.rejectedBy[p] = true
		}
	}
	if internalError || e.updated || q.moveCycle >= e.cycle {
		q.pushBackoffLocked(e)
		return
	}
	e.where = inUnschedulable
	q.unsched[qp.Pod.UID] = e
}

// Readd queues again a pod whose bind failed after Done.
func (q *Queue) Readd(qp QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.entries[qp.Pod.UID]; ok {
		return
	}
	e := &entry{pod: qp.Pod, priority: qp.Priority, timestamp: qp.Timestamp, attempts: qp.Attempts, lastFailed: q.now()}
	q.entries[qp.Pod.UID] = e
	q.pushBackoffLocked(e)
}

// MoveOnEvent moves unschedulable pods that one of plugins rejected (or
// whose rejecters are unknown) towards active: to backoff while their
// back-off lasts, else to active. plugins nil means every pod.
func (q *Queue) MoveOnEvent(plugins []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moveCycle = q.cycle
	for _, e := range q.unsched {
		if plugins != nil && len(e.rejectedBy) > 0 && !anyOf(e.rejectedBy, plugins) {
			continue
		}
		q.moveLocked(e)
	}
}

func anyOf(set map[string]bool, names []string) bool {
	for _, n := range names {
		if set[n] {
			return true
		}
	}
	return false
}

// moveLocked moves an unschedulable entry to backoff or active.
func (q *Queue) moveLocked(e *entry) {
	delete(q.unsched, e.pod.UID)
	if q.backoffExpiry(e).After(q.now()) {
		q.pushBackoffLocked(e)
		return
	}
	q.pushActiveLocked(e)
}

func (q *Queue) pushActiveLocked(e *entry) {
	e.where = inActive
	heap.Push(&q.active, e)
	q.cond.Broadcast()
}

func (q *Queue) pushBackoffLocked(e *entry) {
	e.where = inBackoff
	heap.Push(&q.backoff, e)
}

// Flush moves pods whose back-off is over to active, and pods left
// unschedulable for five minutes to active or backoff. Run calls it
// every second; tests call it directly.
func (q *Queue) Flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for q.backoff.Len() > 0 {
		e := q.backoff.items[0]
		if q.backoffExpiry(e).After(now) {
			break
		}
		heap.Pop(&q.backoff)
		q.pushActiveLocked(e)
	}
	for _, e := range q.unsched {
		if now.Sub(e.lastFailed) >= maxInUnschedulable {
			q.moveLocked(e)
		}
	}
}

// Run flushes the back-off queue every second until ctx is done, then
// closes the queue (Pop returns ErrClosed).
func (q *Queue) Run(ctx context.Context) error {
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			q.Close()
			return nil
		case <-t.C:
			q.Flush()
		}
	}
}

// Close wakes Pop callers with ErrClosed.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

// Len returns the number of pods per place (active, backoff,
// unschedulable), for tests and logs.
func (q *Queue) Len() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), len(q.unsched)
}

// entryHeap is a heap of entries ordered by less.
type entryHeap struct {
	items []*entry
	less  func(a, b *entry) bool
}

func (h *entryHeap) Len() int           { return len(h.items) }
func (h *entryHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *entryHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index = i
	h.items[j].index = j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(h.items)
	h.items = append(h.items, e)
}
func (h *entryHeap) Pop() any {
	n := len(h.items)
	e := h.items[n-1]
	h.items[n-1] = nil
	h.items = h.items[:n-1]
	return e
}
