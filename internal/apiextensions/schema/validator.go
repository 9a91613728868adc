package schema

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	openapierrors "k8s.io/kube-openapi/pkg/validation/errors"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
)

// Validator validates, prunes and defaults the objects of one CRD version.
// It is built once per version's schema by NewValidator, is immutable, and
// is safe for concurrent use. NewValidator(nil), for a version without a
// schema, gives one that accepts and keeps everything.
//
// A write of a custom resource uses it in upstream's order: Prune (when the
// body is decoded), Default, then Validate.
type Validator struct {
	// root is the structural tree of the schema; nil without a schema.
	root *node
	// embeddedRoot is root marked as a resource (its apiVersion, kind
	// and metadata are never pruned).
	embeddedRoot *node
	// validator is kube-openapi's validator of the whole object, as
	// upstream builds it: it builds the validators of nested values on
	// every call and names each value's path in its errors.
	validator *validate.SchemaValidator
	// spec is the schema validator and fast validate against.
	spec *spec.Schema
	// fast is the same validation with the nested validators built once
	// (see newCachedValidator); nil if the schema has what it does not cover.
	fast *validate.SchemaValidator

	hasDefaults  bool // some schema has a default: Default has work to do
	hasEmbedded  bool // some schema is an x-kubernetes-embedded-resource
	hasListTypes bool // some schema is a set or map list
}

// NewValidator returns the Validator of a version's openAPIV3Schema s (nil:
// no schema). s should have passed ValidateCRDSchema; NewValidator fails
// only for what kube-openapi's validator cannot handle ($ref) and for
// defaults or enums that are not JSON. The Validator keeps nothing of s.
func NewValidator(s *apiextensionsv1.JSONSchemaProps) (*Validator, error) {
	if s == nil {
		return &Validator{}, nil
	}
	var ref string
	walk(s, func(s *apiextensionsv1.JSONSchemaProps) {
		if s.Ref != nil && ref == "" {
			ref = *s.Ref
		}
	})
	if ref != "" {
		return nil, fmt.Errorf("building validator: $ref %q is not supported", ref)
	}
	sp, err := toValidationSpec(s)
	if err != nil {
		return nil, fmt.Errorf("building validator: %w", err)
	}
	root, err := newNode(s)
	if err != nil {
		return nil, fmt.Errorf("building validator: %w", err)
	}
	v := &Validator{
		root:         root,
		embeddedRoot: root.asEmbedded(),
		spec:         sp,
		validator:    validate.NewSchemaValidator(sp, nil, "", strfmt.Default),
	}
	if cacheable(sp) {
		v.fast = newCachedValidator(sp, "")
	}
	walkNodes(root, func(n *node) {
		v.hasDefaults = v.hasDefaults || n.def != nil
	})
	v.hasEmbedded = root.embeddedBelow
	v.hasListTypes = root.listBelow
	return v, nil
}

// walkNodes calls f on n and every node below it.
func walkNodes(n *node, f func(*node)) {
	if n == nil {
		return
	}
	f(n)
	walkNodes(n.items, f)
	walkNodes(n.addl, f)
	for _, p := range n.props {
		walkNodes(p, f)
	}
}

// Validate checks obj (a decoded custom resource) against the schema, as
// upstream's custom resource validation does: kube-openapi's validation of
// the whole object, the apiVersion, kind and metadata of embedded resources,
// and the uniqueness of set items and map keys of x-kubernetes-list-type set
// and map lists. Paths start at the object root ("spec.replicas",
// "spec.ports[1]"). The root's apiVersion, kind and metadata are the
// caller's to check; only the schema's own constraints on metadata.name and
// metadata.generateName apply to them here. obj is not modified.
func (v *Validator) Validate(obj map[string]any) field.ErrorList {
	if v == nil || v.root == nil {
		return nil
	}
	var errs field.ErrorList
	if v.fast == nil || !v.fast.Validate(obj).IsValid() {
		// The errors name paths the cached validators do not know.
		errs = resultToFieldErrors(nil, v.validator.Validate(obj))
	}
	if v.hasEmbedded {
		errs = validateEmbedded(nil, obj, v.root, errs)
	}
	if v.hasListTypes {
		errs = validateListSetsAndMaps(nil, v.root, obj, errs)
	}
	return errs
}

