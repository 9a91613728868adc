package policy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
	openapispec "k8s.io/kube-openapi/pkg/validation/spec"

	skiffcel "github.com/skiff-dev/skiff/internal/apiextensions/cel"
)

// Type checking: upstream's (kube-apiserver 1.33) status.typeChecking of
// a ValidatingAdmissionPolicy. The expressions of spec.validations
// (expression and messageExpression; nothing else) are compiled once per
// kind the policy matches, with object and oldObject typed after that
// kind's OpenAPI schema and params after the paramKind's, and what the
// type checker finds is a warning ("apps/v1, Kind=Deployment: ERROR:
// <input>:1:22: found no matching overload for '_>_' applied to '(int,
// string)'..."). Evaluation never uses these types: it stays dyn.
//
// Schema to CEL type, as upstream's SchemaDeclType with these differences,
// all in the direction of fewer warnings:
//
//   - x-kubernetes-int-or-string, x-kubernetes-preserve-unknown-fields, an
//     object with neither properties nor an additionalProperties schema, a
//     schema without type and a cycle are dyn (upstream: an object without
//     the unknown fields, or no field at all);
//   - strings are string whatever their format (upstream: byte is bytes,
//     date and date-time timestamp, duration duration), as the values
//     evaluated are, since they come from the JSON form;
//   - property names are used as they are, not escaped (upstream escapes
//     namespace to __namespace__ and '-' to __dash__), as the evaluated
//     values are maps keyed by them;
//   - request, namespaceObject and variables are dyn (upstream types them:
//     AdmissionRequest, Namespace, each variable's type), authorizer is not
//     declared (see the package documentation).

// maxTypesToCheck bounds the kinds a policy is type-checked against, as
// upstream does.
const maxTypesToCheck = 10

// ErrSchemaNotFound is returned (wrapped) by a SchemaResolver that has no
// schema for a kind.
var ErrSchemaNotFound = errors.New("policy: schema not found")

// SchemaResolver finds what type checking needs: the kinds a resource
// is served as and a kind's OpenAPI schema. Implementations are safe for
// concurrent use.
type SchemaResolver interface {
	// ResolveSchema returns gvk's schema with every $ref resolved
	// (a reference cycle replaced by a schema that is dyn:
	// x-kubernetes-preserve-unknown-fields and no type). The schema may be
	// shared: callers never change it. An error wrapping ErrSchemaNotFound
	// when the server does not publish one.
	ResolveSchema(gvk schema.GroupVersionKind) (*openapispec.Schema, error)
	// KindsFor returns the kinds of a fully specified resource (as
	// meta.RESTMapper's KindsFor); an error when it is not known.
	KindsFor(gvr schema.GroupVersionResource) ([]schema.GroupVersionKind, error)
}

// resetter is an optional ability of a SchemaResolver: forgetting what it
// learnt of the served resources. TypeCheck calls it at most once per
// policy, when a resource is not known, and asks again.
type resetter interface {
	Reset()
}

// TypeCheck type-checks the validations of p (expression and
// messageExpression) against every kind its matchConstraints.resourceRules
// name in full (a rule with a wildcard group or version is skipped, as are
// wildcard resources and subresources; at most 10 kinds, sorted by group,
// version and kind), and returns one warning per expression that does not
// type-check against some kind: fieldRef spec.validations[i].expression
// (or .messageExpression), warning "<gvk>: <issues>\n" per kind, joined by
// "\n", as upstream writes them. A kind whose schema cannot be resolved is
// skipped, as upstream does. nil when there is nothing to say (also when
// resolver is nil). The result type of an expression is not checked.
// Costly (OpenAPI reads, one CEL environment per kind): callers do it
// once per policy generation. Safe for concurrent use; p is not changed.
func TypeCheck(ctx context.Context, p *admissionregistrationv1.ValidatingAdmissionPolicy, resolver SchemaResolver) []admissionregistrationv1.ExpressionWarning {
	return typeCheck(ctx, p, resolver, nil)
}

