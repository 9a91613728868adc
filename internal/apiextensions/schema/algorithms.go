package schema

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	metavalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
)

// The algorithms below work on decoded JSON values and a node tree. They
// follow upstream's structural pruning, defaulting, list-type and
// embedded-ObjectMeta algorithms (k8s.io/apiextensions-apiserver
// pkg/apiserver/schema/{pruning,defaulting,listtype,objectmeta}).

// metaFields are the fields of a resource that its schema never has to
// specify.
var metaFields = map[string]bool{"apiVersion": true, "kind": true, "metadata": true}

// pruner removes unknown fields and records their paths in upstream's form:
// "spec.foo", "spec.list[0].bar", "foo" at the root.
type pruner struct {
	path   []byte
	pruned []string
}

func (p *pruner) push(k string) int {
	l := len(p.path)
	if l > 0 {
		p.path = append(p.path, '.')
	}
	p.path = append(p.path, k...)
	return l
}

func (p *pruner) pushIndex(i int) int {
	l := len(p.path)
	p.path = append(p.path, '[')
	p.path = strconv.AppendInt(p.path, int64(i), 10)
	p.path = append(p.path, ']')
	return l
}

func (p *pruner) record(k string) {
	l := p.push(k)
	p.pruned = append(p.pruned, string(p.path))
	p.path = p.path[:l]
}

func (p *pruner) prune(x any, s *node) {
	if s != nil && s.preserve {
		p.skipPrune(x, s)
		return
	}
	switch x := x.(type) {
	case map[string]any:
		if s == nil {
			for k := range x {
				p.record(k)
				delete(x, k)
			}
			return
		}
		for k, v := range x {
			if s.embedded && metaFields[k] {
				continue
			}
			if prop, ok := s.props[k]; ok {
				l := p.push(k)
				p.prune(v, prop)
				p.path = p.path[:l]
			} else if s.hasAddl {
				l := p.push(k)
				p.prune(v, s.addl)
				p.path = p.path[:l]
			} else {
				p.record(k)
				delete(x, k)
			}
		}
	case []any:
		var items *node
		if s != nil {
			items = s.items
		}
		for i, v := range x {
			l := p.pushIndex(i)
			p.prune(v, items)
			p.path = p.path[:l]
		}
	}
}

// skipPrune keeps unknown fields under x-kubernetes-preserve-unknown-fields
// but still prunes inside the properties and additionalProperties it
// specifies.
func (p *pruner) skipPrune(x any, s *node) {
	if s == nil {
		return
	}
	switch x := x.(type) {
	case map[string]any:
		for k, v := range x {
			if s.embedded && metaFields[k] {
				continue
			}
			if prop, ok := s.props[k]; ok {
				l := p.push(k)
				p.prune(v, prop)
				p.path = p.path[:l]
			} else if s.hasAddl {
				l := p.push(k)
				p.prune(v, s.addl)
				p.path = p.path[:l]
			}
		}
	case []any:
		for i, v := range x {
			l := p.pushIndex(i)
			p.skipPrune(v, s.items)
			p.path = p.path[:l]
		}
	}
}

// pruneValue prunes x (which is a resource root if isResourceRoot) without
// recording paths.
func pruneValue(x any, s *node, isResourceRoot bool) {
	if isResourceRoot {
		s = s.asEmbedded()
	}
	p := pruner{}
	p.prune(x, s)
}

// pruneNonNullableNullsWithoutDefaults removes null values whose schema is
// neither nullable nor has a default; those that have a default are
// defaulted later.
func pruneNonNullableNullsWithoutDefaults(x any, s *node) {
	switch x := x.(type) {
	case map[string]any:
		for k, v := range x {
			c := s.child(k)
			if v == nil && c != nil && !c.nullable && c.def == nil {
				delete(x, k)
			} else {
				pruneNonNullableNullsWithoutDefaults(v, c)
			}
		}
	case []any:
		var items *node
		if s != nil {
			items = s.items
		}
		for _, v := range x {
			pruneNonNullableNullsWithoutDefaults(v, items)
		}
	}
}

