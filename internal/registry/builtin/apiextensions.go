package builtin

import (
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/transport"

	"github.com/skiff-dev/skiff/internal/apiextensions/cel"
	"github.com/skiff-dev/skiff/internal/apiextensions/schema"
	"github.com/skiff-dev/skiff/internal/registry"
)

// apiextensionsResources returns apiextensions.k8s.io/v1
// customresourcedefinitions. Serving the custom resources a CRD defines is
// package apiextensions' job; the names, Established and cleanup are
// crdcontroller's.
func apiextensionsResources() []*registry.Resource {
	return []*registry.Resource{{
		GVR: apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions"), Kind: "CustomResourceDefinition",
		ListKind: "CustomResourceDefinitionList", Singular: "customresourcedefinition", ShortNames: []string{"crd", "crds"},
		Categories: []string{"api-extensions"}, Status: true,
		StatusResetsMetadata: true,
		Strategy:             crdStrategy(),
		PrepareForDelete:     prepareCRDForDelete,
	}}
}

// crdTerminatingPending is the Terminating condition a CRD gets on its first
// delete, as upstream's CRD storage sets it.
func crdTerminatingPending() apiextensionsv1.CustomResourceDefinitionCondition {
	return apiextensionsv1.CustomResourceDefinitionCondition{
		Type:    apiextensionsv1.Terminating,
		Status:  apiextensionsv1.ConditionTrue,
		Reason:  "InstanceDeletionPending",
		Message: "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
	}
}

// prepareCRDForDelete holds a CRD back on its first delete until its custom
// resources are gone: it adds the cleanup finalizer (crdcontroller removes
// it) and the Terminating=True condition.
func prepareCRDForDelete(obj runtime.Object) {
	crd := obj.(*apiextensionsv1.CustomResourceDefinition)
	if !slices.Contains(crd.Finalizers, apiextensionsv1.CustomResourceCleanupFinalizer) {
		crd.Finalizers = append(crd.Finalizers, apiextensionsv1.CustomResourceCleanupFinalizer)
	}
	setCRDCondition(crd, crdTerminatingPending(), time.Now())
}

// setCRDCondition sets (adds or replaces) a condition as upstream's
// SetCRDCondition does: lastTransitionTime changes only with the status.
func setCRDCondition(crd *apiextensionsv1.CustomResourceDefinition, c apiextensionsv1.CustomResourceDefinitionCondition, now time.Time) {
	c.LastTransitionTime = metav1.NewTime(now)
	for i := range crd.Status.Conditions {
		old := &crd.Status.Conditions[i]
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status && !old.LastTransitionTime.IsZero() {
			c.LastTransitionTime = old.LastTransitionTime
		}
		c.ObservedGeneration = old.ObservedGeneration
		*old = c
		return
	}
	crd.Status.Conditions = append(crd.Status.Conditions, c)
}

// crdConditionTrue reports whether crd has condition t with status True.
func crdConditionTrue(crd *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == t {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

func crdStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*apiextensionsv1.CustomResourceDefinition, *apiextensionsv1.CustomResourceDefinitionList]{
		New: func() *apiextensionsv1.CustomResourceDefinition { return &apiextensionsv1.CustomResourceDefinition{} },
		NewList: func() *apiextensionsv1.CustomResourceDefinitionList {
			return &apiextensionsv1.CustomResourceDefinitionList{}
		},
		PrepareForCreate: func(crd *apiextensionsv1.CustomResourceDefinition) {
			crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
			addStoredVersion(crd)
		},
		PrepareForUpdate: func(crd, old *apiextensionsv1.CustomResourceDefinition) {
			crd.Status = *old.Status.DeepCopy()
			addStoredVersion(crd)
		},
		Default: apiextensionsv1.SetObjectDefaults_CustomResourceDefinition,
		Validate: func(crd *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
			return validateCRD(crd, nil)
		},
		ValidateUpdate: validateCRD,
		ValidateStatusUpdate: func(crd, _ *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
			return validateCRDNames(&crd.Status.AcceptedNames, field.NewPath("status", "acceptedNames"))
		},
		Table: &registry.TypedTable[*apiextensionsv1.CustomResourceDefinition]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Scope", "Cluster/Namespaced", 0),
				columnString("Versions", "Served versions", 0),
				{Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
				columnString("Group", "API group", 1),
				columnString("Kind", "CustomResource kind", 1),
				columnString("ShortNames", "Short names", 1),
				{Name: "Established", Type: "boolean", Priority: 1, Description: "Established status"},
			},
			Row: crdRow,
		},
	})
}

// crdRow renders a CRD's row as upstream's table convertor does: served
// versions sorted, the storage one marked "(storage)".
func crdRow(crd *apiextensionsv1.CustomResourceDefinition) []any {
	var versions []string
	for _, v := range crd.Spec.Versions {
		if v.Served {
			label := v.Name
			if v.Storage {
				label += "(storage)"
			}
			versions = append(versions, label)
		}
	}
	sort.Strings(versions)
	return []any{
		crd.Name,
		string(crd.Spec.Scope),
		strings.Join(versions, ","),
		crd.CreationTimestamp.UTC().Format(time.RFC3339),
		crd.Spec.Group,
		crd.Spec.Names.Kind,
		strings.Join(crd.Spec.Names.ShortNames, ","),
		crdConditionTrue(crd, apiextensionsv1.Established),
	}
}

