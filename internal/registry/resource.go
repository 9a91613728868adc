package registry

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Resource describes one served resource: where it lives in the API, what
// its objects are, and the strategy that gives it its semantics. The API
// server, discovery and OpenAPI are all driven from the list of Resources.
type Resource struct {
	// GroupVersionResource, e.g. apps/v1 deployments; Group is "" for core.
	GVR schema.GroupVersionResource
	// Kind and ListKind, e.g. "Deployment" and "DeploymentList".
	Kind     string
	ListKind string
	// Singular is the lower-case singular name ("deployment").
	Singular   string
	ShortNames []string // "deploy"
	Categories []string // "all"
	Namespaced bool

	// Verbs served on the main resource; nil means all of get, list, watch,
	// create, update, patch, delete, deletecollection.
	Verbs []string

	// Status is true when the resource has a /status subresource.
	Status bool
	// Scale, when not nil, gives the resource a /scale subresource.
	Scale *ScaleAccessor
	// EphemeralContainers, when not nil, gives pods their
	// /ephemeralcontainers subresource: it validates an update of it (the
	// store carries over everything but spec.ephemeralContainers).
	EphemeralContainers func(obj, old runtime.Object) field.ErrorList

	Strategy Strategy

	// Unstructured marks a custom resource: its objects are
	// *unstructured.Unstructured, which have JSON (and YAML) forms only,
	// and it takes no strategic merge patch, as upstream.
	Unstructured bool
	// TypeConverter, when not nil, gives server-side apply the structure
	// of a custom resource's objects (list types, map keys); nil lets it
	// deduce the structure from the objects. Built-in resources take
	// theirs from the API server's Config.
	TypeConverter managedfields.TypeConverter
	// Prune, when not nil, removes from a decoded custom resource the
	// fields its schema does not know, in place, and returns their paths
	// ("spec.foo"); the API server reports them as unknown fields.
	Prune func(obj runtime.Object) []string

	// PrepareForDelete, when not nil, is applied to an object the first
	// time it is deleted (it has no deletionTimestamp yet), inside the
	// delete's write. It may add finalizers and conditions that hold the
	// object back while something cleans up after it (upstream: a CRD
	// gets the customresourcecleanup finalizer and Terminating=True).
	PrepareForDelete func(obj runtime.Object)

	// Allocator, when not nil, reserves what objects claim from ranges all
	// of them share (service cluster IPs and node ports), and releases it.
	Allocator Allocator

	// StatusResetsMetadata makes a status write keep all of metadata as
	// stored (labels, annotations, finalizers, owner references), as
	// upstream's custom resources, CRDs, APIServices and VolumeAttachments
	// do. Otherwise a status write may change those, as upstream's other
	// built-in status strategies allow (a strategy's PrepareForStatusUpdate
	// may put back what its resource protects).
	StatusResetsMetadata bool

	// StoredAs, when not nil, makes this resource another version of a
	// resource stored in a different version (autoscaling/v1
	// horizontalpodautoscalers, stored as autoscaling/v2): it has no
	// storage of its own but a view of the stored version's (NewView).
	StoredAs *StoredAs
}

// StoredAs names the stored version of a resource served in another
// version, and the conversions between the two. Conversions must not
// modify their argument.
type StoredAs struct {
	// GVR is the stored version's resource: same group and resource.
	GVR schema.GroupVersionResource
	// ToStored converts an object of the served version to the stored
	// one, FromStored the other way.
	ToStored, FromStored func(obj runtime.Object) (runtime.Object, error)
	// FieldLabel, when not nil, renames a field selector's label of the
	// served version to the stored version's (events.k8s.io's
	// regarding.name is core's involvedObject.name); nil keeps the names.
	FieldLabel func(label string) string
}

// Allocator reserves and releases what an object claims from a shared
// range. The Store calls it around its writes; implementations keep their
// reservations in etcd, so they are shared by every server.
type Allocator interface {
	// Allocate fills in and reserves, for obj, what old (nil on create)
	// did not already hold. It runs after defaulting and validation and
	// before the write; undo releases what this call reserved, for when
	// the write fails. With dryRun it fills in values but reserves nothing.
	// A value that is out of range or taken is a 422 naming the field.
	Allocate(ctx context.Context, obj, old runtime.Object, dryRun bool) (undo func(), err error)
	// Release frees what old held and obj (nil once old is deleted) does
	// not. It is best effort: a reservation left behind is repaired later.
	Release(ctx context.Context, old, obj runtime.Object)
}

// KeyPrefix is the etcd key prefix of a resource's objects:
// /registry/<group or "core">/<resource>/ (custom resources too).
func KeyPrefix(gr schema.GroupResource) string {
	group := gr.Group
	if group == "" {
		group = "core"
	}
	return "/registry/" + group + "/" + gr.Resource + "/"
}

// GroupResource is a shorthand for r.GVR.GroupResource().
func (r *Resource) GroupResource() schema.GroupResource { return r.GVR.GroupResource() }

