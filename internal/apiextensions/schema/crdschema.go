package schema

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateCRDSchema validates one version's openAPIV3Schema as upstream's
// CRD validation does for a create of an apiextensions.k8s.io/v1 CRD: the
// OpenAPI subset Kubernetes supports, the Kubernetes extensions, a
// structural schema, and defaults that validate against their schema and are
// pruned. fldPath is the schema's own path
// (spec.versions[i].schema.openAPIV3Schema); errors carry upstream's types,
// paths and messages. A nil s is valid (the caller requires a schema).
//
// Not checked here, as upstream checks them outside of the schema's own
// validation: that the root is not nullable, and the restriction of the
// root to a few fields when the status subresource is enabled (the CRD
// strategy checks both). CEL rules are not compiled: each rule must only be
// non-empty.
func ValidateCRDSchema(fldPath *field.Path, s *apiextensionsv1.JSONSchemaProps) field.ErrorList {
	if s == nil {
		return nil
	}
	var allErrs field.ErrorList

	// Structural checks; upstream reports the errors of building the
	// structural schema only when nothing else is wrong, as they overlap.
	var initErrs field.ErrorList
	if err := structuralBuildError(s); err != nil {
		initErrs = append(initErrs, field.Invalid(fldPath, "", err.Error()))
	} else if errs := validateStructural(fldPath, s); len(errs) > 0 {
		allErrs = append(allErrs, errs...)
	} else {
		allErrs = append(allErrs, validateDefaults(fldPath, s)...)
	}

	allErrs = append(allErrs, validateOpenAPISchema(s, fldPath, stdCtx{allowDefaults: true}, true)...)
	if len(allErrs) == 0 && len(initErrs) > 0 {
		allErrs = initErrs
	}
	if len(allErrs) == 0 {
		if _, err := toValidationSpec(s); err != nil {
			allErrs = append(allErrs, field.Invalid(fldPath, "", fmt.Sprintf("error building validator: %v", err)))
		}
	}
	return allErrs
}

// openAPIV3Types are the types a schema may have.
var openAPIV3Types = []string{"array", "boolean", "integer", "number", "object", "string"}

// validationReasons are the reasons an x-kubernetes-validations rule may
// give.
var validationReasons = []string{"FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"}

// stdCtx is what validateOpenAPISchema knows about where it is.
type stdCtx struct {
	allowDefaults  bool
	disallowReason string
	insideMeta     bool // inside the schema of apiVersion, kind or metadata of a resource
}

func (c stdCtx) withForbiddenDefaults(reason string) stdCtx {
	c.allowDefaults = false
	c.disallowReason = reason
	return c
}

// validateOpenAPISchema is upstream's ValidateCustomResourceDefinitionOpenAPISchema
// without CEL: the subset of OpenAPI v3 and the Kubernetes extensions.
func validateOpenAPISchema(s *apiextensionsv1.JSONSchemaProps, fldPath *field.Path, c stdCtx, isRoot bool) field.ErrorList {
	if s == nil {
		return nil
	}
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateSupported(s, fldPath, c)...)

	if s.UniqueItems {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("uniqueItems"), "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"))
	}
	if s.AdditionalProperties != nil {
		if len(s.Properties) != 0 && (!s.AdditionalProperties.Allows || s.AdditionalProperties.Schema != nil) {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("additionalProperties"), "additionalProperties and properties are mutual exclusive"))
		}
		sub := c
		if c.insideMeta {
			sub = c.withForbiddenDefaults("inside additionalProperties applying to object metadata")
		}
		allErrs = append(allErrs, validateOpenAPISchema(s.AdditionalProperties.Schema, fldPath.Child("additionalProperties"), sub, false)...)
	}
	for _, k := range sortedKeys(s.Properties) {
		sub := c
		if (isRoot || s.XEmbeddedResource) && metaFields[k] {
			sub.insideMeta = true
			if isRoot {
				sub = sub.withForbiddenDefaults("in top-level " + k)
			}
		}
		p := s.Properties[k]
		allErrs = append(allErrs, validateOpenAPISchema(&p, fldPath.Child("properties").Key(k), sub, false)...)
	}
	allErrs = append(allErrs, validateOpenAPISchema(s.Not, fldPath.Child("not"), c, false)...)
	for i := range s.AllOf {
		allErrs = append(allErrs, validateOpenAPISchema(&s.AllOf[i], fldPath.Child("allOf").Index(i), c, false)...)
	}
	for i := range s.OneOf {
		allErrs = append(allErrs, validateOpenAPISchema(&s.OneOf[i], fldPath.Child("oneOf").Index(i), c, false)...)
	}
	for i := range s.AnyOf {
		allErrs = append(allErrs, validateOpenAPISchema(&s.AnyOf[i], fldPath.Child("anyOf").Index(i), c, false)...)
	}
	for _, k := range sortedKeys(s.Definitions) {
		d := s.Definitions[k]
		allErrs = append(allErrs, validateOpenAPISchema(&d, fldPath.Child("definitions").Key(k), c, false)...)
	}
	if s.Items != nil {
		allErrs = append(allErrs, validateOpenAPISchema(s.Items.Schema, fldPath.Child("items"), c, false)...)
		for i := range s.Items.JSONSchemas {
			allErrs = append(allErrs, validateOpenAPISchema(&s.Items.JSONSchemas[i], fldPath.Child("items").Index(i), c, false)...)
		}
	}
	for _, k := range sortedKeys(s.Dependencies) {
		allErrs = append(allErrs, validateOpenAPISchema(s.Dependencies[k].Schema, fldPath.Child("dependencies").Key(k), c, false)...)
	}

	if s.XPreserveUnknownFields != nil && !*s.XPreserveUnknownFields {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("x-kubernetes-preserve-unknown-fields"), *s.XPreserveUnknownFields, "must be true or undefined"))
	}
	allErrs = append(allErrs, validateMapAndListTypes(s, fldPath)...)
	allErrs = append(allErrs, validateXValidations(s, fldPath)...)
	return allErrs
}