// addStoredVersion appends the storage version to status.storedVersions
// when it is not there yet, as upstream's strategy does on every write.
func addStoredVersion(crd *apiextensionsv1.CustomResourceDefinition) {
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			if !slices.Contains(crd.Status.StoredVersions, v.Name) {
				crd.Status.StoredVersions = append(crd.Status.StoredVersions, v.Name)
			}
			return
		}
	}
}

// --- Validation -------------------------------------------------------------
//
// Upstream validates the internal type, converted from v1: per-version
// schemas, subresources, printer columns and selectable fields that are the
// same in every version are moved to spec.validation, spec.subresources,
// spec.additionalPrinterColumns and spec.selectableFields first, and the
// webhook conversion settings to spec.conversion.{webhookClientConfig,
// conversionReviewVersions}. Errors name those paths, so a one-version CRD
// reports "spec.validation.openAPIV3Schema.properties[spec]…"; the paths
// here follow upstream's.

// crdSpecView is the v1 spec seen as upstream's internal type: each shared
// part is set when it is the same in every version.
type crdSpecView struct {
	spec         *apiextensionsv1.CustomResourceDefinitionSpec
	schema       *apiextensionsv1.CustomResourceValidation
	schemaShared bool
	subres       *apiextensionsv1.CustomResourceSubresources
	subresShared bool
	columns      []apiextensionsv1.CustomResourceColumnDefinition
	colsShared   bool
	fields       []apiextensionsv1.SelectableField
	fieldsShared bool
}

func newCRDSpecView(spec *apiextensionsv1.CustomResourceDefinitionSpec) crdSpecView {
	v := crdSpecView{spec: spec}
	if len(spec.Versions) == 0 {
		return v
	}
	first := spec.Versions[0]
	v.schema, v.subres, v.columns, v.fields = first.Schema, first.Subresources, first.AdditionalPrinterColumns, first.SelectableFields
	v.schemaShared, v.subresShared, v.colsShared, v.fieldsShared = true, true, true, true
	for _, ver := range spec.Versions[1:] {
		v.schemaShared = v.schemaShared && apiequality.Semantic.DeepEqual(ver.Schema, first.Schema)
		v.subresShared = v.subresShared && apiequality.Semantic.DeepEqual(ver.Subresources, first.Subresources)
		v.colsShared = v.colsShared && apiequality.Semantic.DeepEqual(ver.AdditionalPrinterColumns, first.AdditionalPrinterColumns)
		v.fieldsShared = v.fieldsShared && apiequality.Semantic.DeepEqual(ver.SelectableFields, first.SelectableFields)
	}
	return v
}

// versionSchema returns the openAPIV3Schema of version i (nil when unset).
func (v crdSpecView) versionSchema(i int) *apiextensionsv1.JSONSchemaProps {
	if s := v.spec.Versions[i].Schema; s != nil {
		return s.OpenAPIV3Schema
	}
	return nil
}

// statusEnabled reports whether version i has the status subresource.
func (v crdSpecView) statusEnabled(i int) bool {
	s := v.spec.Versions[i].Subresources
	return s != nil && s.Status != nil
}

// anyStatusEnabled reports whether some version has the status subresource.
func (v crdSpecView) anyStatusEnabled() bool {
	for i := range v.spec.Versions {
		if v.statusEnabled(i) {
			return true
		}
	}
	return false
}

// validateCRD validates a CRD on create (old nil) or update.
func validateCRD(crd, old *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	var allErrs field.ErrorList
	specPath := field.NewPath("spec")
	if old == nil {
		if want := crd.Spec.Names.Plural + "." + crd.Spec.Group; crd.Name != want {
			allErrs = append(allErrs, field.Invalid(field.NewPath("metadata", "name"), crd.Name, `must be spec.names.plural+"."+spec.group`))
		}
	}
	// An unchanged spec is not validated again: rules tightened since it
	// was stored must not block writes of metadata and status, such as the
	// removal of the cleanup finalizer (upstream ratchets most of them).
	if old == nil || !apiequality.Semantic.DeepEqual(crd.Spec, old.Spec) {
		allErrs = append(allErrs, validateCRDSpec(&crd.Spec, old, specPath)...)
	}
	if old != nil {
		if crdConditionTrue(old, apiextensionsv1.Established) {
			allErrs = append(allErrs, apivalidation.ValidateImmutableField(crd.Spec.Scope, old.Spec.Scope, specPath.Child("scope"))...)
			allErrs = append(allErrs, apivalidation.ValidateImmutableField(crd.Spec.Names.Kind, old.Spec.Names.Kind, specPath.Child("names", "kind"))...)
		}
		allErrs = append(allErrs, apivalidation.ValidateImmutableField(crd.Spec.Group, old.Spec.Group, specPath.Child("group"))...)
		allErrs = append(allErrs, apivalidation.ValidateImmutableField(crd.Spec.Names.Plural, old.Spec.Names.Plural, specPath.Child("names", "plural"))...)
	}
	statusPath := field.NewPath("status")
	allErrs = append(allErrs, validateCRDNames(&crd.Status.AcceptedNames, statusPath.Child("acceptedNames"))...)
	allErrs = append(allErrs, validateStoredVersions(crd.Status.StoredVersions, crd.Spec.Versions, statusPath.Child("storedVersions"))...)
	allErrs = append(allErrs, validateAPIApproval(crd, old)...)
	if (old == nil || !old.Spec.PreserveUnknownFields) && crd.Spec.PreserveUnknownFields {
		allErrs = append(allErrs, field.Invalid(specPath.Child("preserveUnknownFields"), crd.Spec.PreserveUnknownFields,
			"cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"))
	}
	return dedupeErrors(allErrs)
}

