package apiextensions

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
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
	// attrs gives the field sets of objects in the served version.
	attrs storage.AttrFunc
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
	var sel *convertedSelection
	opts.Predicate, sel = v.selectConverted(ctx, opts.Predicate)
	if sel != nil {
		// The selection converted every candidate; the items are
		// converted from what it kept.
		opts.Encoder = nil
		list, err := v.Interface.List(ctx, prefix, opts)
		if err == nil {
			err = sel.failure()
		}
		if err != nil {
			return nil, err
		}
		return v.convertList(ctx, list, sel)
	}
	requested := opts.Encoder
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
				return v.convertList(ctx, list, nil)
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
	if el, ok := list.(*storage.EncodedList); ok && opts.Encoder != nil && requested != nil {
		// Items are in the requested encoding; only the memo differs.
		el.Encoding = requested.ID
	}
	return v.convertList(ctx, list, nil)
}

// convertList converts an unstructured list's items in place (the list
// is built per call; its items' maps, shared with the cache, are not
// touched), reusing the conversions sel made (sel may be nil). Other
// lists (encoded ones) are returned as they are.
func (v *versioned) convertList(ctx context.Context, list runtime.Object, sel *convertedSelection) (runtime.Object, error) {
	ul, ok := list.(*unstructured.UnstructuredList)
	if !ok {
		return list, nil
	}
	var idx []int
	var objs []*unstructured.Unstructured
	for i := range ul.Items {
		if ul.Items[i].GetAPIVersion() == v.served {
			continue
		}
		if done := sel.converted(&ul.Items[i]); done != nil {
			ul.Items[i] = *done
			continue
		}
		idx = append(idx, i)
		objs = append(objs, &ul.Items[i])
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
	var sel *convertedSelection
	opts.Predicate, sel = v.selectConverted(ctx, opts.Predicate)
	w, err := v.Interface.Watch(ctx, prefix, opts)
	if err != nil {
		return nil, err
	}
	return storage.MapWatch(w, func(e watch.Event) (watch.Event, error) {
		switch e.Type {
		case watch.Added, watch.Modified, watch.Deleted:
			if done := sel.converted(e.Object); done != nil {
				e.Object = done
				return e, nil
			}
			obj, err := v.to(ctx, e.Object, v.served)
			e.Object = obj
			return e, err
		case watch.Bookmark:
			if e.Object != nil {
				e.Object = as(e.Object, v.served)
			}
		}
		return e, nil
	}), nil
}

// convertedSelection is a field selection made on objects converted to the
// served version: a converter other than None may rename or reshape the
// fields a version's selectable fields name, so the stored object's field
// set cannot answer it. It remembers its conversions (by namespace, name
// and resourceVersion) so that the objects it selected are not converted
// twice, and its first conversion error.
type convertedSelection struct {
	mu   sync.Mutex
	err  error
	done map[string]*unstructured.Unstructured
}

// maxRemembered bounds a selection's remembered conversions (a watch
// evaluates objects it never sends: the old side of each change).
const maxRemembered = 1024

// selectConverted returns p with its field selector moved into an object
// check on the converted object, and the selection, when the selector
// names more than metadata.name and metadata.namespace (which conversion
// keeps) and the converter is not None. Otherwise p is returned as it is,
// with a nil selection. A failed conversion lets the object through and
// is kept: a list fails with it, a watch ends with it when it converts the
// object again.
func (v *versioned) selectConverted(ctx context.Context, p storage.Predicate) (storage.Predicate, *convertedSelection) {
	if _, none := v.conv.(noneConverter); none || p.Field == nil || v.attrs == nil || onlyMetadata(p.Field) {
		return p, nil
	}
	field := p.Field
	sel := &convertedSelection{done: map[string]*unstructured.Unstructured{}}
	p.Field = nil
	p.Object = func(obj runtime.Object) bool {
		out, err := v.to(ctx, obj, v.served)
		if err != nil {
			sel.fail(err)
			return true
		}
		_, fs, err := v.attrs(out)
		if err != nil || !field.Matches(fs) {
			return false
		}
		if out != obj {
			sel.remember(obj, out)
		}
		return true
	}
	return p, sel
}

// onlyMetadata reports whether every requirement of sel is on
// metadata.name or metadata.namespace.
func onlyMetadata(sel fields.Selector) bool {
	for _, r := range sel.Requirements() {
		if r.Field != "metadata.name" && r.Field != "metadata.namespace" {
			return false
		}
	}
	return true
}

func rememberKey(obj runtime.Object) (string, bool) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return "", false
	}
	return u.GetNamespace() + "/" + u.GetName() + "@" + u.GetResourceVersion(), true
}

func (s *convertedSelection) remember(in runtime.Object, out runtime.Object) {
	k, ok := rememberKey(in)
	o, isU := out.(*unstructured.Unstructured)
	if !ok || !isU {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.done) >= maxRemembered {
		clear(s.done)
	}
	s.done[k] = o
}

// converted returns (and forgets) the remembered conversion of obj, or
// nil. A nil selection remembers nothing.
func (s *convertedSelection) converted(obj runtime.Object) *unstructured.Unstructured {
	if s == nil {
		return nil
	}
	k, ok := rememberKey(obj)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.done[k]
	delete(s.done, k)
	return out
}

func (s *convertedSelection) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func (s *convertedSelection) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
