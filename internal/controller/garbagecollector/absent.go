package garbagecollector

import (
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// absentCacheSize bounds the absent-owner cache; when full it is emptied.
const absentCacheSize = 1024

// absentKey names an owner found absent: the reference (resource, name,
// uid) and the namespace it was looked up in ("" for cluster-scoped
// kinds). The namespace is part of the key because a reference to a
// namespaced owner is resolved in each dependent's namespace.
type absentKey struct {
	resource  schema.GroupVersionResource
	namespace string
	name      string
	uid       types.UID
}

// absentOwners remembers owners that were found absent, so that the many
// dependents of one deleted owner cost one GET, not one each. Uids are
// never reused, so an owner found absent stays absent. Safe for concurrent
// use.
type absentOwners struct {
	mu sync.Mutex
	// seen is guarded by mu.
	seen map[absentKey]struct{}
}

func (a *absentOwners) has(k absentKey) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.seen[k]
	return ok
}

func (a *absentOwners) add(k absentKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil || len(a.seen) >= absentCacheSize {
		a.seen = map[absentKey]struct{}{}
	}
	a.seen[k] = struct{}{}
}
