package registry

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// metadataPath is the field path every metadata error is reported under.
var metadataPath = field.NewPath("metadata")

// structOf returns the struct an object pointer points to, or an invalid
// Value when obj is not a pointer to a struct.
func structOf(obj runtime.Object) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return reflect.Value{}
	}
	v = v.Elem()
	if v.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v
}

// hasField reports whether obj's struct has a top-level field name.
// Custom resources (unstructured) count as having a spec and a status.
func hasField(obj runtime.Object, name string) bool {
	if _, ok := obj.(*unstructured.Unstructured); ok {
		return name == "Spec" || name == "Status"
	}
	v := structOf(obj)
	if !v.IsValid() {
		return false
	}
	_, ok := v.Type().FieldByName(name)
	return ok
}

// copyFields sets the top-level fields of dst from src: only the named
// ones when only is true, else all but the named ones. dst and src must
// have the same type. Values are assigned, not deep-copied: src must be
// owned by the caller. For custom resources (unstructured) the names map
// to their JSON keys (TypeMeta is apiVersion and kind).
func copyFields(dst, src runtime.Object, only bool, names ...string) {
	if du, ok := dst.(*unstructured.Unstructured); ok {
		if su, ok := src.(*unstructured.Unstructured); ok {
			copyKeys(du, su, only, names)
		}
		return
	}
	dv, sv := structOf(dst), structOf(src)
	if !dv.IsValid() || !sv.IsValid() || dv.Type() != sv.Type() {
		return
	}
	t := dv.Type()
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Name
		listed := false
		for _, n := range names {
			if n == name {
				listed = true
				break
			}
		}
		if listed != only || !dv.Field(i).CanSet() {
			continue
		}
		dv.Field(i).Set(sv.Field(i))
	}
}

// jsonKeys maps the top-level field names copyFields is given to the keys
// of an unstructured object.
func jsonKeys(names []string) map[string]bool {
	keys := map[string]bool{}
	for _, n := range names {
		switch n {
		case "TypeMeta":
			keys["apiVersion"], keys["kind"] = true, true
		case "ObjectMeta":
			keys["metadata"] = true
		default:
			keys[strings.ToLower(n[:1])+n[1:]] = true
		}
	}
	return keys
}

// copyKeys is copyFields for unstructured objects.
func copyKeys(dst, src *unstructured.Unstructured, only bool, names []string) {
	keys := jsonKeys(names)
	if dst.Object == nil {
		dst.Object = map[string]any{}
	}
	if only {
		for k := range keys {
			if v, ok := src.Object[k]; ok {
				dst.Object[k] = v
			} else {
				delete(dst.Object, k)
			}
		}
		return
	}
	for k := range dst.Object {
		if !keys[k] {
			delete(dst.Object, k)
		}
	}
	for k, v := range src.Object {
		if !keys[k] {
			dst.Object[k] = v
		}
	}
}

// specChanged reports whether anything outside TypeMeta, ObjectMeta and
// Status differs semantically between a and b (same type). For custom
// resources status counts as spec unless withStatus says the resource
// has a status subresource, as upstream bumps their generation.
func specChanged(a, b runtime.Object, withStatus bool) bool {
	if au, ok := a.(*unstructured.Unstructured); ok {
		bu, ok := b.(*unstructured.Unstructured)
		if !ok {
			return true
		}
		skip := map[string]bool{"apiVersion": true, "kind": true, "metadata": true, "status": withStatus}
		for k, v := range au.Object {
			if !skip[k] && !equality.Semantic.DeepEqual(v, bu.Object[k]) {
				return true
			}
		}
		for k := range bu.Object {
			if _, ok := au.Object[k]; !ok && !skip[k] {
				return true
			}
		}
		return false
	}
	av, bv := structOf(a), structOf(b)
	if !av.IsValid() || !bv.IsValid() || av.Type() != bv.Type() {
		return true
	}
	t := av.Type()
	for i := 0; i < t.NumField(); i++ {
		switch t.Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
			continue
		}
		if !t.Field(i).IsExported() {
			continue
		}
		if !equality.Semantic.DeepEqual(av.Field(i).Interface(), bv.Field(i).Interface()) {
			return true
		}
	}
	return false
}

// accessor is meta.Accessor with the failure turned into a 500.
func accessor(obj runtime.Object) (metav1.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("reading object metadata: %w", err))
	}
	return m, nil
}

// matchNamespace reconciles the object's namespace with the request's, as
// upstream does: a namespaced object gets the request's namespace when it
// has none and a mismatch is 400; a cluster-scoped object has none.
func (s *Store) matchNamespace(requestNamespace string, m metav1.Object) error {
	if !s.Resource.Namespaced {
		m.SetNamespace("")
		return nil
	}
	switch objNS := m.GetNamespace(); {
	case objNS == requestNamespace || requestNamespace == "":
		return nil
	case objNS == "":
		m.SetNamespace(requestNamespace)
		return nil
	default:
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
}

// validateMeta runs upstream's object metadata validation for a create
// (name through the strategy's ValidateName, namespace per scope, labels,
// annotations, owner references, finalizers, managed fields).
func (s *Store) validateMeta(m metav1.Object) field.ErrorList {
	return validation.ValidateObjectMetaAccessor(m, s.Resource.Namespaced, s.Resource.Strategy.ValidateName, metadataPath)
}

// invalid returns the 422 for errs, or nil when there are none. Errors that
// the generic metadata validation and a strategy both report are listed
// once.
func (s *Store) invalid(name string, errs field.ErrorList) error {
	if len(errs) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(errs))
	var out field.ErrorList
	for _, e := range errs {
		k := e.Error()
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return apierrors.NewInvalid(s.gvk.GroupKind(), name, out)
}

// truncNow is the store clock at second precision, as timestamps are
// serialized.
func (s *Store) truncNow() metav1.Time {
	return metav1.NewTime(s.now().Truncate(time.Second))
}

// dryRunResult aborts a storage update from inside its update function
// with the object that would have been written.
type dryRunResult struct{ obj runtime.Object }

func (d *dryRunResult) Error() string { return "registry: dry run, not written" }
