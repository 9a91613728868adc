package openapi

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"unicode"

	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"

	"github.com/skiff-dev/skiff/internal/registry"
)

// route is one operation on one path, as kube-openapi's builders consume
// it (common.Route).
type route struct {
	method      string
	path        string
	opID        string
	tag         string
	description string
	params      []common.Parameter
	consumes    []string
	produces    []string
	metadata    map[string]any
	request     any // body sample; nil when the operation takes no body
	responses   []common.StatusCodeResponse
}

var _ common.Route = (*route)(nil)

func (r *route) Method() string                                   { return r.method }
func (r *route) Path() string                                     { return r.path }
func (r *route) OperationName() string                            { return r.opID }
func (r *route) Parameters() []common.Parameter                   { return r.params }
func (r *route) Description() string                              { return r.description }
func (r *route) Consumes() []string                               { return r.consumes }
func (r *route) Produces() []string                               { return r.produces }
func (r *route) Metadata() map[string]interface{}                 { return r.metadata }
func (r *route) RequestPayloadSample() interface{}                { return r.request }
func (r *route) ResponsePayloadSample() interface{}               { return nil }
func (r *route) StatusCodeResponses() []common.StatusCodeResponse { return r.responses }

// param is one parameter of an operation (common.Parameter).
type param struct {
	name        string
	description string
	required    bool
	kind        common.ParameterKind
	dataType    string // "string", "integer", "boolean"; the body's is ignored
}

var _ common.Parameter = param{}

func (p param) Name() string               { return p.name }
func (p param) Description() string        { return p.description }
func (p param) Required() bool             { return p.required }
func (p param) Kind() common.ParameterKind { return p.kind }
func (p param) DataType() string           { return p.dataType }
func (p param) AllowMultiple() bool        { return false }

// response is one status code's response (common.StatusCodeResponse).
type response struct {
	code  int
	model any
}

func (r response) Code() int       { return r.code }
func (r response) Message() string { return http.StatusText(r.code) }
func (r response) Model() any      { return r.model }

// container holds the routes of one group version (common.RouteContainer).
type container struct {
	root   string
	routes []common.Route
}

func (c *container) RootPath() string                   { return c.root }
func (c *container) PathParameters() []common.Parameter { return nil }
func (c *container) Routes() []common.Route             { return c.routes }

func query(name, typ, desc string) param {
	return param{name: name, description: desc, kind: common.QueryParameterKind, dataType: typ}
}

func pathParam(name, desc string) param {
	return param{name: name, description: desc, required: true, kind: common.PathParameterKind, dataType: "string"}
}

// The parameters operations share; param is a value type, so these are
// never mutated through an operation.
var (
	pPretty    = query("pretty", "string", "If 'true', then the output is pretty printed.")
	pNamespace = pathParam("namespace", "object name and auth scope, such as for teams and projects")
	pBody      = param{name: "body", required: true, kind: common.BodyParameterKind}
	// pOptionalBody is the DeleteOptions body of deletes, which may be empty.
	pOptionalBody = param{name: "body", kind: common.BodyParameterKind}

	pDryRun          = query("dryRun", "string", "When present, indicates that modifications should not be persisted. The only valid value is All.")
	pFieldManager    = query("fieldManager", "string", "The name of the actor or entity making these changes.")
	pFieldValidation = query("fieldValidation", "string", "How the server handles unknown or duplicate fields in the object: Ignore, Warn (the default) or Strict.")
	pForce           = query("force", "boolean", "Force apply requests to take ownership of conflicting fields. Only valid for apply patches.")

	pGrace       = query("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted; zero means delete immediately.")
	pOrphan      = query("orphanDependents", "boolean", "Deprecated: use propagationPolicy. Whether dependents are orphaned.")
	pPropagation = query("propagationPolicy", "string", "Whether and how garbage collection is performed: Orphan, Background or Foreground.")
	pIgnoreRead  = query("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean", "Delete an object whose stored data cannot be read. Unsafe.")
)