// validateSupported is upstream's specStandardValidatorV3.validate.
func validateSupported(s *apiextensionsv1.JSONSchemaProps, fldPath *field.Path, c stdCtx) field.ErrorList {
	var allErrs field.ErrorList
	if len(s.Type) > 0 && !contains(openAPIV3Types, s.Type) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("type"), s.Type, openAPIV3Types))
	}
	if s.Default != nil && !c.allowDefaults {
		detail := "must not be set"
		if len(c.disallowReason) > 0 {
			detail += " " + c.disallowReason
		}
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("default"), detail))
	}
	if s.ID != "" {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("id"), "id is not supported"))
	}
	if s.AdditionalItems != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("additionalItems"), "additionalItems is not supported"))
	}
	if len(s.PatternProperties) != 0 {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("patternProperties"), "patternProperties is not supported"))
	}
	if len(s.Definitions) != 0 {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("definitions"), "definitions is not supported"))
	}
	if s.Dependencies != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("dependencies"), "dependencies is not supported"))
	}
	if s.Ref != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("$ref"), "$ref is not supported"))
	}
	if s.Type == "null" {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("type"), "type cannot be set to null, use nullable as an alternative"))
	}
	if s.Items != nil && len(s.Items.JSONSchemas) != 0 {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("items"), "items must be a schema object and not an array"))
	}
	if c.insideMeta && s.XEmbeddedResource {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("x-kubernetes-embedded-resource"), "must not be used inside of resource meta"))
	}
	return allErrs
}