// GroupVersionKind is a shorthand for the resource's GVK.
func (r *Resource) GroupVersionKind() schema.GroupVersionKind {
	return r.GVR.GroupVersion().WithKind(r.Kind)
}

// ScaleAccessor reads and writes the replica count and selector behind a
// /scale subresource (autoscaling/v1 Scale).
type ScaleAccessor struct {
	// Replicas returns spec.replicas (defaulted), status.replicas and the
	// label selector in string form (status.selector).
	Get func(obj runtime.Object) (specReplicas, statusReplicas int32, selector string)
	// SetReplicas sets spec.replicas on obj in place.
	SetReplicas func(obj runtime.Object, replicas int32)
}

// Table is server-side table output for kubectl get: the column
// definitions and one row of cells per object, as upstream prints them.
type Table struct {
	Columns []metav1.TableColumnDefinition
	// Row returns the cells of one object's row in Columns order, ready to
	// print (string, int64, bool). The first cell is the name; ages are
	// rendered with HumanAge.
	Row func(obj runtime.Object) []any
	// Less, when set, orders the rows of a list (as upstream's printer
	// sorts FlowSchemas by matching precedence); nil keeps the list's
	// order.
	Less func(a, b runtime.Object) bool
}

// Strategy is the erased, per-resource behaviour the generic store calls.
// Build one with Define; every function may assume obj has the resource's
// Go type.
type Strategy interface {
	// New returns an empty object of the resource's type (e.g. &v1.Pod{}).
	New() runtime.Object
	// NewList returns an empty list object (e.g. &v1.PodList{}).
	NewList() runtime.Object

	// PrepareForCreate clears what a client may not set on create (status
	// for resources with a status subresource, unless allowed) before
	// defaulting and validation.
	PrepareForCreate(ctx context.Context, obj runtime.Object)
	// PrepareForUpdate carries over from old what a client may not change
	// through the main resource (status, when a status subresource exists).
	PrepareForUpdate(ctx context.Context, obj, old runtime.Object)
	// PrepareForStatusUpdate carries over from old everything but status.
	PrepareForStatusUpdate(ctx context.Context, obj, old runtime.Object)
	// Default applies the upstream defaults in place. It runs on create, on
	// update, and on patch results.
	Default(obj runtime.Object)
	// Validate and ValidateUpdate return field errors naming each bad field
	// (object metadata included).
	Validate(ctx context.Context, obj runtime.Object) field.ErrorList
	ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList
	ValidateStatusUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList
	// ValidateName checks a metadata.name (or, with prefix true, a
	// generateName prefix) and returns the problems, as upstream's
	// ValidateNameFunc does. Define defaults it to a DNS-1123 subdomain.
	ValidateName(name string, prefix bool) []string
	// Attrs returns the label set and the field set (metadata.name,
	// metadata.namespace and the resource's upstream field selectors).
	Attrs(obj runtime.Object) (labels.Set, fields.Set, error)
	// FieldLabels lists the field selector keys the resource supports; a
	// selector on any other field is rejected with 400 as upstream does.
	FieldLabels() []string
	// Table returns server-side table columns; nil means the default
	// NAME/AGE (or NAME/CREATED AT) table.
	Table() *Table
	// GracefulDeletion returns the grace period for a delete without an
	// explicit one, and whether the object is deleted gracefully at all
	// (upstream: only pods bound to a node and not finished).
	GracefulDeletion(obj runtime.Object, requested *int64) (grace int64, graceful bool)
}

// Typed is the typed description of a resource's behaviour; Define erases
// it into a Strategy. Every field but New and NewList is optional: a nil
// function is a no-op (or, for Attrs, just metadata.name and
// metadata.namespace). The generic parts (metadata validation, status
// carry-over, generation) are done by the store, not here.
type Typed[T runtime.Object, L runtime.Object] struct {
	New     func() T
	NewList func() L

	PrepareForCreate       func(obj T)
	PrepareForUpdate       func(obj, old T)
	PrepareForStatusUpdate func(obj, old T)
	Default                func(obj T)
	Validate               func(obj T) field.ErrorList
	ValidateUpdate         func(obj, old T) field.ErrorList
	ValidateStatusUpdate   func(obj, old T) field.ErrorList
	// ValidateName: see Strategy.ValidateName; nil means DNS-1123 subdomain
	// (NameIsDNSSubdomain).
	ValidateName func(name string, prefix bool) []string
	// Fields returns the resource-specific field selector values, keyed by
	// field path (e.g. "spec.nodeName"); metadata.name and
	// metadata.namespace are added by Define.
	Fields map[string]func(obj T) string
	Table  *TypedTable[T]
	// GracefulDeletion: see Strategy.GracefulDeletion.
	GracefulDeletion func(obj T, requested *int64) (int64, bool)
}

// TypedTable is the typed form of Table.
type TypedTable[T runtime.Object] struct {
	Columns []metav1.TableColumnDefinition
	Row     func(obj T) []any
	Less    func(a, b T) bool
}
