package controller

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// StatusClient is the part of a typed client (for example
// AppsV1().StatefulSets(ns)) that WriteStatus uses.
type StatusClient[T metav1.Object] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	UpdateStatus(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// WriteStatus writes obj (a copy from the informer cache with the new
// status already set) through the status subresource. On a conflict — the
// cache is behind — it sets the same status on the latest object with
// setStatus and tries again, unless the object was replaced or its spec
// changed meanwhile (its own event brings another sync). A deleted object
// is not an error.
func WriteStatus[T metav1.Object](ctx context.Context, api StatusClient[T], obj T, setStatus func(T)) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		_, err := api.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return err
		}
		fresh, gerr := api.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		if fresh.GetUID() != obj.GetUID() || fresh.GetGeneration() != obj.GetGeneration() {
			return nil
		}
		setStatus(fresh)
		obj = fresh
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