func validateMapAndListTypes(s *apiextensionsv1.JSONSchemaProps, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if s.XMapType != nil && s.Type != "object" {
		if len(s.Type) == 0 {
			allErrs = append(allErrs, field.Required(fldPath.Child("type"), "must be object if x-kubernetes-map-type is specified"))
		} else {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("type"), s.Type, "must be object if x-kubernetes-map-type is specified"))
		}
	}
	if s.XMapType != nil && *s.XMapType != "atomic" && *s.XMapType != "granular" {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("x-kubernetes-map-type"), *s.XMapType, []string{"atomic", "granular"}))
	}

	if s.XListType != nil && s.Type != "array" {
		if len(s.Type) == 0 {
			allErrs = append(allErrs, field.Required(fldPath.Child("type"), "must be array if x-kubernetes-list-type is specified"))
		} else {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("type"), s.Type, "must be array if x-kubernetes-list-type is specified"))
		}
	} else if s.XListType != nil && *s.XListType == "set" && s.Items != nil && s.Items.Schema != nil {
		is := s.Items.Schema
		switch is.Type {
		case "array":
			if is.XListType != nil && *is.XListType != "atomic" {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("items").Child("x-kubernetes-list-type"), is.XListType, "must be atomic as item of a list with x-kubernetes-list-type=set"))
			}
		case "object":
			if is.XMapType == nil || *is.XMapType != "atomic" {
				// Upstream reports the items' list type as the value here.
				allErrs = append(allErrs, field.Invalid(fldPath.Child("items").Child("x-kubernetes-map-type"), is.XListType, "must be atomic as item of a list with x-kubernetes-list-type=set"))
			}
		}
	}
	if s.XListType != nil && *s.XListType != "atomic" && *s.XListType != "set" && *s.XListType != "map" {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("x-kubernetes-list-type"), *s.XListType, []string{"atomic", "set", "map"}))
	}

	if len(s.XListMapKeys) > 0 {
		if s.XListType == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("x-kubernetes-list-type"), "must be map if x-kubernetes-list-map-keys is non-empty"))
		} else if *s.XListType != "map" {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("x-kubernetes-list-type"), *s.XListType, "must be map if x-kubernetes-list-map-keys is non-empty"))
		}
	}
	if s.XListType != nil && *s.XListType == "map" {
		if len(s.XListMapKeys) == 0 {
			allErrs = append(allErrs, field.Required(fldPath.Child("x-kubernetes-list-map-keys"), "must not be empty if x-kubernetes-list-type is map"))
		}
		if s.Items == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("items"), "must have a schema if x-kubernetes-list-type is map"))
		}
		if s.Items != nil && s.Items.Schema == nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("items"), s.Items, "must only have a single schema if x-kubernetes-list-type is map"))
		}
		if s.Items != nil && s.Items.Schema != nil && s.Items.Schema.Type != "object" {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("items").Child("type"), s.Items.Schema.Type, "must be object if parent array's x-kubernetes-list-type is map"))
		}
		if s.Items != nil && s.Items.Schema != nil && s.Items.Schema.Type == "object" {
			keys := map[string]bool{}
			for _, k := range s.XListMapKeys {
				if p, ok := s.Items.Schema.Properties[k]; ok {
					if p.Type == "array" || p.Type == "object" {
						// Upstream reports the items' type as the value here.
						allErrs = append(allErrs, field.Invalid(fldPath.Child("items").Child("properties").Key(k).Child("type"), s.Items.Schema.Type, "must be a scalar type if parent array's x-kubernetes-list-type is map"))
					}
				} else {
					allErrs = append(allErrs, field.Invalid(fldPath.Child("x-kubernetes-list-map-keys"), s.XListMapKeys, "entries must all be names of item properties"))
				}
				if keys[k] {
					allErrs = append(allErrs, field.Invalid(fldPath.Child("x-kubernetes-list-map-keys"), s.XListMapKeys, "must not contain duplicate entries"))
				}
				keys[k] = true
			}
		}
	}

	// Items of set and map lists are not nullable; map keys are required
	// or defaulted, and not nullable.
	if s.Items != nil && s.Items.Schema != nil && s.XListType != nil && (*s.XListType == "set" || *s.XListType == "map") {
		is := s.Items.Schema
		if is.Nullable {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("items").Child("nullable"), "cannot be nullable when x-kubernetes-list-type is "+*s.XListType))
		}
		if *s.XListType == "map" {
			for _, k := range s.XListMapKeys {
				p, ok := is.Properties[k]
				if !ok {
					continue
				}
				if !contains(is.Required, k) && p.Default == nil {
					allErrs = append(allErrs, field.Required(fldPath.Child("items").Child("properties").Key(k).Child("default"), "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"))
				}
				if p.Nullable {
					allErrs = append(allErrs, field.Forbidden(fldPath.Child("items").Child("properties").Key(k).Child("nullable"), "this property is in x-kubernetes-list-map-keys, so it cannot be nullable"))
				}
			}
		}
	}
	return allErrs
}

var newlines = regexp.MustCompile(`[\n\r]+`)

// validateXValidations checks the x-kubernetes-validations rules statically;
// CEL expressions are neither compiled nor evaluated.
func validateXValidations(s *apiextensionsv1.JSONSchemaProps, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i, rule := range s.XValidations {
		p := fldPath.Child("x-kubernetes-validations").Index(i)
		trimmedRule := strings.TrimSpace(rule.Rule)
		trimmedMsg := strings.TrimSpace(rule.Message)
		trimmedMsgExpr := strings.TrimSpace(rule.MessageExpression)
		switch {
		case len(trimmedRule) == 0:
			allErrs = append(allErrs, field.Required(p.Child("rule"), "rule is not specified"))
		case len(rule.Message) > 0 && len(trimmedMsg) == 0:
			allErrs = append(allErrs, field.Invalid(p.Child("message"), rule.Message, "must be non-empty if specified"))
		case newlines.MatchString(trimmedMsg):
			allErrs = append(allErrs, field.Invalid(p.Child("message"), rule.Message, "must not contain line breaks"))
		case newlines.MatchString(trimmedRule) && len(trimmedMsg) == 0:
			allErrs = append(allErrs, field.Required(p.Child("message"), "message must be specified if rule contains line breaks"))
		}
		if len(rule.MessageExpression) > 0 && len(trimmedMsgExpr) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("messageExpression"), "messageExpression must be non-empty if specified"))
		}
		if rule.Reason != nil && !contains(validationReasons, string(*rule.Reason)) {
			allErrs = append(allErrs, field.NotSupported(p.Child("reason"), *rule.Reason, validationReasons))
		}
		if len(rule.FieldPath) > 0 && len(strings.TrimSpace(rule.FieldPath)) == 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("fieldPath"), rule.FieldPath, "must be non-empty if specified"))
		}
		if newlines.MatchString(rule.FieldPath) {
			allErrs = append(allErrs, field.Invalid(p.Child("fieldPath"), rule.FieldPath, "must not contain line breaks"))
		}
		if len(rule.FieldPath) > 0 && structuralBuildError(s) == nil {
			if _, ok := FieldPath(rule.FieldPath, s); !ok {
				allErrs = append(allErrs, field.Invalid(p.Child("fieldPath"), rule.FieldPath, "must be a valid path"))
			}
		}
	}
	return allErrs
}

