package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/internal/storage"
)

// deleteCollectionWorkers bounds the parallel deletes of DeleteCollection.
const deleteCollectionWorkers = 4

// Sentinels that end a deletion's storage update early.
var (
	errAlreadyDeleting = errors.New("registry: graceful deletion already pending")
	errDeleteNow       = errors.New("registry: delete now")
)

// immortalNamespaces may never be deleted (upstream NamespaceLifecycle).
func immortalNamespace(name string) bool {
	switch name {
	case metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic:
		return true
	}
	return false
}

// Delete deletes namespace/name. deleted is false when the object was only
// marked (deletionTimestamp set) because of finalizers or a grace period;
// the returned object is then its new state.
//
// Lifecycle of an object under Delete (upstream semantics):
//
//	live ──Delete, not graceful, no finalizers──────────────────▶ gone
//	  │
//	  ├─Delete, graceful (Strategy.GracefulDeletion, grace > 0)─▶ deleting: deletionTimestamp = now+grace,
//	  │                                                            deletionGracePeriodSeconds = grace
//	  │                                                            (Delete again may only shorten it;
//	  │                                                            grace 0 ──▶ gone, or marked if finalizers)
//	  └─Delete, finalizers (incl. orphan / foregroundDeletion
//	     added by propagationPolicy) ───────────────────────────▶ marked: deletionTimestamp = now, grace 0
//	                                                               ──Update removing the last finalizer──▶ gone
//
// Namespaces: the first Delete sets deletionTimestamp and
// status.phase=Terminating and keeps the namespace while spec.finalizers
// is not empty (a later Delete is 409 until then); Finalize emptying it
// deletes the namespace. default, kube-system and kube-public are 403.
//
// Preconditions that do not hold are 409; opts.DryRun ["All"] computes the
// result without writing.
func (s *Store) Delete(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) (obj runtime.Object, deleted bool, err error) {
	key, err := s.key(namespace, name)
	if err != nil {
		return nil, false, err
	}
	if errs := metav1validation.ValidateDeleteOptions(&opts); len(errs) > 0 {
		return nil, false, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "DeleteOptions"}, "", errs)
	}
	if s.isNamespaces {
		return s.deleteNamespace(ctx, key, name, opts)
	}
	return s.deleteObject(ctx, key, name, opts)
}

// checkPreconditions returns upstream's 409 when pre does not hold for m.
func (s *Store) checkPreconditions(pre *metav1.Preconditions, m metav1.Object) error {
	if pre == nil {
		return nil
	}
	if pre.UID != nil && *pre.UID != m.GetUID() {
		return apierrors.NewConflict(s.Resource.GroupResource(), m.GetName(), fmt.Errorf(
			"the UID in the precondition (%s) does not match the UID in record (%s). The object might have been deleted and then recreated",
			*pre.UID, m.GetUID()))
	}
	if pre.ResourceVersion != nil && *pre.ResourceVersion != m.GetResourceVersion() {
		return apierrors.NewConflict(s.Resource.GroupResource(), m.GetName(), fmt.Errorf(
			"the ResourceVersion in the precondition (%s) does not match the ResourceVersion in record (%s). The object might have been modified",
			*pre.ResourceVersion, m.GetResourceVersion()))
	}
	return nil
}

// storagePreconditions converts the request's preconditions.
func storagePreconditions(pre *metav1.Preconditions) *storage.Preconditions {
	out := &storage.Preconditions{}
	if pre != nil {
		if pre.UID != nil {
			out.UID = string(*pre.UID)
		}
		if pre.ResourceVersion != nil {
			out.ResourceVersion = *pre.ResourceVersion
		}
	}
	return out
}

