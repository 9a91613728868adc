package registry

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/storage"
)

// optimisticLockMsg is upstream's message for a stale resourceVersion.
const optimisticLockMsg = "the object has been modified; please apply your changes to the latest version and try again"

// errDeleteDuringUpdate aborts a storage update whose result is an object
// being deleted that no longer has finalizers: it is deleted instead.
var errDeleteDuringUpdate = errors.New("registry: finalizers emptied, delete instead of update")

// Update changes namespace/name through sub with fn, in one
// storage.GuaranteedUpdate (fn may be called again on a race). created
// reports whether the object did not exist before: PUT creates only for the
// resources upstream allows it for (endpoints, events, leases, services,
// limitranges, RBAC roles and bindings, runtimeclasses); otherwise an absent
// object is 404.
//
// A resourceVersion in fn's result must match the stored one (409); none
// makes the update unconditional. System metadata (uid, creationTimestamp,
// deletionTimestamp, deletionGracePeriodSeconds, generation) is carried
// over or rejected (422) as upstream. When the result equals the stored
// object nothing is written and the stored object (same resourceVersion) is
// returned. When the object is being deleted and its last finalizer (and,
// for namespaces, spec.finalizers) is gone, it is deleted and fn's result
// is returned. With opts.DryRun ["All"] nothing is written.
func (s *Store) Update(ctx context.Context, namespace, name string, sub Subresource, fn UpdateFunc, opts metav1.UpdateOptions) (obj runtime.Object, created bool, err error) {
	return s.update(ctx, namespace, name, sub, fn, opts, false)
}

// UpdateOrCreate is Update through the main resource that creates an
// absent object for every resource, as upstream does for server-side
// apply (PATCH with application/apply-patch+yaml): fn is then called with
// nil and returns the object to create.
func (s *Store) UpdateOrCreate(ctx context.Context, namespace, name string, fn UpdateFunc, opts metav1.UpdateOptions) (obj runtime.Object, created bool, err error) {
	return s.update(ctx, namespace, name, Main, fn, opts, true)
}