// typeCheck is TypeCheck; log (nil: none) gets, at Debug, the kinds
// skipped for another reason than ErrSchemaNotFound.
func typeCheck(ctx context.Context, p *admissionregistrationv1.ValidatingAdmissionPolicy, resolver SchemaResolver, log *slog.Logger) []admissionregistrationv1.ExpressionWarning {
	skipped := func(gvk schema.GroupVersionKind, err error) {
		if log != nil && !errors.Is(err, ErrSchemaNotFound) {
			log.Debug("type checking skips a kind", "policy", p.Name, "kind", gvk.String(), "err", err)
		}
	}
	if resolver == nil || len(p.Spec.Validations) == 0 {
		return nil
	}
	gvks := kindsToCheck(p, resolver)
	if len(gvks) == 0 {
		return nil
	}
	base, err := typeCheckEnv()
	if err != nil {
		return nil // cannot happen: the environment is static
	}

	// params: the paramKind's type when its schema resolves, else dyn;
	// not declared without a paramKind (as compile.go's environments).
	var params *declaredType
	hasParams := p.Spec.ParamKind != nil
	paramGVK, parsed := policyParamGVK(p)
	if hasParams {
		params = &declaredType{t: cel.DynType}
		if parsed {
			if s, err := resolver.ResolveSchema(paramGVK); err == nil {
				params = newDeclaredType(s, typeName(paramGVK.Kind, ""))
			} else {
				skipped(paramGVK, err)
			}
		}
	}

	type kindEnv struct {
		gvk schema.GroupVersionKind
		env *cel.Env
	}
	var envs []kindEnv
	for _, gvk := range gvks {
		if ctx.Err() != nil {
			return nil
		}
		var object *declaredType
		if params != nil && params.structs != nil && gvk == paramGVK {
			object = params
		} else {
			s, err := resolver.ResolveSchema(gvk)
			if err != nil {
				skipped(gvk, err)
				continue // upstream skips what it cannot resolve
			}
			avoid := ""
			if params != nil && len(params.structs) > 0 {
				avoid = params.t.TypeName()
			}
			object = newDeclaredType(s, typeName(gvk.Kind, avoid))
		}
		env, err := object.extend(base, params)
		if err != nil {
			skipped(gvk, fmt.Errorf("building the CEL environment: %w", err))
			continue // upstream skips a kind whose environment does not build
		}
		envs = append(envs, kindEnv{gvk, env})
	}
	if len(envs) == 0 {
		return nil
	}

	check := func(src string) string {
		var results []string
		for _, k := range envs {
			if _, iss := k.env.Compile(src); iss.Err() != nil {
				results = append(results, fmt.Sprintf("%v: %s\n", k.gvk, iss.String()))
			}
		}
		return strings.Join(results, "\n")
	}
	var warnings []admissionregistrationv1.ExpressionWarning
	path := field.NewPath("spec", "validations")
	for i, v := range p.Spec.Validations {
		if w := check(v.Expression); w != "" {
			warnings = append(warnings, admissionregistrationv1.ExpressionWarning{
				FieldRef: path.Index(i).Child("expression").String(), Warning: w,
			})
		}
		if v.MessageExpression == "" {
			continue
		}
		if w := check(v.MessageExpression); w != "" {
			warnings = append(warnings, admissionregistrationv1.ExpressionWarning{
				FieldRef: path.Index(i).Child("messageExpression").String(), Warning: w,
			})
		}
	}
	return warnings
}

// policyParamGVK is p's paramKind; false without one or when its
// apiVersion does not parse.
func policyParamGVK(p *admissionregistrationv1.ValidatingAdmissionPolicy) (schema.GroupVersionKind, bool) {
	pk := p.Spec.ParamKind
	if pk == nil {
		return schema.GroupVersionKind{}, false
	}
	gv, err := schema.ParseGroupVersion(pk.APIVersion)
	if err != nil {
		return schema.GroupVersionKind{}, false
	}
	return gv.WithKind(pk.Kind), true
}

// typeName is the CEL type name of a kind's root: the kind, unless that
// is a variable's name or avoid (another root of the same environment).
func typeName(kind, avoid string) string {
	name := kind
	switch name {
	case objectVar, oldObjectVar, requestVar, paramsVar, namespaceObjectVar, variablesVar, authorizerVar, "":
		name = "_" + name
	}
	if name == avoid {
		name += "_object"
	}
	return name
}

