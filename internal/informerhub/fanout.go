package informerhub

import (
	"context"
	"sync"

	"k8s.io/client-go/tools/cache"
)

// fanout is the one event handler a hub informer has for all the handlers
// the scopes add (with the informer's default resync). client-go gives
// every handler a listener of its own: two goroutines and a 16 KiB buffer,
// about 140 of them in an idle server. A fanout calls its members in turn
// from its one listener's goroutine instead, so a slow member delays the
// others: members are the components' enqueue-and-return handlers.
//
// A member that joins gets an Add for every object the fanout has
// delivered so far (state), then every later event, in order: what
// client-go does for a handler added to a running informer.
type fanout struct {
	ctx context.Context // the hub's

	mu sync.Mutex
	// reg is the fanout's registration on the informer, set by the first
	// join.
	reg     cache.ResourceEventHandlerRegistration
	members []*member
	// state is what the members have been told: the latest object of each
	// key not deleted since. Not the informer's store, which runs ahead of
	// the events queued for the fanout: a joiner replaying the store would
	// get an object, then its queued Add or an older Update after it.
	state map[string]any
}

// member is one handler added through a scope.
type member struct {
	f *fanout
	h cache.ResourceEventHandler

	mu sync.Mutex
	// While replaying, events wait in backlog for the replay to end.
	replaying bool
	backlog   []event
	// synced is closed once the replay is delivered and the informer's
	// initial list has reached the fanout.
	synced chan struct{}
}

// join adds h, registering the fanout on inf first if it is not yet.
func (f *fanout) join(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) (*member, error) {
	m := &member{f: f, h: h, replaying: true, synced: make(chan struct{})}
	f.mu.Lock()
	if f.reg == nil {
		// Registering calls nothing back yet: client-go queues the
		// informer's current objects for the fanout's listener.
		reg, err := inf.AddEventHandler(f)
		if err != nil {
			f.mu.Unlock()
			return nil, err
		}
		f.reg = reg
	}
	replay := make([]any, 0, len(f.state))
	for _, obj := range f.state {
		replay = append(replay, obj)
	}
	f.members = append(f.members, m)
	regSynced := f.reg.HasSyncedChecker().Done()
	f.mu.Unlock()
	// The replay runs on its own goroutine, as client-go delivers it on
	// the listener's: the caller may finish setting up after adding.
	go m.replay(replay, regSynced, f.ctx.Done())
	return m, nil
}

func (m *member) replay(objs []any, regSynced, stop <-chan struct{}) {
	for _, obj := range objs {
		m.h.OnAdd(obj, true)
	}
	for {
		m.mu.Lock()
		batch := m.backlog
		m.backlog = nil
		if len(batch) == 0 {
			m.replaying = false
			m.mu.Unlock()
			break
		}
		m.mu.Unlock()
		for _, ev := range batch {
			m.call(ev)
		}
	}
	select {
	case <-regSynced:
		close(m.synced)
	case <-stop:
	}
}

// event is one notification for a member.
type event struct {
	kind     eventKind
	obj, old any
	initial  bool
}

type eventKind uint8

const (
	added eventKind = iota
	updated
	deleted
)

// deliver tells m of ev now, or after the replay if that is still going.
func (m *member) deliver(ev event) {
	m.mu.Lock()
	if m.replaying {
		m.backlog = append(m.backlog, ev)
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.call(ev)
}

func (m *member) call(ev event) {
	switch ev.kind {
	case added:
		m.h.OnAdd(ev.obj, ev.initial)
	case updated:
		m.h.OnUpdate(ev.old, ev.obj)
	case deleted:
		m.h.OnDelete(ev.obj)
	}
}

// leave removes m; it gets no events after leave returns, except one
// being delivered at that moment.
func (f *fanout) leave(m *member) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.members {
		if x == m {
			f.members = append(f.members[:i:i], f.members[i+1:]...)
			return true
		}
	}
	return false
}

// update records obj under its key (or forgets it) and returns the members to
// tell, in one step, so that a member joining in between gets obj either
// in its replay or as an event, never both.
func (f *fanout) update(obj any, deleted bool) []*member {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		if deleted {
			delete(f.state, key)
		} else {
			if f.state == nil {
				f.state = make(map[string]any)
			}
			f.state[key] = obj
		}
	}
	return f.members
}

// OnAdd, OnUpdate and OnDelete make the fanout the informer's handler.
func (f *fanout) OnAdd(obj any, initial bool) {
	for _, m := range f.update(obj, false) {
		m.deliver(event{kind: added, obj: obj, initial: initial})
	}
}

func (f *fanout) OnUpdate(oldObj, newObj any) {
	for _, m := range f.update(newObj, false) {
		m.deliver(event{kind: updated, obj: newObj, old: oldObj})
	}
}

func (f *fanout) OnDelete(obj any) {
	for _, m := range f.update(obj, true) {
		m.deliver(event{kind: deleted, obj: obj})
	}
}

// HasSynced reports that the replay was delivered and the informer's
// initial list reached every member.
func (m *member) HasSynced() bool {
	select {
	case <-m.synced:
		return true
	default:
		return false
	}
}

func (m *member) HasSyncedChecker() cache.DoneChecker { return memberDone{m} }

type memberDone struct{ m *member }

func (d memberDone) Name() string          { return "informerhub handler" }
func (d memberDone) Done() <-chan struct{} { return d.m.synced }
