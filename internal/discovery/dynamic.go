package discovery

import (
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/internal/registry"
)

// Dynamic is the discovery handler of a server whose custom resources
// and extension API servers come and go: it serves what New would for the
// built-in resources, the extra groups, the custom resources last given to
// SetCustomResources and the remote groups last given to SetRemoteGroups.
// The documents are recomputed on each change and swapped in whole, so
// serving never waits for a change.
type Dynamic struct {
	base  []*registry.Resource
	extra []ExtraGroup
	h     atomic.Pointer[handler]

	mu     sync.Mutex // serializes changes
	custom []*registry.Resource
	remote []ExtraGroup
}

// NewDynamic returns the handler of resources and extra, with no custom
// resources yet.
func NewDynamic(resources []*registry.Resource, extra ...ExtraGroup) *Dynamic {
	d := &Dynamic{base: slices.Clone(resources), extra: slices.Clone(extra)}
	d.h.Store(New(d.base, d.extra...).(*handler))
	return d
}

// SetCustomResources replaces the custom resources served (listed after
// the built-in resources, before the extra groups).
func (d *Dynamic) SetCustomResources(custom []*registry.Resource) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.custom = slices.Clone(custom)
	d.rebuild()
}

// SetRemoteGroups replaces the groups extension API servers serve (listed
// last). Their /apis/<group>/<version> documents are the extension
// servers' own; the caller routes those paths to them.
func (d *Dynamic) SetRemoteGroups(remote []ExtraGroup) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if reflect.DeepEqual(d.remote, remote) {
		return // the aggregator's periodic refresh, nothing new
	}
	d.remote = slices.Clone(remote)
	d.rebuild()
}

// LocalGroupVersions returns the group versions the server itself serves:
// the built-in resources', the extra groups' and the custom resources',
// including any an extension server currently hides; not the remote ones.
func (d *Dynamic) LocalGroupVersions() []schema.GroupVersion {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[schema.GroupVersion]bool{}
	var gvs []schema.GroupVersion
	add := func(gv schema.GroupVersion) {
		if !seen[gv] {
			seen[gv] = true
			gvs = append(gvs, gv)
		}
	}
	for _, r := range slices.Concat(d.base, d.custom) {
		add(r.GVR.GroupVersion())
	}
	for _, g := range d.extra {
		add(g.GroupVersion)
	}
	return gvs
}

// rebuild computes the documents; d.mu is held. A group version an
// extension server serves hides the local one (requests go there too).
func (d *Dynamic) rebuild() {
	remote := map[schema.GroupVersion]bool{}
	for _, g := range d.remote {
		remote[g.GroupVersion] = true
	}
	var all []*registry.Resource
	for _, r := range slices.Concat(d.base, d.custom) {
		if !remote[r.GVR.GroupVersion()] {
			all = append(all, r)
		}
	}
	var extra []ExtraGroup
	for _, g := range d.extra {
		if !remote[g.GroupVersion] {
			extra = append(extra, g)
		}
	}
	extra = append(extra, d.remote...)
	d.h.Store(New(all, extra...).(*handler))
}

func (d *Dynamic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.h.Load().ServeHTTP(w, r)
}