// kindsToCheck returns the kinds of the fully specified resources of p's
// resourceRules, sorted, at most maxTypesToCheck, as upstream's
// typesToCheck: a rule with a wildcard group or version is skipped, a
// wildcard resource or a subresource is; a resource that is not known
// makes the resolver reset once (if it can) and is asked again.
func kindsToCheck(p *admissionregistrationv1.ValidatingAdmissionPolicy, r SchemaResolver) []schema.GroupVersionKind {
	mc := p.Spec.MatchConstraints
	if mc == nil {
		return nil
	}
	seen := map[schema.GroupVersionKind]bool{}
	var out []schema.GroupVersionKind
	reset := false
	for _, rule := range mc.ResourceRules {
		groups, versions := rule.APIGroups, rule.APIVersions
		if len(groups) == 0 || len(versions) == 0 ||
			slices.ContainsFunc(groups, hasWildcard) || slices.ContainsFunc(versions, hasWildcard) {
			continue
		}
		var resources []string
		for _, res := range rule.Resources {
			if !strings.ContainsAny(res, "*/") {
				resources = append(resources, res)
			}
		}
		groups, versions = slices.Sorted(slices.Values(groups)), slices.Sorted(slices.Values(versions))
		slices.Sort(resources)
		for _, g := range groups {
			for _, v := range versions {
				for _, res := range resources {
					gvr := schema.GroupVersionResource{Group: g, Version: v, Resource: res}
					kinds, err := r.KindsFor(gvr)
					if err != nil {
						rs, ok := r.(resetter)
						if reset || !ok {
							continue
						}
						rs.Reset()
						reset = true
						if kinds, err = r.KindsFor(gvr); err != nil {
							continue
						}
					}
					for _, k := range kinds {
						if k.Empty() {
							continue
						}
						if !seen[k] {
							seen[k] = true
							out = append(out, k)
						}
						if len(out) == maxTypesToCheck {
							return sortGVKs(out)
						}
					}
				}
			}
		}
	}
	return sortGVKs(out)
}

func hasWildcard(s string) bool { return strings.Contains(s, "*") }

func sortGVKs(l []schema.GroupVersionKind) []schema.GroupVersionKind {
	slices.SortFunc(l, func(a, b schema.GroupVersionKind) int {
		return cmp.Or(strings.Compare(a.Group, b.Group), strings.Compare(a.Version, b.Version), strings.Compare(a.Kind, b.Kind))
	})
	return l
}

// typeCheckEnv is the base of the type-checking environments: the CEL of
// compile.go with request, namespaceObject and variables (all dyn);
// object, oldObject and params are added per kind. Built once, immutable.
var typeCheckEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		skiffcel.Library(),
		cel.Variable(requestVar, cel.DynType),
		cel.Variable(namespaceObjectVar, cel.DynType),
		cel.Variable(variablesVar, cel.DynType),
	)
})

// declaredType is a schema as a CEL type: t, with the struct types it
// uses (nil when t is not a struct). Immutable once built.
type declaredType struct {
	t       *types.Type
	structs map[string]*structType
}

// structType is one object schema (with properties) as a CEL struct.
type structType struct {
	t      *types.Type
	fields map[string]*types.Type
	names  []string // sorted field names
}

// maxTypeDepth bounds the nesting converted; deeper schemas are dyn.
const maxTypeDepth = 64

// newDeclaredType converts the resource schema s to a CEL type whose
// root struct is named root, the others after their path
// (root.spec.template, root.spec.containers.@idx, root.metadata.labels.@prop).
func newDeclaredType(s *openapispec.Schema, root string) *declaredType {
	d := &declaredType{structs: map[string]*structType{}}
	d.t = d.typeOf(s, root, true, 0)
	if len(d.structs) == 0 {
		d.structs = nil
	}
	return d
}

