package openapi

import (
	"fmt"
	"sort"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-dev/skiff/internal/registry"
)

// gvkExtension is the definition extension kubectl reads to find the
// schema of a kind.
const gvkExtension = "x-kubernetes-group-version-kind"

// specs is everything New computes from the resource list.
type specs struct {
	v2 *spec.Swagger
	// v3 maps "api/v1" and "apis/<g>/<v>" to the group version's document,
	// and "api", "apis", "apis/<g>" and "version" to those of the
	// discovery and version endpoints.
	v3 map[string]*spec3.OpenAPI

	namer *namer
	// crDefsV2 and crDefsV3 are the generated definitions custom
	// resources refer to (see customDefinitionRoots), with their
	// dependencies, referring to each other as in v2 and v3.
	crDefsV2, crDefsV3 map[string]common.OpenAPIDefinition
}

// customDefinitionRoots are the Go types the documents of every custom
// resource refer to: the metadata of objects and lists, the models of
// delete, patch and scale operations, and TypeMeta, whose apiVersion and
// kind properties every custom resource schema gets.
func customDefinitionRoots() []string {
	var out []string
	for _, v := range []any{metav1.ObjectMeta{}, metav1.ListMeta{}, metav1.Status{}, metav1.DeleteOptions{},
		metav1.Patch{}, autoscalingv1.Scale{}, metav1.TypeMeta{}} {
		out = append(out, util.GetCanonicalTypeName(v))
	}
	return out
}

// closure returns the definitions named by roots and everything they
// depend on.
func closure(defs map[string]common.OpenAPIDefinition, roots []string) map[string]common.OpenAPIDefinition {
	out := map[string]common.OpenAPIDefinition{}
	var visit func(name string)
	visit = func(name string) {
		if _, ok := out[name]; ok {
			return
		}
		d, ok := defs[name]
		if !ok {
			return
		}
		out[name] = d
		for _, dep := range d.Dependencies {
			visit(dep)
		}
	}
	for _, r := range roots {
		visit(r)
	}
	return out
}

// namer gives definitions their upstream names (the Go types'
// OpenAPIModelName, e.g. io.k8s.api.core.v1.Pod) and attaches the
// group/version/kind extension to every served kind and list kind.
type namer struct {
	gvks map[string][]schema.GroupVersionKind // by definition name
}

func newNamer(resources []*registry.Resource) *namer {
	n := &namer{gvks: map[string][]schema.GroupVersionKind{}}
	addKind := func(name string, gvk schema.GroupVersionKind) {
		for _, have := range n.gvks[name] {
			if have == gvk {
				return
			}
		}
		n.gvks[name] = append(n.gvks[name], gvk)
	}
	for _, r := range resources {
		if r.Strategy == nil {
			continue
		}
		addKind(util.GetCanonicalTypeName(r.Strategy.New()), r.GroupVersionKind())
		addKind(util.GetCanonicalTypeName(r.Strategy.NewList()), r.GVR.GroupVersion().WithKind(r.ListKind))
	}
	// Kinds every API server publishes regardless of its resources.
	v1 := schema.GroupVersion{Version: "v1"}
	for _, k := range []struct {
		model any
		gvk   schema.GroupVersionKind
	}{
		{&metav1.Status{}, v1.WithKind("Status")},
		{&metav1.APIResourceList{}, v1.WithKind("APIResourceList")},
		{&metav1.APIGroupList{}, v1.WithKind("APIGroupList")},
		{&metav1.APIGroup{}, v1.WithKind("APIGroup")},
		{&metav1.APIVersions{}, v1.WithKind("APIVersions")},
		{&autoscalingv1.Scale{}, autoscalingv1.SchemeGroupVersion.WithKind("Scale")},
		{&corev1.Binding{}, corev1.SchemeGroupVersion.WithKind("Binding")},
		{&policyv1.Eviction{}, policyv1.SchemeGroupVersion.WithKind("Eviction")},
		{&authenticationv1.TokenRequest{}, authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")},
	} {
		addKind(util.GetCanonicalTypeName(k.model), k.gvk)
	}
	// DeleteOptions and WatchEvent are accepted and sent in every group
	// version, as upstream lists them.
	seen := map[schema.GroupVersion]bool{}
	gvs := []schema.GroupVersion{v1}
	for _, r := range resources {
		if gv := r.GVR.GroupVersion(); !seen[gv] {
			seen[gv] = true
			if gv != v1 {
				gvs = append(gvs, gv)
			}
		}
	}
	for _, gv := range gvs {
		addKind(util.GetCanonicalTypeName(metav1.DeleteOptions{}), gv.WithKind("DeleteOptions"))
		addKind(util.GetCanonicalTypeName(metav1.WatchEvent{}), gv.WithKind("WatchEvent"))
	}
	for _, list := range n.gvks {
		sort.Slice(list, func(i, j int) bool { return list[i].String() < list[j].String() })
	}
	return n
}

// definitionName implements common.Config.GetDefinitionName.
func (n *namer) definitionName(name string) (string, spec.Extensions) {
	gvks, ok := n.gvks[name]
	if !ok {
		return name, nil
	}
	ext := make([]any, 0, len(gvks))
	for _, gvk := range gvks {
		ext = append(ext, map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind})
	}
	return name, spec.Extensions{gvkExtension: ext}
}

