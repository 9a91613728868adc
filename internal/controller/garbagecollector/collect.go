package garbagecollector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// maxPatchAttempts bounds the get-modify-patch retries on conflicts before
// the key is handed back to the queue's back-off.
const maxPatchAttempts = 5

// errGone means the object was deleted or replaced while being worked on;
// there is nothing left to do for it.
var errGone = errors.New("garbagecollector: object gone")

// attemptToDelete is the Func of the attempt-to-delete queue; key is a uid.
// For an object deleting its dependents (foreground) it removes the
// foregroundDeletion finalizer once nothing blocks it any more, or pushes
// the blocking dependents through the queue. For any other object with
// owner references it checks every owner live and, when the object has
// no solid owner left, deletes it; when some owners are gone but a solid
// one is left, it only removes the references to the gone ones.
func (c *Controller) attemptToDelete(ctx context.Context, key string) (time.Duration, error) {
	uid := uidOf(key)
	n, ok := c.graph.get(uid)
	if !ok {
		return 0, nil
	}
	latest, err := c.getLive(ctx, n.id)
	if errors.Is(err, errGone) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if latest.DeletionTimestamp != nil {
		if hasFinalizer(latest, metav1.FinalizerDeleteDependents) {
			return 0, c.processDeletingDependents(ctx, n.id, latest)
		}
		return 0, nil // already going away
	}
	refs := latest.OwnerReferences
	if len(refs) == 0 {
		return 0, nil
	}
	states := make([]ownerState, len(refs))
	for i, ref := range refs {
		if states[i], err = c.ownerStateOf(ctx, n.id, ref); err != nil {
			return 0, err
		}
	}
	v := decide(refs, states, facts{
		Finalizers:                  latest.Finalizers,
		HasDependents:               c.graph.hasDependents(uid),
		DependentDeletingDependents: c.graph.anyDependentDeletingDependents(uid),
	})
	log := c.log.With("resource", n.id.Resource.GroupResource().String(), "namespace", n.id.Namespace, "name", n.id.Name, "uid", uid)
	switch v.Action {
	case removeRefs:
		log.Debug("removing dangling owner references", "owners", v.RemoveUIDs)
		err := c.patchMeta(ctx, n.id, latest, func(m *metav1.PartialObjectMetadata) (map[string]any, bool) {
			refs := withoutRefs(m.OwnerReferences, v.RemoveUIDs)
			if len(refs) == len(m.OwnerReferences) {
				return nil, false
			}
			return map[string]any{"ownerReferences": refsOrNull(refs)}, true
		})
		if errors.Is(err, errGone) {
			return 0, nil
		}
		return 0, err
	case deleteObject:
		if v.Unblock {
			log.Debug("unblocking owner references to avoid a cycle of foreground deletions")
			all := refUIDs(refs)
			err := c.patchMeta(ctx, n.id, latest, func(m *metav1.PartialObjectMetadata) (map[string]any, bool) {
				if !slices.ContainsFunc(m.OwnerReferences, blocks) {
					return nil, false
				}
				return map[string]any{"ownerReferences": refsOrNull(unblocked(m.OwnerReferences, all))}, true
			})
			if errors.Is(err, errGone) {
				return 0, nil
			}
			if err != nil {
				return 0, err
			}
			// Delete what was just patched, not the version decided on,
			// unless its owners changed meanwhile: then decide again.
			latest, err = c.getLive(ctx, n.id)
			if errors.Is(err, errGone) {
				return 0, nil
			}
			if err != nil {
				return 0, err
			}
			if !slices.Equal(all, refUIDs(latest.OwnerReferences)) {
				return 0, fmt.Errorf("deleting %s: owner references changed", n.id)
			}
		}
		log.Debug("deleting garbage", "propagationPolicy", v.Policy)
		return 0, c.deleteObject(ctx, n.id, latest, v.Policy)
	}
	return 0, nil
}

// processDeletingDependents handles an owner with the foregroundDeletion
// finalizer: when no observed dependent blocks it (a reference with
// blockOwnerDeletion true), the finalizer is removed and the API server
// deletes the owner; otherwise the blocking dependents that are not
// themselves deleting their dependents are queued to be deleted. The
// owner is queued again by the graph when a blocking dependent goes away
// or stops blocking.
func (c *Controller) processDeletingDependents(ctx context.Context, id identity, owner *metav1.PartialObjectMetadata) error {
	var blocking []node
	for _, d := range c.graph.dependentsOf(id.UID) {
		if ref := findRef(d.owners, id.UID); ref != nil && blocks(*ref) {
			blocking = append(blocking, d)
		}
	}
	if len(blocking) > 0 {
		for _, d := range blocking {
			if !d.deletingDependents {
				c.deleteLoop.Enqueue(string(d.id.UID))
			}
		}
		return nil
	}
	c.log.Debug("dependents gone; removing finalizer", "finalizer", metav1.FinalizerDeleteDependents,
		"resource", id.Resource.GroupResource().String(), "namespace", id.Namespace, "name", id.Name)
	err := c.removeFinalizer(ctx, id, owner, metav1.FinalizerDeleteDependents)
	if errors.Is(err, errGone) {
		return nil
	}
	return err
}

