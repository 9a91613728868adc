// Package cel evaluates the CEL validation rules of a CustomResourceDefinition
// version's schema (x-kubernetes-validations) against custom resources, with
// upstream's semantics.
//
// Inputs are an apiextensions.k8s.io/v1 JSONSchemaProps (a schema that
// passed package schema's ValidateCRDSchema) and decoded JSON values
// (map[string]any, []any, string, int64, float64, bool, nil). Outputs are
// field errors; nothing is written and nothing is kept of the schema.
//
//   - Compile compiles every rule of a schema once, in one CEL environment
//     with cel-go's standard library, its strings (version 2), sets, lists,
//     two-variable comprehensions and optional types, and the Kubernetes
//     list (isSorted, sum, min, max, indexOf, lastIndexOf), regex (find,
//     findAll), quantity, IP, CIDR, URL and format (format.named,
//     format.dns1123Label(), ..., validate) libraries.
//     A rule that does not parse or type-check is a Compile error at its
//     schema path ("compilation failed: ..."), as upstream reports it when a
//     CRD is written; so are a rule using oldSelf below a list that is not a
//     list-type map, and optionalOldSelf on a rule without oldSelf. A rule
//     that fails only because it calls a function this package does not
//     provide (semver, isSemver, authorizer, ...) is skipped: never
//     enforced, and listed by Skipped so that the server can warn.
//   - Validator.Validate evaluates the rules of a custom resource on create
//     (old nil) or update, with upstream's error messages, per-rule cost
//     limit, per-object cost budget, transition rules (oldSelf) and
//     ratcheting.
//
// self and oldSelf are declared dyn: rules are type-checked only as far as
// dyn allows, so a rule upstream rejects for a type error (a string field
// compared with an int, a field the schema lacks) may compile here and fail
// when evaluated. Values are
// converted with the schema as upstream converts them: numbers to double,
// date, date-time, duration and byte strings to timestamp, duration and
// bytes, lists of list-type set and map compared and joined (+) as sets
// and by keys, property names escaped (self.__namespace__,
// self.a__dash__b), and
// the metadata of a resource root reduced to name and generateName.
// Static cost estimation (upstream refuses a CRD whose rules may cost too
// much) is not done: without types, every estimate would be unbounded.
// A ratcheted error (see Validate) is dropped; upstream turns
// it into a warning. Rules inside allOf, anyOf, oneOf and not are ignored
// (a structural schema has none there).
//
// The package never imports k8s.io/apiserver; the library functions are our
// own, after upstream's documented behavior.
//
// # Usage
//
// When a CRD is written, per version i:
//
//	_, errs := cel.CompileAt(field.NewPath("spec", "versions").Index(i).Child("schema", "openAPIV3Schema"), s)
//
// When a CRD version is served, once (Validator is immutable and safe for
// concurrent use):
//
//	v, _ := cel.Compile(s)
//	for _, r := range v.Skipped() { warn(r) }
//
// and on every write of a custom resource, after schema validation:
//
//	errs = append(errs, v.Validate(obj, nil)...)      // create
//	errs = append(errs, v.Validate(obj, oldObj)...)   // update, status update
package cel
