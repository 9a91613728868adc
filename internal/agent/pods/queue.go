package pods

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// keyQueue runs fn for a key on its own goroutine, at most one at a time
// per key: an Add while the key's fn runs marks it dirty, and fn runs again
// once it returns. Keys are independent, so a pod waiting out a long grace
// period never delays another. Adds before Start are held until Start.
//
// Key lifecycle:
//
//	idle ──Add──> running ──fn returns, not dirty──> idle (entry dropped unless a timer waits)
//	                 │  ^
//	             Add │  │ fn returns, dirty
//	                 v  │
//	              running+dirty
type keyQueue struct {
	fn func(ctx context.Context, uid types.UID)

	mu   sync.Mutex
	ctx  context.Context         // guarded by mu; nil before Start
	keys map[types.UID]*keyEntry // guarded by mu
	wg   sync.WaitGroup
}

type keyEntry struct {
	running, dirty bool
	timer          *time.Timer // pending AddAfter, fires at timerAt
	timerAt        time.Time
}

func newKeyQueue(fn func(ctx context.Context, uid types.UID)) *keyQueue {
	return &keyQueue{fn: fn, keys: map[types.UID]*keyEntry{}}
}

func (q *keyQueue) entryLocked(uid types.UID) *keyEntry {
	e, ok := q.keys[uid]
	if !ok {
		e = &keyEntry{}
		q.keys[uid] = e
	}
	return e
}

// Add runs fn for uid now, or again once its running fn returns.
func (q *keyQueue) Add(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.entryLocked(uid)
	if e.running || q.ctx == nil {
		e.dirty = true
		return
	}
	if q.ctx.Err() != nil {
		return
	}
	q.spawnLocked(uid, e)
}

func (q *keyQueue) spawnLocked(uid types.UID, e *keyEntry) {
	e.running, e.dirty = true, false
	q.wg.Add(1)
	go q.run(uid, e)
}

func (q *keyQueue) run(uid types.UID, e *keyEntry) {
	defer q.wg.Done()
	for {
		q.fn(q.ctx, uid)
		q.mu.Lock()
		if e.dirty && q.ctx.Err() == nil {
			e.dirty = false
			q.mu.Unlock()
			continue
		}
		e.running = false
		if e.timer == nil && q.keys[uid] == e {
			delete(q.keys, uid)
		}
		q.mu.Unlock()
		return
	}
}

// AddAfter runs fn for uid after d, unless an earlier run is already
// scheduled by AddAfter.
func (q *keyQueue) AddAfter(uid types.UID, d time.Duration) {
	if d <= 0 {
		q.Add(uid)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.entryLocked(uid)
	at := time.Now().Add(d)
	if e.timer != nil {
		if !e.timerAt.After(at) {
			return
		}
		e.timer.Stop()
	}
	e.timerAt = at
	e.timer = time.AfterFunc(d, func() {
		q.mu.Lock()
		if e.timer != nil && e.timerAt.Equal(at) {
			e.timer = nil
		}
		q.mu.Unlock()
		q.Add(uid)
	})
}

// Start runs the keys added so far, and every later Add, until ctx is
// done.
func (q *keyQueue) Start(ctx context.Context) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ctx = ctx
	for uid, e := range q.keys {
		if e.dirty && !e.running {
			q.spawnLocked(uid, e)
		}
	}
}

// Wait stops the timers and waits for running fns; call it once the
// context given to Start is done.
func (q *keyQueue) Wait() {
	q.mu.Lock()
	for _, e := range q.keys {
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
	}
	q.mu.Unlock()
	q.wg.Wait()
}