// dedupeErrors drops repeated errors (same type, field and detail), which
// arise where the schema package checks something this file checks too.
func dedupeErrors(errs field.ErrorList) field.ErrorList {
	seen := map[string]bool{}
	out := errs[:0]
	for _, e := range errs {
		k := string(e.Type) + "\x00" + e.Field + "\x00" + e.Detail
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}

func validateCRDSpec(spec *apiextensionsv1.CustomResourceDefinitionSpec, old *apiextensionsv1.CustomResourceDefinition, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	view := newCRDSpecView(spec)

	switch {
	case spec.Group == "":
		allErrs = append(allErrs, field.Required(fldPath.Child("group"), ""))
	case len(validation.IsDNS1123Subdomain(spec.Group)) > 0:
		allErrs = append(allErrs, field.Invalid(fldPath.Child("group"), spec.Group, strings.Join(validation.IsDNS1123Subdomain(spec.Group), ",")))
	case !strings.Contains(spec.Group, "."):
		allErrs = append(allErrs, field.Invalid(fldPath.Child("group"), spec.Group, "should be a domain with at least one dot"))
	}
	allErrs = append(allErrs, validateEnum(fldPath.Child("scope"), string(spec.Scope),
		[]string{string(apiextensionsv1.ClusterScoped), string(apiextensionsv1.NamespaceScoped)})...)

	// Every version needs a schema, unless the stored CRD already lacked
	// one (upstream does not tighten validation of persisted data).
	requireSchema := old == nil || allVersionsHaveSchema(&old.Spec)
	for i := range spec.Versions {
		if view.versionSchema(i) == nil && (requireSchema || (spec.Versions[i].Served && !spec.PreserveUnknownFields)) {
			detail := ""
			if !requireSchema {
				detail = "because otherwise all fields are pruned"
			}
			allErrs = append(allErrs, field.Required(fldPath.Child("versions").Index(i).Child("schema", "openAPIV3Schema"), detail))
		}
	}
	if spec.PreserveUnknownFields && specHasDefaults(spec) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("preserveUnknownFields"), true, "must be false in order to use defaults in the schema"))
	}

	storage := 0
	seen := map[string]bool{}
	unique := true
	for i := range spec.Versions {
		ver := &spec.Versions[i]
		verPath := fldPath.Child("versions").Index(i)
		if ver.Storage {
			storage++
		}
		if seen[ver.Name] {
			unique = false
		}
		seen[ver.Name] = true
		if errs := validation.IsDNS1035Label(ver.Name); len(errs) > 0 {
			allErrs = append(allErrs, field.Invalid(verPath.Child("name"), ver.Name, strings.Join(errs, ",")))
		}
		for _, msg := range validateDeprecationWarning(ver.Deprecated, ver.DeprecationWarning) {
			allErrs = append(allErrs, field.Invalid(verPath.Child("deprecationWarning"), ver.DeprecationWarning, msg))
		}
		if !view.schemaShared {
			allErrs = append(allErrs, validateCRDValidation(ver.Schema, view.statusEnabled(i), verPath.Child("schema"))...)
		}
		if !view.subresShared {
			allErrs = append(allErrs, validateSubresources(ver.Subresources, verPath.Child("subresources"))...)
		}
		if !view.colsShared {
			for j := range ver.AdditionalPrinterColumns {
				allErrs = append(allErrs, validateColumn(&ver.AdditionalPrinterColumns[j], verPath.Child("additionalPrinterColumns").Index(j))...)
			}
		}
		if !view.fieldsShared && len(ver.SelectableFields) > 0 {
			if s := view.versionSchema(i); s == nil {
				allErrs = append(allErrs, field.Invalid(verPath.Child("selectableFields"), "", "may only be set when `version.schema.openAPIV3Schema` is not included"))
			} else {
				allErrs = append(allErrs, validateSelectableFields(ver.SelectableFields, s, verPath.Child("selectableFields"), tooManyFieldsAllowed(old, ver.Name, ver.SelectableFields))...)
			}
		}
	}
	if len(spec.Versions) > 0 {
		if view.schemaShared {
			allErrs = append(allErrs, validateCRDValidation(view.schema, view.anyStatusEnabled(), fldPath.Child("validation"))...)
		}
		if view.subresShared {
			allErrs = append(allErrs, validateSubresources(view.subres, fldPath.Child("subresources"))...)
		}
		if view.colsShared {
			for j := range view.columns {
				allErrs = append(allErrs, validateColumn(&view.columns[j], fldPath.Child("additionalPrinterColumns").Index(j))...)
			}
		}
		if view.fieldsShared && len(view.fields) > 0 {
			if view.schema == nil || view.schema.OpenAPIV3Schema == nil {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("selectableFields"), "", "may only be set when validations.schema is included"))
			} else {
				allErrs = append(allErrs, validateSelectableFields(view.fields, view.schema.OpenAPIV3Schema, fldPath.Child("selectableFields"), tooManyFieldsAllowed(old, "", view.fields))...)
			}
		}
	}
	if !unique {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("versions"), spec.Versions, "must contain unique version names"))
	}
	if storage != 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("versions"), spec.Versions, "must have exactly one version marked as storage version"))
	}

	namesPath := fldPath.Child("names")
	for _, req := range []struct{ name, value string }{
		{"plural", spec.Names.Plural}, {"singular", spec.Names.Singular},
		{"kind", spec.Names.Kind}, {"listKind", spec.Names.ListKind},
	} {
		if req.value == "" {
			allErrs = append(allErrs, field.Required(namesPath.Child(req.name), ""))
		}
	}
	allErrs = append(allErrs, validateCRDNames(&spec.Names, namesPath)...)

	if spec.Conversion != nil && spec.Conversion.Strategy != apiextensionsv1.NoneConverter && spec.PreserveUnknownFields {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("conversion", "strategy"), spec.Conversion.Strategy, "must be None if spec.preserveUnknownFields is true"))
	}
	allErrs = append(allErrs, validateConversion(spec.Conversion, old, fldPath.Child("conversion"))...)
	return allErrs
}

