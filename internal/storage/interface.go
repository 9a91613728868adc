package storage

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
)

// AttrFunc returns the label and field sets a selector is matched against.
// It is supplied per resource by its strategy (for example a pod's field set
// holds metadata.name, metadata.namespace, spec.nodeName, status.phase, …).
type AttrFunc func(obj runtime.Object) (labels.Set, fields.Set, error)

// Predicate selects objects by label and field selectors. Nil selectors
// match everything.
type Predicate struct {
	Label labels.Selector
	Field fields.Selector
	// Object, when not nil, must also accept the object itself. It is for
	// selections the cached field sets cannot answer (a custom resource's
	// selectable fields of a version it is converted to on the way out); it
	// is called on the stored object, never under the cache's lock, and
	// must not modify it.
	Object func(obj runtime.Object) bool
}

// ResourceVersionMatch mirrors metav1.ResourceVersionMatch for lists.
type ResourceVersionMatch string

const (
	MatchNotOlderThan ResourceVersionMatch = "NotOlderThan"
	MatchExact        ResourceVersionMatch = "Exact"
)

// ListOptions are the options of one LIST, with upstream semantics:
//
//   - ResourceVersion "" is a consistent (most recent) read; "0" is any
//     version the cache holds; "N" with Match NotOlderThan (or unset) is any
//     state at least as new as N; with Match Exact it is exactly revision N
//     (served from etcd; 410 Gone once compacted).
//   - Limit > 0 asks for a page; the returned list's metadata.continue holds
//     an opaque token for the next page, and RemainingItemCount is set where
//     known. Continue resumes from such a token (a list of the same revision).
type ListOptions struct {
	Predicate            Predicate
	ResourceVersion      string
	ResourceVersionMatch ResourceVersionMatch
	Limit                int64
	Continue             string
	// Encoder, when not nil, asks for the items already encoded: a list
	// served from the watch cache is then returned as an *EncodedList whose
	// items were encoded once per object version and memoized, so that
	// large lists cost a copy rather than an encoding. Lists served from
	// etcd still come as the resource's list type.
	Encoder *ItemEncoder
}

// ItemEncoder encodes list items for ListOptions.Encoder. ID names the
// encoding (for example "json"): memoized items are reused only for the
// same ID, so two encoders must not share one.
type ItemEncoder struct {
	ID     string
	Encode func(obj runtime.Object) ([]byte, error)
}

// EncodedList is a list served from the watch cache with its items already
// encoded by an ItemEncoder. It is a runtime.Object only so that it can
// travel where lists do; it has no wire form of its own.
type EncodedList struct {
	ResourceVersion string
	// Encoding is the ID of the ItemEncoder that encoded Items. A storage
	// view that wraps the caller's encoder (to memoize its own encodings
	// apart) reports the caller's ID: the items are in its format.
	Encoding string
	Items    [][]byte
}

// GetObjectKind implements runtime.Object.
func (*EncodedList) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object; the items are shared, as they
// are never modified.
func (l *EncodedList) DeepCopyObject() runtime.Object {
	c := *l
	c.Items = append([][]byte(nil), l.Items...)
	return &c
}

// WatchOptions are the options of one WATCH, with upstream semantics:
//
//   - ResourceVersion "" or "0": first a synthetic ADDED event for every
//     existing object, then changes from that state on.
//   - ResourceVersion "N": every change after revision N; 410 Gone (as an
//     ERROR event or as the returned error) when N is older than what the
//     cache or etcd still holds.
//   - SendInitialEvents: ADDED events for the current state first (even with
//     an RV of N), then a BOOKMARK annotated "k8s.io/initial-events-end":"true".
//   - AllowBookmarks: periodic BOOKMARK events carrying only the current
//     resourceVersion (an object of the resource's kind with just metadata).
//
// A MODIFIED object that stops matching the predicate is delivered as
// DELETED, and one that starts matching as ADDED, as upstream does.
type WatchOptions struct {
	Predicate         Predicate
	ResourceVersion   string
	SendInitialEvents bool
	AllowBookmarks    bool
}

// Preconditions are checked against the stored object inside the same etcd
// transaction as the write.
type Preconditions struct {
	UID             string
	ResourceVersion string
}

// Guard is a condition on another key, checked in the same etcd
// transaction as a write: the write happens only if Key (a full etcd key,
// see Interface.EtcdKey) still has ModRevision. It lets a write rely on
// state read from a watch cache (for example "the namespace is active")
// without a round trip to etcd, and still never act on stale state.
type Guard struct {
	Key         string
	ModRevision int64
}

// ErrGuardChanged is returned by a write whose Guard no longer holds; the
// caller re-reads what it relied on and retries.
var ErrGuardChanged = errors.New("storage: guarded key changed")

// UpdateFunc computes the new object from the current one. It may be called
// several times when the write races with another; it must not keep state
// across calls. Returning an error aborts the update with that error.
// Returning a nil object with a nil error means "no change".
type UpdateFunc func(current runtime.Object) (runtime.Object, error)

// Interface is the etcd-backed store of one resource (one group/resource),
// keyed by "namespace/name" (or "name" when cluster-scoped). It sets
// metadata.resourceVersion on every object it returns from etcd's mod
// revision. Errors are k8s.io/apimachinery/pkg/api/errors values naming the
// resource: NotFound, AlreadyExists, Conflict (stale resourceVersion or
// failed precondition), Gone/ResourceExpired (compacted), InternalError.
//
// All methods are safe for concurrent use.
type Interface interface {
	// Create stores obj under key if nothing is there yet and every guard
	// holds (else ErrGuardChanged), and returns the stored object (with
	// resourceVersion set).
	Create(ctx context.Context, key string, obj runtime.Object, guards ...Guard) (runtime.Object, error)
	// EtcdKey is the full etcd key under which key is stored (for Guards).
	EtcdKey(key string) string
	// Get reads the most recent state of key (a consistent read).
	Get(ctx context.Context, key string) (runtime.Object, error)
	// GuaranteedUpdate reads key, calls fn, and writes its result with a
	// compare-and-swap on the mod revision, retrying fn on a race. When the
	// object's metadata.resourceVersion returned by fn is non-empty and differs
	// from the stored one, it fails with Conflict instead (optimistic
	// concurrency for clients). If the key is absent, fn is called with nil
	// when allowCreate is true; otherwise NotFound is returned.
	GuaranteedUpdate(ctx context.Context, key string, allowCreate bool, fn UpdateFunc) (runtime.Object, error)
	// Delete removes key when preconditions hold and returns the last state.
	// validate, when not nil, is called with the current object inside the
	// compare-and-swap loop and may veto the delete.
	Delete(ctx context.Context, key string, pre *Preconditions, validate func(current runtime.Object) error) (runtime.Object, error)
	// List returns a list object (the resource's list type) of the objects
	// under prefix ("namespace/" for one namespace, "" for all), filtered by
	// the predicate, with list metadata.resourceVersion set.
	List(ctx context.Context, prefix string, opts ListOptions) (runtime.Object, error)
	// Watch streams changes under prefix. The returned watch ends when ctx is
	// done or Stop is called. A slow consumer is disconnected rather than
	// allowed to grow memory without bound.
	Watch(ctx context.Context, prefix string, opts WatchOptions) (watch.Interface, error)
	// CurrentRevision is the newest etcd revision the store has observed.
	CurrentRevision(ctx context.Context) (int64, error)
}
