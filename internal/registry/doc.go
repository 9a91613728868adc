// Package registry gives each served resource its Kubernetes semantics.
//
// It owns three things:
//
//   - the description of a resource (Resource) and its per-resource
//     behaviour (Strategy, built from a typed description with Define):
//     defaults, validation, status rules, selectable fields, tables and
//     graceful deletion. The strategies of the built-in resources live in
//     package builtin.
//   - the generic Store, which applies the rules every resource shares on
//     top of a storage.Interface: uid, creationTimestamp, generateName,
//     generation, immutable metadata, optimistic concurrency, no-op
//     updates, status and subresource carry-over, finalizers, graceful
//     deletion, propagation-policy finalizers, dry runs and the namespace
//     lifecycle.
//   - version views (NewView, Resource.StoredAs): a resource served in a
//     second version over the storage of the stored one, converting each
//     object both ways and renaming field selector labels
//     (autoscaling/v1 HorizontalPodAutoscalers over v2, events.k8s.io/v1
//     events over core/v1 events).
//
// Inputs: decoded objects and options from the API server; the current
// state read through storage.Interface; namespaces through a
// NamespaceLookup (the namespaces Store). Outputs: writes through
// storage.Interface only. Errors are k8s.io/apimachinery/pkg/api/errors
// values carrying upstream codes, reasons and messages, ready for the HTTP
// layer to serialize.
//
// The package never speaks HTTP, never sets TypeMeta on list items or
// watch events (the HTTP layer does), and never modifies an object it got
// from storage: those are shared with the watch cache, so every change is
// made on a deep copy.
//
// # Usage
//
//	nsStore := registry.NewStore(namespacesResource, nsStorage, registry.StoreOptions{Logger: log})
//	pods := registry.NewStore(podsResource, podStorage, registry.StoreOptions{Namespaces: nsStore, Logger: log})
//	obj, err := pods.Create(ctx, "default", pod, metav1.CreateOptions{})
//	obj, created, err := pods.Update(ctx, "default", "web", registry.Main,
//		func(ctx context.Context, cur runtime.Object) (runtime.Object, error) { return decoded, nil },
//		metav1.UpdateOptions{})
//	obj, deleted, err := pods.Delete(ctx, "default", "web", metav1.DeleteOptions{})
package registry