// listParams are the query parameters of list and watch calls.
func listParams() []common.Parameter {
	return []common.Parameter{
		query("allowWatchBookmarks", "boolean", "Request watch events with type BOOKMARK."),
		query("continue", "string", "The continue token of the previous page of a paged list."),
		query("fieldSelector", "string", "Restrict the returned objects by their fields."),
		query("labelSelector", "string", "Restrict the returned objects by their labels."),
		query("limit", "integer", "The maximum number of objects to return for a list call; the rest is paged with continue."),
		query("resourceVersion", "string", "Constrains which resource versions the request may be served from."),
		query("resourceVersionMatch", "string", "How resourceVersion is applied to list calls: Exact or NotOlderThan."),
		query("sendInitialEvents", "boolean", "Start a watch with synthetic events for the current state, ended by a bookmark."),
		query("timeoutSeconds", "integer", "Timeout for the list or watch call."),
		query("watch", "boolean", "Watch for changes to the described resources and return them as a stream of events."),
	}
}

// Media types the API server answers and accepts. Each call returns a
// fresh slice, so no operation shares one with another.
func produceObject() []string {
	return []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
}

func produceStream() []string {
	return append(produceObject(), "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch")
}

func consumeAny() []string { return []string{"*/*"} }

// consumeCustom is what custom resources consume and produce, but PATCH.
func consumeCustom() []string { return []string{"application/json", "application/yaml"} }

// consumeCustomPatch: custom resources take no strategic merge patch (415).
func consumeCustomPatch() []string {
	return []string{"application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"}
}

func consumePatch() []string {
	return []string{"application/json-patch+json", "application/merge-patch+json",
		"application/strategic-merge-patch+json", "application/apply-patch+yaml"}
}

func params(ps ...any) []common.Parameter {
	var out []common.Parameter
	for _, p := range ps {
		switch p := p.(type) {
		case param:
			out = append(out, p)
		case []common.Parameter:
			out = append(out, p...)
		}
	}
	return out
}

// without returns ps minus the named parameters.
func without(ps []common.Parameter, names ...string) []common.Parameter {
	var out []common.Parameter
	for _, p := range ps {
		skip := false
		for _, n := range names {
			skip = skip || p.Name() == n
		}
		if !skip {
			out = append(out, p)
		}
	}
	return out
}

// checkModelName rejects a Go type whose OpenAPI model name is not its
// own, as happens to a type that embeds metav1.TypeMeta without declaring
// OpenAPIModelName: it would borrow TypeMeta's name and schema.
func checkModelName(v any) error {
	name := util.GetCanonicalTypeName(v)
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if name[strings.LastIndexAny(name, "./")+1:] != t.Name() {
		return fmt.Errorf("type %s has OpenAPI model name %q, not its own", t, name)
	}
	return nil
}

// groupCamel names a group in operation IDs as upstream does: "Core",
// "Apps", "RbacAuthorization", "Networking", "CertManagerIo" (the group
// without its ".k8s.io" suffix, camel-cased at every character that
// cannot appear in an identifier).
func groupCamel(group string) string {
	if group == "" {
		return "Core"
	}
	return validOperationID(strings.TrimSuffix(group, ".k8s.io"), true)
}

// gvCamel is e.g. "CoreV1", "AppsV1", "AutoscalingV2".
func gvCamel(gv schema.GroupVersion) string {
	return groupCamel(gv.Group) + validOperationID(gv.Version, true)
}

// gvTag is the operation tag of a group version: "core_v1", "apps_v1",
// "rbacAuthorization_v1", "certManagerIo_v1".
func gvTag(gv schema.GroupVersion) string {
	g := "core"
	if gv.Group != "" {
		g = validOperationID(strings.TrimSuffix(gv.Group, ".k8s.io"), false)
	}
	return g + "_" + validOperationID(gv.Version, false)
}

// validOperationID makes s an identifier the way upstream's
// ToValidOperationID does: letters, underscores and (not first) digits
// are kept, anything else is dropped and capitalises the next letter.
func validOperationID(s string, capitalizeFirst bool) string {
	var b strings.Builder
	capitalize := capitalizeFirst
	for i, r := range s {
		if unicode.IsLetter(r) || r == '_' || (i != 0 && unicode.IsDigit(r)) {
			if capitalize {
				r = unicode.ToUpper(r)
				capitalize = false
			}
			b.WriteRune(r)
		} else {
			capitalize = true
		}
	}
	return b.String()
}

// gvPrefix is the URL prefix of a group version: /api/v1, /apis/apps/v1.
func gvPrefix(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "/api/" + gv.Version
	}
	return "/apis/" + gv.Group + "/" + gv.Version
}

