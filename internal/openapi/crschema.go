package openapi

import (
	"reflect"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1beta1 "k8s.io/apimachinery/pkg/apis/meta/v1beta1"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-dev/skiff/internal/apiextensions/schema"
)

// The schemas of custom resources, derived from a CRD version's
// openAPIV3Schema as upstream's apiextensions-apiserver derives them
// (pkg/controller/openapi/builder and its v2 conversion).

const (
	extPreserveUnknown  = "x-kubernetes-preserve-unknown-fields"
	extEmbeddedResource = "x-kubernetes-embedded-resource"
	extIntOrString      = "x-kubernetes-int-or-string"
	extSelectableFields = "x-kubernetes-selectable-fields"

	embeddedAPIVersionDoc = "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
	embeddedKindDoc       = "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)

// customModelName is upstream's definition name of a custom kind: the
// group reversed, the version and the kind, e.g. com.example.stable.v1.CronTab.
func customModelName(group, version, kind string) string {
	parts := strings.Split(group, ".")
	slices.Reverse(parts)
	return strings.Join(parts, ".") + "." + version + "." + kind
}

// customModel stands for a custom kind in the operations given to
// kube-openapi's builders, which name a model after a Go value.
type customModel string

var _ util.OpenAPICanonicalTypeNamer = customModel("")

func (m customModel) OpenAPICanonicalTypeName() string { return string(m) }

// refs are the reference prefix and the definitions of one OpenAPI
// version: "#/definitions/" (v2) or "#/components/schemas/" (v3).
type refs struct {
	v2     bool
	prefix string
	defs   map[string]common.OpenAPIDefinition // crDefsV2 or crDefsV3
}

// to is the reference to the definition name.
func (r refs) to(name string) string { return r.prefix + common.EscapeJsonPointer(name) }

// typeMetaProperty returns TypeMeta's apiVersion or kind property.
func (r refs) typeMetaProperty(name string) spec.Schema {
	return r.defs[util.GetCanonicalTypeName(metav1.TypeMeta{})].Schema.Properties[name]
}

// customKindSchemas returns the definitions of version v's kind and list
// kind. The kind's schema is v's openAPIV3Schema with int-or-string
// unfolded, plus apiVersion, kind and metadata (a reference to
// ObjectMeta) at the root and in every embedded resource; for v2 it is
// first cut down to what v2 and kubectl can read (toV2). A version
// without a schema, or whose schema does not convert, is published as a
// bare object, as upstream does for schemas it cannot use.
func customKindSchemas(crd *apiextensionsv1.CustomResourceDefinition, v *apiextensionsv1.CustomResourceDefinitionVersion, r refs) (kind, list *spec.Schema) {
	group, names := crd.Spec.Group, crd.Spec.Names
	listKind := names.ListKind
	if listKind == "" {
		listKind = names.Kind + "List"
	}
	var s *spec.Schema
	if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
		if converted, err := schema.ToSpec(v.Schema.OpenAPIV3Schema); err == nil && converted != nil {
			s = converted
		}
	}
	if s != nil {
		clean(s)
		unfold(s)
	}
	switch {
	case s == nil:
		kind = &spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"object"}}}
	case r.v2 && (isTrue(s, extPreserveUnknown) || crd.Spec.PreserveUnknownFields):
		// kubectl would refuse every field but apiVersion, kind and
		// metadata if any were listed.
		kind = &spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"object"}}}
	default:
		if r.v2 {
			toV2(s)
			pruneDefaults(s)
		}
		kind = s
		kind.SetProperty("metadata", *spec.RefSchema(r.to(objectMetaName())).
			WithDescription(metav1beta1.PartialObjectMetadata{}.SwaggerDoc()["metadata"]))
		kind.SetProperty("apiVersion", r.typeMetaProperty("apiVersion"))
		kind.SetProperty("kind", r.typeMetaProperty("kind"))
		addEmbeddedProperties(kind, r)
	}
	kind.AddExtension(gvkExtension, []any{map[string]any{"group": group, "version": v.Name, "kind": names.Kind}})
	selectable := selectableFields(v)
	if selectable != nil {
		kind.AddExtension(extSelectableFields, selectable)
	}

	list = new(spec.Schema).Typed("object", "").
		WithDescription(listKind+" is a list of "+names.Kind).
		WithRequired("items").
		SetProperty("items", *spec.ArrayProperty(spec.RefSchema(r.to(customModelName(group, v.Name, names.Kind)))).
			WithDescription("List of " + names.Plural + ". More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md")).
		SetProperty("metadata", *spec.RefSchema(r.to(util.GetCanonicalTypeName(metav1.ListMeta{}))).
			WithDescription(metav1beta1.PartialObjectMetadataList{}.SwaggerDoc()["metadata"]))
	list.SetProperty("apiVersion", r.typeMetaProperty("apiVersion"))
	list.SetProperty("kind", r.typeMetaProperty("kind"))
	list.AddExtension(gvkExtension, []any{map[string]any{"group": group, "version": v.Name, "kind": listKind}})
	if selectable != nil {
		list.AddExtension(extSelectableFields, selectable)
	}
	return kind, list
}

