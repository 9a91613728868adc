// Package nsindex lists the objects of one namespace from an informer's
// cache through the cache's namespace index.
//
// client-go's namespaced listers (lister.Services(ns).List(selector))
// allocate on every call: the namespace lister, an ObjectMeta to look the
// index up with, the index function's answer and the result, some 300
// bytes before the first object. The controllers call them for every pod
// event (the pod's owners, its services, its disruption budgets) and
// admission for every create, mostly in namespaces that hold none of what
// they look for. List allocates nothing for an empty namespace and one
// slice otherwise.
//
// It reads the indexer it is given and writes nothing.
package nsindex

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"
)

// List returns the objects of type T in namespace ns, in no particular
// order. They are the cache's own objects: they must not be modified. An
// indexer without the namespace index (cache.NamespaceIndex, which the
// informers of client-go's factories have) is scanned whole.
func List[T any](indexer cache.Indexer, ns string) []T {
	items, err := indexer.ByIndex(cache.NamespaceIndex, ns)
	if err != nil {
		items = nil
		for _, it := range indexer.List() {
			if m, err := meta.Accessor(it); err == nil && m.GetNamespace() == ns {
				items = append(items, it)
			}
		}
	}
	if len(items) == 0 {
		return nil
	}
	out := make([]T, 0, len(items))
	for _, it := range items {
		if t, ok := it.(T); ok {
			out = append(out, t)
		}
	}
	return out
}