// typeOf is s's type; name is the struct name it gets if it is one;
// resource: s is a resource's root (or an embedded resource), whose
// apiVersion, kind and metadata (ObjectMeta) are always there.
func (d *declaredType) typeOf(s *openapispec.Schema, name string, resource bool, depth int) *types.Type {
	if s == nil || depth > maxTypeDepth || isExt(s, extIntOrString) || s.Format == "int-or-string" || isExt(s, extPreserveUnknown) {
		return cel.DynType
	}
	typ := ""
	if len(s.Type) > 0 {
		typ = s.Type[0]
	} else if len(s.Properties) > 0 {
		typ = "object"
	}
	switch typ {
	case "string":
		return cel.StringType
	case "integer":
		return cel.IntType
	case "number":
		return cel.DoubleType
	case "boolean":
		return cel.BoolType
	case "array":
		if s.Items == nil || s.Items.Schema == nil {
			return cel.ListType(cel.DynType)
		}
		it := s.Items.Schema
		return cel.ListType(d.typeOf(it, name+".@idx", isExt(it, extEmbedded), depth+1))
	case "object":
		if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
			ap := s.AdditionalProperties.Schema
			return cel.MapType(cel.StringType, d.typeOf(ap, name+".@prop", isExt(ap, extEmbedded), depth+1))
		}
		if len(s.Properties) == 0 {
			return cel.DynType
		}
		for n := 2; d.structs[name] != nil; n++ { // two paths that read the same ("a.b" in a, b in a)
			name = fmt.Sprintf("%s#%d", strings.TrimSuffix(name, fmt.Sprintf("#%d", n-1)), n)
		}
		st := &structType{t: types.NewObjectType(name), fields: make(map[string]*types.Type, len(s.Properties)+3)}
		d.structs[name] = st
		for prop, ps := range s.Properties {
			st.fields[prop] = d.typeOf(&ps, name+"."+prop, isExt(&ps, extEmbedded), depth+1)
		}
		if resource {
			for _, prop := range []string{"apiVersion", "kind"} {
				if _, ok := st.fields[prop]; !ok {
					st.fields[prop] = cel.StringType
				}
			}
			if md, ok := s.Properties["metadata"]; !ok || len(md.Properties) == 0 {
				st.fields["metadata"] = d.typeOf(objectMetaSchema(), name+".metadata", false, depth+1)
			}
		}
		st.names = make([]string, 0, len(st.fields))
		for f := range st.fields {
			st.names = append(st.names, f)
		}
		sort.Strings(st.names)
		return st.t
	}
	return cel.DynType
}

// extend returns base with object and oldObject of type d and, when
// params is not nil, params of its type.
func (d *declaredType) extend(base *cel.Env, params *declaredType) (*cel.Env, error) {
	prov := &structProvider{base: base.CELTypeProvider(), sets: []map[string]*structType{d.structs}}
	opts := []cel.EnvOption{
		cel.Variable(objectVar, d.t),
		cel.Variable(oldObjectVar, d.t),
	}
	if params != nil {
		if params != d && params.structs != nil {
			prov.sets = append(prov.sets, params.structs)
		}
		opts = append(opts, cel.Variable(paramsVar, params.t))
	}
	return base.Extend(append([]cel.EnvOption{cel.CustomTypeProvider(prov)}, opts...)...)
}

// structProvider is a types.Provider that knows the struct types of sets
// on top of base (the environment's own). Read-only, so safe for
// concurrent use.
type structProvider struct {
	base types.Provider
	sets []map[string]*structType
}

var _ types.Provider = (*structProvider)(nil)

func (p *structProvider) find(name string) *structType {
	for _, s := range p.sets {
		if st, ok := s[name]; ok {
			return st
		}
	}
	return nil
}

func (p *structProvider) EnumValue(name string) ref.Val { return p.base.EnumValue(name) }

func (p *structProvider) FindIdent(name string) (ref.Val, bool) { return p.base.FindIdent(name) }

func (p *structProvider) FindStructType(name string) (*types.Type, bool) {
	if st := p.find(name); st != nil {
		return types.NewTypeTypeWithParam(st.t), true
	}
	return p.base.FindStructType(name)
}

func (p *structProvider) FindStructFieldNames(name string) ([]string, bool) {
	if st := p.find(name); st != nil {
		return slices.Clone(st.names), true
	}
	return p.base.FindStructFieldNames(name)
}

func (p *structProvider) FindStructFieldType(name, fieldName string) (*types.FieldType, bool) {
	if st := p.find(name); st != nil {
		t, ok := st.fields[fieldName]
		if !ok {
			return nil, false
		}
		return &types.FieldType{Type: t}, true
	}
	return p.base.FindStructFieldType(name, fieldName)
}

// NewValue is only for the base types: type checking never builds values
// of the schema types.
func (p *structProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if p.find(name) != nil {
		return types.NewErr("cannot create values of type %s", name)
	}
	return p.base.NewValue(name, fields)
}

// The OpenAPI extensions type checking reads.
const (
	extIntOrString     = "x-kubernetes-int-or-string"
	extPreserveUnknown = "x-kubernetes-preserve-unknown-fields"
	extEmbedded        = "x-kubernetes-embedded-resource"
	extGVK             = "x-kubernetes-group-version-kind"
)

