// Package cachetrim trims objects on their way into the informer caches
// of skiff's components (scheduler, controllers, the API server's own
// authorizers and admission, cluster DNS, the node agent): it reads each
// object an informer is about to store and drops its
// metadata.managedFields, which no component reads. A pod's managed
// fields are a fifth to a third of its size, and every pod is cached by
// several components of one process, so this is memory (and garbage
// collector work) no one uses; upstream's scheduler and controller
// manager strip them the same way.
//
// An object whose managed fields were dropped is still safe to send back
// in an update: the API server keeps the live object's managed fields
// when an update carries none, as upstream does.
package cachetrim

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/informers"
)

// StripManagedFields is a cache.TransformFunc that drops the managed
// fields of obj (in place: informers hand it freshly decoded objects).
// Anything without object metadata passes unchanged.
func StripManagedFields(obj any) (any, error) {
	if acc, err := meta.Accessor(obj); err == nil && acc.GetManagedFields() != nil {
		acc.SetManagedFields(nil)
	}
	return obj, nil
}

// Option sets StripManagedFields on every informer of a factory.
func Option() informers.SharedInformerOption {
	return informers.WithTransform(StripManagedFields)
}
