package schema

import (
	"fmt"
	"reflect"
	"regexp"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The structural-schema rules (upstream's pkg/apiserver/schema
// ValidateStructural). A schema is read in two ways: its structural part
// (type, properties, items, additionalProperties and the generic fields and
// extensions, reached without passing a junctor) and its value validations
// under allOf, anyOf, oneOf and not, which may only restrict values whose
// structure the structural part specifies.

type level int

const (
	rootLevel level = iota
	itemLevel
	fieldLevel
)

// validateStructural checks that s is a structural schema; the errors are
// sorted by message as upstream sorts them.
func validateStructural(fldPath *field.Path, s *apiextensionsv1.JSONSchemaProps) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, structuralInvariants(s, rootLevel, fldPath)...)
	allErrs = append(allErrs, junctorCompleteness(s, s, fldPath, fldPath)...)
	sortErrors(allErrs)
	return allErrs
}

// itemsSchema returns the single items schema of s, or nil.
func itemsSchema(s *apiextensionsv1.JSONSchemaProps) *apiextensionsv1.JSONSchemaProps {
	if s == nil || s.Items == nil {
		return nil
	}
	return s.Items.Schema
}

func preserves(s *apiextensionsv1.JSONSchemaProps) bool {
	return s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields
}

func structuralInvariants(s *apiextensionsv1.JSONSchemaProps, lvl level, fldPath *field.Path) field.ErrorList {
	if s == nil {
		return nil
	}
	var allErrs field.ErrorList
	items := itemsSchema(s)
	if s.Type == "array" && items == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("items"), "must be specified"))
	}
	allErrs = append(allErrs, structuralInvariants(items, itemLevel, fldPath.Child("items"))...)
	for _, k := range sortedKeys(s.Properties) {
		p := s.Properties[k]
		allErrs = append(allErrs, structuralInvariants(&p, fieldLevel, fldPath.Child("properties").Key(k))...)
	}
	if s.AdditionalProperties != nil {
		if lvl == rootLevel {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("additionalProperties"), "must not be used at the root"))
		}
		allErrs = append(allErrs, structuralInvariants(s.AdditionalProperties.Schema, fieldLevel, fldPath.Child("additionalProperties"))...)
	}

	preserve := preserves(s)
	if s.XIntOrString && preserve {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("x-kubernetes-preserve-unknown-fields"), true, "must be false if x-kubernetes-int-or-string is true"))
	}
	if s.XIntOrString && s.XEmbeddedResource {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("x-kubernetes-embedded-resource"), true, "must be false if x-kubernetes-int-or-string is true"))
	}

	allErrs = append(allErrs, junctorInvariants(s, isIntOrStringAnyOf(s.AnyOf), isIntOrStringAllOf(s.AllOf), lvl, fldPath)...)

	checkMetadata := lvl == rootLevel || s.XEmbeddedResource
	if s.XEmbeddedResource && s.Type != "object" {
		if len(s.Type) == 0 {
			allErrs = append(allErrs, field.Required(fldPath.Child("type"), "must be object if x-kubernetes-embedded-resource is true"))
		} else {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("type"), s.Type, "must be object if x-kubernetes-embedded-resource is true"))
		}
	} else if len(s.Type) == 0 && !s.XIntOrString && !preserve {
		switch lvl {
		case rootLevel:
			allErrs = append(allErrs, field.Required(fldPath.Child("type"), "must not be empty at the root"))
		case itemLevel:
			allErrs = append(allErrs, field.Required(fldPath.Child("type"), "must not be empty for specified array items"))
		case fieldLevel:
			allErrs = append(allErrs, field.Required(fldPath.Child("type"), "must not be empty for specified object fields"))
		}
	}
	if s.XEmbeddedResource && s.AdditionalProperties != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("additionalProperties"), "must not be used if x-kubernetes-embedded-resource is set"))
	}
	if lvl == rootLevel && len(s.Type) > 0 && s.Type != "object" {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("type"), s.Type, "must be object at the root"))
	}
	if checkMetadata {
		for _, k := range []string{"kind", "apiVersion"} {
			if p, ok := s.Properties[k]; ok && p.Type != "string" {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("properties").Key(k).Child("type"), p.Type, "must be string"))
			}
		}
	}
	if md, ok := s.Properties["metadata"]; ok {
		allErrs = append(allErrs, metadataInvariants(md, checkMetadata, lvl, fldPath.Child("properties").Key("metadata"))...)
	}
	if s.XEmbeddedResource && !preserve && len(s.Properties) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("properties"), "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"))
	}
	return allErrs
}