func isExt(s *openapispec.Schema, key string) bool {
	v, ok := s.Extensions.GetBool(key)
	return ok && v
}

// objectMetaSchema is ObjectMeta's schema for a resource whose schema
// does not say (upstream's OpenAPI always does, through a $ref).
var objectMetaSchema = sync.OnceValue(func() *openapispec.Schema {
	str, integer := *openapispec.StringProperty(), *openapispec.Int64Property()
	strMap := *openapispec.MapProperty(openapispec.StringProperty())
	return &openapispec.Schema{SchemaProps: openapispec.SchemaProps{
		Type: openapispec.StringOrArray{"object"},
		Properties: map[string]openapispec.Schema{
			"name": str, "generateName": str, "namespace": str, "selfLink": str, "uid": str,
			"resourceVersion": str, "generation": integer, "creationTimestamp": str,
			"deletionTimestamp": str, "deletionGracePeriodSeconds": integer,
			"labels": strMap, "annotations": strMap,
			"ownerReferences": *openapispec.ArrayProperty(&dynSchema), "finalizers": *openapispec.ArrayProperty(openapispec.StringProperty()),
			"managedFields": *openapispec.ArrayProperty(&dynSchema),
		},
	}}
})

// discoveryResolver is NewDiscoveryResolver's SchemaResolver.
type discoveryResolver struct {
	disc   discovery.DiscoveryInterface
	mapper *restmapper.DeferredDiscoveryRESTMapper

	mu   sync.Mutex
	docs map[string]*gvDocument // by path ("apis/apps/v1"); guarded by mu
}

// gvDocument is one group version's OpenAPI v3 document, as fetched
// from url (which has the document's hash), with the kinds resolved so
// far. Schemas in it are never changed.
type gvDocument struct {
	url      string
	schemas  map[string]*openapispec.Schema
	resolved map[schema.GroupVersionKind]*openapispec.Schema
}

var (
	_ SchemaResolver = (*discoveryResolver)(nil)
	_ resetter       = (*discoveryResolver)(nil)
)

// NewDiscoveryResolver returns a SchemaResolver reading the server's
// discovery (resources to kinds, through a cached RESTMapper that Reset
// refreshes) and its OpenAPI v3 documents (/openapi/v3, then the group
// version's document; kept, parsed, until the index names a new hash).
// A kind's schema is the component whose x-kubernetes-group-version-kind
// names it, with its $refs into the document's components resolved.
// Safe for concurrent use.
func NewDiscoveryResolver(disc discovery.DiscoveryInterface) SchemaResolver {
	return &discoveryResolver{
		disc:   disc,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
		docs:   map[string]*gvDocument{},
	}
}

func (r *discoveryResolver) KindsFor(gvr schema.GroupVersionResource) ([]schema.GroupVersionKind, error) {
	kinds, err := r.mapper.KindsFor(gvr)
	if err != nil {
		return nil, fmt.Errorf("finding the kinds of %v: %w", gvr, err)
	}
	return kinds, nil
}

// Reset forgets the discovery cached, so that new resources (a CRD just
// established) are found.
func (r *discoveryResolver) Reset() { r.mapper.Reset() }

