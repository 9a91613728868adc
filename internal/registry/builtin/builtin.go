package builtin

import "github.com/skiff-dev/skiff/internal/registry"

// Resources returns every built-in resource, core/v1 first, in a stable
// order. Each call returns fresh values that the caller may keep.
func Resources() []*registry.Resource {
	return append(coreResources(), groupResources()...)
}
