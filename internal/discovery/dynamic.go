package discovery

import (
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/skiff-dev/skiff/internal/registry"
)

// Dynamic is the discovery handler of a server whose custom resources
// come and go: it serves what New would for the built-in resources, the
// extra groups and the custom resources last given to SetCustomResources.
// The documents are recomputed on each change and swapped in whole, so
// serving never waits for a change.
type Dynamic struct {
	base  []*registry.Resource
	extra []ExtraGroup
	h     atomic.Pointer[handler]
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
	all := append(slices.Clone(d.base), custom...)
	d.h.Store(New(all, d.extra...).(*handler))
}

func (d *Dynamic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.h.Load().ServeHTTP(w, r)
}
