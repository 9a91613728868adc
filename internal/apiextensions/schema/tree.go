package schema

import (
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// node is the structural view of a schema: what pruning, defaulting, the
// list-type checks and the embedded-resource checks need, and nothing of the
// value validations (allOf, anyOf, oneOf and not never add structure). It
// mirrors upstream's Structural; a tree of nodes is immutable once built and
// shared by concurrent callers.
type node struct {
	typ      string
	nullable bool
	// def is the decoded default; nil means none (a JSON null default is
	// no default, as upstream).
	def any

	props map[string]*node
	items *node
	// hasAddl is true when additionalProperties is specified at all (a
	// schema, true or false); addl is its schema (nil for the booleans).
	hasAddl bool
	addl    *node

	preserve bool // x-kubernetes-preserve-unknown-fields: true
	embedded bool // x-kubernetes-embedded-resource: true
	intOrStr bool // x-kubernetes-int-or-string: true
	listType string
	mapKeys  []string

	// embeddedBelow and listBelow tell whether n or a node below it is an
	// embedded resource, or a set or map list: the walks that only act on
	// those skip the rest.
	embeddedBelow bool
	listBelow     bool
}

// newNode builds the structural tree of s. It fails only on defaults or
// enums that are not JSON, which a decoded CRD never has.
func newNode(s *apiextensionsv1.JSONSchemaProps) (*node, error) {
	if s == nil {
		return nil, nil
	}
	n := &node{
		typ:      s.Type,
		nullable: s.Nullable,
		preserve: s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields,
		embedded: s.XEmbeddedResource,
		intOrStr: s.XIntOrString,
		mapKeys:  append([]string(nil), s.XListMapKeys...),
	}
	if s.XListType != nil {
		n.listType = *s.XListType
	}
	def, err := decodeJSON(s.Default)
	if err != nil {
		return nil, fmt.Errorf("decoding default: %w", err)
	}
	n.def = def
	if s.Items != nil && s.Items.Schema != nil {
		if n.items, err = newNode(s.Items.Schema); err != nil {
			return nil, err
		}
	}
	if len(s.Properties) > 0 {
		n.props = make(map[string]*node, len(s.Properties))
		for k := range s.Properties {
			p := s.Properties[k]
			if n.props[k], err = newNode(&p); err != nil {
				return nil, err
			}
		}
	}
	if s.AdditionalProperties != nil {
		n.hasAddl = true
		if s.AdditionalProperties.Schema != nil {
			if n.addl, err = newNode(s.AdditionalProperties.Schema); err != nil {
				return nil, err
			}
		}
	}
	n.embeddedBelow = n.embedded
	n.listBelow = n.listType == "set" || n.listType == "map"
	for _, c := range n.children() {
		n.embeddedBelow = n.embeddedBelow || c.embeddedBelow
		n.listBelow = n.listBelow || c.listBelow
	}
	return n, nil
}

// children returns the nodes directly below n.
func (n *node) children() []*node {
	var out []*node
	for _, p := range n.props {
		out = append(out, p)
	}
	if n.addl != nil {
		out = append(out, n.addl)
	}
	if n.items != nil {
		out = append(out, n.items)
	}
	return out
}

// decodeJSON decodes a raw JSON value the way apimachinery decodes
// unstructured objects (integral numbers as int64, others as float64). A nil
// or null value decodes to nil.
func decodeJSON(j *apiextensionsv1.JSON) (any, error) {
	if j == nil || len(j.Raw) == 0 {
		return nil, nil
	}
	var v any
	if err := utiljson.Unmarshal(j.Raw, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// child returns the schema of the value under key k of an object with
// schema n: the property's, else additionalProperties' (nil for the
// booleans), else nil.
func (n *node) child(k string) *node {
	if n == nil {
		return nil
	}
	if p, ok := n.props[k]; ok {
		return p
	}
	if n.hasAddl {
		return n.addl
	}
	return nil
}

// asEmbedded returns n marked as an embedded resource, copying it if needed:
// the object root is treated as one (its apiVersion, kind and metadata are
// implicit).
func (n *node) asEmbedded() *node {
	if n == nil {
		return &node{embedded: true}
	}
	if n.embedded {
		return n
	}
	c := *n
	c.embedded = true
	return &c
}
