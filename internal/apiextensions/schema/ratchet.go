package schema

import (
	"fmt"
	"reflect"
	"strings"

	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
)

// Validation ratcheting (upstream's CRDValidationRatcheting, GA since
// Kubernetes 1.33): on an update, a schema error in a value that is
// unchanged from the old object is not reported, so that objects written
// under an older, looser schema can still be updated elsewhere. "Unchanged"
// follows upstream's correlation: object fields by name, items of
// x-kubernetes-list-type map lists by their keys; other list items are not
// correlated (such a list is unchanged only if it is equal as a whole).

// correlated is a new value with its old counterpart and schema. A tree of
// them is built lazily during one validation and is not shared.
type correlated struct {
	value, old any
	schema     *spec.Schema

	equal    *bool
	mapList  *oldMapList
	children map[any]*correlated
}

func listType(s *spec.Schema) string {
	t, _ := s.Extensions.GetString("x-kubernetes-list-type")
	return t
}

func listMapKeys(s *spec.Schema) []string {
	keys, _ := s.Extensions.GetStringSlice("x-kubernetes-list-map-keys")
	return keys
}

// key returns the correlation of the field named field, or nil if either
// side lacks it or the schema does not specify it.
func (c *correlated) key(field string) *correlated {
	if c == nil || c.schema == nil {
		return nil
	}
	if ch, ok := c.children[field]; ok {
		return ch
	}
	oldMap, okOld := c.old.(map[string]any)
	newMap, okNew := c.value.(map[string]any)
	if !okOld || !okNew {
		return nil
	}
	oldV, okOld := oldMap[field]
	newV, okNew := newMap[field]
	if !okOld || !okNew {
		return nil
	}
	var s *spec.Schema
	if p, ok := c.schema.Properties[field]; ok {
		s = &p
	} else if c.schema.AdditionalProperties != nil && c.schema.AdditionalProperties.Schema != nil {
		s = c.schema.AdditionalProperties.Schema
	} else {
		return nil
	}
	ch := &correlated{value: newV, old: oldV, schema: s}
	c.child(field, ch)
	return ch
}

func (c *correlated) child(k any, ch *correlated) {
	if c.children == nil {
		c.children = map[any]*correlated{}
	}
	c.children[k] = ch
}

// index returns the correlation of the new list's item i: the old item with
// the same keys in a map list, else nil.
func (c *correlated) index(i int) *correlated {
	if c == nil || c.schema == nil {
		return nil
	}
	if ch, ok := c.children[i]; ok {
		return ch
	}
	newList, ok := c.value.([]any)
	if !ok || len(newList) <= i {
		return nil
	}
	oldList, ok := c.old.([]any)
	if !ok || listType(c.schema) != "map" {
		return nil
	}
	if c.mapList == nil {
		c.mapList = newOldMapList(c.schema, oldList)
	}
	oldItem := c.mapList.get(newList[i])
	if oldItem == nil || c.schema.Items == nil || c.schema.Items.Schema == nil {
		return nil
	}
	ch := &correlated{value: newList[i], old: oldItem, schema: c.schema.Items.Schema}
	c.child(i, ch)
	return ch
}

// unchanged reports whether the new value equals the old one, comparing
// through the correlation (so map lists may be reordered).
func (c *correlated) unchanged() bool {
	if c == nil {
		return false
	}
	if c.equal != nil {
		return *c.equal
	}
	res := c.compare()
	c.equal = &res
	return res
}