func isNonNullableNull(x any, s *node) bool {
	return x == nil && s != nil && !s.nullable
}

// applyDefaults sets the defaults of s in x, deep-copying the default
// values.
func applyDefaults(x any, s *node) {
	if s == nil {
		return
	}
	switch x := x.(type) {
	case map[string]any:
		for k, prop := range s.props {
			if prop.def == nil {
				continue
			}
			if v, found := x[k]; !found || isNonNullableNull(v, prop) {
				x[k] = runtime.DeepCopyJSONValue(prop.def)
			}
		}
		for k, v := range x {
			if prop, found := s.props[k]; found {
				applyDefaults(v, prop)
			} else if s.hasAddl {
				if isNonNullableNull(v, s.addl) {
					// Upstream copies the additionalProperties default even if
					// it has none (then the null stays null).
					v = runtime.DeepCopyJSONValue(s.addl.def)
					x[k] = v
				}
				applyDefaults(v, s.addl)
			}
		}
	case []any:
		for i := range x {
			if isNonNullableNull(x[i], s.items) {
				x[i] = runtime.DeepCopyJSONValue(s.items.def)
			}
			applyDefaults(x[i], s.items)
		}
	}
}

// coerceEmbeddedMeta normalizes the metadata of the embedded resources
// below the root (not the root's own, which is the caller's) by a round trip
// through metav1.ObjectMeta, as upstream's decoding does, and returns the
// paths of the unknown metadata fields it dropped ("spec.template.metadata.foo").
// Metadata that does not decode is left alone for Validate to report.
func coerceEmbeddedMeta(pth *field.Path, x any, s *node, unknown []string) []string {
	if s == nil || !s.embeddedBelow {
		return unknown
	}
	switch x := x.(type) {
	case map[string]any:
		if s.embedded {
			if md, ok := x["metadata"]; ok {
				unknown = coerceMeta(pth, x, md, unknown)
			}
		}
		for k, v := range x {
			if prop, ok := s.props[k]; ok {
				unknown = coerceEmbeddedMeta(pth.Child(k), v, prop, unknown)
			} else if s.hasAddl {
				unknown = coerceEmbeddedMeta(pth.Key(k), v, s.addl, unknown)
			}
		}
	case []any:
		for i, v := range x {
			unknown = coerceEmbeddedMeta(pth.Index(i), v, s.items, unknown)
		}
	}
	return unknown
}