// verbSet reports which of the main resource's verbs are served.
func verbSet(r *registry.Resource) map[string]bool {
	out := map[string]bool{}
	verbs := r.Verbs
	if verbs == nil {
		verbs = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
	}
	for _, v := range verbs {
		out[v] = true
	}
	return out
}

// endpoint is what the operations of one resource are derived from.
type endpoint struct {
	gv         schema.GroupVersion
	resource   string // plural
	kind       string
	namespaced bool
	verbs      map[string]bool
	status     bool
	scale      bool
	obj, list  any // models of the kind and the list kind
	// custom marks a custom resource: its operations consume and produce
	// JSON and YAML only, PATCH takes no strategic merge patch, there
	// are no deprecated /watch/ paths and GET takes resourceVersion, as
	// upstream's apiextensions-apiserver publishes them.
	custom bool
}

// resourceRoutes returns every operation upstream publishes for r: the
// collection, the item, the deprecated watch paths, the all-namespaces
// list, and the status, scale and well-known subresources.
func resourceRoutes(r *registry.Resource) ([]common.Route, error) {
	if r.Strategy == nil {
		return nil, fmt.Errorf("resource %s has no strategy to give its Go type", r.GroupResource())
	}
	obj, list := r.Strategy.New(), r.Strategy.NewList()
	for _, v := range []any{obj, list} {
		if err := checkModelName(v); err != nil {
			return nil, err
		}
	}
	return endpointRoutes(endpoint{gv: r.GVR.GroupVersion(), resource: r.GVR.Resource, kind: r.Kind,
		namespaced: r.Namespaced, verbs: verbSet(r), status: r.Status, scale: r.Scale != nil, obj: obj, list: list}), nil
}