func (c *correlated) compare() bool {
	if c.value == nil || c.old == nil {
		return c.value == nil && c.old == nil
	}
	oldList, oldIsList := c.old.([]any)
	newList, newIsList := c.value.([]any)
	oldMap, oldIsMap := c.old.(map[string]any)
	newMap, newIsMap := c.value.(map[string]any)
	if oldIsList != newIsList || oldIsMap != newIsMap {
		return false
	}
	switch {
	case oldIsList:
		if len(oldList) != len(newList) {
			return false
		}
		for i := range newList {
			ch := c.index(i)
			if ch == nil {
				if c.mapList == nil {
					return reflect.DeepEqual(oldList, newList)
				}
				return false
			}
			if !ch.unchanged() {
				return false
			}
		}
		return true
	case oldIsMap:
		if len(oldMap) != len(newMap) {
			return false
		}
		for k := range newMap {
			ch := c.key(k)
			if ch == nil || !ch.unchanged() {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(c.old, c.value)
	}
}

// oldMapList finds the old item of a map list with a new item's keys.
type oldMapList struct {
	keys     []string
	keyed    map[any]map[string]any
	unkeyed  []any
	disabled bool
}

func newOldMapList(s *spec.Schema, items []any) *oldMapList {
	keys := listMapKeys(s)
	if len(keys) == 0 || len(items) == 0 {
		return &oldMapList{disabled: true}
	}
	return &oldMapList{keys: keys, keyed: map[any]map[string]any{}, unkeyed: items}
}

// compositeKey is an item's key: the key's value for one key, else the
// values joined; ok is false if a key is missing or not a scalar.
func (l *oldMapList) compositeKey(item map[string]any) (any, bool) {
	if len(l.keys) == 1 {
		v, ok := item[l.keys[0]]
		if !ok {
			return nil, false
		}
		switch v.(type) {
		case bool, float64, int64, string:
			return v, true
		}
		return nil, false
	}
	var b strings.Builder
	for _, k := range l.keys {
		v, ok := item[k]
		if !ok {
			return nil, false
		}
		switch v := v.(type) {
		case bool:
			fmt.Fprintf(&b, "\x00%t", v)
		case float64:
			fmt.Fprintf(&b, "\x00%f", v)
		case int64:
			fmt.Fprintf(&b, "\x00%d", v)
		case string:
			fmt.Fprintf(&b, "\x00%q", v)
		default:
			return nil, false
		}
	}
	return b.String(), true
}

func (l *oldMapList) get(item any) any {
	if l.disabled {
		return nil
	}
	m, ok := item.(map[string]any)
	if !ok {
		return nil
	}
	key, ok := l.compositeKey(m)
	if !ok {
		return nil
	}
	if match, ok := l.keyed[key]; ok {
		return match
	}
	for len(l.unkeyed) > 0 {
		it := l.unkeyed[0]
		l.unkeyed = l.unkeyed[1:]
		mit, ok := it.(map[string]any)
		if !ok {
			continue
		}
		k, ok := l.compositeKey(mit)
		if !ok {
			continue
		}
		if _, exists := l.keyed[k]; !exists {
			l.keyed[k] = mit
		}
		if k == key {
			return mit
		}
	}
	return nil
}

// ratchetingValidator validates a value as kube-openapi does, but turns the
// errors of a value unchanged from the old one into warnings.
type ratchetingValidator struct {
	schema *spec.Schema
	path   string
	corr   *correlated
}

var _ validate.ValueValidator = (*ratchetingValidator)(nil)

func (r *ratchetingValidator) SetPath(string)                 {}
func (r *ratchetingValidator) Applies(any, reflect.Kind) bool { return true }

func (r *ratchetingValidator) Validate(value any) *validate.Result {
	hooks := func(o *validate.SchemaValidatorOptions) {
		o.NewValidatorForField = r.fieldValidator
		o.NewValidatorForIndex = r.indexValidator
	}
	res := validate.NewSchemaValidator(r.schema, nil, r.path, strfmt.Default, hooks).Validate(r.corr.value)
	if res.IsValid() {
		return res
	}
	if r.corr.unchanged() {
		out := &validate.Result{}
		out.MergeAsWarnings(res)
		return out
	}
	return res
}

func (r *ratchetingValidator) fieldValidator(field string, schema *spec.Schema, rootSchema any, root string, formats strfmt.Registry, opts ...validate.Option) validate.ValueValidator {
	ch := r.corr.key(field)
	if ch == nil || (r.path == "" && (field == "kind" || field == "apiVersion")) {
		return validate.NewSchemaValidator(schema, rootSchema, root, formats, opts...)
	}
	return &ratchetingValidator{schema: schema, path: root, corr: ch}
}

func (r *ratchetingValidator) indexValidator(index int, schema *spec.Schema, rootSchema any, root string, formats strfmt.Registry, opts ...validate.Option) validate.ValueValidator {
	ch := r.corr.index(index)
	if ch == nil {
		return validate.NewSchemaValidator(schema, rootSchema, root, formats, opts...)
	}
	return &ratchetingValidator{schema: schema, path: root, corr: ch}
}
