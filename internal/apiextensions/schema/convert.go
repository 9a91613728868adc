package schema

import (
	"fmt"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// ToSpec converts s to kube-openapi's schema faithfully: every field of the
// JSON schema (descriptions, defaults, enums, examples, formats, nullable,
// items, properties, additionalProperties, the junctors, external docs) is
// kept, and every x-kubernetes-* field becomes a vendor extension with its
// JSON value (x-kubernetes-int-or-string keeps an empty type, as upstream's
// published schemas do). The result shares nothing with s. A nil s gives a
// nil schema. It fails only on a $ref that is not a valid reference or on
// defaults, enums or examples that are not JSON.
//
// The OpenAPI publisher and server-side apply use it; the Validator uses a
// variant that, as upstream's validator, types int-or-string values and
// drops formats upstream does not recognize.
func ToSpec(s *apiextensionsv1.JSONSchemaProps) (*spec.Schema, error) {
	if s == nil {
		return nil, nil
	}
	out := &spec.Schema{}
	if err := convert(s, out, false); err != nil {
		return nil, err
	}
	return out, nil
}

// toValidationSpec converts s for kube-openapi's validator as upstream's
// NewSchemaValidator does: x-kubernetes-int-or-string becomes the type
// [integer, string] and unrecognized formats are dropped.
func toValidationSpec(s *apiextensionsv1.JSONSchemaProps) (*spec.Schema, error) {
	out := &spec.Schema{}
	if s == nil {
		return out, nil
	}
	if err := convert(s, out, true); err != nil {
		return nil, err
	}
	return out, nil
}

func convert(in *apiextensionsv1.JSONSchemaProps, out *spec.Schema, forValidation bool) error {
	out.ID = in.ID
	out.Schema = spec.SchemaURL(in.Schema)
	out.Description = in.Description
	if in.Type != "" {
		out.Type = spec.StringOrArray{in.Type}
	}
	if in.XIntOrString && forValidation {
		out.Type = spec.StringOrArray{"integer", "string"}
	}
	out.Nullable = in.Nullable
	out.Format = in.Format
	if forValidation {
		out.Format = supportedFormat(in.Type, in.Format)
	}
	out.Title = in.Title
	out.Maximum = clonePtr(in.Maximum)
	out.ExclusiveMaximum = in.ExclusiveMaximum
	out.Minimum = clonePtr(in.Minimum)
	out.ExclusiveMinimum = in.ExclusiveMinimum
	out.MaxLength = clonePtr(in.MaxLength)
	out.MinLength = clonePtr(in.MinLength)
	out.Pattern = in.Pattern
	out.MaxItems = clonePtr(in.MaxItems)
	out.MinItems = clonePtr(in.MinItems)
	out.UniqueItems = in.UniqueItems
	out.MultipleOf = clonePtr(in.MultipleOf)
	out.MaxProperties = clonePtr(in.MaxProperties)
	out.MinProperties = clonePtr(in.MinProperties)
	if in.Required != nil {
		out.Required = append([]string(nil), in.Required...)
	}

	var err error
	if out.Default, err = decodeJSON(in.Default); err != nil {
		return fmt.Errorf("decoding default: %w", err)
	}
	if out.Example, err = decodeJSON(in.Example); err != nil {
		return fmt.Errorf("decoding example: %w", err)
	}
	if in.Enum != nil {
		out.Enum = make([]any, len(in.Enum))
		for i := range in.Enum {
			if out.Enum[i], err = decodeJSON(&in.Enum[i]); err != nil {
				return fmt.Errorf("decoding enum: %w", err)
			}
		}
	}

	if out.AllOf, err = convertSlice(in.AllOf, forValidation); err != nil {
		return err
	}
	if out.OneOf, err = convertSlice(in.OneOf, forValidation); err != nil {
		return err
	}
	if out.AnyOf, err = convertSlice(in.AnyOf, forValidation); err != nil {
		return err
	}
	if in.Not != nil {
		out.Not = &spec.Schema{}
		if err := convert(in.Not, out.Not, forValidation); err != nil {
			return err
		}
	}
	if out.Properties, err = convertMap(in.Properties, forValidation); err != nil {
		return err
	}
	if out.PatternProperties, err = convertMap(in.PatternProperties, forValidation); err != nil {
		return err
	}
	if out.Definitions, err = convertMap(in.Definitions, forValidation); err != nil {
		return err
	}
	if in.Ref != nil {
		if out.Ref, err = spec.NewRef(*in.Ref); err != nil {
			return fmt.Errorf("converting $ref %q: %w", *in.Ref, err)
		}
	}
	if in.AdditionalProperties != nil {
		if out.AdditionalProperties, err = convertOrBool(in.AdditionalProperties, forValidation); err != nil {
			return err
		}
	}
	if in.AdditionalItems != nil {
		if out.AdditionalItems, err = convertOrBool(in.AdditionalItems, forValidation); err != nil {
			return err
		}
	}
	if in.Items != nil {
		out.Items = &spec.SchemaOrArray{}
		if in.Items.Schema != nil {
			out.Items.Schema = &spec.Schema{}
			if err := convert(in.Items.Schema, out.Items.Schema, forValidation); err != nil {
				return err
			}
		}
		if in.Items.JSONSchemas != nil {
			if out.Items.Schemas, err = convertSlice(in.Items.JSONSchemas, forValidation); err != nil {
				return err
			}
		}
	}
	if in.Dependencies != nil {
		out.Dependencies = make(spec.Dependencies, len(in.Dependencies))
		for k, d := range in.Dependencies {
			var o spec.SchemaOrStringArray
			if d.Property != nil {
				o.Property = append([]string(nil), d.Property...)
			}
			if d.Schema != nil {
				o.Schema = &spec.Schema{}
				if err := convert(d.Schema, o.Schema, forValidation); err != nil {
					return err
				}
			}
			out.Dependencies[k] = o
		}
	}
	if in.ExternalDocs != nil {
		out.ExternalDocs = &spec.ExternalDocumentation{
			Description: in.ExternalDocs.Description,
			URL:         in.ExternalDocs.URL,
		}
	}

	if in.XPreserveUnknownFields != nil {
		out.AddExtension("x-kubernetes-preserve-unknown-fields", *in.XPreserveUnknownFields)
	}
	if in.XEmbeddedResource {
		out.AddExtension("x-kubernetes-embedded-resource", true)
	}
	if in.XIntOrString {
		out.AddExtension("x-kubernetes-int-or-string", true)
	}
	if len(in.XListMapKeys) != 0 {
		keys := make([]any, len(in.XListMapKeys))
		for i, k := range in.XListMapKeys {
			keys[i] = k
		}
		out.AddExtension("x-kubernetes-list-map-keys", keys)
	}
	if in.XListType != nil {
		out.AddExtension("x-kubernetes-list-type", *in.XListType)
	}
	if in.XMapType != nil {
		out.AddExtension("x-kubernetes-map-type", *in.XMapType)
	}
	if len(in.XValidations) != 0 {
		rules := make([]any, len(in.XValidations))
		for i, r := range in.XValidations {
			rules[i] = validationRuleJSON(r)
		}
		out.AddExtension("x-kubernetes-validations", rules)
	}
	return nil
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// validationRuleJSON is the JSON value of a CEL rule, as it is serialized.
func validationRuleJSON(r apiextensionsv1.ValidationRule) map[string]any {
	m := map[string]any{"rule": r.Rule}
	if r.Message != "" {
		m["message"] = r.Message
	}
	if r.MessageExpression != "" {
		m["messageExpression"] = r.MessageExpression
	}
	if r.Reason != nil {
		m["reason"] = string(*r.Reason)
	}
	if r.FieldPath != "" {
		m["fieldPath"] = r.FieldPath
	}
	if r.OptionalOldSelf != nil {
		m["optionalOldSelf"] = *r.OptionalOldSelf
	}
	return m
}

func convertSlice(in []apiextensionsv1.JSONSchemaProps, forValidation bool) ([]spec.Schema, error) {
	if in == nil {
		return nil, nil
	}
	out := make([]spec.Schema, len(in))
	for i := range in {
		if err := convert(&in[i], &out[i], forValidation); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func convertMap(in map[string]apiextensionsv1.JSONSchemaProps, forValidation bool) (map[string]spec.Schema, error) {
	if in == nil {
		return nil, nil
	}
	out := make(map[string]spec.Schema, len(in))
	for k := range in {
		v := in[k]
		var s spec.Schema
		if err := convert(&v, &s, forValidation); err != nil {
			return nil, err
		}
		out[k] = s
	}
	return out, nil
}

func convertOrBool(in *apiextensionsv1.JSONSchemaPropsOrBool, forValidation bool) (*spec.SchemaOrBool, error) {
	out := &spec.SchemaOrBool{Allows: in.Allows}
	if in.Schema != nil {
		out.Schema = &spec.Schema{}
		if err := convert(in.Schema, out.Schema, forValidation); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// stringFormats are the string formats upstream's validator checks (those
// of Kubernetes 1.0 and, since 1.34, k8s-short-name and k8s-long-name),
// normalized as go-openapi does (without dashes). Other formats are accepted
// in a CRD but ignored.
var stringFormats = map[string]bool{
	"bsonobjectid": true, "uri": true, "email": true, "hostname": true,
	"ipv4": true, "ipv6": true, "cidr": true, "mac": true,
	"uuid": true, "uuid3": true, "uuid4": true, "uuid5": true,
	"isbn": true, "isbn10": true, "isbn13": true, "creditcard": true,
	"ssn": true, "hexcolor": true, "rgbcolor": true, "byte": true,
	"password": true, "date": true, "duration": true, "datetime": true,
	"k8sshortname": true, "k8slongname": true,
}

// supportedFormat returns format if upstream's validator checks it for
// values of type typ, else "".
func supportedFormat(typ, format string) string {
	if format == "" {
		return ""
	}
	switch typ {
	case "", "string":
		if stringFormats[strings.ReplaceAll(format, "-", "")] {
			return format
		}
	case "integer":
		if format == "int32" || format == "int64" {
			return format
		}
	case "number":
		if format == "float" || format == "double" {
			return format
		}
	}
	return ""
}

// UnrecognizedFormats returns the formats in s that upstream does not
// recognize (and ignores), in schema order, for the "unrecognized format"
// warnings upstream returns when a CRD is written.
func UnrecognizedFormats(s *apiextensionsv1.JSONSchemaProps) []string {
	var out []string
	walk(s, func(s *apiextensionsv1.JSONSchemaProps) {
		if s.Format != "" && supportedFormat(s.Type, s.Format) == "" {
			out = append(out, s.Format)
		}
	})
	return out
}

// walk calls f on s and every schema nested in it.
// Has reports whether pred holds for s or any schema nested in it.
func Has(s *apiextensionsv1.JSONSchemaProps, pred func(*apiextensionsv1.JSONSchemaProps) bool) bool {
	found := false
	walk(s, func(n *apiextensionsv1.JSONSchemaProps) { found = found || pred(n) })
	return found
}

func walk(s *apiextensionsv1.JSONSchemaProps, f func(*apiextensionsv1.JSONSchemaProps)) {
	if s == nil {
		return
	}
	f(s)
	if s.Items != nil {
		walk(s.Items.Schema, f)
		for i := range s.Items.JSONSchemas {
			walk(&s.Items.JSONSchemas[i], f)
		}
	}
	for i := range s.AllOf {
		walk(&s.AllOf[i], f)
	}
	for i := range s.AnyOf {
		walk(&s.AnyOf[i], f)
	}
	for i := range s.OneOf {
		walk(&s.OneOf[i], f)
	}
	walk(s.Not, f)
	for _, k := range sortedKeys(s.Properties) {
		p := s.Properties[k]
		walk(&p, f)
	}
	if s.AdditionalProperties != nil {
		walk(s.AdditionalProperties.Schema, f)
	}
	for _, k := range sortedKeys(s.PatternProperties) {
		p := s.PatternProperties[k]
		walk(&p, f)
	}
	if s.AdditionalItems != nil {
		walk(s.AdditionalItems.Schema, f)
	}
	for _, k := range sortedKeys(s.Definitions) {
		p := s.Definitions[k]
		walk(&p, f)
	}
	for _, k := range sortedKeys(s.Dependencies) {
		walk(s.Dependencies[k].Schema, f)
	}
}