// validateEnum requires value to be one of accepted.
func validateEnum(fldPath *field.Path, value string, accepted []string) field.ErrorList {
	if value == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	if !slices.Contains(accepted, value) {
		return field.ErrorList{field.NotSupported(fldPath, value, accepted)}
	}
	return nil
}

// allVersionsHaveSchema reports whether every version of spec has an
// openAPIV3Schema.
func allVersionsHaveSchema(spec *apiextensionsv1.CustomResourceDefinitionSpec) bool {
	for _, v := range spec.Versions {
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			return false
		}
	}
	return true
}

// specHasDefaults reports whether some version's schema has a default.
func specHasDefaults(spec *apiextensionsv1.CustomResourceDefinitionSpec) bool {
	for _, v := range spec.Versions {
		if v.Schema != nil && schema.Has(v.Schema.OpenAPIV3Schema, func(s *apiextensionsv1.JSONSchemaProps) bool { return s.Default != nil }) {
			return true
		}
	}
	return false
}

// validateDeprecationWarning checks a version's deprecationWarning.
func validateDeprecationWarning(deprecated bool, warning *string) []string {
	if !deprecated && warning != nil {
		return []string{"can only be set for deprecated versions"}
	}
	if warning == nil {
		return nil
	}
	var msgs []string
	if len(*warning) > 256 {
		msgs = append(msgs, "must be <= 256 characters long")
	}
	if len(*warning) == 0 {
		msgs = append(msgs, "must not be an empty string")
	}
	for i, r := range *warning {
		if !unicode.IsPrint(r) {
			msgs = append(msgs, fmt.Sprintf("must only contain printable UTF-8 characters; non-printable character found at index %d", i))
			break
		}
		if unicode.IsControl(r) {
			msgs = append(msgs, fmt.Sprintf("must only contain printable UTF-8 characters; control character found at index %d", i))
			break
		}
	}
	if !utf8.ValidString(*warning) {
		msgs = append(msgs, "must only contain printable UTF-8 characters")
	}
	return msgs
}

// allowedAtRootWithStatus are the JSONSchemaProps fields a root schema may
// set when the status subresource is enabled (so that the status schema
// can be taken out as properties["status"] without losing validation).
var allowedAtRootWithStatus = []string{"Description", "Type", "Format", "Title", "Maximum", "ExclusiveMaximum", "Minimum", "ExclusiveMinimum", "MaxLength", "MinLength", "Pattern", "MaxItems", "MinItems", "UniqueItems", "MultipleOf", "Required", "Items", "Properties", "ExternalDocs", "Example", "XPreserveUnknownFields", "XValidations"}

