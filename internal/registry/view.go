package registry

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-dev/skiff/internal/storage"
)

// NewView returns the storage of res, a resource served in one version and
// stored in another (res.StoredAs), over stored, the storage of the stored
// version: objects are converted to the stored version on the way in and
// to res's version on the way out. Both versions share one etcd prefix
// and one watch cache, so a write through either is seen by both.
func NewView(stored storage.Interface, res *Resource) storage.Interface {
	return &view{Interface: stored, res: res, version: res.GVR.GroupVersion().String()}
}

type view struct {
	storage.Interface
	res     *Resource
	version string // res's apiVersion
}

// in converts an object of the served version for storage; a failure is
// the client's (a 400).
func (v *view) in(obj runtime.Object) (runtime.Object, error) {
	out, err := v.res.StoredAs.ToStored(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("converting to %s: %v", v.res.StoredAs.GVR.GroupVersion(), err))
	}
	return out, nil
}

// out converts a stored object to the served version; a failure is the
// server's (a 500).
func (v *view) out(obj runtime.Object) (runtime.Object, error) {
	out, err := v.res.StoredAs.FromStored(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("converting to %s: %w", v.version, err))
	}
	return out, nil
}

func (v *view) outResult(obj runtime.Object, err error) (runtime.Object, error) {
	if err != nil || obj == nil {
		return obj, err
	}
	return v.out(obj)
}

func (v *view) Create(ctx context.Context, key string, obj runtime.Object, guards ...storage.Guard) (runtime.Object, error) {
	in, err := v.in(obj)
	if err != nil {
		return nil, err
	}
	return v.outResult(v.Interface.Create(ctx, key, in, guards...))
}

func (v *view) Get(ctx context.Context, key string) (runtime.Object, error) {
	return v.outResult(v.Interface.Get(ctx, key))
}

func (v *view) GuaranteedUpdate(ctx context.Context, key string, allowCreate bool, fn storage.UpdateFunc) (runtime.Object, error) {
	return v.outResult(v.Interface.GuaranteedUpdate(ctx, key, allowCreate, func(current runtime.Object) (runtime.Object, error) {
		if current != nil {
			var err error
			if current, err = v.out(current); err != nil {
				return nil, err
			}
		}
		next, err := fn(current)
		if err != nil || next == nil {
			return next, err
		}
		return v.in(next)
	}))
}

func (v *view) Delete(ctx context.Context, key string, pre *storage.Preconditions, validate func(current runtime.Object) error) (runtime.Object, error) {
	var check func(runtime.Object) error
	if validate != nil {
		check = func(current runtime.Object) error {
			c, err := v.out(current)
			if err != nil {
				return err
			}
			return validate(c)
		}
	}
	return v.outResult(v.Interface.Delete(ctx, key, pre, check))
}

// storedPredicate renames the predicate's field labels to the stored
// version's (StoredAs.FieldLabel): the stored version's field sets answer
// the selection.
func (v *view) storedPredicate(p storage.Predicate) (storage.Predicate, error) {
	rename := v.res.StoredAs.FieldLabel
	if rename == nil || p.Field == nil || p.Field.Empty() {
		return p, nil
	}
	sel, err := p.Field.Transform(func(label, value string) (string, string, error) {
		return rename(label), value, nil
	})
	if err != nil {
		return p, apierrors.NewBadRequest(err.Error())
	}
	p.Field = sel
	return p, nil
}

// List converts every item. Encoded lists keep their own memoized
// encodings of the converted items, apart from the stored version's.
func (v *view) List(ctx context.Context, prefix string, opts storage.ListOptions) (runtime.Object, error) {
	enc := opts.Encoder
	if enc != nil {
		opts.Encoder = &storage.ItemEncoder{
			ID: enc.ID + "@" + v.version,
			Encode: func(obj runtime.Object) ([]byte, error) {
				o, err := v.out(obj)
				if err != nil {
					return nil, err
				}
				return enc.Encode(o)
			},
		}
	}
	var err error
	if opts.Predicate, err = v.storedPredicate(opts.Predicate); err != nil {
		return nil, err
	}
	list, err := v.Interface.List(ctx, prefix, opts)
	if err != nil {
		return nil, err
	}
	if el, encoded := list.(*storage.EncodedList); encoded {
		// The items are in the requested encoding; only the memo differs.
		el.Encoding = enc.ID
		return el, nil
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading %s list: %w", v.res.GVR.Resource, err))
	}
	for i, it := range items {
		if items[i], err = v.out(it); err != nil {
			return nil, err
		}
	}
	out := v.res.Strategy.NewList()
	if err := meta.SetList(out, items); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("building %s list: %w", v.res.GVR.Resource, err))
	}
	from, err := meta.ListAccessor(list)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	to, err := meta.ListAccessor(out)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	to.SetResourceVersion(from.GetResourceVersion())
	to.SetContinue(from.GetContinue())
	to.SetRemainingItemCount(from.GetRemainingItemCount())
	return out, nil
}

// Watch converts each event's object (bookmarks too: they carry the
// served kind). A failed conversion ends the watch with an Error event.
func (v *view) Watch(ctx context.Context, prefix string, opts storage.WatchOptions) (watch.Interface, error) {
	var err error
	if opts.Predicate, err = v.storedPredicate(opts.Predicate); err != nil {
		return nil, err
	}
	w, err := v.Interface.Watch(ctx, prefix, opts)
	if err != nil {
		return nil, err
	}
	return storage.MapWatch(w, func(e watch.Event) (watch.Event, error) {
		if e.Type == watch.Error || e.Object == nil {
			return e, nil
		}
		obj, err := v.out(e.Object)
		e.Object = obj
		return e, err
	}), nil
}