func (s *Store) update(ctx context.Context, namespace, name string, sub Subresource, fn UpdateFunc, opts metav1.UpdateOptions, forceCreate bool) (obj runtime.Object, created bool, err error) {
	key, err := s.key(namespace, name)
	if err != nil {
		return nil, false, err
	}
	if errs := metav1validation.ValidateUpdateOptions(&opts); len(errs) > 0 {
		return nil, false, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "UpdateOptions"}, "", errs)
	}
	switch sub {
	case Main, StatusSub, Binding:
	case Finalize:
		if !s.isNamespaces {
			return nil, false, apierrors.NewBadRequest(fmt.Sprintf("%s has no finalize subresource", s.Resource.GroupResource()))
		}
	case EphemeralContainers:
		if s.Resource.EphemeralContainers == nil {
			return nil, false, apierrors.NewBadRequest(fmt.Sprintf("%s has no ephemeralcontainers subresource", s.Resource.GroupResource()))
		}
	default:
		return nil, false, apierrors.NewBadRequest(fmt.Sprintf("unknown subresource %q", sub))
	}
	dryRun := isDryRun(opts.DryRun)
	allowCreate := sub == Main && (s.createOnUpdate || forceCreate)

	// Set by the last call of the update function.
	var (
		noop     runtime.Object // unchanged: the stored object
		toDelete runtime.Object // finalized: the object to report
		oldUID   string
		held     runtime.Object // the stored object the write replaced
		undo     = func() {}    // releases what the last call allocated
	)
	defer func() {
		if err != nil {
			undo()
		}
	}()
	out, err := s.Storage.GuaranteedUpdate(ctx, key, allowCreate, func(current runtime.Object) (runtime.Object, error) {
		created, noop, toDelete, held = false, nil, nil, current
		undo()
		undo = func() {}
		if current == nil {
			if !allowCreate {
				return nil, apierrors.NewNotFound(s.Resource.GroupResource(), name)
			}
			o, err := s.prepareCreateOnUpdate(ctx, namespace, name, fn)
			if err != nil {
				return nil, err
			}
			created = true
			if undo, err = s.allocate(ctx, o, nil, dryRun); err != nil {
				undo = func() {}
				return nil, err
			}
			if dryRun {
				return nil, &dryRunResult{obj: o}
			}
			return o, nil
		}
		// current is the storage's own copy (never the watch cache's
		// object), and nothing below changes it but its kind: it serves
		// as the old object, and fn gets a copy to change.
		old := current
		in, err := fn(ctx, current.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		if in == nil {
			return nil, apierrors.NewBadRequest("no object provided")
		}
		o, err := s.prepareUpdate(ctx, sub, namespace, name, in, old)
		if err != nil {
			return nil, err
		}
		old.GetObjectKind().SetGroupVersionKind(s.gvk)
		// A binding always changes the pod (prepareUpdate refuses a bound
		// one), so it skips the reflective comparison, a quarter of its
		// cost; the storage still writes nothing for equal bytes.
		if sub != Binding && equality.Semantic.DeepEqual(o, old) {
			noop = old
			return nil, nil
		}
		if s.shouldDeleteDuringUpdate(o, old) {
			toDelete = o
			om, _ := accessor(old)
			oldUID = string(om.GetUID())
			return nil, errDeleteDuringUpdate
		}
		if sub == Main {
			if undo, err = s.allocate(ctx, o, old, dryRun); err != nil {
				undo = func() {}
				return nil, err
			}
		}
		if dryRun {
			return nil, &dryRunResult{obj: o}
		}
		return o, nil
	})
	var dr *dryRunResult
	switch {
	case errors.As(err, &dr):
		return dr.obj, created, nil
	case errors.Is(err, errDeleteDuringUpdate):
		return s.deleteFinalized(ctx, key, oldUID, toDelete, dryRun)
	case err != nil:
		return nil, false, err
	case noop != nil:
		return noop, false, nil
	case out == nil:
		return nil, false, apierrors.NewInternalError(fmt.Errorf("updating %s: storage returned no object", key))
	}
	if held != nil && s.Resource.Allocator != nil {
		s.Resource.Allocator.Release(ctx, held, out)
	}
	if created {
		s.log.DebugContext(ctx, "created on update", "namespace", namespace, "name", name)
	} else {
		s.log.DebugContext(ctx, "updated", "namespace", namespace, "name", name, "subresource", string(sub))
	}
	return s.output(out), created, nil
}

// prepareCreateOnUpdate builds the object a PUT of an absent object
// creates.
func (s *Store) prepareCreateOnUpdate(ctx context.Context, namespace, name string, fn UpdateFunc) (runtime.Object, error) {
	o, err := fn(ctx, nil)
	if err != nil {
		return nil, err
	}
	if o == nil {
		return nil, apierrors.NewNotFound(s.Resource.GroupResource(), name)
	}
	m, err := accessor(o)
	if err != nil {
		return nil, err
	}
	if err := s.matchNamespace(namespace, m); err != nil {
		return nil, err
	}
	if m.GetName() == "" {
		m.SetName(name)
	}
	if m.GetResourceVersion() != "" {
		// The client expects a version of an object that is not there.
		return nil, apierrors.NewConflict(s.Resource.GroupResource(), name, errors.New(optimisticLockMsg))
	}
	// Create-on-update is rare: decide on a consistent read.
	if _, err := s.checkNamespaceActive(ctx, m, false); err != nil {
		return nil, err
	}
	if err := s.prepareCreate(ctx, o); err != nil {
		return nil, err
	}
	return o, nil
}

