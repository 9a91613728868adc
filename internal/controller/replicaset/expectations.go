package replicaset

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// expectationTTL bounds how long an owner waits for its own creations and
// deletions to show up in the pod cache before it acts again anyway
// (upstream's ExpectationsTimeout).
const expectationTTL = 5 * time.Minute

// expectations remembers, per owner key, the pods this controller created
// or deleted that the pod cache has not reflected yet. While any are
// pending the owner's pods are not created or deleted again: the cache
// is behind our own writes, and acting on it would double-create.
//
// It is the level-triggered equivalent of upstream's counters: instead of
// counting add and delete events it checks the cache's current content
// (satisfied), and, for a pod that appears and vanishes between two looks,
// also accepts having seen it once in any informer event (seen).
//
// Safe for concurrent use.
type expectations struct {
	now func() time.Time

	mu      sync.Mutex
	pending map[string]*pending // by owner key; guarded by mu
}

type pending struct {
	creates map[string]bool    // pod names created but not yet seen
	deletes map[types.UID]bool // pods deleted but still in the cache
	since   time.Time          // when the oldest entry was recorded
}

func newExpectations(now func() time.Time) *expectations {
	return &expectations{now: now, pending: map[string]*pending{}}
}

func (e *expectations) entryLocked(key string) *pending {
	p := e.pending[key]
	if p == nil {
		p = &pending{creates: map[string]bool{}, deletes: map[types.UID]bool{}, since: e.now()}
		e.pending[key] = p
	}
	return p
}

// created records that pod name was created for key.
func (e *expectations) created(key, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.entryLocked(key).creates[name] = true
}

// deleting records, before the call, that the pod uid is being deleted
// for key; undelete takes it back when the call fails.
func (e *expectations) deleting(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.entryLocked(key).deletes[uid] = true
}

func (e *expectations) undelete(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.pending[key]; p != nil {
		delete(p.deletes, uid)
	}
}

// seen notes that an informer delivered pod name controlled by key.
func (e *expectations) seen(key, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.pending[key]; p != nil {
		delete(p.creates, name)
	}
}

// satisfied reports whether key may act: nothing of its own is pending
// given pods, the namespace's pods as the cache has them now, or what
// is pending is older than expectationTTL. Resolved entries are dropped.
func (e *expectations) satisfied(key string, pods []*corev1.Pod) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.pending[key]
	if p == nil {
		return true
	}
	if e.now().Sub(p.since) > expectationTTL {
		delete(e.pending, key)
		return true
	}
	byUID := make(map[types.UID]*corev1.Pod, len(pods))
	for _, pod := range pods {
		byUID[pod.UID] = pod
		delete(p.creates, pod.Name)
	}
	for uid := range p.deletes {
		if pod, ok := byUID[uid]; !ok || pod.DeletionTimestamp != nil {
			delete(p.deletes, uid)
		}
	}
	if len(p.creates) == 0 && len(p.deletes) == 0 {
		delete(e.pending, key)
		return true
	}
	return false
}

// forget drops everything pending for key (the owner is gone).
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.pending, key)
}