// validateCRDValidation validates a schema (fldPath: ….schema or
// spec.validation): the root rules here, the rest in package schema.
func validateCRDValidation(v *apiextensionsv1.CustomResourceValidation, statusEnabled bool, fldPath *field.Path) field.ErrorList {
	if v == nil || v.OpenAPIV3Schema == nil {
		return nil
	}
	s := v.OpenAPIV3Schema
	var allErrs field.ErrorList
	if statusEnabled {
		rv := reflect.ValueOf(s).Elem()
		for i := 0; i < rv.NumField(); i++ {
			if rv.Field(i).IsZero() {
				continue
			}
			name := rv.Type().Field(i).Name
			if name == "Type" {
				if s.Type != "object" {
					allErrs = append(allErrs, field.Invalid(fldPath.Child("openAPIV3Schema.type"), s.Type, `only "object" is allowed as the type at the root of the schema if the status subresource is enabled`))
					break
				}
				continue
			}
			if !slices.Contains(allowedAtRootWithStatus, name) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("openAPIV3Schema"), *s, fmt.Sprintf(`only %v fields are allowed at the root of the schema if the status subresource is enabled`, allowedAtRootWithStatus)))
				break
			}
		}
	}
	if s.Nullable {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("openAPIV3Schema.nullable"), `nullable cannot be true at the root`))
	}
	allErrs = append(allErrs, schema.ValidateCRDSchema(fldPath.Child("openAPIV3Schema"), s)...)
	// CEL rules (x-kubernetes-validations) must compile; rules calling
	// functions skiff does not provide are accepted and not enforced
	// (the serving side warns about them).
	_, celErrs := cel.CompileAt(fldPath.Child("openAPIV3Schema"), s)
	return append(allErrs, celErrs...)
}

// validateSubresources checks the scale subresource's paths.
func validateSubresources(s *apiextensionsv1.CustomResourceSubresources, fldPath *field.Path) field.ErrorList {
	if s == nil || s.Scale == nil {
		return nil
	}
	var allErrs field.ErrorList
	checkPath := func(p string, name string, prefixes []string, under string) {
		pp := fldPath.Child("scale." + name)
		if errs := validateSimpleJSONPath(p, pp); len(errs) > 0 {
			allErrs = append(allErrs, errs...)
			return
		}
		for _, prefix := range prefixes {
			if strings.HasPrefix(p, prefix) {
				return
			}
		}
		allErrs = append(allErrs, field.Invalid(pp, p, "should be a json path under "+under))
	}
	if s.Scale.SpecReplicasPath == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("scale.specReplicasPath"), ""))
	} else {
		checkPath(s.Scale.SpecReplicasPath, "specReplicasPath", []string{".spec."}, ".spec")
	}
	if s.Scale.StatusReplicasPath == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("scale.statusReplicasPath"), ""))
	} else {
		checkPath(s.Scale.StatusReplicasPath, "statusReplicasPath", []string{".status."}, ".status")
	}
	if p := s.Scale.LabelSelectorPath; p != nil && *p != "" {
		checkPath(*p, "labelSelectorPath", []string{".spec.", ".status."}, "either .spec or .status")
	}
	return allErrs
}

// validateSimpleJSONPath checks a ".a.b.c" path.
func validateSimpleJSONPath(s string, fldPath *field.Path) field.ErrorList {
	switch {
	case s == "":
		return field.ErrorList{field.Invalid(fldPath, s, "must not be empty")}
	case s[0] != '.':
		return field.ErrorList{field.Invalid(fldPath, s, "must be a simple json path starting with .")}
	}
	return nil
}

// Printer column types and formats upstream accepts.
var (
	crdColumnTypes   = []string{"boolean", "date", "integer", "number", "string"}
	crdColumnFormats = []string{"byte", "date", "date-time", "double", "float", "int32", "int64", "password"}
)

// validateColumn checks one additionalPrinterColumns entry.
func validateColumn(col *apiextensionsv1.CustomResourceColumnDefinition, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if col.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	}
	typesMsg := "must be one of " + strings.Join(crdColumnTypes, ",")
	switch {
	case col.Type == "":
		allErrs = append(allErrs, field.Required(fldPath.Child("type"), typesMsg))
	case !slices.Contains(crdColumnTypes, col.Type):
		allErrs = append(allErrs, field.Invalid(fldPath.Child("type"), col.Type, typesMsg))
	}
	if col.Format != "" && !slices.Contains(crdColumnFormats, col.Format) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("format"), col.Format, "must be one of "+strings.Join(crdColumnFormats, ",")))
	}
	if col.JSONPath == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("JSONPath"), ""))
	} else {
		allErrs = append(allErrs, validateSimpleJSONPath(col.JSONPath, fldPath.Child("JSONPath"))...)
	}
	return allErrs
}

// maxSelectableFields is upstream's limit of selectable fields per version.
const maxSelectableFields = 8

// tooManyFieldsAllowed reports whether more than maxSelectableFields are
// accepted: only when the stored CRD already had as many, unchanged.
// version "" means the fields shared by every version.
func tooManyFieldsAllowed(old *apiextensionsv1.CustomResourceDefinition, version string, fields []apiextensionsv1.SelectableField) bool {
	if old == nil {
		return false
	}
	oldView := newCRDSpecView(&old.Spec)
	if version == "" {
		return oldView.fieldsShared && len(oldView.fields) > maxSelectableFields && apiequality.Semantic.DeepEqual(fields, oldView.fields)
	}
	for _, v := range old.Spec.Versions {
		if v.Name == version {
			return len(v.SelectableFields) > maxSelectableFields && apiequality.Semantic.DeepEqual(fields, v.SelectableFields)
		}
	}
	return false
}

