package ownership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Patcher applies a patch to the object namespace/name of the kind being
// claimed (for example pods), as client-go's Patch does.
type Patcher func(ctx context.Context, namespace, name string, pt types.PatchType, data []byte) error

// Owner is the controller claiming objects.
type Owner struct {
	Object metav1.Object
	GVK    schema.GroupVersionKind
	// Selector picks the objects the owner wants.
	Selector labels.Selector
	// Reread, when not nil, reads the owner afresh from the API server. Claim
	// calls it once before the first adoption and adopts nothing if the
	// owner is gone, was replaced by one with another uid, or is being
	// deleted (the cache may lag); upstream does the same.
	Reread func(ctx context.Context) (metav1.Object, error)
}

// canAdopt re-reads the owner (see Owner.Reread).
func (o Owner) canAdopt(ctx context.Context) error {
	if o.Reread == nil {
		return nil
	}
	live, err := o.Reread(ctx)
	if err != nil {
		return fmt.Errorf("re-reading %s %s: %w", o.GVK.Kind, o.Object.GetName(), err)
	}
	if live.GetUID() != o.Object.GetUID() {
		return fmt.Errorf("original %s %s/%s is gone: got uid %s, wanted %s",
			o.GVK.Kind, o.Object.GetNamespace(), o.Object.GetName(), live.GetUID(), o.Object.GetUID())
	}
	if live.GetDeletionTimestamp() != nil {
		return fmt.Errorf("%s %s/%s is being deleted", o.GVK.Kind, o.Object.GetNamespace(), o.Object.GetName())
	}
	return nil
}

// NewControllerRef returns the controller reference owner puts on what it
// owns (controller and blockOwnerDeletion true).
func NewControllerRef(owner metav1.Object, gvk schema.GroupVersionKind) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{
		APIVersion:         gvk.GroupVersion().String(),
		Kind:               gvk.Kind,
		Name:               owner.GetName(),
		UID:                owner.GetUID(),
		Controller:         &t,
		BlockOwnerDeletion: &t,
	}
}

// Claim returns the objects of objs that owner owns after adopting the
// matching orphans and releasing the owned objects that no longer match.
// Objects controlled by someone else are never touched. Objects that
// vanish while being patched are skipped. It is idempotent: claiming the
// same objects again patches nothing.
//
// objs are not modified; the returned slice holds the same values.
func Claim[T metav1.Object](ctx context.Context, owner Owner, objs []T, patch Patcher) ([]T, error) {
	var (
		claimed   []T
		errs      []error
		adoptable *bool
	)
	ownerDeleting := owner.Object.GetDeletionTimestamp() != nil
	for _, obj := range objs {
		ref := metav1.GetControllerOfNoCopy(obj)
		matches := owner.Selector.Matches(labels.Set(obj.GetLabels()))
		switch {
		case ref != nil && ref.UID != owner.Object.GetUID():
			// Someone else's.
		case ref != nil && (matches || ownerDeleting):
			claimed = append(claimed, obj)
		case ref != nil:
			if err := release(ctx, owner, obj, patch); err != nil {
				errs = append(errs, err)
			}
		case !matches || ownerDeleting || obj.GetDeletionTimestamp() != nil:
			// An orphan we do not want, or cannot take now.
		default:
			if adoptable == nil {
				ok := true
				if err := owner.canAdopt(ctx); err != nil {
					ok = false
					errs = append(errs, fmt.Errorf("adopting into %s: %w", owner.Object.GetName(), err))
				}
				adoptable = &ok
			}
			if !*adoptable {
				continue
			}
			if err := adopt(ctx, owner, obj, patch); err != nil {
				if !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
					errs = append(errs, err)
				}
				continue
			}
			claimed = append(claimed, obj)
		}
	}
	return claimed, errors.Join(errs...)
}

// ownerRefPatch is the metadata of a strategic merge patch of
// ownerReferences; uid makes the patch fail if the object was replaced.
type ownerRefPatch struct {
	Metadata struct {
		OwnerReferences []map[string]any `json:"ownerReferences"`
		UID             types.UID        `json:"uid"`
	} `json:"metadata"`
}

func adopt(ctx context.Context, owner Owner, obj metav1.Object, patch Patcher) error {
	ref := NewControllerRef(owner.Object, owner.GVK)
	var p ownerRefPatch
	p.Metadata.UID = obj.GetUID()
	p.Metadata.OwnerReferences = []map[string]any{{
		"apiVersion":         ref.APIVersion,
		"kind":               ref.Kind,
		"name":               ref.Name,
		"uid":                ref.UID,
		"controller":         true,
		"blockOwnerDeletion": true,
	}}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding adoption patch: %w", err)
	}
	if err := patch(ctx, obj.GetNamespace(), obj.GetName(), types.StrategicMergePatchType, data); err != nil {
		return fmt.Errorf("adopting %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

func release(ctx context.Context, owner Owner, obj metav1.Object, patch Patcher) error {
	var p ownerRefPatch
	p.Metadata.UID = obj.GetUID()
	p.Metadata.OwnerReferences = []map[string]any{{"$patch": "delete", "uid": owner.Object.GetUID()}}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding release patch: %w", err)
	}
	err = patch(ctx, obj.GetNamespace(), obj.GetName(), types.StrategicMergePatchType, data)
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
		return fmt.Errorf("releasing %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}
