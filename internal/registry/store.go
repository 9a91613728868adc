package registry

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
	// EphemeralContainers is pods/ephemeralcontainers: only
	// spec.ephemeralContainers is taken from the request.
	EphemeralContainers Subresource = "ephemeralcontainers"
)

// UpdateFunc returns the desired object given the current one (nil when it
// does not exist yet and the update may create it). It may be called again
// when the write races with another writer. current is the caller's own
// deep copy: the function may modify and return it.
type UpdateFunc func(ctx context.Context, current runtime.Object) (runtime.Object, error)

// NamespaceLookup reads one namespace. It is what a Store of a namespaced
// resource consults before a create (namespace lifecycle); the namespaces
// Store implements it. The returned object must not be modified.
//
// With cached true the namespace may come from a watch cache, and the
// returned Guard pins the revision that was read: a create carrying it is
// refused by etcd (storage.ErrGuardChanged) if the namespace changed since,
// and the caller then asks again with cached false (a consistent read).
type NamespaceLookup interface {
	GetNamespace(ctx context.Context, name string, cached bool) (*corev1.Namespace, storage.Guard, error)
}

// StoreOptions are the optional collaborators of a Store.
type StoreOptions struct {
	// Namespaces is consulted on create for namespaced resources: a missing
	// namespace is 404, a terminating one 403. Nil (the namespaces resource
	// itself, cluster-scoped resources, or tests) skips the check.
	Namespaces NamespaceLookup
	// Now is the clock for creation and deletion timestamps; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives Debug records of writes; nil discards them.
	Logger *slog.Logger
}

// Store gives one Resource its upstream semantics on top of a
// storage.Interface: uid, creationTimestamp, generateName, generation,
// defaults, validation, status carry-over, finalizers and graceful deletion,
// dry runs, and the namespace lifecycle. It is what the API server calls;
// it never speaks HTTP. Errors are k8s.io/apimachinery/pkg/api/errors values.
//
// Objects returned by Get, Create, Update and Delete carry the resource's
// apiVersion/kind. Lists carry the list kind; their items, and the objects
// of watch events, are passed through as storage holds them (apiVersion and
// kind possibly empty), so the HTTP layer sets TypeMeta on output.
// Everything returned may be shared with the watch cache: callers must
// deep-copy before modifying.
//
// Build one with NewStore. A Store is safe for concurrent use.
type Store struct {
	Resource *Resource
	Storage  storage.Interface

	namespaces NamespaceLookup
	now        func() time.Time
	log        *slog.Logger

	gvk, listGVK   schema.GroupVersionKind
	hasSpec        bool // the object type has a top-level Spec field (or what stands for one)
	hasStatus      bool // the object type has a top-level Status field
	isNamespaces   bool // res is core/v1 namespaces
	createOnUpdate bool // PUT of an absent object creates it
}