func operationIDAndTags(r common.Route) (string, []string, error) {
	rt, ok := r.(*route)
	if !ok {
		return "", nil, fmt.Errorf("unexpected route type %T", r)
	}
	return rt.opID, []string{rt.tag}, nil
}

// buildSpecs builds the OpenAPI v2 document and the v3 document of each
// group version from resources and the generated definitions.
func buildSpecs(resources []*registry.Resource, info *spec.Info) (*specs, error) {
	// containers by v3 document path ("api/v1", "apis/apps/v1", "apis/apps",
	// "api", "apis", "version"), in order of first appearance.
	containers := map[string]*container{}
	var order []string
	containerFor := func(key string) *container {
		c, ok := containers[key]
		if !ok {
			c = &container{root: "/" + key}
			containers[key] = c
			order = append(order, key)
		}
		return c
	}
	for _, r := range resources {
		gv := r.GVR.GroupVersion()
		c := containerFor(strings.TrimPrefix(gvPrefix(gv), "/"))
		if len(c.routes) == 0 {
			c.routes = append(c.routes, discoveryRoute(gvPrefix(gv)+"/", "get"+gvCamel(gv)+"APIResources",
				gvTag(gv), "get available resources", metav1.APIResourceList{}))
		}
		routes, err := resourceRoutes(r)
		if err != nil {
			return nil, fmt.Errorf("building routes of %s: %w", r.GVR, err)
		}
		c.routes = append(c.routes, routes...)
	}
	// The discovery and version endpoints, as upstream documents them.
	gvs := append([]string(nil), order...)
	for _, key := range gvs {
		parts := strings.Split(key, "/")
		switch {
		case parts[0] == "api":
			c := containerFor("api")
			if len(c.routes) == 0 {
				c.routes = append(c.routes, discoveryRoute("/api/", "getCoreAPIVersions", "core",
					"get available API versions", metav1.APIVersions{}))
			}
		default:
			c := containerFor("apis")
			if len(c.routes) == 0 {
				c.routes = append(c.routes, discoveryRoute("/apis/", "getAPIVersions", "apis",
					"get available API versions", metav1.APIGroupList{}))
			}
			g := containerFor("apis/" + parts[1])
			if len(g.routes) == 0 {
				camel := groupCamel(parts[1])
				g.routes = append(g.routes, discoveryRoute("/apis/"+parts[1]+"/", "get"+camel+"APIGroup",
					strings.ToLower(camel[:1])+camel[1:], "get information of a group", metav1.APIGroup{}))
			}
		}
	}
	containerFor("version").routes = []common.Route{discoveryRoute("/version/", "getCodeVersion", "version",
		"get the version information for this server", version.Info{})}

	n := newNamer(resources)
	// The generated definitions embed their references (#/components/schemas/
	// in v3); compute them once for all v3 documents.
	refTo := func(prefix string) common.ReferenceCallback {
		return func(name string) spec.Ref {
			defName, _ := n.definitionName(name)
			return spec.MustCreateRef(prefix + common.EscapeJsonPointer(defName))
		}
	}
	defsV3 := GetOpenAPIDefinitions(refTo("#/components/schemas/"))
	// kube-openapi's builders fill in the name-derived extensions only
	// through GetDefinitionName; the generated definitions themselves carry
	// the descriptions and the patch/list extensions.
	v2cfg := &common.Config{
		Info:                           info,
		GetDefinitions:                 GetOpenAPIDefinitions, // the v2 builder ignores Definitions
		GetDefinitionName:              n.definitionName,
		GetOperationIDAndTagsFromRoute: operationIDAndTags,
		CommonResponses: map[int]spec.Response{
			401: {ResponseProps: spec.ResponseProps{Description: "Unauthorized"}},
		},
		SecurityDefinitions: &spec.SecurityDefinitions{
			"BearerToken": &spec.SecurityScheme{SecuritySchemeProps: spec.SecuritySchemeProps{
				Type: "apiKey", Name: "authorization", In: "header",
				Description: "Bearer Token authentication",
			}},
		},
		DefaultSecurity: []map[string][]string{{"BearerToken": {}}},
	}
	all := make([]common.RouteContainer, 0, len(order))
	for _, key := range order {
		all = append(all, containers[key])
	}
	v2, err := builder.BuildOpenAPISpecFromRoutes(all, v2cfg)
	if err != nil {
		return nil, fmt.Errorf("building OpenAPI v2: %w", err)
	}

	out := &specs{v2: v2, v3: map[string]*spec3.OpenAPI{}, namer: n,
		crDefsV2: closure(GetOpenAPIDefinitions(refTo("#/definitions/")), customDefinitionRoots()),
		crDefsV3: closure(defsV3, customDefinitionRoots()),
	}
	for _, key := range order {
		v3cfg := &common.OpenAPIV3Config{
			Info:                           info,
			Definitions:                    defsV3,
			GetDefinitionName:              n.definitionName,
			GetOperationIDAndTagsFromRoute: operationIDAndTags,
			CommonResponses: map[int]*spec3.Response{
				401: {ResponseProps: spec3.ResponseProps{Description: "Unauthorized"}},
			},
			SecuritySchemes: spec3.SecuritySchemes{
				"BearerToken": &spec3.SecurityScheme{SecuritySchemeProps: spec3.SecuritySchemeProps{
					Type: "apiKey", Name: "authorization", In: "header",
					Description: "Bearer Token authentication",
				}},
			},
			DefaultSecurity: []map[string][]string{{"BearerToken": {}}},
		}
		doc, err := builder3.BuildOpenAPISpecFromRoutes([]common.RouteContainer{containers[key]}, v3cfg)
		if err != nil {
			return nil, fmt.Errorf("building OpenAPI v3 of %s: %w", key, err)
		}
		out.v3[key] = doc
	}
	return out, nil
}