// beforeDelete decides how obj (a private copy; m its metadata) is
// deleted and marks it for a graceful deletion: graceful means it was
// given (or shortened to) grace seconds; pending means a graceful deletion
// is already under way and the request does not shorten it.
func (s *Store) beforeDelete(obj runtime.Object, m metav1.Object, requested *int64, now time.Time) (graceful, pending bool, grace int64) {
	if requested != nil && *requested < 0 {
		one := int64(1)
		requested = &one
	}
	if g := m.GetDeletionGracePeriodSeconds(); g != nil && *g < 0 {
		one := int64(1)
		m.SetDeletionGracePeriodSeconds(&one)
	}
	if dt := m.GetDeletionTimestamp(); dt != nil {
		current := m.GetDeletionGracePeriodSeconds()
		if current == nil || *current == 0 {
			return false, false, 0
		}
		if requested == nil || *requested >= *current {
			return false, true, *current
		}
		shortened := metav1.NewTime(dt.Add(-time.Duration(*current) * time.Second).Add(time.Duration(*requested) * time.Second))
		p := *requested
		m.SetDeletionTimestamp(&shortened)
		m.SetDeletionGracePeriodSeconds(&p)
		return true, false, p
	}
	def, ok := s.Resource.Strategy.GracefulDeletion(obj, requested)
	if !ok {
		return false, false, 0
	}
	grace = def
	if requested != nil {
		grace = *requested
	}
	if grace < 0 {
		grace = 1
	}
	ts := metav1.NewTime(now.Add(time.Duration(grace) * time.Second).Truncate(time.Second))
	p := grace
	m.SetDeletionTimestamp(&ts)
	m.SetDeletionGracePeriodSeconds(&p)
	if m.GetGeneration() > 0 {
		m.SetGeneration(m.GetGeneration() + 1)
	}
	return true, false, grace
}

// prepareForDelete applies Resource.PrepareForDelete to obj (m its
// metadata) when it is not being deleted yet.
func (s *Store) prepareForDelete(obj runtime.Object, m metav1.Object) {
	if s.Resource.PrepareForDelete != nil && m.GetDeletionTimestamp() == nil {
		s.Resource.PrepareForDelete(obj)
	}
}

// gcFinalizers returns the finalizers m should have for the request's
// propagation policy (orphan / foregroundDeletion, as upstream's garbage
// collector finalizers) and whether they differ from the current ones.
func gcFinalizers(m metav1.Object, opts metav1.DeleteOptions) (bool, []string) {
	orphan, foreground := false, false
	//nolint:staticcheck // OrphanDependents is deprecated but still honoured upstream.
	switch {
	case opts.OrphanDependents != nil:
		orphan = *opts.OrphanDependents
	case opts.PropagationPolicy != nil:
		orphan = *opts.PropagationPolicy == metav1.DeletePropagationOrphan
		foreground = *opts.PropagationPolicy == metav1.DeletePropagationForeground
	default:
		for _, f := range m.GetFinalizers() {
			switch f {
			case metav1.FinalizerOrphanDependents:
				orphan = true
			case metav1.FinalizerDeleteDependents:
				foreground = true
			}
		}
		if orphan && foreground {
			foreground = false
		}
	}
	var out []string
	hadOrphan, hadForeground := false, false
	for _, f := range m.GetFinalizers() {
		switch f {
		case metav1.FinalizerOrphanDependents:
			hadOrphan = true
			continue
		case metav1.FinalizerDeleteDependents:
			hadForeground = true
			continue
		}
		out = append(out, f)
	}
	if orphan {
		out = append(out, metav1.FinalizerOrphanDependents)
	}
	if foreground {
		out = append(out, metav1.FinalizerDeleteDependents)
	}
	if hadOrphan == orphan && hadForeground == foreground {
		return false, m.GetFinalizers()
	}
	return true, out
}

// markAsDeleting marks a non-graceful deletion that waits for finalizers:
// deletionTimestamp now (or earlier), grace 0, generation bumped once.
func markAsDeleting(m metav1.Object, now metav1.Time) {
	if m.GetDeletionTimestamp() == nil && m.GetGeneration() > 0 {
		m.SetGeneration(m.GetGeneration() + 1)
	}
	if dt := m.GetDeletionTimestamp(); dt == nil || dt.After(now.Time) {
		m.SetDeletionTimestamp(&now)
	}
	zero := int64(0)
	m.SetDeletionGracePeriodSeconds(&zero)
}