// NewStore returns the Store of res on st. res.Strategy must be set.
func NewStore(res *Resource, st storage.Interface, opts StoreOptions) *Store {
	s := &Store{
		Resource:   res,
		Storage:    st,
		namespaces: opts.Namespaces,
		now:        opts.Now,
		log:        opts.Logger,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("resource", res.GVR.GroupResource().String())
	s.gvk = res.GroupVersionKind()
	s.listGVK = res.GVR.GroupVersion().WithKind(res.ListKind)
	proto := res.Strategy.New()
	// Webhook configurations have no spec, but upstream counts their
	// webhooks as one: metadata.generation follows changes to them.
	s.hasSpec = hasField(proto, "Spec") || hasField(proto, "Webhooks")
	s.hasStatus = hasField(proto, "Status")
	s.isNamespaces = res.GVR.Group == "" && res.GVR.Resource == "namespaces"
	s.createOnUpdate = allowsCreateOnUpdate(res.GVR.GroupResource())
	return s
}

// allowsCreateOnUpdate reports the resources for which upstream lets a PUT
// of an absent object create it (their strategies' AllowCreateOnUpdate).
func allowsCreateOnUpdate(gr schema.GroupResource) bool {
	switch gr.Group {
	case "":
		switch gr.Resource {
		case "endpoints", "events", "limitranges", "services":
			return true
		}
	case "events.k8s.io":
		return gr.Resource == "events"
	case "coordination.k8s.io":
		return gr.Resource == "leases"
	case "rbac.authorization.k8s.io":
		switch gr.Resource {
		case "roles", "rolebindings", "clusterroles", "clusterrolebindings":
			return true
		}
	case "node.k8s.io":
		return gr.Resource == "runtimeclasses"
	}
	return false
}

// key is the storage key of namespace/name, with upstream's 400s for a
// missing or unusable name or namespace.
func (s *Store) key(namespace, name string) (string, error) {
	if name == "" {
		return "", apierrors.NewBadRequest("Name parameter required.")
	}
	if msgs := path.IsValidPathSegmentName(name); len(msgs) != 0 {
		return "", apierrors.NewBadRequest(fmt.Sprintf("Name parameter invalid: %q: %s", name, strings.Join(msgs, ";")))
	}
	if !s.Resource.Namespaced {
		return name, nil
	}
	if namespace == "" {
		return "", apierrors.NewBadRequest("Namespace parameter required.")
	}
	if msgs := path.IsValidPathSegmentName(namespace); len(msgs) != 0 {
		return "", apierrors.NewBadRequest(fmt.Sprintf("Namespace parameter invalid: %q: %s", namespace, strings.Join(msgs, ";")))
	}
	return namespace + "/" + name, nil
}

// prefix is the storage prefix of one namespace ("" for all namespaces and
// for cluster-scoped resources).
func (s *Store) prefix(namespace string) string {
	if !s.Resource.Namespaced || namespace == "" {
		return ""
	}
	return namespace + "/"
}

// output returns obj with the resource's apiVersion/kind set, copying it
// first when it has to change (obj may be shared with the watch cache).
func (s *Store) output(obj runtime.Object) runtime.Object {
	if obj == nil || obj.GetObjectKind().GroupVersionKind() == s.gvk {
		return obj
	}
	out := obj.DeepCopyObject()
	out.GetObjectKind().SetGroupVersionKind(s.gvk)
	return out
}

// Get returns the object namespace/name (namespace "" when cluster-scoped).
func (s *Store) Get(ctx context.Context, namespace, name string) (runtime.Object, error) {
	key, err := s.key(namespace, name)
	if err != nil {
		return nil, err
	}
	obj, err := s.Storage.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return s.output(obj), nil
}

// List returns the resource's list type for one namespace ("" for all).
func (s *Store) List(ctx context.Context, namespace string, opts storage.ListOptions) (runtime.Object, error) {
	list, err := s.Storage.List(ctx, s.prefix(namespace), opts)
	if err != nil {
		return nil, err
	}
	if _, ok := list.(*storage.EncodedList); ok {
		return list, nil // opts.Encoder asked for it; the caller frames it
	}
	if list.GetObjectKind().GroupVersionKind() != s.listGVK {
		// A list object is built per call, so setting its kind is safe.
		list.GetObjectKind().SetGroupVersionKind(s.listGVK)
	}
	return list, nil
}

// Watch streams changes in one namespace ("" for all).
func (s *Store) Watch(ctx context.Context, namespace string, opts storage.WatchOptions) (watch.Interface, error) {
	return s.Storage.Watch(ctx, s.prefix(namespace), opts)
}

// GetNamespace implements NamespaceLookup when s serves core/v1
// namespaces. With cached true it answers from the watch cache when the
// cache holds the namespace (no round trip to etcd on the create path) and
// reads etcd otherwise; with cached false it always reads etcd.
func (s *Store) GetNamespace(ctx context.Context, name string, cached bool) (*corev1.Namespace, storage.Guard, error) {
	if !s.isNamespaces {
		return nil, storage.Guard{}, fmt.Errorf("getting namespace %q: store serves %s, not namespaces", name, s.Resource.GroupResource())
	}
	var ns *corev1.Namespace
	if cached {
		ns = s.cachedNamespace(ctx, name)
	}
	if ns == nil {
		obj, err := s.Get(ctx, "", name)
		if err != nil {
			return nil, storage.Guard{}, err
		}
		var ok bool
		if ns, ok = obj.(*corev1.Namespace); !ok {
			return nil, storage.Guard{}, fmt.Errorf("getting namespace %q: unexpected type %T", name, obj)
		}
	}
	rev, err := strconv.ParseInt(ns.ResourceVersion, 10, 64)
	if err != nil {
		return nil, storage.Guard{}, fmt.Errorf("getting namespace %q: resourceVersion %q: %w", name, ns.ResourceVersion, err)
	}
	return ns, storage.Guard{Key: s.Storage.EtcdKey(name), ModRevision: rev}, nil
}

// cachedNamespace returns the watch cache's copy of namespace name, or nil
// when the cache does not hold it (or cannot be asked).
func (s *Store) cachedNamespace(ctx context.Context, name string) *corev1.Namespace {
	if name == "" {
		return nil
	}
	// An exact key as the prefix and resourceVersion "0" read one object
	// from the cache without a round trip to etcd.
	list, err := s.Storage.List(ctx, name, storage.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return nil
	}
	nsList, ok := list.(*corev1.NamespaceList)
	if !ok || len(nsList.Items) != 1 || nsList.Items[0].Name != name {
		return nil
	}
	return &nsList.Items[0]
}

var _ NamespaceLookup = (*Store)(nil)

// isDryRun reports whether the request's dryRun asks for no write.
func isDryRun(dryRun []string) bool {
	for _, d := range dryRun {
		if d == metav1.DryRunAll {
			return true
		}
	}
	return false
}