// Schemas returns the OpenAPI v3 schemas of resources' kinds and list
// kinds (plus Scale, Binding, Eviction, TokenRequest, Status,
// DeleteOptions and WatchEvent) and of every type they refer to, keyed by
// definition name (io.k8s.api.core.v1.Pod) and carrying
// x-kubernetes-group-version-kind: the input
// k8s.io/apimachinery/pkg/util/managedfields.NewTypeConverter takes for
// server-side apply. Each call builds a fresh map the caller may keep.
func Schemas(resources []*registry.Resource) (map[string]*spec.Schema, error) {
	for _, r := range resources {
		if r.Strategy == nil {
			return nil, fmt.Errorf("resource %s has no strategy to give its Go type", r.GroupResource())
		}
		for _, v := range []any{r.Strategy.New(), r.Strategy.NewList()} {
			if err := checkModelName(v); err != nil {
				return nil, err
			}
		}
	}
	n := newNamer(resources)
	names := make([]string, 0, len(n.gvks))
	for name := range n.gvks {
		names = append(names, name)
	}
	sort.Strings(names)
	cfg := &common.OpenAPIV3Config{GetDefinitions: GetOpenAPIDefinitions, GetDefinitionName: n.definitionName}
	out, err := builder3.BuildOpenAPIDefinitionsForResources(cfg, names...)
	if err != nil {
		return nil, fmt.Errorf("building schemas: %w", err)
	}
	return out, nil
}