// ValidateUpdate checks obj, an update of old, as upstream validates
// updates: as Validate, except that schema errors in values unchanged from
// old are not reported (validation ratcheting, GA in Kubernetes 1.33), and
// list-type uniqueness is only required if old satisfied it. Embedded
// resources are checked as on create. A nil old validates as Validate. It
// serves updates and status updates alike (a status update carries the
// rest over unchanged). Neither object is modified.
func (v *Validator) ValidateUpdate(obj, old map[string]any) field.ErrorList {
	if v == nil || v.root == nil {
		return nil
	}
	if old == nil {
		return v.Validate(obj)
	}
	var errs field.ErrorList
	if v.fast == nil || !v.fast.Validate(obj).IsValid() {
		r := &ratchetingValidator{schema: v.spec, corr: &correlated{value: obj, old: old, schema: v.spec}}
		errs = resultToFieldErrors(nil, r.Validate(obj))
	}
	if v.hasEmbedded {
		errs = validateEmbedded(nil, obj, v.root, errs)
	}
	if v.hasListTypes {
		if newErrs := validateListSetsAndMaps(nil, v.root, obj, nil); len(newErrs) > 0 {
			if oldErrs := validateListSetsAndMaps(nil, v.root, old, nil); len(oldErrs) == 0 {
				errs = append(errs, newErrs...)
			}
		}
	}
	return errs
}

// Prune removes in place the fields of obj that the schema does not
// specify, keeping apiVersion, kind and metadata at the root and in embedded
// resources, and everything under x-kubernetes-preserve-unknown-fields
// except inside the properties and additionalProperties it specifies. It
// returns the paths of the pruned fields, sorted ("spec.foo",
// "spec.list[0].bar"), which the server reports as unknown fields.
//
// As upstream's decoding, it then drops null values whose schema is neither
// nullable nor defaulted, and normalizes the metadata of embedded resources
// (their unknown metadata fields follow in the returned paths,
// "spec.template.metadata.foo"). The root's metadata is the caller's.
func (v *Validator) Prune(obj map[string]any) []string {
	if v == nil || v.root == nil {
		return nil
	}
	p := pruner{}
	p.prune(obj, v.embeddedRoot)
	sort.Strings(p.pruned)
	pruneNonNullableNullsWithoutDefaults(obj, v.root)
	if v.hasEmbedded {
		unknown := coerceEmbeddedMeta(nil, obj, v.root, nil)
		sort.Strings(unknown)
		p.pruned = append(p.pruned, unknown...)
	}
	return p.pruned
}

// Default sets in place the schema's defaults in obj, as upstream's
// structural defaulting: a property missing from a present object, or null
// where its schema is not nullable, gets its default; items of present
// arrays and additionalProperties values are defaulted likewise, top-down,
// so a defaulted object is itself defaulted. Default values are deep copies.
func (v *Validator) Default(obj map[string]any) {
	if v == nil || v.root == nil || !v.hasDefaults {
		return
	}
	applyDefaults(obj, v.root)
}

