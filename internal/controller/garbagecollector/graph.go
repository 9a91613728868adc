package garbagecollector

import (
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// identity is where an observed object lives: the resource it was seen
// through, its kind, namespace ("" for cluster-scoped), name and uid.
type identity struct {
	Resource  schema.GroupVersionResource
	Kind      string
	Namespace string
	Name      string
	UID       types.UID
}

// String is "resource.group namespace/name" (no namespace for cluster-scoped
// objects), for logs and errors.
func (id identity) String() string {
	if id.Namespace == "" {
		return id.Resource.GroupResource().String() + " " + id.Name
	}
	return id.Resource.GroupResource().String() + " " + id.Namespace + "/" + id.Name
}

// node is one observed object of the graph.
type node struct {
	id identity
	// owners are the object's owner references as last observed.
	owners []metav1.OwnerReference
	// beingDeleted is true once the object has a deletionTimestamp.
	beingDeleted bool
	// deletingDependents is true while the object has a deletionTimestamp
	// and the foregroundDeletion finalizer.
	deletingDependents bool
	// orphaning is true while the object has a deletionTimestamp and the
	// orphan finalizer.
	orphaning bool
}

// work is what an observation asks the collector to look at: uids for the
// attempt-to-delete queue and uids for the orphan queue.
type work struct {
	attemptToDelete []types.UID
	orphan          []types.UID
}

func (w *work) del(uids ...types.UID) { w.attemptToDelete = append(w.attemptToDelete, uids...) }

// graph holds the owner → dependents relation of every observed object.
// It is fed by informer events (observe, forget) and read by the workers.
// All methods are safe for concurrent use.
//
// The dependents index is built from the dependents' owner references only,
// so it also holds entries for owners that were never observed (absent
// owners), which is how a dependent of a deleted owner is found.
type graph struct {
	mu sync.Mutex
	// nodes by uid; guarded by mu.
	nodes map[types.UID]*node
	// dependents maps an owner uid to the uids of the observed objects
	// that reference it; guarded by mu.
	dependents map[types.UID]map[types.UID]struct{}
}

func newGraph() *graph {
	return &graph{nodes: map[types.UID]*node{}, dependents: map[types.UID]map[types.UID]struct{}{}}
}

// newNode builds the node of an object observed through resource r of kind
// kind.
func newNode(r schema.GroupVersionResource, kind string, m metav1.Object) *node {
	n := &node{
		id: identity{Resource: r, Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID()},
		// A copy: the informer's object must not be shared.
		owners:       slices.Clone(m.GetOwnerReferences()),
		beingDeleted: m.GetDeletionTimestamp() != nil,
	}
	if n.beingDeleted {
		n.deletingDependents = hasFinalizer(m, metav1.FinalizerDeleteDependents)
		n.orphaning = hasFinalizer(m, metav1.FinalizerOrphanDependents)
	}
	return n
}

// observe records the current state of an object (an add or an update; the
// two are not told apart) and returns what must be looked at because of it:
//   - the object itself when it references an owner that is not in the
//     graph or that is waiting for its dependents (it may be garbage), or
//     when it is deleting its dependents (its finalizer may be removable);
//   - all its dependents when it is deleting its dependents;
//   - owners that are deleting their dependents and that this object no
//     longer blocks (reference removed or unblocked);
//   - the object in the orphan queue when it is orphaning its dependents.
func (g *graph) observe(n *node) work {
	g.mu.Lock()
	defer g.mu.Unlock()
	var w work
	uid := n.id.UID
	old := g.nodes[uid]
	g.nodes[uid] = n

	var oldOwners []metav1.OwnerReference
	if old != nil {
		oldOwners = old.owners
	}
	for _, ref := range oldOwners {
		cur := findRef(n.owners, ref.UID)
		if cur == nil {
			g.unindexLocked(ref.UID, uid)
		}
		if blocks(ref) && (cur == nil || !blocks(*cur)) {
			if o := g.nodes[ref.UID]; o != nil && o.deletingDependents {
				w.del(ref.UID)
			}
		}
	}
	checkSelf := false
	for _, ref := range n.owners {
		g.indexLocked(ref.UID, uid)
		o := g.nodes[ref.UID]
		if o == nil || o.deletingDependents || o.id.Name != ref.Name ||
			(o.id.Namespace != "" && o.id.Namespace != n.id.Namespace) {
			checkSelf = true
		}
	}
	if checkSelf {
		w.del(uid)
	}
	if n.deletingDependents {
		w.del(uid)
		w.del(g.dependentsLocked(uid)...)
	}
	if n.orphaning {
		w.orphan = append(w.orphan, uid)
	}
	return w
}

// forget removes a deleted object and returns what must be looked at
// because it is gone: its dependents (they may have lost their last owner)
// and its owners that are deleting their dependents.
func (g *graph) forget(uid types.UID) work {
	g.mu.Lock()
	defer g.mu.Unlock()
	var w work
	n := g.nodes[uid]
	if n == nil {
		return w
	}
	delete(g.nodes, uid)
	for _, ref := range n.owners {
		g.unindexLocked(ref.UID, uid)
		if o := g.nodes[ref.UID]; o != nil && o.deletingDependents {
			w.del(ref.UID)
		}
	}
	w.del(g.dependentsLocked(uid)...)
	return w
}

// get returns a copy of the node with uid, or false.
func (g *graph) get(uid types.UID) (node, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.nodes[uid]
	if n == nil {
		return node{}, false
	}
	return *n, true
}

// dependents returns copies of the observed dependents of the owner uid, in
// uid order.
func (g *graph) dependentsOf(uid types.UID) []node {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []node
	for _, d := range g.dependentsLocked(uid) {
		if n := g.nodes[d]; n != nil {
			out = append(out, *n)
		}
	}
	return out
}

// hasDependents reports whether any observed object references uid.
func (g *graph) hasDependents(uid types.UID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.dependents[uid]) > 0
}

// anyDependentDeletingDependents reports whether an observed dependent of
// uid is itself deleting its dependents.
func (g *graph) anyDependentDeletingDependents(uid types.UID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for d := range g.dependents[uid] {
		if n := g.nodes[d]; n != nil && n.deletingDependents {
			return true
		}
	}
	return false
}

// size returns the number of observed objects.
func (g *graph) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.nodes)
}

func (g *graph) dependentsLocked(uid types.UID) []types.UID {
	var out []types.UID
	for d := range g.dependents[uid] {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

func (g *graph) indexLocked(owner, dependent types.UID) {
	set := g.dependents[owner]
	if set == nil {
		set = map[types.UID]struct{}{}
		g.dependents[owner] = set
	}
	set[dependent] = struct{}{}
}

func (g *graph) unindexLocked(owner, dependent types.UID) {
	set := g.dependents[owner]
	delete(set, dependent)
	if len(set) == 0 {
		delete(g.dependents, owner)
	}
}

// findRef returns the reference to uid in refs, or nil.
func findRef(refs []metav1.OwnerReference, uid types.UID) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].UID == uid {
			return &refs[i]
		}
	}
	return nil
}

// blocks reports whether ref blocks its owner's foreground deletion.
func blocks(ref metav1.OwnerReference) bool {
	return ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion
}

func hasFinalizer(m metav1.Object, f string) bool {
	return slices.Contains(m.GetFinalizers(), f)
}
