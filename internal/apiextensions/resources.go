package apiextensions

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/util/jsonpath"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-dev/skiff/internal/apiextensions/cel"
	crdschema "github.com/skiff-dev/skiff/internal/apiextensions/schema"
	"github.com/skiff-dev/skiff/internal/registry"
)

// customResource is what serving one version of a CRD needs.
type customResource struct {
	res *registry.Resource
	// storage is true for the version objects are stored in.
	storage bool
	// validator is the version's schema.
	validator *crdschema.Validator
	// skipped are the version's CEL rules that are not enforced (they
	// call functions skiff does not provide).
	skipped []string
}

// resourcesOf builds the registry.Resource of every served version of crd,
// storage version first. A CRD that is being deleted serves every verb but
// create, as upstream.
func resourcesOf(crd *apiextensionsv1.CustomResourceDefinition) ([]customResource, error) {
	names := crd.Status.AcceptedNames
	terminating := crd.DeletionTimestamp != nil
	// Selectors may name the selectable fields of any version: the versions
	// share one storage, whose field sets carry all of them.
	var allFields []string
	for _, v := range crd.Spec.Versions {
		for _, f := range v.SelectableFields {
			allFields = append(allFields, strings.TrimPrefix(f.JSONPath, "."))
		}
	}
	var out []customResource
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		var s *apiextensionsv1.JSONSchemaProps
		if v.Schema != nil {
			s = v.Schema.OpenAPIV3Schema
		}
		val, err := crdschema.NewValidator(s)
		if err != nil {
			return nil, fmt.Errorf("schema of %s version %s: %w", crd.Name, v.Name, err)
		}
		var rules *cel.Validator
		if s != nil {
			var errs field.ErrorList
			if rules, errs = cel.Compile(s); len(errs) > 0 {
				// The CRD's validation refuses rules that do not
				// compile; one stored before that is served without.
				return nil, fmt.Errorf("rules of %s version %s: %w", crd.Name, v.Name, errs.ToAggregate())
			}
		}
		st := &strategy{
			gvk:        schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: names.Kind},
			listKind:   names.ListKind,
			validator:  val,
			rules:      rules,
			hasStatus:  v.Subresources != nil && v.Subresources.Status != nil,
			fields:     allFields,
			table:      tableOf(v.AdditionalPrinterColumns),
			versionSel: versionFields(v),
		}
		res := &registry.Resource{
			GVR:        schema.GroupVersionResource{Group: crd.Spec.Group, Version: v.Name, Resource: names.Plural},
			Kind:       names.Kind,
			ListKind:   names.ListKind,
			Singular:   names.Singular,
			ShortNames: names.ShortNames,
			Categories: names.Categories,
			Namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped,
			Status:     st.hasStatus,
			// A status write changes only status, as upstream's.
			StatusResetsMetadata: true,
			Strategy:             st,
			Unstructured:         true,
			Prune: func(obj runtime.Object) []string {
				u, ok := obj.(*unstructured.Unstructured)
				if !ok {
					return nil
				}
				return append(crdschema.PruneObjectMeta(u.Object), val.Prune(u.Object)...)
			},
		}
		res.TypeConverter = typeConverter(s, res.GroupVersionKind())
		if terminating {
			res.Verbs = []string{"get", "list", "watch", "update", "patch", "delete", "deletecollection"}
		}
		if v.Subresources != nil && v.Subresources.Scale != nil {
			res.Scale = scaleOf(v.Subresources.Scale)
			st.specReplicas = splitPath(v.Subresources.Scale.SpecReplicasPath)
			st.statusReplicas = splitPath(v.Subresources.Scale.StatusReplicasPath)
		}
		cr := customResource{res: res, storage: v.Storage, validator: val}
		if rules != nil {
			cr.skipped = rules.Skipped()
		}
		if v.Storage {
			out = append([]customResource{cr}, out...)
		} else {
			out = append(out, cr)
		}
	}
	return out, nil
}

// typeConverter gives server-side apply the structure of a version's
// objects from its schema (list types and map keys, atomic and granular
// maps), as upstream builds it for custom resources; metadata is left for
// the field manager to deduce. It is nil (deduce everything) without a
// schema or when the schema cannot be converted.
func typeConverter(s *apiextensionsv1.JSONSchemaProps, gvk schema.GroupVersionKind) managedfields.TypeConverter {
	if s == nil {
		return nil
	}
	sp, err := crdschema.ToSpec(s)
	if err != nil {
		return nil
	}
	if sp.Properties == nil {
		sp.Properties = map[string]spec.Schema{}
	}
	for _, k := range []string{"apiVersion", "kind"} {
		if _, ok := sp.Properties[k]; !ok {
			sp.Properties[k] = *spec.StringProperty()
		}
	}
	md := spec.Schema{}
	md.Type = []string{"object"}
	md.AddExtension("x-kubernetes-preserve-unknown-fields", true)
	sp.Properties["metadata"] = md
	sp.AddExtension("x-kubernetes-group-version-kind", []any{
		map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind},
	})
	tc, err := managedfields.NewTypeConverter(map[string]*spec.Schema{gvk.String(): sp}, false)
	if err != nil {
		return nil
	}
	return tc
}

