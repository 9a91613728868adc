package apiextensions

import (
	"context"
	"maps"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-dev/skiff/internal/storage"
)

// versioned is the storage of a custom resource as one of its served
// versions sees it, when that is not the version objects are stored in.
// Conversion is None, as upstream's default: only apiVersion changes,
// to the stored version on the way in and to the served one on the way
// out. Objects read from the shared watch cache are never modified: the
// ones handed out are copies of their top-level map.
type versioned struct {
	storage.Interface
	stored, served string // apiVersions
}

// as returns obj (a custom resource) with apiVersion set to apiVersion,
// copying its top level when it has to change.
func as(obj runtime.Object, apiVersion string) runtime.Object {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || u.GetAPIVersion() == apiVersion {
		return obj
	}
	c := &unstructured.Unstructured{Object: maps.Clone(u.Object)}
	c.SetAPIVersion(apiVersion)
	return c
}

func (v *versioned) out(obj runtime.Object, err error) (runtime.Object, error) {
	if err != nil || obj == nil {
		return obj, err
	}
	return as(obj, v.served), nil
}

func (v *versioned) Create(ctx context.Context, key string, obj runtime.Object, guards ...storage.Guard) (runtime.Object, error) {
	return v.out(v.Interface.Create(ctx, key, as(obj, v.stored), guards...))
}

func (v *versioned) Get(ctx context.Context, key string) (runtime.Object, error) {
	return v.out(v.Interface.Get(ctx, key))
}

func (v *versioned) GuaranteedUpdate(ctx context.Context, key string, allowCreate bool, fn storage.UpdateFunc) (runtime.Object, error) {
	return v.out(v.Interface.GuaranteedUpdate(ctx, key, allowCreate, func(current runtime.Object) (runtime.Object, error) {
		if current != nil {
			current = as(current, v.served)
		}
		next, err := fn(current)
		if err != nil || next == nil {
			return next, err
		}
		return as(next, v.stored), nil
	}))
}

func (v *versioned) Delete(ctx context.Context, key string, pre *storage.Preconditions, validate func(current runtime.Object) error) (runtime.Object, error) {
	var check func(runtime.Object) error
	if validate != nil {
		check = func(current runtime.Object) error { return validate(as(current, v.served)) }
	}
	return v.out(v.Interface.Delete(ctx, key, pre, check))
}

func (v *versioned) List(ctx context.Context, prefix string, opts storage.ListOptions) (runtime.Object, error) {
	if enc := opts.Encoder; enc != nil {
		// Memoized encodings are per encoder: this version's items get
		// their own.
		opts.Encoder = &storage.ItemEncoder{
			ID:     enc.ID + "@" + v.served,
			Encode: func(obj runtime.Object) ([]byte, error) { return enc.Encode(as(obj, v.served)) },
		}
	}
	list, err := v.Interface.List(ctx, prefix, opts)
	if err != nil {
		return nil, err
	}
	if ul, ok := list.(*unstructured.UnstructuredList); ok {
		// The list is built per call; its items share their maps with the
		// cache, so each changed item gets its own top level.
		for i := range ul.Items {
			if ul.Items[i].GetAPIVersion() != v.served {
				ul.Items[i].Object = maps.Clone(ul.Items[i].Object)
				ul.Items[i].SetAPIVersion(v.served)
			}
		}
	}
	return list, nil
}

func (v *versioned) Watch(ctx context.Context, prefix string, opts storage.WatchOptions) (watch.Interface, error) {
	w, err := v.Interface.Watch(ctx, prefix, opts)
	if err != nil {
		return nil, err
	}
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		if e.Object != nil {
			e.Object = as(e.Object, v.served)
		}
		return e, true
	}), nil
}
