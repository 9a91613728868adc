package apiserver

import (
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/internal/registry"
)

// eventMemoSize is how many encoded watch objects eventMemo keeps: enough
// for every watcher of a burst of events to find the encoding the first
// one made, small enough to stay a few MiB.
const eventMemoSize = 1024

// eventKey names one encoding of a watched object: the object itself (the
// watch cache hands every watcher the same, never changed, object), how it
// is rendered and in which media type.
type eventKey struct {
	obj       runtime.Object
	res       *registry.Resource
	view      view
	viewGV    schema.GroupVersion
	mediaType string
}

// eventMemo remembers the most recent encodings of watch event objects,
// so that a change watched by many clients (each controller, the
// scheduler, the node agents) is encoded once per format rather than once
// per watcher, as upstream's watch cache does with its caching objects.
// Safe for concurrent use.
type eventMemo struct {
	mu   sync.Mutex
	m    map[eventKey][]byte // guarded by mu
	ring []eventKey          // guarded by mu; insertion order, for eviction
	next int                 // guarded by mu
}

func newEventMemo(size int) *eventMemo {
	return &eventMemo{m: make(map[eventKey][]byte, size), ring: make([]eventKey, size)}
}

func (c *eventMemo) get(k eventKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[k]
	return b, ok
}

// put remembers b (which the caller no longer changes) for k, forgetting
// the oldest encoding when full.
func (c *eventMemo) put(k eventKey, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	if old := c.ring[c.next]; old.obj != nil {
		delete(c.m, old)
	}
	c.ring[c.next] = k
	c.next = (c.next + 1) % len(c.ring)
	c.m[k] = b
}
