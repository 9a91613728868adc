package job

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// guardTTL bounds how long an expectation is trusted: an event that never
// arrives (a watch that missed it) must not block a Job forever.
const guardTTL = 5 * time.Minute

// guard is this controller's equivalent of upstream's expectations: it
// remembers, per Job key, the pods it created or deleted and the pods whose
// tracking finalizer it removed, until the pod informer reflects each
// write. While creations or deletions are outstanding the Job's pods are
// not managed (so a lagging cache never causes duplicate pods), and a pod
// whose finalizer was removed is never counted twice.
//
// All methods are safe for concurrent use.
type guard struct {
	mu sync.Mutex
	// jobs maps a Job key to its outstanding writes; guarded by mu.
	jobs map[string]*pending
}

// pending are one Job's writes not yet seen in the pod cache, by pod uid,
// with the time each was made.
type pending struct {
	creates, deletes, finalized map[types.UID]time.Time
}

func newGuard() *guard { return &guard{jobs: map[string]*pending{}} }

func (g *guard) get(key string) *pending {
	p := g.jobs[key]
	if p == nil {
		p = &pending{creates: map[types.UID]time.Time{}, deletes: map[types.UID]time.Time{}, finalized: map[types.UID]time.Time{}}
		g.jobs[key] = p
	}
	return p
}

// created records pods created for key.
func (g *guard) created(key string, uid types.UID, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.get(key).creates[uid] = now
}

// deleted records pods deleted for key.
func (g *guard) deleted(key string, uid types.UID, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.get(key).deletes[uid] = now
}

// finalized records pods of key whose tracking finalizer was removed.
func (g *guard) finalized(key string, uid types.UID, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.get(key).finalized[uid] = now
}

// observe drops the expectations the cached pods of key fulfil (or that
// are older than guardTTL) and reports whether creations and deletions are
// all observed, and which pods' finalizer removal is still unobserved.
func (g *guard) observe(key string, pods []*corev1.Pod, now time.Time) (satisfied bool, unobservedFinalized map[types.UID]bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.jobs[key]
	if p == nil {
		return true, nil
	}
	byUID := make(map[types.UID]*corev1.Pod, len(pods))
	for _, pod := range pods {
		byUID[pod.UID] = pod
	}
	for uid, at := range p.creates {
		if _, ok := byUID[uid]; ok || now.Sub(at) > guardTTL {
			delete(p.creates, uid)
		}
	}
	for uid, at := range p.deletes {
		if pod, ok := byUID[uid]; !ok || pod.DeletionTimestamp != nil || now.Sub(at) > guardTTL {
			delete(p.deletes, uid)
		}
	}
	unobservedFinalized = map[types.UID]bool{}
	for uid, at := range p.finalized {
		if pod, ok := byUID[uid]; !ok || !hasTrackingFinalizer(pod) || now.Sub(at) > guardTTL {
			delete(p.finalized, uid)
			continue
		}
		unobservedFinalized[uid] = true
	}
	satisfied = len(p.creates) == 0 && len(p.deletes) == 0
	if satisfied && len(p.finalized) == 0 {
		delete(g.jobs, key)
	}
	return satisfied, unobservedFinalized
}

// forget drops everything remembered for key (the Job is gone).
func (g *guard) forget(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.jobs, key)
}

// backoffs remembers, per Job key, the failures since the last success,
// which delay the creation of replacement pods (upstream's backoff
// records). It is in memory only: a restarted controller starts afresh, as
// upstream's does when the counted pods are gone.
type backoffs struct {
	mu sync.Mutex
	// records is guarded by mu.
	records map[string]backoffRecord
}

type backoffRecord struct {
	failures    int
	lastFailure time.Time
}

func newBackoffs() *backoffs { return &backoffs{records: map[string]backoffRecord{}} }

// record notes newly counted pods of key: any success resets the count.
func (b *backoffs) record(key string, succeeded, failed int, now time.Time) {
	if succeeded == 0 && failed == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.records[key]
	if succeeded > 0 {
		r = backoffRecord{}
	}
	if failed > 0 {
		r.failures += failed
		r.lastFailure = now
	}
	if r.failures == 0 {
		delete(b.records, key)
		return
	}
	b.records[key] = r
}

// remaining is how long key must still wait before creating pods: base
// doubled for every failure after the first, capped at max, counted from
// the last failure.
func (b *backoffs) remaining(key string, base, max time.Duration, now time.Time) time.Duration {
	b.mu.Lock()
	r, ok := b.records[key]
	b.mu.Unlock()
	if !ok || r.failures == 0 {
		return 0
	}
	d := base
	for i := 1; i < r.failures && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return r.lastFailure.Add(d).Sub(now)
}

func (b *backoffs) forget(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.records, key)
}

// isFinalized reports whether key's pod uid had its finalizer removed by
// us and the cache has not shown it yet.
func (g *guard) isFinalized(key string, uid types.UID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.jobs[key]
	if p == nil {
		return false
	}
	_, ok := p.finalized[uid]
	return ok
}
