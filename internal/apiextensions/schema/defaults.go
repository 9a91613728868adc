package schema

import (
	"fmt"
	"reflect"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
)

// validateDefaults checks, as upstream's structural defaulting validation,
// that every default of the (structural) schema s is pruned, valid embedded
// apiVersion/kind/metadata where it contains resources, and valid against its
// own schema. Defaults inside the apiVersion, kind or metadata of an embedded
// resource are checked within a surrounding object of that resource.
// As upstream, defaults under additionalProperties are not checked.
func validateDefaults(fldPath *field.Path, s *apiextensionsv1.JSONSchemaProps) field.ErrorList {
	d := defaultsValidator{}
	root := *s
	root.XEmbeddedResource = true // the object root is a resource
	d.validate(fldPath, &root, &root, nil, false)
	return d.errs
}

// pathStep is one step from a resource root to a schema: a property or an
// array item.
type pathStep struct {
	key   string
	index bool
}

type defaultsValidator struct {
	errs field.ErrorList
}

func (d *defaultsValidator) validate(pth *field.Path, s, root *apiextensionsv1.JSONSchemaProps, steps []pathStep, insideMeta bool) {
	if s == nil {
		return
	}
	if s.XEmbeddedResource {
		insideMeta = false
		root = s
		steps = nil
	}
	if def, err := decodeJSON(s.Default); err == nil && def != nil {
		d.validateDefault(pth, s, root, steps, def, insideMeta)
	}
	if items := itemsSchema(s); items != nil {
		d.validate(pth.Child("items"), items, root, appendStep(steps, pathStep{index: true}), insideMeta)
	}
	for _, k := range sortedKeys(s.Properties) {
		p := s.Properties[k]
		sub := insideMeta || (s.XEmbeddedResource && metaFields[k])
		d.validate(pth.Child("properties").Key(k), &p, root, appendStep(steps, pathStep{key: k}), sub)
	}
}

func appendStep(steps []pathStep, st pathStep) []pathStep {
	out := make([]pathStep, len(steps), len(steps)+1)
	copy(out, steps)
	return append(out, st)
}

func (d *defaultsValidator) validateDefault(pth *field.Path, s, root *apiextensionsv1.JSONSchemaProps, steps []pathStep, def any, insideMeta bool) {
	defPath := pth.Child("default")
	n, err := newNode(s)
	if err != nil {
		d.errs = append(d.errs, field.Invalid(defPath, def, err.Error()))
		return
	}
	sp, err := ToSpec(s)
	if err != nil {
		d.errs = append(d.errs, field.Invalid(defPath, def, err.Error()))
		return
	}
	validator := validate.NewSchemaValidator(sp, nil, "", strfmt.Default)

	if insideMeta {
		rootNode, err := newNode(root)
		if err != nil {
			d.errs = append(d.errs, field.Invalid(defPath, def, err.Error()))
			return
		}
		rootNode = rootNode.asEmbedded()
		obj := surroundingObject(steps, runtime.DeepCopyJSONValue(def))
		if obj == nil {
			d.errs = append(d.errs, field.Invalid(defPath, def, "object root default value must be of object type"))
			return
		}
		if ferr := coerceCheck(nil, obj, rootNode); ferr != nil {
			d.errs = append(d.errs, field.Invalid(defPath, def, fmt.Sprintf("must result in valid metadata: %v", ferr)))
		} else if errs := validateEmbedded(nil, obj, rootNode, nil); len(errs) > 0 {
			d.errs = append(d.errs, field.Invalid(defPath, def, fmt.Sprintf("must result in valid metadata: %v", errs.ToAggregate())))
		} else if errs := resultToFieldErrors(defPath, validator.Validate(def)); len(errs) > 0 {
			d.errs = append(d.errs, errs...)
		}
		return
	}

	pruned := runtime.DeepCopyJSONValue(def)
	pruneValue(pruned, n, s.XEmbeddedResource)
	if !reflect.DeepEqual(pruned, def) {
		d.errs = append(d.errs, field.Invalid(defPath, def, "must not have unknown fields"))
	}
	if ferr := coerceCheck(defPath, def, n); ferr != nil {
		d.errs = append(d.errs, ferr)
	} else if errs := validateEmbedded(defPath, def, n, nil); len(errs) > 0 {
		d.errs = append(d.errs, errs...)
	} else if errs := resultToFieldErrors(defPath, validator.Validate(def)); len(errs) > 0 {
		d.errs = append(d.errs, errs...)
	}
}

// surroundingObject wraps x in the objects and arrays of steps, from a
// resource root, and sets the TypeMeta of that root as upstream does
// ("validation/v1", "Validation") if missing. It returns nil if the root is
// not an object.
func surroundingObject(steps []pathStep, x any) map[string]any {
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].index {
			x = []any{x}
		} else {
			x = map[string]any{steps[i].key: x}
		}
	}
	obj, ok := x.(map[string]any)
	if !ok {
		return nil
	}
	if _, found := obj["kind"]; !found {
		obj["kind"] = "Validation"
	}
	if _, found := obj["apiVersion"]; !found {
		obj["apiVersion"] = "validation/v1"
	}
	return obj
}

// coerceCheck reports the first embedded resource in x whose apiVersion or
// kind is not a string or whose metadata does not decode, as upstream's
// objectmeta.Coerce does without dropping invalid fields.
func coerceCheck(pth *field.Path, x any, s *node) *field.Error {
	if s == nil {
		return nil
	}
	switch x := x.(type) {
	case map[string]any:
		for k, v := range x {
			if s.embedded {
				switch k {
				case "apiVersion", "kind":
					if _, ok := v.(string); !ok {
						return field.Invalid(pth.Child(k), v, "must be a string")
					}
				case "metadata":
					if _, err := decodeObjectMeta(v); err != nil {
						return field.Invalid(pth.Child("metadata"), v, err.Error())
					}
				}
			}
			if prop, ok := s.props[k]; ok {
				if err := coerceCheck(pth.Child(k), v, prop); err != nil {
					return err
				}
			} else if s.hasAddl {
				if err := coerceCheck(pth.Key(k), v, s.addl); err != nil {
					return err
				}
			}
		}
	case []any:
		for i, v := range x {
			if err := coerceCheck(pth.Index(i), v, s.items); err != nil {
				return err
			}
		}
	}
	return nil
}