// versionFields lists the field labels version v's selectors accept.
func versionFields(v apiextensionsv1.CustomResourceDefinitionVersion) []string {
	out := []string{"metadata.name", "metadata.namespace"}
	for _, f := range v.SelectableFields {
		out = append(out, strings.TrimPrefix(f.JSONPath, "."))
	}
	return out
}

// strategy is the registry.Strategy of one version of a custom resource.
type strategy struct {
	gvk        schema.GroupVersionKind
	listKind   string
	validator  *crdschema.Validator
	rules      *cel.Validator // nil without a schema
	hasStatus  bool
	fields     []string // selectable fields of every version ("spec.color")
	versionSel []string // field labels this version accepts
	table      *registry.Table
	// specReplicas and statusReplicas are the scale subresource's
	// replica paths; nil without one.
	specReplicas, statusReplicas []string
}

var _ registry.Strategy = (*strategy)(nil)

func (s *strategy) New() runtime.Object {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(s.gvk)
	return u
}

func (s *strategy) NewList() runtime.Object {
	l := &unstructured.UnstructuredList{Object: map[string]any{}}
	l.SetGroupVersionKind(s.gvk.GroupVersion().WithKind(s.listKind))
	return l
}

func content(obj runtime.Object) map[string]any {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		if u.Object == nil {
			u.Object = map[string]any{}
		}
		return u.Object
	}
	return nil
}

// PrepareForCreate drops status when the status subresource owns it, as
// upstream.
func (s *strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	if s.hasStatus {
		delete(content(obj), "status")
	}
}

// PrepareForUpdate: the store carries status over when the status
// subresource owns it; nothing else is reserved.
func (s *strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {}

// PrepareForStatusUpdate: the store carries over all but status.
func (s *strategy) PrepareForStatusUpdate(_ context.Context, obj, old runtime.Object) {}

func (s *strategy) Default(obj runtime.Object) {
	if c := content(obj); c != nil {
		s.validator.Default(c)
	}
}

func (s *strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	c := content(obj)
	if c == nil {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("unexpected object type %T", obj))}
	}
	errs := s.validator.Validate(c)
	errs = append(errs, s.celRules(c, nil)...)
	return append(errs, s.validateReplicas(c, s.specReplicas)...)
}

// celRules evaluates the version's CEL rules (x-kubernetes-validations);
// old is nil on create.
func (s *strategy) celRules(obj, old map[string]any) field.ErrorList {
	if s.rules == nil {
		return nil
	}
	return s.rules.Validate(obj, old)
}

// ValidateUpdate validates with upstream's ratcheting: errors in values
// the update leaves as they were are not reported, so a schema made
// stricter later does not block unrelated changes.
func (s *strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return s.validateUpdate(obj, old, s.specReplicas)
}

// ValidateStatusUpdate is ValidateUpdate checking the scale subresource's
// status replicas instead of its spec replicas.
func (s *strategy) ValidateStatusUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return s.validateUpdate(obj, old, s.statusReplicas)
}

func (s *strategy) validateUpdate(obj, old runtime.Object, replicas []string) field.ErrorList {
	c, o := content(obj), content(old)
	if c == nil || o == nil {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("unexpected object types %T, %T", obj, old))}
	}
	errs := s.validator.ValidateUpdate(c, o)
	errs = append(errs, s.celRules(c, o)...)
	return append(errs, s.validateReplicas(c, replicas)...)
}

// validateReplicas checks the replica count at path (a scale
// subresource's spec or status path), when there is one: an integer
// from 0 to 2^31-1, as upstream's custom resource validation does.
func (s *strategy) validateReplicas(obj map[string]any, path []string) field.ErrorList {
	if len(path) == 0 {
		return nil
	}
	v, found, err := unstructured.NestedFieldNoCopy(obj, path...)
	if err != nil || !found {
		return nil
	}
	fp := field.NewPath(path[0], path[1:]...)
	n, ok := v.(int64)
	if !ok {
		return field.ErrorList{field.Invalid(fp, v, "should be an integer")}
	}
	if n < 0 {
		return field.ErrorList{field.Invalid(fp, n, "should be a non-negative integer")}
	}
	if n > math.MaxInt32 {
		return field.ErrorList{field.Invalid(fp, n, "should be less than or equal to 2147483647")}
	}
	return nil
}

func (s *strategy) ValidateName(name string, prefix bool) []string {
	return registry.NameIsDNSSubdomain(name, prefix)
}

// Attrs gives labels, metadata.name, metadata.namespace and the
// selectable fields, rendered as upstream does (strings as they are,
// integers and booleans in their JSON form; absent fields are empty).
func (s *strategy) Attrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, nil, fmt.Errorf("reading attributes: unexpected type %T", obj)
	}
	fs := fields.Set{
		"metadata.name":      u.GetName(),
		"metadata.namespace": u.GetNamespace(),
	}
	for _, f := range s.fields {
		v, found, err := unstructured.NestedFieldNoCopy(u.Object, strings.Split(f, ".")...)
		if err != nil || !found {
			fs[f] = ""
			continue
		}
		switch t := v.(type) {
		case string:
			fs[f] = t
		case int64:
			fs[f] = strconv.FormatInt(t, 10)
		case float64:
			fs[f] = strconv.FormatFloat(t, 'f', -1, 64)
		case bool:
			fs[f] = strconv.FormatBool(t)
		default:
			fs[f] = ""
		}
	}
	return labels.Set(u.GetLabels()), fs, nil
}

