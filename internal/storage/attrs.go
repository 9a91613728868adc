package storage

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// DefaultAttrs is the AttrFunc used when Config.Attrs is nil: the object's
// labels, metadata.name and metadata.namespace.
func DefaultAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, err
	}
	return labels.Set(acc.GetLabels()), fields.Set{
		"metadata.name":      acc.GetName(),
		"metadata.namespace": acc.GetNamespace(),
	}, nil
}

// matcher is a compiled Predicate.
type matcher struct {
	label labels.Selector           // nil matches all
	field fields.Selector           // nil matches all
	obj   func(runtime.Object) bool // nil matches all
}

func newMatcher(p Predicate) matcher {
	m := matcher{label: p.Label, field: p.Field, obj: p.Object}
	if m.label != nil && m.label.Empty() {
		m.label = nil
	}
	if m.field != nil && m.field.Empty() {
		m.field = nil
	}
	return m
}

// everything reports whether the matcher selects every object.
func (m matcher) everything() bool { return m.label == nil && m.field == nil && m.obj == nil }

// matches reports whether the cached entry is selected.
func (m matcher) matches(e *entry) bool {
	if m.everything() {
		return true
	}
	if e.attrsErr {
		return false
	}
	if m.label != nil && !m.label.Matches(e.labels) {
		return false
	}
	if m.field != nil && !m.field.Matches(e.fields) {
		return false
	}
	return m.obj == nil || m.obj(e.obj)
}