// orphan is the Func of the orphan queue; key is the uid of an owner
// with a deletionTimestamp and the orphan finalizer. It removes the
// references to the owner from every observed dependent, then the orphan
// finalizer from the owner.
func (c *Controller) orphan(ctx context.Context, key string) (time.Duration, error) {
	uid := uidOf(key)
	n, ok := c.graph.get(uid)
	if !ok {
		return 0, nil
	}
	owner, err := c.getLive(ctx, n.id)
	if errors.Is(err, errGone) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if owner.DeletionTimestamp == nil || !hasFinalizer(owner, metav1.FinalizerOrphanDependents) {
		return 0, nil
	}
	var errs []error
	for _, d := range c.graph.dependentsOf(uid) {
		latest, err := c.getLive(ctx, d.id)
		if errors.Is(err, errGone) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = c.patchMeta(ctx, d.id, latest, func(m *metav1.PartialObjectMetadata) (map[string]any, bool) {
			refs := withoutRefs(m.OwnerReferences, []types.UID{uid})
			if len(refs) == len(m.OwnerReferences) {
				return nil, false
			}
			return map[string]any{"ownerReferences": refsOrNull(refs)}, true
		})
		if err != nil && !errors.Is(err, errGone) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return 0, fmt.Errorf("orphaning dependents of %s: %w", n.id, errors.Join(errs...))
	}
	c.log.Debug("dependents orphaned; removing finalizer", "finalizer", metav1.FinalizerOrphanDependents,
		"resource", n.id.Resource.GroupResource().String(), "namespace", n.id.Namespace, "name", n.id.Name)
	err = c.removeFinalizer(ctx, n.id, owner, metav1.FinalizerOrphanDependents)
	if errors.Is(err, errGone) {
		return 0, nil
	}
	return 0, err
}

// ownerStateOf looks the owner of ref up live, where a reference from the
// dependent id points: in the dependent's namespace for a namespaced kind,
// cluster-wide otherwise. A cluster-scoped dependent cannot have a
// namespaced owner: such a reference is dangling.
func (c *Controller) ownerStateOf(ctx context.Context, id identity, ref metav1.OwnerReference) (ownerState, error) {
	gvr, namespaced, err := c.monitors.resourceFor(ref.APIVersion, ref.Kind)
	if err != nil {
		return solid, err
	}
	ns := ""
	if namespaced {
		if id.Namespace == "" {
			c.invalidNamespace(id, ref)
			return dangling, nil
		}
		ns = id.Namespace
	}
	key := absentKey{resource: gvr, namespace: ns, name: ref.Name, uid: ref.UID}
	if c.absent.has(key) {
		return dangling, nil
	}
	owner, err := c.meta.Resource(gvr).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case err != nil && !apierrors.IsNotFound(err):
		return solid, fmt.Errorf("getting owner %s %s/%s: %w", gvr.GroupResource(), ns, ref.Name, err)
	case err != nil || owner.UID != ref.UID:
		c.absent.add(key)
		c.checkOtherNamespace(id, ref, namespaced)
		return dangling, nil
	case owner.DeletionTimestamp != nil && hasFinalizer(owner, metav1.FinalizerDeleteDependents):
		return waiting, nil
	}
	return solid, nil
}

// checkOtherNamespace records upstream's OwnerRefInvalidNamespace event
// when the owner the dependent refers to was observed in another
// namespace.
func (c *Controller) checkOtherNamespace(id identity, ref metav1.OwnerReference, namespaced bool) {
	if !namespaced {
		return
	}
	if o, ok := c.graph.get(ref.UID); ok && o.id.Namespace != id.Namespace {
		c.invalidNamespace(id, ref)
	}
}

func (c *Controller) invalidNamespace(id identity, ref metav1.OwnerReference) {
	obj := &corev1.ObjectReference{
		APIVersion: id.Resource.GroupVersion().String(),
		Kind:       id.Kind,
		Namespace:  id.Namespace,
		Name:       id.Name,
		UID:        id.UID,
	}
	c.recorder.Eventf(obj, corev1.EventTypeWarning, "OwnerRefInvalidNamespace",
		"ownerRef %s does not exist in namespace %q", refString(ref), id.Namespace)
}