func (s *strategy) FieldLabels() []string { return s.versionSel }

func (s *strategy) Table() *registry.Table { return s.table }

func (s *strategy) GracefulDeletion(runtime.Object, *int64) (int64, bool) { return 0, false }

// scaleOf reads and writes the replica paths of a scale subresource
// (".spec.replicas" and the like: dotted paths without indices).
func scaleOf(sc *apiextensionsv1.CustomResourceSubresourceScale) *registry.ScaleAccessor {
	specPath := splitPath(sc.SpecReplicasPath)
	statusPath := splitPath(sc.StatusReplicasPath)
	var selectorPath []string
	if sc.LabelSelectorPath != nil {
		selectorPath = splitPath(*sc.LabelSelectorPath)
	}
	return &registry.ScaleAccessor{
		Get: func(obj runtime.Object) (int32, int32, string) {
			c := content(obj)
			spec, _, _ := unstructured.NestedInt64(c, specPath...)
			status, _, _ := unstructured.NestedInt64(c, statusPath...)
			var sel string
			if selectorPath != nil {
				sel, _, _ = unstructured.NestedString(c, selectorPath...)
			}
			return int32(spec), int32(status), sel
		},
		SetReplicas: func(obj runtime.Object, replicas int32) {
			_ = unstructured.SetNestedField(content(obj), int64(replicas), specPath...)
		},
	}
}

func splitPath(p string) []string {
	return strings.Split(strings.TrimPrefix(p, "."), ".")
}

// ageColumn is what a version without additionalPrinterColumns prints
// after the name, as upstream.
var ageColumn = apiextensionsv1.CustomResourceColumnDefinition{
	Name:        "Age",
	Type:        "date",
	Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"],
	JSONPath:    ".metadata.creationTimestamp",
}

// tableOf is the server-side table of a version: the name, then its
// additionalPrinterColumns (or Age), each cell found by the column's
// JSONPath and rendered by its type as upstream does.
func tableOf(columns []apiextensionsv1.CustomResourceColumnDefinition) *registry.Table {
	if len(columns) == 0 {
		columns = []apiextensionsv1.CustomResourceColumnDefinition{ageColumn}
	}
	defs := []metav1.TableColumnDefinition{{
		Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"],
	}}
	paths := make([]*jsonpath.JSONPath, len(columns))
	for i, c := range columns {
		defs = append(defs, metav1.TableColumnDefinition{
			Name: c.Name, Type: c.Type, Format: c.Format, Description: c.Description, Priority: c.Priority,
		})
		jp := jsonpath.New(c.Name)
		if err := jp.Parse(fmt.Sprintf("{%s}", c.JSONPath)); err == nil {
			jp.AllowMissingKeys(true)
			paths[i] = jp
		}
	}
	return &registry.Table{
		Columns: defs,
		Row: func(obj runtime.Object) []any {
			u, _ := obj.(*unstructured.Unstructured)
			cells := make([]any, 0, len(columns)+1)
			if u == nil {
				return append(cells, "")
			}
			cells = append(cells, u.GetName())
			for i, c := range columns {
				cells = append(cells, cell(paths[i], c.Type, u.Object))
			}
			return cells
		},
	}
}

// cell evaluates one column for one object: nil when the path finds
// nothing.
func cell(jp *jsonpath.JSONPath, typ string, obj map[string]any) any {
	if jp == nil {
		return nil
	}
	results, err := jp.FindResults(obj)
	if err != nil || len(results) == 0 || len(results[0]) == 0 {
		return nil
	}
	value := results[0][0].Interface()
	if typ == "string" {
		var buf bytes.Buffer
		if err := jp.PrintResults(&buf, []reflect.Value{reflect.ValueOf(value)}); err != nil {
			return nil
		}
		return buf.String()
	}
	return cellValue(typ, value)
}

// cellValue renders a JSON value as a cell of type typ, as upstream:
// numbers of the right kind, booleans, dates as ages; anything else is
// nil.
func cellValue(typ string, value any) any {
	switch typ {
	case "integer":
		switch v := value.(type) {
		case int64:
			return v
		case float64:
			if v == float64(int64(v)) {
				return int64(v)
			}
		}
	case "number":
		switch v := value.(type) {
		case int64:
			return v
		case float64:
			return v
		}
	case "boolean":
		if b, ok := value.(bool); ok {
			return b
		}
	case "date":
		if s, ok := value.(string); ok {
			var t metav1.Time
			if err := t.UnmarshalQueryParameter(s); err != nil {
				return "<invalid>"
			}
			return registry.HumanAge(t, time.Now())
		}
	}
	return nil
}
