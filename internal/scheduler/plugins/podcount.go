package plugins

import (
	"sync"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// maxMemoKeys bounds how many distinct keys a nodeMemo holds; past it the
// memo starts over (the keys in use come back on the next cycle).
const maxMemoKeys = 256

// nodeMemo remembers, per key and node, a value computed from the node's
// pods, so that a plugin's per-cycle pass over every node costs one
// lookup for the nodes that did not change since the last cycle, instead
// of a walk over all their pods. An entry is valid for one NodeInfo
// pointer at one Version; clones and changed nodes are recomputed.
//
// The zero value is not usable; a nil *nodeMemo computes every value
// afresh. Passes run between lock and unlock.
type nodeMemo[V any] struct {
	mu    sync.Mutex
	byKey map[string]map[string]memoEntry[V] // guarded by mu
}

type memoEntry[V any] struct {
	ni      *framework.NodeInfo
	version uint64
	v       V
}

func newNodeMemo[V any]() *nodeMemo[V] {
	return &nodeMemo[V]{byKey: map[string]map[string]memoEntry[V]{}}
}

// memoPass is one cycle's use of the memo for one key.
type memoPass[V any] struct {
	table   map[string]memoEntry[V] // nil: no memo
	compute func(*framework.NodeInfo) V
}

// lock locks the memo for the passes of one cycle; unlock ends them.
// Both are no-ops on a nil memo.
func (m *nodeMemo[V]) lock() {
	if m != nil {
		m.mu.Lock()
	}
}

func (m *nodeMemo[V]) unlock() {
	if m != nil {
		m.mu.Unlock()
	}
}

// pass starts a pass over the nodes under key, with the memo locked.
// compute derives the value from a node's pods; it must depend on
// nothing but the node and what key stands for.
func (m *nodeMemo[V]) pass(key string, compute func(*framework.NodeInfo) V) memoPass[V] {
	if m == nil {
		return memoPass[V]{compute: compute}
	}
	t := m.byKey[key]
	if t == nil {
		if len(m.byKey) >= maxMemoKeys {
			clear(m.byKey)
		}
		t = map[string]memoEntry[V]{}
		m.byKey[key] = t
	}
	return memoPass[V]{table: t, compute: compute}
}

// get returns the value for ni, from the memo when ni is unchanged.
func (p memoPass[V]) get(ni *framework.NodeInfo) V {
	if p.table == nil {
		return p.compute(ni)
	}
	name := ni.Name()
	if e, ok := p.table[name]; ok && e.ni == ni && e.version == ni.Version() {
		return e.v
	}
	v := p.compute(ni)
	p.table[name] = memoEntry[V]{ni: ni, version: ni.Version(), v: v}
	return v
}