// validateSelectableFields checks selectable fields against the version's
// schema: each a dot path to a string, boolean or integer field outside
// metadata, no duplicates, at most maxSelectableFields.
func validateSelectableFields(fields []apiextensionsv1.SelectableField, s *apiextensionsv1.JSONSchemaProps, fldPath *field.Path, allowTooMany bool) field.ErrorList {
	var allErrs field.ErrorList
	unique := map[string]bool{}
	for i, f := range fields {
		p := fldPath.Index(i).Child("jsonPath")
		if f.JSONPath == "" {
			allErrs = append(allErrs, field.Required(p, ""))
			continue
		}
		segs, found, err := resolveFieldPath(f.JSONPath, s)
		if err != nil {
			allErrs = append(allErrs, field.Invalid(p, f.JSONPath, fmt.Sprintf("is an invalid path: %v", err)))
			continue
		}
		if len(segs) > 0 && segs[0] == "metadata" {
			allErrs = append(allErrs, field.Invalid(p, f.JSONPath, "must not point to fields in metadata"))
		}
		if found == nil || (found.Type != "string" && found.Type != "boolean" && found.Type != "integer") {
			allErrs = append(allErrs, field.Invalid(p, f.JSONPath, "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."))
		}
		key := strings.Join(segs, "\x00")
		if unique[key] {
			allErrs = append(allErrs, field.Duplicate(p, f.JSONPath))
		} else {
			unique[key] = true
		}
	}
	if len(unique) > maxSelectableFields && !allowTooMany {
		allErrs = append(allErrs, field.TooMany(fldPath, len(unique), maxSelectableFields))
	}
	return allErrs
}

// resolveFieldPath walks a dot-notation path (".spec.color") through s,
// through properties or, for maps, additionalProperties, and returns its
// segments and the schema it ends at. Array notation is not allowed in
// selectable fields.
func resolveFieldPath(jsonPath string, s *apiextensionsv1.JSONSchemaProps) ([]string, *apiextensionsv1.JSONSchemaProps, error) {
	if strings.ContainsAny(jsonPath, "[]") {
		return nil, nil, fmt.Errorf("array notation is not allowed")
	}
	if !strings.HasPrefix(jsonPath, ".") {
		return nil, nil, fmt.Errorf("expected [ or . but got: %s", strings.SplitN(jsonPath, ".", 2)[0])
	}
	var segs []string
	for _, seg := range strings.Split(jsonPath[1:], ".") {
		if seg == "" {
			return nil, nil, fmt.Errorf("unexpected end of JSON path")
		}
		switch {
		case len(s.Properties) > 0:
			p, ok := s.Properties[seg]
			if !ok {
				return nil, nil, fmt.Errorf("does not refer to a valid field")
			}
			s = &p
		case s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
			s = s.AdditionalProperties.Schema
		default:
			return nil, nil, fmt.Errorf("does not refer to a valid field")
		}
		segs = append(segs, seg)
	}
	return segs, s, nil
}

// Conversion review versions upstream's server understands.
var acceptedReviewVersions = []string{"v1", "v1beta1"}

// validateConversion validates spec.conversion. The webhook settings are
// reported at upstream's internal paths (spec.conversion.webhookClientConfig
// and spec.conversion.conversionReviewVersions).
func validateConversion(c *apiextensionsv1.CustomResourceConversion, old *apiextensionsv1.CustomResourceDefinition, fldPath *field.Path) field.ErrorList {
	if c == nil {
		return nil
	}
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateEnum(fldPath.Child("strategy"), string(c.Strategy),
		[]string{string(apiextensionsv1.NoneConverter), string(apiextensionsv1.WebhookConverter)})...)
	var cc *apiextensionsv1.WebhookClientConfig
	var reviewVersions []string
	if c.Webhook != nil {
		cc, reviewVersions = c.Webhook.ClientConfig, c.Webhook.ConversionReviewVersions
	}
	ccPath := fldPath.Child("webhookClientConfig")
	if c.Strategy != apiextensionsv1.WebhookConverter {
		if cc != nil {
			allErrs = append(allErrs, field.Forbidden(ccPath, "should not be set when strategy is not set to Webhook"))
		}
		if len(reviewVersions) > 0 {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("conversionReviewVersions"), "should not be set when strategy is not set to Webhook"))
		}
		return allErrs
	}
	if cc == nil {
		allErrs = append(allErrs, field.Required(ccPath, "required when strategy is set to Webhook"))
	} else {
		switch {
		case (cc.URL == nil) == (cc.Service == nil):
			allErrs = append(allErrs, field.Required(ccPath, "exactly one of url or service is required"))
		case cc.URL != nil:
			allErrs = append(allErrs, validateWebhookURL(ccPath.Child("url"), *cc.URL)...)
		default:
			allErrs = append(allErrs, validateWebhookService(ccPath.Child("service"), cc.Service)...)
		}
		if len(cc.CABundle) > 0 && !allowInvalidCABundle(old) {
			if _, err := transport.TLSConfigFor(&transport.Config{TLS: transport.TLSConfig{CAData: cc.CABundle}}); err != nil {
				allErrs = append(allErrs, field.Invalid(ccPath.Child("caBundle"), cc.CABundle, err.Error()))
			}
		}
	}
	requireRecognized := true
	if old != nil && old.Spec.Conversion != nil && old.Spec.Conversion.Webhook != nil {
		requireRecognized = hasAcceptedReviewVersionOrEmpty(old.Spec.Conversion.Webhook.ConversionReviewVersions)
	}
	allErrs = append(allErrs, validateReviewVersions(reviewVersions, requireRecognized, fldPath.Child("conversionReviewVersions"))...)
	return allErrs
}