// prepareUpdate turns fn's result o into the object to store, given old (a
// private copy of the stored object): subresource rules, system metadata,
// defaults, generation and validation.
func (s *Store) prepareUpdate(ctx context.Context, sub Subresource, namespace, name string, o, old runtime.Object) (runtime.Object, error) {
	m, err := accessor(o)
	if err != nil {
		return nil, err
	}
	om, err := accessor(old)
	if err != nil {
		return nil, err
	}
	if err := s.matchNamespace(namespace, m); err != nil {
		return nil, err
	}
	if m.GetName() == "" {
		m.SetName(name)
	}
	switch rv := m.GetResourceVersion(); {
	case rv == "":
		m.SetResourceVersion(om.GetResourceVersion()) // unconditional update
	case rv != om.GetResourceVersion():
		return nil, apierrors.NewConflict(s.Resource.GroupResource(), name, errors.New(optimisticLockMsg))
	}

	st := s.Resource.Strategy
	switch sub {
	case Main:
		if s.Resource.Status && s.hasStatus {
			// From a copy: o must not share memory with old, which the
			// strategy and the no-op check compare against.
			copyFields(o, old.DeepCopyObject(), true, "Status")
		}
		st.PrepareForUpdate(ctx, o, old)
	case StatusSub:
		src := old.DeepCopyObject()
		copyFields(o, src, false, "TypeMeta", "ObjectMeta", "Status")
		srcMeta, err := accessor(src)
		if err != nil {
			return nil, err
		}
		if s.Resource.StatusResetsMetadata {
			metav1.ResetObjectMetaForStatus(m, srcMeta)
		}
		st.PrepareForStatusUpdate(ctx, o, old)
	case Finalize:
		o, err = finalizeOnly(o, old)
		if err != nil {
			return nil, err
		}
		if m, err = accessor(o); err != nil {
			return nil, err
		}
	case EphemeralContainers:
		o, err = ephemeralContainersOnly(o, old)
		if err != nil {
			return nil, err
		}
		if m, err = accessor(o); err != nil {
			return nil, err
		}
	}

	// System metadata a client can neither set nor change.
	m.SetGeneration(om.GetGeneration())
	if m.GetUID() == "" {
		m.SetUID(om.GetUID())
	}
	if ct := om.GetCreationTimestamp(); !ct.IsZero() {
		m.SetCreationTimestamp(ct)
	}
	if om.GetDeletionTimestamp() != nil {
		m.SetDeletionTimestamp(om.GetDeletionTimestamp())
	}
	if om.GetDeletionGracePeriodSeconds() != nil && m.GetDeletionGracePeriodSeconds() == nil {
		m.SetDeletionGracePeriodSeconds(om.GetDeletionGracePeriodSeconds())
	}
	m.SetSelfLink("")

	if sub != Finalize {
		st.Default(o)
		if err := s.admitMutate(ctx, o, old); err != nil {
			return nil, err
		}
	}
	// A spec change bumps the generation; for pods also one through
	// ephemeralcontainers, as upstream (pod generation tracking).
	if (sub == Main || sub == EphemeralContainers) && s.hasSpec && specChanged(o, old, s.Resource.Status) {
		m.SetGeneration(om.GetGeneration() + 1)
	}

	errs := s.validateMeta(m)
	errs = append(errs, validation.ValidateObjectMetaAccessorUpdate(m, om, metadataPath)...)
	switch sub {
	case Main:
		errs = append(errs, st.ValidateUpdate(ctx, o, old)...)
	case StatusSub:
		errs = append(errs, st.ValidateStatusUpdate(ctx, o, old)...)
	case Finalize:
		errs = append(errs, validateSpecFinalizers(o.(*corev1.Namespace))...)
	case EphemeralContainers:
		errs = append(errs, s.Resource.EphemeralContainers(o, old)...)
	}
	if err := s.invalid(m.GetName(), errs); err != nil {
		return nil, err
	}
	o.GetObjectKind().SetGroupVersionKind(s.gvk)
	if sub != Finalize {
		if err := s.admitValidate(ctx, o, old); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// ephemeralContainersOnly returns old with only spec.ephemeralContainers
// (and the resourceVersion the client sent) taken from o:
// pods/ephemeralcontainers.
func ephemeralContainersOnly(o, old runtime.Object) (runtime.Object, error) {
	pod, ok := o.(*corev1.Pod)
	oldPod, ok2 := old.(*corev1.Pod)
	if !ok || !ok2 {
		return nil, apierrors.NewInternalError(fmt.Errorf("ephemeralcontainers: unexpected type %T", o))
	}
	out := oldPod.DeepCopy()
	out.Spec.EphemeralContainers = pod.Spec.EphemeralContainers
	out.ResourceVersion = pod.ResourceVersion
	return out, nil
}

// finalizeOnly returns old with only spec.finalizers (and the
// resourceVersion the client sent) taken from o: namespaces/finalize.
func finalizeOnly(o, old runtime.Object) (runtime.Object, error) {
	ns, ok := o.(*corev1.Namespace)
	oldNS, ok2 := old.(*corev1.Namespace)
	if !ok || !ok2 {
		return nil, apierrors.NewInternalError(fmt.Errorf("finalize: unexpected type %T", o))
	}
	out := oldNS.DeepCopy()
	out.Spec.Finalizers = ns.Spec.Finalizers
	out.ResourceVersion = ns.ResourceVersion
	return out, nil
}

// validateSpecFinalizers checks namespace spec.finalizers are qualified
// names, as upstream's namespace finalize validation does.
func validateSpecFinalizers(ns *corev1.Namespace) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec", "finalizers")
	for i, f := range ns.Spec.Finalizers {
		errs = append(errs, validation.ValidateFinalizerName(string(f), p.Index(i))...)
	}
	return errs
}

// shouldDeleteDuringUpdate reports whether o, the result of an update of
// old, ends a pending deletion: old is being deleted with no grace period
// left and o has no finalizers (nor, for a namespace, spec.finalizers).
func (s *Store) shouldDeleteDuringUpdate(o, old runtime.Object) bool {
	m, err := accessor(o)
	if err != nil {
		return false
	}
	om, err := accessor(old)
	if err != nil {
		return false
	}
	if len(m.GetFinalizers()) > 0 || om.GetDeletionTimestamp() == nil {
		return false
	}
	if g := om.GetDeletionGracePeriodSeconds(); g != nil && *g != 0 {
		return false
	}
	if ns, ok := o.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		return false
	}
	return true
}