func objectMetaName() string { return util.GetCanonicalTypeName(metav1.ObjectMeta{}) }

// selectableFields is the x-kubernetes-selectable-fields extension of v's
// kinds: the field paths (without the leading dot) field selectors take.
func selectableFields(v *apiextensionsv1.CustomResourceDefinitionVersion) []any {
	if len(v.SelectableFields) == 0 {
		return nil
	}
	out := make([]any, 0, len(v.SelectableFields))
	for _, f := range v.SelectableFields {
		out = append(out, map[string]any{"fieldPath": strings.TrimPrefix(f.JSONPath, ".")})
	}
	return out
}

func isTrue(s *spec.Schema, ext string) bool {
	b, ok := s.Extensions.GetBool(ext)
	return ok && b
}

// eachChild calls f on the schemas of s's items, properties and
// additionalProperties: the structural part of a CRD schema.
func eachChild(s *spec.Schema, f func(*spec.Schema)) {
	if s.Items != nil && s.Items.Schema != nil {
		f(s.Items.Schema)
	}
	for k, p := range s.Properties {
		f(&p)
		s.Properties[k] = p
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		f(s.AdditionalProperties.Schema)
	}
}

// clean drops x-kubernetes-preserve-unknown-fields: false, which a
// structural schema does not carry (it is the same as leaving it out).
func clean(s *spec.Schema) {
	if v, ok := s.Extensions[extPreserveUnknown]; ok && v != true {
		delete(s.Extensions, extPreserveUnknown)
	}
	eachChild(s, clean)
}

// unfold spells out x-kubernetes-int-or-string as the anyOf of integer
// and string it stands for, unless the schema already says so.
func unfold(s *spec.Schema) {
	if isTrue(s, extIntOrString) && !isIntOrString(s.AnyOf) && (len(s.AllOf) == 0 || !isIntOrString(s.AllOf[0].AnyOf)) {
		if s.AnyOf == nil {
			s.AnyOf = intOrString()
		} else {
			s.AllOf = append([]spec.Schema{{SchemaProps: spec.SchemaProps{AnyOf: intOrString()}}}, s.AllOf...)
		}
	}
	eachChild(s, unfold)
}

func intOrString() []spec.Schema {
	return []spec.Schema{
		{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"integer"}}},
		{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"string"}}},
	}
}

func isIntOrString(anyOf []spec.Schema) bool {
	return len(anyOf) == 2 && reflect.DeepEqual(anyOf, intOrString())
}

// toV2 cuts s down to what OpenAPI v2, and kubectl reading it, can say,
// as upstream's ToStructuralOpenAPIV2 does: no allOf, oneOf, anyOf or not;
// a nullable value loses its type (and its items and properties); a value
// keeping unknown fields loses its items and properties, and the object
// or array type those leave empty; a nullable property is no longer
// required.
func toV2(s *spec.Schema) {
	s.AllOf, s.OneOf, s.AnyOf, s.Not = nil, nil, nil, nil
	if s.Nullable {
		s.Type, s.Nullable = nil, false
		s.Items, s.Properties = nil, nil
	}
	preserve := isTrue(s, extPreserveUnknown)
	if preserve {
		s.Items, s.Properties = nil, nil
	}
	if s.Items == nil && s.Type.Contains("array") {
		s.Type = nil
	}
	if preserve && s.Type.Contains("object") {
		s.Type = nil
	}
	for name, p := range s.Properties {
		if p.Nullable {
			s.Required = slices.DeleteFunc(s.Required, func(r string) bool { return r == name })
		}
	}
	if len(s.Required) == 0 {
		s.Required = nil
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil && s.AdditionalProperties.Schema.Nullable {
		s.Required = nil
	}
	eachChild(s, toV2)
}

// pruneDefaults drops every default, as upstream drops them from the v2
// document.
func pruneDefaults(s *spec.Schema) {
	s.Default = nil
	eachChild(s, pruneDefaults)
}

// addEmbeddedProperties gives every embedded resource in s its
// apiVersion, kind and metadata, and requires the first two; in v2 not
// where unknown fields are kept (kubectl would reject those fields).
func addEmbeddedProperties(s *spec.Schema, r refs) {
	eachChild(s, func(c *spec.Schema) { addEmbeddedProperties(c, r) })
	if r.v2 && isTrue(s, extPreserveUnknown) {
		return
	}
	if !isTrue(s, extEmbeddedResource) {
		return
	}
	s.SetProperty("apiVersion", *withDescription(r.typeMetaProperty("apiVersion"), embeddedAPIVersionDoc))
	s.SetProperty("kind", *withDescription(r.typeMetaProperty("kind"), embeddedKindDoc))
	s.SetProperty("metadata", *spec.RefSchema(r.to(objectMetaName())).
		WithDescription(metav1beta1.PartialObjectMetadata{}.SwaggerDoc()["metadata"]))
	for _, req := range []string{"kind", "apiVersion"} {
		if !slices.Contains(s.Required, req) {
			s.Required = append(s.Required, req)
		}
	}
}

func withDescription(s spec.Schema, d string) *spec.Schema { return s.WithDescription(d) }