// allowInvalidCABundle: an invalid caBundle is accepted on create, before
// the CRD is established, and when the stored one is invalid already.
func allowInvalidCABundle(old *apiextensionsv1.CustomResourceDefinition) bool {
	if old == nil || !crdConditionTrue(old, apiextensionsv1.Established) {
		return true
	}
	c := old.Spec.Conversion
	if c == nil || c.Webhook == nil || c.Webhook.ClientConfig == nil || len(c.Webhook.ClientConfig.CABundle) == 0 {
		return false
	}
	_, err := transport.TLSConfigFor(&transport.Config{TLS: transport.TLSConfig{CAData: c.Webhook.ClientConfig.CABundle}})
	return err != nil
}

func hasAcceptedReviewVersionOrEmpty(versions []string) bool {
	if len(versions) == 0 {
		return true
	}
	for _, v := range versions {
		if slices.Contains(acceptedReviewVersions, v) {
			return true
		}
	}
	return false
}

func validateReviewVersions(versions []string, requireRecognized bool, fldPath *field.Path) field.ErrorList {
	if len(versions) == 0 {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	var allErrs field.ErrorList
	seen := map[string]bool{}
	accepted := false
	for i, v := range versions {
		if seen[v] {
			allErrs = append(allErrs, field.Invalid(fldPath.Index(i), v, "duplicate version"))
			continue
		}
		seen[v] = true
		for _, msg := range validation.IsDNS1035Label(v) {
			allErrs = append(allErrs, field.Invalid(fldPath.Index(i), v, msg))
		}
		if slices.Contains(acceptedReviewVersions, v) {
			accepted = true
		}
	}
	if requireRecognized && !accepted {
		allErrs = append(allErrs, field.Invalid(fldPath, versions, "must include at least one of "+strings.Join(acceptedReviewVersions, ", ")))
	}
	return allErrs
}

// validateWebhookURL checks a conversion webhook URL as upstream does for
// every webhook: https, a host, no user info, fragment or query.
func validateWebhookURL(fldPath *field.Path, raw string) field.ErrorList {
	const form = "; desired format: https://host[/path]"
	u, err := url.Parse(raw)
	if err != nil {
		return field.ErrorList{field.Required(fldPath, "url must be a valid URL: "+err.Error()+form)}
	}
	var allErrs field.ErrorList
	if u.Scheme != "https" {
		allErrs = append(allErrs, field.Invalid(fldPath, u.Scheme, "'https' is the only allowed URL scheme"+form))
	}
	if u.Host == "" {
		allErrs = append(allErrs, field.Invalid(fldPath, u.Host, "host must be specified"+form))
	}
	if u.User != nil {
		allErrs = append(allErrs, field.Invalid(fldPath, u.User.String(), "user information is not permitted in the URL"))
	}
	if u.Fragment != "" {
		allErrs = append(allErrs, field.Invalid(fldPath, u.Fragment, "fragments are not permitted in the URL"))
	}
	if u.RawQuery != "" {
		allErrs = append(allErrs, field.Invalid(fldPath, u.RawQuery, "query parameters are not permitted in the URL"))
	}
	return allErrs
}

// validateWebhookService checks a conversion webhook's service reference.
func validateWebhookService(fldPath *field.Path, svc *apiextensionsv1.ServiceReference) field.ErrorList {
	var allErrs field.ErrorList
	if svc.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	}
	if svc.Namespace == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("namespace"), ""))
	}
	port := int32(443)
	if svc.Port != nil {
		port = *svc.Port
	}
	if errs := validation.IsValidPortNum(int(port)); errs != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("port"), port, "port is not valid: "+strings.Join(errs, ", ")))
	}
	if svc.Path == nil {
		return allErrs
	}
	p := *svc.Path
	if p == "/" || p == "" {
		return allErrs
	}
	if p == "//" {
		return append(allErrs, field.Invalid(fldPath.Child("path"), p, "segment[0] may not be empty"))
	}
	if !strings.HasPrefix(p, "/") {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), p, "must start with a '/'"))
	}
	check := strings.TrimSuffix(p[1:], "/")
	for i, step := range strings.Split(check, "/") {
		if step == "" {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), p, fmt.Sprintf("segment[%d] may not be empty", i)))
			continue
		}
		for _, msg := range validation.IsDNS1123Subdomain(step) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), p, fmt.Sprintf("segment[%d]: %v", i, msg)))
		}
	}
	return allErrs
}