// deleteFinalized deletes the object whose update removed its last
// finalizer and returns the update's result, as upstream does. Losing the
// race to another deleter is not an error.
func (s *Store) deleteFinalized(ctx context.Context, key, uid string, o runtime.Object, dryRun bool) (runtime.Object, bool, error) {
	if dryRun {
		return o, false, nil
	}
	gone, err := s.Storage.Delete(ctx, key, &storage.Preconditions{UID: uid}, nil)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, false, err
	}
	if err == nil {
		s.released(ctx, gone)
	}
	s.log.DebugContext(ctx, "deleted after finalization", "key", key)
	return o, false, nil
}

// allocate runs the resource's Allocator, if any (see Allocator.Allocate).
// The returned undo is never nil.
func (s *Store) allocate(ctx context.Context, o, old runtime.Object, dryRun bool) (func(), error) {
	if s.Resource.Allocator == nil {
		return func() {}, nil
	}
	undo, err := s.Resource.Allocator.Allocate(ctx, o, old, dryRun)
	if err != nil {
		return func() {}, err
	}
	if undo == nil {
		undo = func() {}
	}
	return undo, nil
}

// released frees what a deleted object held.
func (s *Store) released(ctx context.Context, gone runtime.Object) {
	if s.Resource.Allocator != nil && gone != nil {
		s.Resource.Allocator.Release(ctx, gone, nil)
	}
}