// metadataInvariants: metadata is an object, and at the root it may only
// restrict name and generateName.
func metadataInvariants(md apiextensionsv1.JSONSchemaProps, checkMetadata bool, lvl level, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if checkMetadata && md.Type != "object" {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("type"), md.Type, "must be object"))
	}
	if lvl == rootLevel {
		_, name := md.Properties["name"]
		_, generateName := md.Properties["generateName"]
		if (name && generateName && len(md.Properties) == 2) || ((name || generateName) && len(md.Properties) == 1) {
			md.Properties = nil
		}
		md.Type = ""
		md.Default = nil // checked by the defaults rules
		if len(md.Enum) == 0 {
			md.Enum = nil
		}
		if len(md.XValidations) == 0 {
			md.XValidations = nil
		}
		if !reflect.DeepEqual(md, apiextensionsv1.JSONSchemaProps{}) {
			allErrs = append(allErrs, field.Forbidden(fldPath, "must not specify anything other than name and generateName, but metadata is implicitly specified"))
		}
	}
	return allErrs
}

// isIntOrStringAnyOf reports whether anyOf is exactly
// [{type: integer}, {type: string}], which an int-or-string may have.
func isIntOrStringAnyOf(anyOf []apiextensionsv1.JSONSchemaProps) bool {
	return len(anyOf) == 2 &&
		reflect.DeepEqual(anyOf[0], apiextensionsv1.JSONSchemaProps{Type: "integer"}) &&
		reflect.DeepEqual(anyOf[1], apiextensionsv1.JSONSchemaProps{Type: "string"})
}

// isIntOrStringAllOf reports whether allOf starts with that anyOf pattern.
func isIntOrStringAllOf(allOf []apiextensionsv1.JSONSchemaProps) bool {
	return len(allOf) >= 1 && isIntOrStringAnyOf(allOf[0].AnyOf)
}

// junctorInvariants checks the value validations of s: its junctors and
// pattern.
func junctorInvariants(s *apiextensionsv1.JSONSchemaProps, skipAnyOf, skipFirstAllOfAnyOf bool, lvl level, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if !skipAnyOf {
		for i := range s.AnyOf {
			allErrs = append(allErrs, nestedInvariants(&s.AnyOf[i], false, lvl, fldPath.Child("anyOf").Index(i))...)
		}
	}
	for i := range s.AllOf {
		allErrs = append(allErrs, nestedInvariants(&s.AllOf[i], skipFirstAllOfAnyOf && i == 0, lvl, fldPath.Child("allOf").Index(i))...)
	}
	for i := range s.OneOf {
		allErrs = append(allErrs, nestedInvariants(&s.OneOf[i], false, lvl, fldPath.Child("oneOf").Index(i))...)
	}
	allErrs = append(allErrs, nestedInvariants(s.Not, false, lvl, fldPath.Child("not"))...)
	if len(s.Pattern) > 0 {
		if _, err := regexp.Compile(s.Pattern); err != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("pattern"), s.Pattern, fmt.Sprintf("must be a valid regular expression, but isn't: %v", err)))
		}
	}
	return allErrs
}