func (r *discoveryResolver) ResolveSchema(gvk schema.GroupVersionKind) (*openapispec.Schema, error) {
	paths, err := r.disc.OpenAPIV3().Paths()
	if err != nil {
		return nil, fmt.Errorf("reading the OpenAPI v3 index: %w", err)
	}
	key := "apis/" + gvk.Group + "/" + gvk.Version
	if gvk.Group == "" {
		key = "api/" + gvk.Version
	}
	gv, ok := paths[key]
	if !ok {
		return nil, fmt.Errorf("resolving %v: no OpenAPI v3 document for %s: %w", gvk, key, ErrSchemaNotFound)
	}
	url := gv.ServerRelativeURL()

	r.mu.Lock()
	doc := r.docs[key]
	if doc != nil && doc.url == url {
		if s, ok := doc.resolved[gvk]; ok {
			r.mu.Unlock()
			return s, nil
		}
	} else {
		doc = nil
	}
	r.mu.Unlock()

	if doc == nil {
		b, err := gv.Schema(runtime.ContentTypeJSON)
		if err != nil {
			return nil, fmt.Errorf("reading the OpenAPI v3 document of %s: %w", key, err)
		}
		var parsed struct {
			Components struct {
				Schemas map[string]*openapispec.Schema `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(b, &parsed); err != nil {
			return nil, fmt.Errorf("parsing the OpenAPI v3 document of %s: %w", key, err)
		}
		doc = &gvDocument{url: url, schemas: parsed.Components.Schemas, resolved: map[schema.GroupVersionKind]*openapispec.Schema{}}
	}
	s, err := doc.resolve(gvk)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if cur := r.docs[key]; cur != nil && cur.url == url {
		doc = cur // another caller stored it first; add to it
	} else {
		r.docs[key] = doc
	}
	doc.resolved[gvk] = s
	r.mu.Unlock()
	return s, nil
}

// resolve finds gvk's component in doc and resolves its $refs. It reads
// doc.schemas only.
func (doc *gvDocument) resolve(gvk schema.GroupVersionKind) (*openapispec.Schema, error) {
	type gvkExt struct {
		Group   string `json:"group"`
		Version string `json:"version"`
		Kind    string `json:"kind"`
	}
	names := make([]string, 0, len(doc.schemas))
	for name := range doc.schemas {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic when two components claim a kind
	for _, name := range names {
		s := doc.schemas[name]
		if s == nil {
			continue
		}
		var gvks []gvkExt
		if err := s.Extensions.GetObject(extGVK, &gvks); err != nil {
			continue
		}
		for _, g := range gvks {
			if g.Group == gvk.Group && g.Version == gvk.Version && g.Kind == gvk.Kind {
				return resolveRefs(s, doc.schemas, map[string]bool{name: true}, 0)
			}
		}
	}
	return nil, fmt.Errorf("resolving %v: no component with its x-kubernetes-group-version-kind: %w", gvk, ErrSchemaNotFound)
}

// refPrefix is how an OpenAPI v3 document refers to its components.
const refPrefix = "#/components/schemas/"

// dynSchema stands for what cannot be typed (a reference cycle).
var dynSchema = openapispec.Schema{VendorExtensible: openapispec.VendorExtensible{Extensions: openapispec.Extensions{extPreserveUnknown: true}}}

// resolveRefs returns s with its $refs (also a $ref wrapped in allOf, as
// kube-openapi writes a reference with a description) replaced by the
// components they name, in properties, additionalProperties and items.
// visiting holds the components being resolved above s: a reference to
// one of them is a cycle, which becomes dynSchema. It never changes s or
// components.
func resolveRefs(s *openapispec.Schema, components map[string]*openapispec.Schema, visiting map[string]bool, depth int) (*openapispec.Schema, error) {
	if depth > maxTypeDepth {
		d := dynSchema
		return &d, nil
	}
	if name, ok := refName(s); ok {
		if visiting[name] {
			d := dynSchema
			return &d, nil
		}
		target, ok := components[name]
		if !ok || target == nil {
			return nil, fmt.Errorf("resolving $ref %q: %w", name, ErrSchemaNotFound)
		}
		visiting[name] = true
		defer delete(visiting, name)
		s = target
	}
	out := *s
	if len(s.Properties) > 0 {
		out.Properties = make(map[string]openapispec.Schema, len(s.Properties))
		for k, p := range s.Properties {
			rp, err := resolveRefs(&p, components, visiting, depth+1)
			if err != nil {
				return nil, err
			}
			out.Properties[k] = *rp
		}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		rp, err := resolveRefs(s.AdditionalProperties.Schema, components, visiting, depth+1)
		if err != nil {
			return nil, err
		}
		out.AdditionalProperties = &openapispec.SchemaOrBool{Allows: true, Schema: rp}
	}
	if s.Items != nil && s.Items.Schema != nil {
		rp, err := resolveRefs(s.Items.Schema, components, visiting, depth+1)
		if err != nil {
			return nil, err
		}
		out.Items = &openapispec.SchemaOrArray{Schema: rp}
	}
	return &out, nil
}

// refName is the component s refers to, directly or as the only
// reference of its allOf.
func refName(s *openapispec.Schema) (string, bool) {
	if u := s.Ref.GetURL(); u != nil {
		return strings.TrimPrefix(s.Ref.String(), refPrefix), true
	}
	for i := range s.AllOf {
		if name, ok := refName(&s.AllOf[i]); ok {
			return name, true
		}
	}
	return "", false
}