// deleteObject is the generic Delete.
func (s *Store) deleteObject(ctx context.Context, key, name string, opts metav1.DeleteOptions) (runtime.Object, bool, error) {
	current, err := s.Storage.Get(ctx, key)
	if err != nil {
		return nil, false, err
	}
	obj := current.DeepCopyObject()
	m, err := accessor(obj)
	if err != nil {
		return nil, false, err
	}
	if err := s.checkPreconditions(opts.Preconditions, m); err != nil {
		return nil, false, err
	}
	dryRun := isDryRun(opts.DryRun)
	s.prepareForDelete(obj, m)
	graceful, pending, _ := s.beforeDelete(obj, m, opts.GracePeriodSeconds, s.now())
	if pending {
		return s.output(current), false, nil
	}
	updateFinalizers, _ := gcFinalizers(m, opts)
	pre := storagePreconditions(opts.Preconditions)
	// Admission sees the object the delete is decided on: a storage retry
	// (a racing write, or a cached copy that was behind) admits again
	// when the object differs from the one already admitted, never twice
	// for the same resourceVersion.
	admittedRV := ""
	admit := func(cur runtime.Object) error {
		cm, err := accessor(cur)
		if err != nil {
			return err
		}
		rv := cm.GetResourceVersion()
		if admittedRV != "" && rv == admittedRV {
			return nil
		}
		if err := s.admitDelete(ctx, cur); err != nil {
			return err
		}
		admittedRV = rv
		return nil
	}
	if graceful || len(m.GetFinalizers()) > 0 || updateFinalizers {
		out, deleteNow, err := s.markForDeletion(ctx, key, opts, dryRun, admit)
		if err != nil {
			return nil, false, err
		}
		if !deleteNow {
			return out, false, nil
		}
	}
	if dryRun {
		if err := admit(current); err != nil {
			return nil, false, err
		}
		return s.output(current), true, nil
	}
	out, err := s.Storage.Delete(ctx, key, pre, admit)
	if err != nil {
		return nil, false, err
	}
	s.released(ctx, out)
	s.log.DebugContext(ctx, "deleted", "key", key)
	return s.output(out), true, nil
}

// markForDeletion writes the deletion marks (graceful deletion timestamp,
// garbage-collector finalizers, deletionTimestamp for pending finalizers)
// in one storage update. deleteNow reports that nothing holds the object
// back and the caller should delete it.
// admit runs the delete's admission on the stored object.
func (s *Store) markForDeletion(ctx context.Context, key string, opts metav1.DeleteOptions, dryRun bool, admit func(runtime.Object) error) (out runtime.Object, deleteNow bool, err error) {
	var holding bool // finalizers or a grace period keep the object
	stored, err := s.Storage.GuaranteedUpdate(ctx, key, false, func(current runtime.Object) (runtime.Object, error) {
		holding = false
		existing := current.DeepCopyObject()
		m, err := accessor(existing)
		if err != nil {
			return nil, err
		}
		if err := s.checkPreconditions(opts.Preconditions, m); err != nil {
			return nil, err
		}
		if err := admit(current); err != nil {
			return nil, err
		}
		now := s.now()
		s.prepareForDelete(existing, m)
		graceful, pending, grace := s.beforeDelete(existing, m, opts.GracePeriodSeconds, now)
		if pending {
			return nil, errAlreadyDeleting
		}
		if need, fins := gcFinalizers(m, opts); need {
			m.SetFinalizers(fins)
		}
		hasFinalizers := len(m.GetFinalizers()) > 0
		switch {
		case graceful && grace > 0:
			holding = true
		case hasFinalizers:
			markAsDeleting(m, metav1.NewTime(now.Truncate(time.Second)))
			holding = true
		default:
			return nil, errDeleteNow
		}
		if dryRun {
			existing.GetObjectKind().SetGroupVersionKind(s.gvk)
			return nil, &dryRunResult{obj: existing}
		}
		if equality.Semantic.DeepEqual(existing, current) {
			return nil, nil // already marked: no write
		}
		existing.GetObjectKind().SetGroupVersionKind(s.gvk)
		return existing, nil
	})
	var dr *dryRunResult
	switch {
	case errors.As(err, &dr):
		return dr.obj, !holding, nil
	case errors.Is(err, errDeleteNow):
		return nil, true, nil
	case errors.Is(err, errAlreadyDeleting):
		cur, gerr := s.Storage.Get(ctx, key)
		if gerr != nil {
			return nil, false, gerr
		}
		return s.output(cur), false, nil
	case err != nil:
		return nil, false, err
	}
	if stored == nil {
		if stored, err = s.Storage.Get(ctx, key); err != nil {
			return nil, false, err
		}
	}
	s.log.DebugContext(ctx, "marked for deletion", "key", key)
	return s.output(stored), !holding, nil
}

