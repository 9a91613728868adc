package registry

import (
	"context"
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-dev/skiff/internal/storage"
)

// Subresource names the part of an object an update goes through.
type Subresource string

const (
	// Main is the object itself: status is carried over from the stored
	// object when the resource has a status subresource.
	Main Subresource = ""
	// StatusSub is /status: everything but status is carried over.
	StatusSub Subresource = "status"
	// Binding is pods/binding: the update function's result is stored with
	// only the generic metadata handling (it may set spec.nodeName, which a
	// main update may not change).
	Binding Subresource = "binding"
	// Finalize is namespaces/finalize: only spec.finalizers may change.
	Finalize Subresource = "finalize"
)

// UpdateFunc returns the desired object given the current one (nil when it
// does not exist yet and the update may create it). It may be called again
// when the write races with another writer.
type UpdateFunc func(ctx context.Context, current runtime.Object) (runtime.Object, error)

// errNotImplemented marks the stubs below until the store lands.
var errNotImplemented = errors.New("registry: not implemented")

// Store gives one Resource its upstream semantics on top of a
// storage.Interface: uid, creationTimestamp, generateName, generation,
// defaults, validation, status carry-over, finalizers and graceful deletion,
// dry runs, and the namespace lifecycle. It is what the API server calls;
// it never speaks HTTP. Errors are k8s.io/apimachinery/pkg/api/errors values.
type Store struct {
	Resource *Resource
	Storage  storage.Interface
}

// Get returns the object namespace/name (namespace "" when cluster-scoped).
func (s *Store) Get(ctx context.Context, namespace, name string) (runtime.Object, error) {
	return nil, errNotImplemented
}

// List returns the resource's list type for one namespace ("" for all).
func (s *Store) List(ctx context.Context, namespace string, opts storage.ListOptions) (runtime.Object, error) {
	return nil, errNotImplemented
}

// Watch streams changes in one namespace ("" for all).
func (s *Store) Watch(ctx context.Context, namespace string, opts storage.WatchOptions) (watch.Interface, error) {
	return nil, errNotImplemented
}

// Create stores a new object in namespace (which must match the object's
// namespace when both are set).
func (s *Store) Create(ctx context.Context, namespace string, obj runtime.Object, opts metav1.CreateOptions) (runtime.Object, error) {
	return nil, errNotImplemented
}

// Update changes namespace/name through sub with fn. created reports whether
// the object did not exist before (PUT may create, as upstream allows for
// most resources).
func (s *Store) Update(ctx context.Context, namespace, name string, sub Subresource, fn UpdateFunc, opts metav1.UpdateOptions) (obj runtime.Object, created bool, err error) {
	return nil, false, errNotImplemented
}

// Delete deletes namespace/name. deleted is false when the object was only
// marked (deletionTimestamp set) because of finalizers or a grace period;
// the returned object is then its new state.
func (s *Store) Delete(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) (obj runtime.Object, deleted bool, err error) {
	return nil, false, errNotImplemented
}

// DeleteCollection deletes every object matching opts in namespace and
// returns the list of what it deleted (or marked).
func (s *Store) DeleteCollection(ctx context.Context, namespace string, listOpts storage.ListOptions, opts metav1.DeleteOptions) (runtime.Object, error) {
	return nil, errNotImplemented
}