// endpointRoutes returns the operations of e.
func endpointRoutes(e endpoint) []common.Route {
	gv := e.gv
	gvk := gv.WithKind(e.kind)
	prefix := gvPrefix(gv)
	tag := gvTag(gv)
	verbs := e.verbs
	obj, list := e.obj, e.list

	scope, nsParams, collection, watchCollection := "", []common.Parameter(nil), prefix+"/"+e.resource, prefix+"/watch/"+e.resource
	if e.namespaced {
		scope = "Namespaced"
		nsParams = []common.Parameter{pNamespace}
		collection = prefix + "/namespaces/{namespace}/" + e.resource
		watchCollection = prefix + "/watch/namespaces/{namespace}/" + e.resource
	}
	item := collection + "/{name}"
	opName := func(verb, middle, suffix string) string {
		return verb + gvCamel(gv) + middle + scope + e.kind + suffix
	}
	meta := func(action string, k schema.GroupVersionKind) map[string]any {
		return map[string]any{
			"x-kubernetes-action":             action,
			"x-kubernetes-group-version-kind": map[string]any{"group": k.Group, "version": k.Version, "kind": k.Kind},
		}
	}
	nameP := pathParam("name", "name of the "+e.kind)
	writeParams := params(pDryRun, pFieldManager, pFieldValidation, pPretty)
	patchParams := params(pDryRun, pFieldManager, pFieldValidation, pForce, pPretty)
	deleteParams := params(pDryRun, pGrace, pIgnoreRead, pOrphan, pPropagation, pPretty)
	getParams := params(pPretty)
	// The media types below are those of built-in resources unless e is
	// a custom resource (the names shadow the package's functions).
	consumeAny, consumePatch, produceObject, produceStream := consumeAny, consumePatch, produceObject, produceStream
	if e.custom {
		getParams = params(query("resourceVersion", "string", "Constrains which resource versions the request may be served from."), pPretty)
		consumeAny, consumePatch, produceObject, produceStream = consumeCustom, consumeCustomPatch, consumeCustom, consumeCustom
	}

	var routes []common.Route
	add := func(rt *route) { rt.tag = tag; routes = append(routes, rt) }

	if verbs["list"] {
		add(&route{method: "GET", path: collection, opID: opName("list", "", ""),
			description: "list or watch objects of kind " + e.kind,
			params:      params(nsParams, listParams(), pPretty), consumes: consumeAny(), produces: produceStream(),
			metadata: meta("list", gvk), responses: []common.StatusCodeResponse{response{200, list}}})
		if e.namespaced {
			add(&route{method: "GET", path: prefix + "/" + e.resource, opID: "list" + gvCamel(gv) + e.kind + "ForAllNamespaces",
				description: "list or watch objects of kind " + e.kind,
				params:      params(listParams(), pPretty), consumes: consumeAny(), produces: produceStream(),
				metadata: meta("list", gvk), responses: []common.StatusCodeResponse{response{200, list}}})
		}
	}
	if verbs["watch"] && !e.custom {
		add(&route{method: "GET", path: watchCollection, opID: opName("watch", "", "List"),
			description: "watch individual changes to a list of " + e.kind + ". deprecated: use the 'watch' parameter with a list operation instead.",
			params:      params(nsParams, listParams(), pPretty), consumes: consumeAny(), produces: produceStream(),
			metadata: meta("watchlist", gvk), responses: []common.StatusCodeResponse{response{200, metav1.WatchEvent{}}}})
		add(&route{method: "GET", path: watchCollection + "/{name}", opID: opName("watch", "", ""),
			description: "watch changes to an object of kind " + e.kind + ". deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.",
			params:      params(nsParams, nameP, listParams(), pPretty), consumes: consumeAny(), produces: produceStream(),
			metadata: meta("watch", gvk), responses: []common.StatusCodeResponse{response{200, metav1.WatchEvent{}}}})
		if e.namespaced {
			add(&route{method: "GET", path: prefix + "/watch/" + e.resource, opID: "watch" + gvCamel(gv) + e.kind + "ListForAllNamespaces",
				description: "watch individual changes to a list of " + e.kind + ". deprecated: use the 'watch' parameter with a list operation instead.",
				params:      params(listParams(), pPretty), consumes: consumeAny(), produces: produceStream(),
				metadata: meta("watchlist", gvk), responses: []common.StatusCodeResponse{response{200, metav1.WatchEvent{}}}})
		}
	}
	if verbs["create"] {
		add(&route{method: "POST", path: collection, opID: opName("create", "", ""),
			description: "create a " + e.kind,
			params:      params(nsParams, pBody, writeParams), consumes: consumeAny(), produces: produceObject(),
			metadata: meta("post", gvk), request: obj,
			responses: []common.StatusCodeResponse{response{200, obj}, response{201, obj}, response{202, obj}}})
	}
	if verbs["deletecollection"] {
		add(&route{method: "DELETE", path: collection, opID: "delete" + gvCamel(gv) + "Collection" + scope + e.kind,
			description: "delete collection of " + e.kind,
			params:      params(nsParams, pOptionalBody, without(listParams(), "allowWatchBookmarks", "watch"), deleteParams), consumes: consumeAny(), produces: produceObject(),
			metadata: meta("deletecollection", gvk), request: metav1.DeleteOptions{},
			responses: []common.StatusCodeResponse{response{200, metav1.Status{}}}})
	}
	if verbs["get"] {
		add(&route{method: "GET", path: item, opID: opName("read", "", ""),
			description: "read the specified " + e.kind,
			params:      params(nsParams, nameP, getParams), consumes: consumeAny(), produces: produceObject(),
			metadata: meta("get", gvk), responses: []common.StatusCodeResponse{response{200, obj}}})
	}
	if verbs["update"] {
		add(&route{method: "PUT", path: item, opID: opName("replace", "", ""),
			description: "replace the specified " + e.kind,
			params:      params(nsParams, nameP, pBody, writeParams), consumes: consumeAny(), produces: produceObject(),
			metadata: meta("put", gvk), request: obj,
			responses: []common.StatusCodeResponse{response{200, obj}, response{201, obj}}})
	}
	if verbs["patch"] {
		add(&route{method: "PATCH", path: item, opID: opName("patch", "", ""),
			description: "partially update the specified " + e.kind,
			params:      params(nsParams, nameP, pBody, patchParams), consumes: consumePatch(), produces: produceObject(),
			metadata: meta("patch", gvk), request: metav1.Patch{},
			responses: []common.StatusCodeResponse{response{200, obj}, response{201, obj}}})
	}
	if verbs["delete"] {
		add(&route{method: "DELETE", path: item, opID: opName("delete", "", ""),
			description: "delete a " + e.kind,
			params:      params(nsParams, nameP, pOptionalBody, deleteParams), consumes: consumeAny(), produces: produceObject(),
			metadata: meta("delete", gvk), request: metav1.DeleteOptions{},
			responses: []common.StatusCodeResponse{response{200, metav1.Status{}}, response{202, metav1.Status{}}}})
	}

	// getPutPatch adds the three operations of a status-like subresource
	// whose model is model (of kind k).
	getPutPatch := func(sub, suffix string, model any, k schema.GroupVersionKind) {
		p := item + "/" + sub
		add(&route{method: "GET", path: p, opID: opName("read", "", suffix),
			description: "read " + sub + " of the specified " + e.kind,
			params:      params(nsParams, nameP, getParams), consumes: consumeAny(), produces: produceObject(),
			metadata: meta("get", k), responses: []common.StatusCodeResponse{response{200, model}}})
		add(&route{method: "PUT", path: p, opID: opName("replace", "", suffix),
			description: "replace " + sub + " of the specified " + e.kind,
			params:      params(nsParams, nameP, pBody, writeParams), consumes: consumeAny(), produces: produceObject(),
			metadata: meta("put", k), request: model,
			responses: []common.StatusCodeResponse{response{200, model}, response{201, model}}})
		add(&route{method: "PATCH", path: p, opID: opName("patch", "", suffix),
			description: "partially update " + sub + " of the specified " + e.kind,
			params:      params(nsParams, nameP, pBody, patchParams), consumes: consumePatch(), produces: produceObject(),
			metadata: meta("patch", k), request: metav1.Patch{},
			responses: []common.StatusCodeResponse{response{200, model}, response{201, model}}})
	}
	if e.status {
		getPutPatch("status", "Status", obj, gvk)
	}
	if e.scale {
		getPutPatch("scale", "Scale", autoscalingv1.Scale{}, autoscalingv1.SchemeGroupVersion.WithKind("Scale"))
	}

	// post adds a create-only subresource taking and returning model.
	post := func(sub, suffix string, model any, k schema.GroupVersionKind) {
		add(&route{method: "POST", path: item + "/" + sub, opID: opName("create", "", suffix),
			description: "create " + sub + " of a " + e.kind,
			params:      params(nsParams, nameP, pBody, writeParams), consumes: consumeAny(), produces: produceObject(),
			metadata: meta("post", k), request: model,
			responses: []common.StatusCodeResponse{response{200, model}, response{201, model}, response{202, model}}})
	}
	if gv.Group == "" && !e.custom {
		switch e.resource {
		case "pods":
			post("binding", "Binding", corev1.Binding{}, corev1.SchemeGroupVersion.WithKind("Binding"))
			post("eviction", "Eviction", policyv1.Eviction{}, policyv1.SchemeGroupVersion.WithKind("Eviction"))
			add(&route{method: "POST", path: prefix + "/namespaces/{namespace}/bindings", opID: "create" + gvCamel(gv) + "NamespacedBinding",
				description: "create a Binding",
				params:      params(pNamespace, pBody, writeParams), consumes: consumeAny(), produces: produceObject(),
				metadata: meta("post", corev1.SchemeGroupVersion.WithKind("Binding")), request: corev1.Binding{},
				responses: []common.StatusCodeResponse{response{200, corev1.Binding{}}, response{201, corev1.Binding{}}, response{202, corev1.Binding{}}}})
		case "serviceaccounts":
			post("token", "Token", authenticationv1.TokenRequest{}, authenticationv1.SchemeGroupVersion.WithKind("TokenRequest"))
		case "namespaces":
			add(&route{method: "PUT", path: item + "/finalize", opID: opName("replace", "", "Finalize"),
				description: "replace finalize of the specified Namespace",
				params:      params(nameP, pBody, writeParams), consumes: consumeAny(), produces: produceObject(),
				metadata: meta("put", gvk), request: obj,
				responses: []common.StatusCodeResponse{response{200, obj}, response{201, obj}}})
		}
	}
	return routes
}

// discoveryRoute is the GET of a discovery or version document at path.
func discoveryRoute(path, opID, tag, description string, model any) *route {
	return &route{method: "GET", path: path, opID: opID, tag: tag, description: description,
		consumes:  []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"},
		produces:  []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"},
		responses: []common.StatusCodeResponse{response{200, model}}}
}