// deleteNamespace is Delete for core/v1 namespaces.
func (s *Store) deleteNamespace(ctx context.Context, key, name string, opts metav1.DeleteOptions) (runtime.Object, bool, error) {
	if immortalNamespace(name) {
		return nil, false, apierrors.NewForbidden(s.Resource.GroupResource(), name, errors.New("this namespace may not be deleted"))
	}
	current, err := s.Storage.Get(ctx, key)
	if err != nil {
		return nil, false, err
	}
	ns, ok := current.(*corev1.Namespace)
	if !ok {
		return nil, false, apierrors.NewInternalError(fmt.Errorf("deleting namespace %q: unexpected type %T", name, current))
	}
	if err := s.checkPreconditions(opts.Preconditions, ns); err != nil {
		return nil, false, err
	}
	if ns.DeletionTimestamp != nil {
		if len(ns.Spec.Finalizers) != 0 {
			return nil, false, apierrors.NewConflict(s.Resource.GroupResource(), name, errors.New(
				"The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system."))
		}
		return s.deleteObject(ctx, key, name, opts)
	}

	dryRun := isDryRun(opts.DryRun)
	var held bool // spec or metadata finalizers keep the namespace
	stored, err := s.Storage.GuaranteedUpdate(ctx, key, false, func(cur runtime.Object) (runtime.Object, error) {
		existing, ok := cur.DeepCopyObject().(*corev1.Namespace)
		if !ok {
			return nil, apierrors.NewInternalError(fmt.Errorf("deleting namespace %q: unexpected type %T", name, cur))
		}
		if err := s.checkPreconditions(opts.Preconditions, existing); err != nil {
			return nil, err
		}
		if existing.DeletionTimestamp == nil {
			if err := s.admitDelete(ctx, cur); err != nil {
				return nil, err
			}
			now := s.truncNow()
			existing.DeletionTimestamp = &now
		}
		existing.Status.Phase = corev1.NamespaceTerminating
		if need, fins := gcFinalizers(existing, opts); need {
			existing.Finalizers = fins
		}
		held = len(existing.Spec.Finalizers) > 0 || len(existing.Finalizers) > 0
		existing.GetObjectKind().SetGroupVersionKind(s.gvk)
		if dryRun {
			return nil, &dryRunResult{obj: existing}
		}
		return existing, nil
	})
	var dr *dryRunResult
	switch {
	case errors.As(err, &dr):
		return dr.obj, !held, nil
	case err != nil:
		return nil, false, err
	}
	s.log.DebugContext(ctx, "namespace terminating", "name", name)
	if held {
		return s.output(stored), false, nil
	}
	// Nothing to finalize: nothing would ever finish the deletion.
	out, err := s.Storage.Delete(ctx, key, &storage.Preconditions{UID: string(ns.UID)}, nil)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return s.output(stored), true, nil
		}
		return nil, false, err
	}
	return s.output(out), true, nil
}

// DeleteCollection deletes every object matching listOpts in namespace
// ("" for all) with opts, at most deleteCollectionWorkers at a time, and
// returns the resource's list type holding what it deleted or marked.
// Objects that vanish meanwhile are skipped, as are the namespaces that
// may not be deleted; namespaces already terminating are listed as they
// are. The first other error is returned.
func (s *Store) DeleteCollection(ctx context.Context, namespace string, listOpts storage.ListOptions, opts metav1.DeleteOptions) (runtime.Object, error) {
	if errs := metav1validation.ValidateDeleteOptions(&opts); len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "DeleteOptions"}, "", errs)
	}
	list, err := s.List(ctx, namespace, listOpts)
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading list: %w", err))
	}
	results := make([]runtime.Object, len(items))
	errs := make([]error, len(items))
	sem := make(chan struct{}, deleteCollectionWorkers)
	var wg sync.WaitGroup
	for i, item := range items {
		m, err := accessor(item)
		if err != nil {
			return nil, err
		}
		if s.isNamespaces && immortalNamespace(m.GetName()) {
			continue
		}
		ns, name := m.GetNamespace(), m.GetName()
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			o := opts
			obj, _, err := s.Delete(ctx, ns, name, o)
			switch {
			case err == nil:
				results[i] = obj
			case apierrors.IsNotFound(err):
			case s.isNamespaces && apierrors.IsConflict(err) && m.GetDeletionTimestamp() != nil:
				// Already terminating and waiting for its finalizers.
				results[i] = item
			default:
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	var done []runtime.Object
	for _, r := range results {
		if r != nil {
			done = append(done, r)
		}
	}
	out := s.Resource.Strategy.NewList()
	if err := meta.SetList(out, done); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("building list: %w", err))
	}
	if lm, err := meta.ListAccessor(list); err == nil {
		if om, err := meta.ListAccessor(out); err == nil {
			om.SetResourceVersion(lm.GetResourceVersion())
		}
	}
	out.GetObjectKind().SetGroupVersionKind(s.listGVK)
	return out, nil
}