// nestedInvariants checks a schema under a junctor: only value validations,
// items and properties.
func nestedInvariants(v *apiextensionsv1.JSONSchemaProps, skipAnyOf bool, lvl level, fldPath *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	var allErrs field.ErrorList
	allErrs = append(allErrs, junctorInvariants(v, skipAnyOf, false, lvl, fldPath)...)
	allErrs = append(allErrs, nestedInvariants(itemsSchema(v), false, lvl, fldPath.Child("items"))...)
	for _, k := range sortedKeys(v.Properties) {
		p := v.Properties[k]
		allErrs = append(allErrs, nestedInvariants(&p, false, fieldLevel, fldPath.Child("properties").Key(k))...)
	}
	if len(v.Type) > 0 {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("type"), "must be empty to be structural"))
	}
	if v.AdditionalProperties != nil && (v.AdditionalProperties.Schema != nil || v.AdditionalProperties.Allows) {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("additionalProperties"), "must be undefined to be structural"))
	}
	if def, _ := decodeJSON(v.Default); def != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("default"), "must be undefined to be structural"))
	}
	if len(v.Title) > 0 {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("title"), "must be empty to be structural"))
	}
	if len(v.Description) > 0 {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("description"), "must be empty to be structural"))
	}
	if v.Nullable {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("nullable"), "must be false to be structural"))
	}
	if preserves(v) {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("x-kubernetes-preserve-unknown-fields"), "must be false to be structural"))
	}
	if v.XEmbeddedResource {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("x-kubernetes-embedded-resource"), "must be false to be structural"))
	}
	if v.XIntOrString {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("x-kubernetes-int-or-string"), "must be false to be structural"))
	}
	if len(v.XListMapKeys) > 0 {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("x-kubernetes-list-map-keys"), "must be empty to be structural"))
	}
	if v.XListType != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("x-kubernetes-list-type"), "must be undefined to be structural"))
	}
	if v.XMapType != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("x-kubernetes-map-type"), "must be undefined to be structural"))
	}
	if len(v.XValidations) > 0 {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("x-kubernetes-validations"), "must be empty to be structural"))
	}
	if _, found := v.Properties["metadata"]; found {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("properties").Key("metadata"), "must not be specified in a nested context"))
	}
	return allErrs
}

// junctorCompleteness checks that every property and items the junctors of
// v (value validations applying at sPath) name is specified by the
// structural schema s. As upstream, it starts from the root's junctors.
func junctorCompleteness(v, s *apiextensionsv1.JSONSchemaProps, sPath, vPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, nestedCompleteness(v.Not, s, sPath, vPath.Child("not"))...)
	for i := range v.AllOf {
		allErrs = append(allErrs, nestedCompleteness(&v.AllOf[i], s, sPath, vPath.Child("allOf").Index(i))...)
	}
	for i := range v.AnyOf {
		allErrs = append(allErrs, nestedCompleteness(&v.AnyOf[i], s, sPath, vPath.Child("anyOf").Index(i))...)
	}
	for i := range v.OneOf {
		allErrs = append(allErrs, nestedCompleteness(&v.OneOf[i], s, sPath, vPath.Child("oneOf").Index(i))...)
	}
	return allErrs
}

func nestedCompleteness(v, s *apiextensionsv1.JSONSchemaProps, sPath, vPath *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	if s == nil {
		return field.ErrorList{field.Required(sPath, fmt.Sprintf("because it is defined in %s", vPath.String()))}
	}
	var allErrs field.ErrorList
	allErrs = append(allErrs, junctorCompleteness(v, s, sPath, vPath)...)
	allErrs = append(allErrs, nestedCompleteness(itemsSchema(v), itemsSchema(s), sPath.Child("items"), vPath.Child("items"))...)
	for _, k := range sortedKeys(v.Properties) {
		vp := v.Properties[k]
		sp, ok := s.Properties[k]
		if !ok {
			allErrs = append(allErrs, field.Required(sPath.Child("properties").Key(k), fmt.Sprintf("because it is defined in %s", vPath.Child("properties").Key(k))))
			continue
		}
		allErrs = append(allErrs, nestedCompleteness(&vp, &sp, sPath.Child("properties").Key(k), vPath.Child("properties").Key(k))...)
	}
	return allErrs
}
