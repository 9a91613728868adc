package apiextensions

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-dev/skiff/internal/storage"
)

// versioned is the storage of a custom resource as one of its served
// versions sees it. Objects are converted by conv: to the stored version
// on the way in and to the served one on the way out (objects in etcd may
// be in an older stored version, so a Webhook CRD's storage version is
// served through versioned too). Objects read from the shared watch cache
// are never modified: converters return new objects.
type versioned struct {
	storage.Interface
	stored, served string // apiVersions
	conv           converter
}

// as returns obj (a custom resource) with apiVersion set to apiVersion,
// copying its top level when it has to change (conversion None).
func as(obj runtime.Object, apiVersion string) runtime.Object {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj
	}
	return asUnstructured(u, apiVersion)
}

// to converts one object to apiVersion.
func (v *versioned) to(ctx context.Context, obj runtime.Object, apiVersion string) (runtime.Object, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || u.GetAPIVersion() == apiVersion {
		return obj, nil
	}
	out, err := v.conv.convert(ctx, []*unstructured.Unstructured{u}, apiVersion)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (v *versioned) out(ctx context.Context, obj runtime.Object, err error) (runtime.Object, error) {
	if err != nil || obj == nil {
		return obj, err
	}
	return v.to(ctx, obj, v.served)
}

func (v *versioned) Create(ctx context.Context, key string, obj runtime.Object, guards ...storage.Guard) (runtime.Object, error) {
	in, err := v.to(ctx, obj, v.stored)
	if err != nil {
		return nil, err
	}
	created, err := v.Interface.Create(ctx, key, in, guards...)
	return v.out(ctx, created, err)
}

func (v *versioned) Get(ctx context.Context, key string) (runtime.Object, error) {
	obj, err := v.Interface.Get(ctx, key)
	return v.out(ctx, obj, err)
}

func (v *versioned) GuaranteedUpdate(ctx context.Context, key string, allowCreate bool, fn storage.UpdateFunc) (runtime.Object, error) {
	obj, err := v.Interface.GuaranteedUpdate(ctx, key, allowCreate, func(current runtime.Object) (runtime.Object, error) {
		if current != nil {
			var err error
			if current, err = v.to(ctx, current, v.served); err != nil {
				return nil, err
			}
		}
		next, err := fn(current)
		if err != nil || next == nil {
			return next, err
		}
		return v.to(ctx, next, v.stored)
	})
	return v.out(ctx, obj, err)
}

func (v *versioned) Delete(ctx context.Context, key string, pre *storage.Preconditions, validate func(current runtime.Object) error) (runtime.Object, error) {
	var check func(runtime.Object) error
	if validate != nil {
		check = func(current runtime.Object) error {
			c, err := v.to(ctx, current, v.served)
			if err != nil {
				return err
			}
			return validate(c)
		}
	}
	obj, err := v.Interface.Delete(ctx, key, pre, check)
	return v.out(ctx, obj, err)
}

// errNeedsConversion stops an encoded list that has an item to convert.
var errNeedsConversion = errors.New("apiextensions: item needs conversion")

// List converts the items not in the served version with one call of the
// converter. With conversion None a requested encoder is kept, its
// memoized encodings being of the converted objects. Other converters'
// answers are not memoized (a webhook may change): the storage version
// first tries the encoder on the objects as stored, which serves it when
// none needs conversion; otherwise the list is read again unencoded and
// converted.
func (v *versioned) List(ctx context.Context, prefix string, opts storage.ListOptions) (runtime.Object, error) {
	if enc := opts.Encoder; enc != nil {
		_, none := v.conv.(noneConverter)
		switch {
		case none:
			// Memoized encodings are per encoder: this version's items
			// get their own.
			opts.Encoder = &storage.ItemEncoder{
				ID:     enc.ID + "@" + v.served,
				Encode: func(obj runtime.Object) ([]byte, error) { return enc.Encode(as(obj, v.served)) },
			}
		case v.served == v.stored:
			// Items in the served version encode as the backend's own
			// would: they share its memo.
			var needs atomic.Bool
			opts.Encoder = &storage.ItemEncoder{ID: enc.ID, Encode: func(obj runtime.Object) ([]byte, error) {
				if u, ok := obj.(*unstructured.Unstructured); ok && u.GetAPIVersion() != v.served {
					needs.Store(true)
					return nil, errNeedsConversion
				}
				return enc.Encode(obj)
			}}
			list, err := v.Interface.List(ctx, prefix, opts)
			if !needs.Load() {
				if err != nil {
					return nil, err
				}
				return v.convertList(ctx, list)
			}
			opts.Encoder = nil
		default:
			opts.Encoder = nil
		}
	}
	list, err := v.Interface.List(ctx, prefix, opts)
	if err != nil {
		return nil, err
	}
	return v.convertList(ctx, list)
}

// convertList converts an unstructured list's items in place (the list
// is built per call; its items' maps, shared with the cache, are not
// touched). Other lists (encoded ones) are returned as they are.
func (v *versioned) convertList(ctx context.Context, list runtime.Object) (runtime.Object, error) {
	ul, ok := list.(*unstructured.UnstructuredList)
	if !ok {
		return list, nil
	}
	var idx []int
	var objs []*unstructured.Unstructured
	for i := range ul.Items {
		if ul.Items[i].GetAPIVersion() != v.served {
			idx = append(idx, i)
			objs = append(objs, &ul.Items[i])
		}
	}
	if len(objs) == 0 {
		return list, nil
	}
	converted, err := v.conv.convert(ctx, objs, v.served)
	if err != nil {
		return nil, err
	}
	for j, i := range idx {
		ul.Items[i] = *converted[j]
	}
	return list, nil
}

// Watch converts each event's object. A failed conversion ends the watch
// with an Error event (a 500 Status carrying the converter's message):
// the events after it would otherwise be missing unnoticed.
func (v *versioned) Watch(ctx context.Context, prefix string, opts storage.WatchOptions) (watch.Interface, error) {
	w, err := v.Interface.Watch(ctx, prefix, opts)
	if err != nil {
		return nil, err
	}
	cw := &convertingWatch{in: w, out: make(chan watch.Event), stop: make(chan struct{})}
	go cw.run(ctx, v)
	return cw, nil
}

// convertingWatch is a watch whose objects are converted by a versioned.
type convertingWatch struct {
	in   watch.Interface
	out  chan watch.Event // closed by run
	stop chan struct{}    // closed by Stop
	once sync.Once
}

func (w *convertingWatch) Stop() {
	w.once.Do(func() { close(w.stop) })
}

func (w *convertingWatch) ResultChan() <-chan watch.Event { return w.out }

func (w *convertingWatch) run(ctx context.Context, v *versioned) {
	defer close(w.out)
	defer w.in.Stop()
	for {
		var e watch.Event
		select {
		case <-w.stop:
			return
		case ev, ok := <-w.in.ResultChan():
			if !ok {
				return
			}
			e = ev
		}
		last := false
		switch e.Type {
		case watch.Added, watch.Modified, watch.Deleted:
			obj, err := v.to(ctx, e.Object, v.served)
			if err != nil {
				e, last = watch.Event{Type: watch.Error, Object: errorStatus(err)}, true
			} else {
				e.Object = obj
			}
		case watch.Bookmark:
			if e.Object != nil {
				e.Object = as(e.Object, v.served)
			}
		}
		select {
		case <-w.stop:
			return
		case w.out <- e:
		}
		if last {
			return
		}
	}
}

// errorStatus is the Status of err for a watch's Error event.
func errorStatus(err error) *metav1.Status {
	var apiStatus apierrors.APIStatus
	var st metav1.Status
	if errors.As(err, &apiStatus) {
		st = apiStatus.Status()
	} else {
		st = apierrors.NewInternalError(err).Status()
	}
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	return &st
}
