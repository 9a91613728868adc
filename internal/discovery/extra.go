package discovery

import (
	"slices"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/internal/registry"
)

// ExtraGroup is an API group version whose resources are served by a
// handler of its own rather than the generic store, as an aggregated API
// is upstream (metrics.k8s.io/v1beta1 by internal/metricsapi). Discovery
// advertises it like any other group; the caller routes its paths.
type ExtraGroup struct {
	GroupVersion schema.GroupVersion
	Resources    []ExtraResource
}

// ExtraResource is one resource of an ExtraGroup.
type ExtraResource struct {
	// Name is the plural resource name ("pods"); Kind the kind of a single
	// object ("PodMetrics"); Singular defaults to the lower-cased Kind.
	Name, Singular, Kind string
	Namespaced           bool
	// Verbs served, e.g. get and list.
	Verbs []string
	// ShortNames and Categories as kubectl uses them.
	ShortNames, Categories []string
	// Status advertises a status subresource.
	Status bool
}

// withExtra returns resources followed by the extra groups' resources as
// registry.Resources (descriptions only: no strategy), and the set of the
// latter.
func withExtra(resources []*registry.Resource, extra []ExtraGroup) ([]*registry.Resource, map[*registry.Resource]bool) {
	all := slices.Clone(resources)
	set := map[*registry.Resource]bool{}
	for _, g := range extra {
		for _, r := range g.Resources {
			res := &registry.Resource{
				GVR:        g.GroupVersion.WithResource(r.Name),
				Kind:       r.Kind,
				ListKind:   r.Kind + "List",
				Singular:   r.Singular,
				Namespaced: r.Namespaced,
				Verbs:      slices.Clone(r.Verbs),
				ShortNames: slices.Clone(r.ShortNames),
				Categories: slices.Clone(r.Categories),
				Status:     r.Status,
			}
			if res.Verbs == nil {
				res.Verbs = []string{}
			}
			all = append(all, res)
			set[res] = true
		}
	}
	return all, set
}