// newCachedValidator returns a kube-openapi validator of s whose validators
// of properties, additionalProperties values and items are built here, once,
// instead of on every call. kube-openapi asks for them through the
// NewValidatorForField/NewValidatorForIndex options, which this sets on each
// level. The validators keep the paths they were built with (path, and
// "[*]" or "*" for items and map values), so their results decide only
// whether an object is valid; a Validator turns to the uncached validator
// for the errors. Validation never mutates a kube-openapi validator, so the
// tree is safe for concurrent use.
func newCachedValidator(s *spec.Schema, path string) *validate.SchemaValidator {
	props := make(map[string]*validate.SchemaValidator, len(s.Properties))
	for k := range s.Properties {
		p := s.Properties[k]
		props[k] = newCachedValidator(&p, joinPath(path, k))
	}
	var addl, items *validate.SchemaValidator
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		addl = newCachedValidator(s.AdditionalProperties.Schema, joinPath(path, "*"))
	}
	if s.Items != nil && s.Items.Schema != nil {
		items = newCachedValidator(s.Items.Schema, path+"[*]")
	}
	hooks := func(o *validate.SchemaValidatorOptions) {
		o.NewValidatorForField = func(field string, schema *spec.Schema, rootSchema any, root string, formats strfmt.Registry, opts ...validate.Option) validate.ValueValidator {
			// kube-openapi asks for a regular property by its name, and
			// for additionalProperties only for keys that are not one.
			if p, ok := props[field]; ok {
				return p
			}
			if addl != nil {
				return addl
			}
			return validate.NewSchemaValidator(schema, rootSchema, root, formats, opts...)
		}
		o.NewValidatorForIndex = func(index int, schema *spec.Schema, rootSchema any, root string, formats strfmt.Registry, opts ...validate.Option) validate.ValueValidator {
			if items != nil {
				return items
			}
			return validate.NewSchemaValidator(schema, rootSchema, root, formats, opts...)
		}
	}
	return validate.NewSchemaValidator(s, nil, path, strfmt.Default, hooks)
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// cacheable reports whether newCachedValidator covers s: no pattern
// properties (kube-openapi asks for their validators by key too) and no
// tuple items.
func cacheable(s *spec.Schema) bool {
	if s == nil {
		return true
	}
	if len(s.PatternProperties) > 0 || (s.Items != nil && len(s.Items.Schemas) > 0) {
		return false
	}
	for k := range s.Properties {
		p := s.Properties[k]
		if !cacheable(&p) {
			return false
		}
	}
	if s.AdditionalProperties != nil && !cacheable(s.AdditionalProperties.Schema) {
		return false
	}
	if s.Items != nil && !cacheable(s.Items.Schema) {
		return false
	}
	return true
}

// resultToFieldErrors maps kube-openapi's result to field errors as
// upstream's ValidateCustomResource does, under fldPath.
func resultToFieldErrors(fldPath *field.Path, result *validate.Result) field.ErrorList {
	if result == nil || result.IsValid() {
		return nil
	}
	var allErrs field.ErrorList
	for _, err := range result.Errors {
		verr, ok := err.(*openapierrors.Validation)
		if !ok {
			allErrs = append(allErrs, field.Invalid(fldPath, "", err.Error()))
			continue
		}
		errPath := fldPath
		if len(verr.Name) > 0 && verr.Name != "." {
			errPath = errPath.Child(strings.TrimPrefix(verr.Name, "."))
		}
		switch verr.Code() {
		case openapierrors.RequiredFailCode:
			allErrs = append(allErrs, field.Required(errPath, ""))
		case openapierrors.EnumFailCode:
			values := []string{}
			for _, allowed := range verr.Values {
				if s, ok := allowed.(string); ok {
					values = append(values, s)
				} else {
					j, _ := json.Marshal(allowed)
					values = append(values, string(j))
				}
			}
			allErrs = append(allErrs, field.NotSupported(errPath, verr.Value, values))
		case openapierrors.TooLongFailCode:
			maxLen := int64(-1)
			if i, ok := verr.Valid.(int64); ok {
				maxLen = i
			}
			allErrs = append(allErrs, field.TooLong(errPath, "", int(maxLen)))
		case openapierrors.MaxItemsFailCode, openapierrors.TooManyPropertiesCode:
			actual, maxCount := int64(-1), int64(-1)
			if i, ok := verr.Value.(int64); ok {
				actual = i
			}
			if i, ok := verr.Valid.(int64); ok {
				maxCount = i
			}
			allErrs = append(allErrs, field.TooMany(errPath, int(actual), int(maxCount)))
		case openapierrors.InvalidTypeCode:
			value := any("")
			if verr.Value != nil {
				value = verr.Value
			}
			allErrs = append(allErrs, field.TypeInvalid(errPath, value, verr.Error()))
		default:
			value := any("")
			if verr.Value != nil {
				value = verr.Value
			}
			allErrs = append(allErrs, field.Invalid(errPath, value, verr.Error()))
		}
	}
	return allErrs
}