func refString(ref metav1.OwnerReference) string {
	return fmt.Sprintf("[%s/%s, namespace: , name: %s, uid: %s]", ref.APIVersion, ref.Kind, ref.Name, ref.UID)
}

// getLive reads the object id from the API server. errGone means it is
// absent or has another uid.
func (c *Controller) getLive(ctx context.Context, id identity) (*metav1.PartialObjectMetadata, error) {
	m, err := c.meta.Resource(id.Resource).Namespace(id.Namespace).Get(ctx, id.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, errGone
	case err != nil:
		return nil, fmt.Errorf("getting %s: %w", id, err)
	case m.UID != id.UID:
		return nil, errGone
	}
	return m, nil
}

// deleteObject deletes the object latest (of id) with policy, on
// condition of its uid and resourceVersion. When only the
// resourceVersion moved and its owner references are still those the
// decision was made on, it deletes again on condition of the uid alone, as
// upstream; otherwise the conflict is returned and the object is
// re-examined.
func (c *Controller) deleteObject(ctx context.Context, id identity, latest *metav1.PartialObjectMetadata, policy metav1.DeletionPropagation) error {
	uid, rv := latest.UID, latest.ResourceVersion
	client := c.meta.Resource(id.Resource).Namespace(id.Namespace)
	err := client.Delete(ctx, id.Name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
		PropagationPolicy: &policy,
	})
	if apierrors.IsConflict(err) {
		fresh, gerr := c.getLive(ctx, id)
		if errors.Is(gerr, errGone) {
			return nil
		}
		if gerr != nil {
			return gerr
		}
		if !equality.Semantic.DeepEqual(fresh.OwnerReferences, latest.OwnerReferences) {
			return fmt.Errorf("deleting %s: owner references changed: %w", id, err)
		}
		err = client.Delete(ctx, id.Name, metav1.DeleteOptions{
			Preconditions:     &metav1.Preconditions{UID: &uid},
			PropagationPolicy: &policy,
		})
	}
	switch {
	case err == nil, apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		// A uid conflict: the object was replaced; the new one is not ours.
		if _, gerr := c.getLive(ctx, id); errors.Is(gerr, errGone) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("deleting %s: %w", id, err)
	}
	return nil
}

// removeFinalizer removes finalizer f from the object latest (of id).
func (c *Controller) removeFinalizer(ctx context.Context, id identity, latest *metav1.PartialObjectMetadata, f string) error {
	return c.patchMeta(ctx, id, latest, func(m *metav1.PartialObjectMetadata) (map[string]any, bool) {
		if !slices.Contains(m.Finalizers, f) {
			return nil, false
		}
		rest := slices.DeleteFunc(slices.Clone(m.Finalizers), func(s string) bool { return s == f })
		var v any = rest
		if len(rest) == 0 {
			v = nil
		}
		return map[string]any{"finalizers": v}, true
	})
}

// patchMeta changes metadata fields of the object id with a JSON merge
// patch conditioned on its uid and resourceVersion. change returns the
// fields to set from the current object, or false when nothing needs
// changing. On a conflict the object is read again and change is called
// again, up to maxPatchAttempts times. errGone means the object is absent
// or was replaced.
func (c *Controller) patchMeta(ctx context.Context, id identity, latest *metav1.PartialObjectMetadata,
	change func(*metav1.PartialObjectMetadata) (map[string]any, bool)) error {
	client := c.meta.Resource(id.Resource).Namespace(id.Namespace)
	cur := latest
	var perr error
	for range maxPatchAttempts {
		fields, ok := change(cur)
		if !ok {
			return nil
		}
		fields["uid"] = cur.UID
		fields["resourceVersion"] = cur.ResourceVersion
		body, merr := json.Marshal(map[string]any{"metadata": fields})
		if merr != nil {
			return fmt.Errorf("encoding patch of %s: %w", id, merr)
		}
		_, perr = client.Patch(ctx, id.Name, types.MergePatchType, body, metav1.PatchOptions{})
		switch {
		case perr == nil:
			return nil
		case apierrors.IsNotFound(perr):
			return errGone
		case !apierrors.IsConflict(perr):
			return fmt.Errorf("patching %s: %w", id, perr)
		}
		var err error
		if cur, err = c.getLive(ctx, id); err != nil {
			return err
		}
	}
	return fmt.Errorf("patching %s: %w", id, perr)
}

// refsOrNull is refs for a merge patch: null (remove the field) when empty.
func refsOrNull(refs []metav1.OwnerReference) any {
	if len(refs) == 0 {
		return nil
	}
	return refs
}

// refUIDs returns the uids refs point at, in order.
func refUIDs(refs []metav1.OwnerReference) []types.UID {
	out := make([]types.UID, 0, len(refs))
	for _, r := range refs {
		out = append(out, r.UID)
	}
	return out
}