// validateCRDNames checks spec.names or status.acceptedNames: DNS-1035
// labels (kinds may have mixed case), kind ≠ listKind.
func validateCRDNames(n *apiextensionsv1.CustomResourceDefinitionNames, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	label := func(name, value string) {
		if value == "" {
			return
		}
		if errs := validation.IsDNS1035Label(value); len(errs) > 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child(name), value, strings.Join(errs, ",")))
		}
	}
	kind := func(name, value string) {
		if value == "" {
			return
		}
		if errs := validation.IsDNS1035Label(strings.ToLower(value)); len(errs) > 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child(name), value, "may have mixed case, but should otherwise match: "+strings.Join(errs, ",")))
		}
	}
	label("plural", n.Plural)
	label("singular", n.Singular)
	kind("kind", n.Kind)
	kind("listKind", n.ListKind)
	for i, s := range n.ShortNames {
		if errs := validation.IsDNS1035Label(s); len(errs) > 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("shortNames").Index(i), s, strings.Join(errs, ",")))
		}
	}
	if n.Kind != "" && n.Kind == n.ListKind {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("listKind"), n.ListKind, "kind and listKind may not be the same"))
	}
	for i, c := range n.Categories {
		if errs := validation.IsDNS1035Label(c); len(errs) > 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("categories").Index(i), c, strings.Join(errs, ",")))
		}
	}
	return allErrs
}

// validateStoredVersions: status.storedVersions is not empty, holds the
// storage version, and every version in it is still in spec.versions.
func validateStoredVersions(stored []string, versions []apiextensionsv1.CustomResourceDefinitionVersion, fldPath *field.Path) field.ErrorList {
	if len(stored) == 0 {
		return field.ErrorList{field.Invalid(fldPath, stored, "must have at least one stored version")}
	}
	var allErrs field.ErrorList
	index := map[string]int{}
	for i, v := range stored {
		index[v] = i
	}
	for _, v := range versions {
		_, ok := index[v.Name]
		if v.Storage && !ok {
			allErrs = append(allErrs, field.Invalid(fldPath, stored, "must have the storage version "+v.Name))
		}
		delete(index, v.Name)
	}
	missing := make([]string, 0, len(index))
	for v := range index {
		missing = append(missing, v)
	}
	sort.Slice(missing, func(a, b int) bool { return index[missing[a]] < index[missing[b]] })
	for _, v := range missing {
		allErrs = append(allErrs, field.Invalid(fldPath.Index(index[v]), v, fmt.Sprintf("missing from spec.versions; %[1]s was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in %[1]s and removes %[1]s from status.storedVersions", v)))
	}
	return allErrs
}

// validateAPIApproval requires the api-approved.kubernetes.io annotation on
// CRDs of the protected groups (k8s.io, kubernetes.io and their
// subdomains), unless its state is unchanged by an update.
func validateAPIApproval(crd, old *apiextensionsv1.CustomResourceDefinition) field.ErrorList {
	g := crd.Spec.Group
	if g != "k8s.io" && !strings.HasSuffix(g, ".k8s.io") && g != "kubernetes.io" && !strings.HasSuffix(g, ".kubernetes.io") {
		return nil
	}
	state, reason := apiApprovalState(crd.Annotations)
	if old != nil {
		if oldState, _ := apiApprovalState(old.Annotations); oldState == state {
			return nil
		}
	}
	p := field.NewPath("metadata", "annotations").Key(apiextensionsv1.KubeAPIApprovedAnnotation)
	switch state {
	case approvalMissing:
		return field.ErrorList{field.Required(p, reason)}
	case approvalInvalid:
		return field.ErrorList{field.Invalid(p, crd.Annotations[apiextensionsv1.KubeAPIApprovedAnnotation], reason)}
	}
	return nil
}

type approvalState int

const (
	approvalInvalid approvalState = iota
	approvalApproved
	approvalBypassed
	approvalMissing
)

func apiApprovalState(annotations map[string]string) (approvalState, string) {
	a := annotations[apiextensionsv1.KubeAPIApprovedAnnotation]
	u, err := url.ParseRequestURI(a)
	switch {
	case a == "":
		return approvalMissing, fmt.Sprintf("protected groups must have approval annotation %q, see https://github.com/kubernetes/enhancements/pull/1111", apiextensionsv1.KubeAPIApprovedAnnotation)
	case strings.HasPrefix(a, "unapproved"):
		return approvalBypassed, fmt.Sprintf("not approved: %q", a)
	case err == nil && u.Host != "" && u.Scheme != "":
		return approvalApproved, fmt.Sprintf("approved in %v", a)
	default:
		return approvalInvalid, fmt.Sprintf("protected groups must have approval annotation %q with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111", apiextensionsv1.KubeAPIApprovedAnnotation)
	}
}