// FieldPath resolves a validation rule's fieldPath (".spec.foo",
// ".spec['a.b']", single-quoted names with CEL's escapes) against s, as
// upstream's cel.ValidFieldPath: the field path it names, and false when
// it is malformed, empty or names no field of s. Properties are children,
// additionalProperties keys.
func FieldPath(p string, s *apiextensionsv1.JSONSchemaProps) (*field.Path, bool) {
	var out *field.Path
	for len(p) > 0 {
		var name string
		switch p[0] {
		case '.':
			end := strings.IndexAny(p[1:], ".[")
			if end < 0 {
				end = len(p) - 1
			}
			name, p = p[1:1+end], p[1+end:]
		case '[':
			if len(p) < 2 || p[1] != '\'' {
				return nil, false
			}
			end := -1
			for i := 2; i < len(p); i++ {
				if p[i] == '\'' && p[i-1] != '\\' {
					end = i
					break
				}
			}
			if end < 0 || end+1 >= len(p) || p[end+1] != ']' {
				return nil, false
			}
			n, ok := unescapeSingleQuoted(p[2:end])
			if !ok {
				return nil, false
			}
			name, p = n, p[end+2:]
		default:
			return nil, false
		}
		if name == "" || s == nil {
			return nil, false
		}
		switch {
		case s.Properties != nil:
			ps, ok := s.Properties[name]
			if !ok {
				return nil, false
			}
			out, s = out.Child(name), &ps
		case s.AdditionalProperties != nil:
			out, s = out.Key(name), s.AdditionalProperties.Schema
		default:
			return nil, false
		}
	}
	return out, out != nil
}

var singleQuoteEscapes = map[byte]string{'a': "\a", 'b': "\b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v", '\'': "'", '\\': "\\"}

// unescapeSingleQuoted undoes CEL's escapes in a single-quoted name.
func unescapeSingleQuoted(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", false
		}
		r, ok := singleQuoteEscapes[s[i+1]]
		if !ok {
			return "", false
		}
		b.WriteString(r)
		i++
	}
	return b.String(), true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// structuralBuildError returns why upstream could not build a structural
// schema of s (fields it never supports), or nil.
func structuralBuildError(s *apiextensionsv1.JSONSchemaProps) error {
	var err error
	walk(s, func(s *apiextensionsv1.JSONSchemaProps) {
		if err != nil {
			return
		}
		switch {
		case len(s.ID) > 0:
			err = fmt.Errorf("OpenAPIV3Schema 'id' is not supported")
		case len(s.Schema) > 0:
			err = fmt.Errorf("OpenAPIV3Schema 'schema' is not supported")
		case s.Ref != nil && len(*s.Ref) > 0:
			err = fmt.Errorf("OpenAPIV3Schema '$ref' is not supported")
		case len(s.PatternProperties) > 0:
			err = fmt.Errorf("OpenAPIV3Schema 'patternProperties' is not supported")
		case len(s.Dependencies) > 0:
			err = fmt.Errorf("OpenAPIV3Schema 'dependencies' is not supported")
		case s.AdditionalItems != nil:
			err = fmt.Errorf("OpenAPIV3Schema 'additionalItems' is not supported")
		case len(s.Definitions) > 0:
			err = fmt.Errorf("OpenAPIV3Schema 'definitions' is not supported")
		case s.XPreserveUnknownFields != nil && !*s.XPreserveUnknownFields:
			err = fmt.Errorf("internal error: 'x-kubernetes-preserve-unknown-fields' must be true or undefined")
		case s.Items != nil && len(s.Items.JSONSchemas) > 0:
			err = fmt.Errorf("OpenAPIV3Schema 'items' must be a schema, but is an array")
		}
	})
	return err
}

// sortErrors sorts errs by message, as upstream sorts structural errors.
func sortErrors(errs field.ErrorList) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
}