func coerceMeta(pth *field.Path, obj map[string]any, md any, unknown []string) []string {
	raw, err := json.Marshal(md)
	if err != nil {
		return unknown
	}
	meta := &metav1.ObjectMeta{}
	strictErrs, err := kjson.UnmarshalStrict(raw, meta)
	if err != nil {
		return unknown
	}
	prefix := pth.Child("metadata").String()
	for _, e := range strictErrs {
		if fe, ok := e.(kjson.FieldError); ok {
			unknown = append(unknown, prefix+"."+fe.FieldPath())
		}
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(meta)
	if err != nil {
		return unknown
	}
	if meta.CreationTimestamp.IsZero() {
		delete(u, "creationTimestamp")
	}
	obj["metadata"] = u
	return unknown
}

// validateEmbedded checks the apiVersion, kind and metadata of the embedded
// resources below the root.
func validateEmbedded(pth *field.Path, x any, s *node, errs field.ErrorList) field.ErrorList {
	if s == nil || !s.embeddedBelow {
		return errs
	}
	switch x := x.(type) {
	case map[string]any:
		if s.embedded {
			errs = validateEmbeddedResource(pth, x, errs)
		}
		for k, v := range x {
			if prop, ok := s.props[k]; ok {
				errs = validateEmbedded(pth.Child(k), v, prop, errs)
			} else if s.hasAddl {
				errs = validateEmbedded(pth.Key(k), v, s.addl, errs)
			}
		}
	case []any:
		for i, v := range x {
			errs = validateEmbedded(pth.Index(i), v, s.items, errs)
		}
	}
	return errs
}

func validatePathSegment(name string, prefix bool) []string {
	if prefix {
		return content.IsPathSegmentPrefix(name)
	}
	return content.IsPathSegmentName(name)
}

func validateEmbeddedResource(pth *field.Path, x map[string]any, errs field.ErrorList) field.ErrorList {
	if _, found := x["apiVersion"]; !found {
		errs = append(errs, field.Required(pth.Child("apiVersion"), ""))
	}
	if _, found := x["kind"]; !found {
		errs = append(errs, field.Required(pth.Child("kind"), ""))
	}
	for _, k := range [...]string{"apiVersion", "kind", "metadata"} {
		v, ok := x[k]
		if !ok {
			continue
		}
		switch k {
		case "apiVersion":
			if apiVersion, ok := v.(string); !ok {
				errs = append(errs, field.Invalid(pth.Child("apiVersion"), v, "must be a string"))
			} else if len(apiVersion) == 0 {
				errs = append(errs, field.Invalid(pth.Child("apiVersion"), apiVersion, "must not be empty"))
			} else if _, err := schema.ParseGroupVersion(apiVersion); err != nil {
				errs = append(errs, field.Invalid(pth.Child("apiVersion"), apiVersion, err.Error()))
			}
		case "kind":
			if kind, ok := v.(string); !ok {
				errs = append(errs, field.Invalid(pth.Child("kind"), v, "must be a string"))
			} else if len(kind) == 0 {
				errs = append(errs, field.Invalid(pth.Child("kind"), kind, "must not be empty"))
			} else if msgs := utilvalidation.IsDNS1035Label(strings.ToLower(kind)); len(msgs) > 0 {
				errs = append(errs, field.Invalid(pth.Child("kind"), kind, "may have mixed case, but should otherwise match: "+strings.Join(msgs, ",")))
			}
		case "metadata":
			meta, err := decodeObjectMeta(v)
			if err != nil {
				errs = append(errs, field.Invalid(pth.Child("metadata"), v, err.Error()))
				continue
			}
			if len(meta.Name) == 0 {
				meta.Name = "fakename" // as upstream: a name is not required here
			}
			errs = append(errs, metavalidation.ValidateObjectMeta(meta, len(meta.Namespace) > 0, validatePathSegment, pth.Child("metadata"))...)
		}
	}
	return errs
}

func decodeObjectMeta(v any) (*metav1.ObjectMeta, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	meta := &metav1.ObjectMeta{}
	if err := utiljson.Unmarshal(raw, meta); err != nil {
		return nil, err
	}
	return meta, nil
}

// validateListSetsAndMaps checks the uniqueness of the items of
// x-kubernetes-list-type set lists and of the keys of map lists in obj.
func validateListSetsAndMaps(pth *field.Path, s *node, obj map[string]any, errs field.ErrorList) field.ErrorList {
	if s == nil || obj == nil || !s.listBelow {
		return errs
	}
	if s.addl != nil {
		for k, v := range obj {
			errs = validateListSetAndMapsValue(pth.Key(k), s.addl, v, errs)
		}
	}
	if s.props != nil {
		for k, v := range obj {
			if sub, ok := s.props[k]; ok {
				errs = validateListSetAndMapsValue(pth.Child(k), sub, v, errs)
			}
		}
	}
	return errs
}

func validateListSetAndMapsValue(pth *field.Path, s *node, x any, errs field.ErrorList) field.ErrorList {
	if !s.listBelow {
		return errs
	}
	switch x := x.(type) {
	case []any:
		return validateListSetsAndMapsArray(pth, s, x, errs)
	case map[string]any:
		return validateListSetsAndMaps(pth, s, x, errs)
	}
	return errs
}

func validateListSetsAndMapsArray(pth *field.Path, s *node, x []any, errs field.ErrorList) field.ErrorList {
	switch s.listType {
	case "set":
		nonUnique, err := nonUniqueItems(pth, x)
		if err != nil {
			errs = append(errs, err)
		} else {
			for _, i := range nonUnique {
				errs = append(errs, field.Duplicate(pth.Index(i), x[i]))
			}
		}
	case "map":
		errs = validateListMap(pth, s, x, errs)
	}
	if s.items != nil {
		for i := range x {
			errs = validateListSetAndMapsValue(pth.Index(i), s.items, x[i], errs)
		}
	}
	return errs
}

// unspecifiedKey stands for a missing map-list key, distinct from null.
type unspecifiedKey struct{}

// nonUniqueItems returns the index of the second occurrence of each value
// that occurs more than once.
func nonUniqueItems(pth *field.Path, x []any) ([]int, *field.Error) {
	if len(x) <= 1 {
		return nil, nil
	}
	seenScalars := make(map[any]int, len(x))
	var seenCompounds map[string]int
	var nonUnique []int
	for i, v := range x {
		switch v.(type) {
		case map[string]any, []any:
			bs, err := json.Marshal(v)
			if err != nil {
				return nil, field.Invalid(pth.Index(i), v, "internal error")
			}
			if seenCompounds == nil {
				seenCompounds = make(map[string]int, len(x))
			}
			seenCompounds[string(bs)]++
			if seenCompounds[string(bs)] == 2 {
				nonUnique = append(nonUnique, i)
			}
		default:
			seenScalars[v]++
			if seenScalars[v] == 2 {
				nonUnique = append(nonUnique, i)
			}
		}
	}
	return nonUnique, nil
}

func validateListMap(pth *field.Path, s *node, x []any, errs field.ErrorList) field.ErrorList {
	for i, v := range x {
		if _, ok := v.(map[string]any); v != nil && !ok {
			return append(errs, field.Invalid(pth.Index(i), v, "must be an object for an array of list-type map"))
		}
	}
	if len(x) <= 1 {
		return errs
	}
	if len(s.mapKeys) == 1 {
		keyField := s.mapKeys[0]
		keys := make([]any, 0, len(x))
		for _, v := range x {
			m, _ := v.(map[string]any)
			key, ok := m[keyField]
			if !ok {
				keys = append(keys, unspecifiedKey{})
				continue
			}
			keys = append(keys, key)
		}
		nonUnique, err := nonUniqueItems(pth, keys)
		if err != nil {
			return append(errs, err)
		}
		for _, i := range nonUnique {
			if _, ok := keys[i].(unspecifiedKey); ok {
				errs = append(errs, field.Duplicate(pth.Index(i), map[string]any{}))
			} else {
				errs = append(errs, field.Duplicate(pth.Index(i), map[string]any{keyField: keys[i]}))
			}
		}
		return errs
	}
	keys := make([]any, 0, len(x))
	for _, v := range x {
		key := map[string]any{}
		m, _ := v.(map[string]any)
		for _, keyField := range s.mapKeys {
			if k, ok := m[keyField]; ok {
				key[keyField] = k
			}
		}
		keys = append(keys, key)
	}
	nonUnique, err := nonUniqueItems(pth, keys)
	if err != nil {
		return append(errs, err)
	}
	for _, i := range nonUnique {
		errs = append(errs, field.Duplicate(pth.Index(i), keys[i]))
	}
	return errs
}

// sortedKeys returns the keys of m in order, for deterministic error lists.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// PruneObjectMeta makes obj's root metadata what ObjectMeta can hold, as
// upstream's decoding of a custom resource does: fields ObjectMeta does not
// have (at any depth) are dropped and returned as paths
// ("metadata.unknownMeta"), and the rest is normalized. The metadata of
// embedded resources is Prune's business.
func PruneObjectMeta(obj map[string]any) []string {
	md, ok := obj["metadata"]
	if !ok {
		return nil
	}
	return coerceMeta(nil, obj, md, nil)
}
