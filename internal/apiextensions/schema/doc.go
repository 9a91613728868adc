// Package schema gives a CustomResourceDefinition version's
// openAPIV3Schema its upstream semantics: the rules a schema must follow,
// its OpenAPI form, and the validation, pruning and defaulting of custom
// resources against it.
//
// It owns pure functions over apiextensions.k8s.io/v1 JSONSchemaProps and
// decoded JSON values (map[string]any, []any, string, int64, float64, bool,
// nil, as apimachinery's unstructured JSON decodes them):
//
//   - ValidateCRDSchema: what upstream checks of a schema when a CRD is
//     written (supported OpenAPI subset, Kubernetes extensions, structural
//     schema, defaults), with upstream's field errors.
//   - UnrecognizedFormats: the formats upstream ignores, for its
//     "unrecognized format" warnings.
//   - ToSpec: a faithful conversion to kube-openapi's spec.Schema, for
//     publishing and server-side apply.
//   - Validator (NewValidator): per CRD version, built once, immutable and
//     safe for concurrent use; Prune, Default, Validate and ValidateUpdate
//     custom resources as upstream's decoding, defaulting and validation
//     (with update ratcheting) do.
//
// Inputs are the schema and the object the caller passes; Prune and Default
// change that object in place, nothing else is written. The package never
// does I/O, never keeps a reference to a schema it was given, and never
// checks what is the caller's: the CRD's other fields (names, versions,
// subresources, the root's nullable and status rules), and a custom
// resource's apiVersion, kind and root metadata. CEL rules
// (x-kubernetes-validations) are checked for form only here; package cel
// compiles and evaluates them. The facts (rules, messages, paths) follow upstream's
// k8s.io/apiextensions-apiserver; the code is our own.
//
// # Usage
//
// When a CRD is written, per version i:
//
//	errs = append(errs, schema.ValidateCRDSchema(
//		field.NewPath("spec", "versions").Index(i).Child("schema", "openAPIV3Schema"), s)...)
//
// When a CRD is served, per served version:
//
//	v, err := schema.NewValidator(s) // once
//
// and on every write of a custom resource u, in upstream's order:
//
//	unknown := v.Prune(u.Object) // on decoding; "unknown field" warnings or errors
//	v.Default(u.Object)
//	errs := v.Validate(u.Object) // create; plus the caller's apiVersion, kind and metadata checks
//	errs := v.ValidateUpdate(u.Object, old.Object) // update and status update
package schema
