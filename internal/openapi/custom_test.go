package openapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientdiscovery "k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	"k8s.io/kube-openapi/pkg/spec3"
	openapiproto "k8s.io/kube-openapi/pkg/util/proto"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/yaml"

	"github.com/skiff-dev/skiff/internal/registry/builtin"
)

// cronTabCRD is the CronTab of the Kubernetes docs, with fields that
// exercise the schema conversions: nullable, oneOf, defaults,
// int-or-string, kept unknown fields and an embedded resource.
const cronTabCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab, listKind: CronTabList, shortNames: [ct]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    selectableFields: [{jsonPath: .spec.cronSpec}]
    schema:
      openAPIV3Schema:
        type: object
        description: CronTab runs an image on a schedule.
        properties:
          spec:
            type: object
            description: The desired schedule of the CronTab.
            required: [cronSpec, note]
            properties:
              cronSpec: {type: string, description: "The schedule in cron format."}
              image: {type: string, description: "The image to run.", default: "busybox"}
              replicas: {type: integer, minimum: 1}
              note: {type: string, nullable: true}
              port: {x-kubernetes-int-or-string: true}
              mode: {type: string, oneOf: [{pattern: "^a"}, {pattern: "^b"}]}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true, properties: {a: {type: string}}}
              template:
                type: object
                x-kubernetes-embedded-resource: true
                x-kubernetes-preserve-unknown-fields: true
              tags: {type: array, items: {type: string}, x-kubernetes-list-type: set}
          status:
            type: object
            properties:
              replicas: {type: integer}
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
  - name: v0
    served: false
    storage: false
    schema:
      openAPIV3Schema: {type: object}
`

// gadgetCRD is cluster-scoped, in a group with a dash, and keeps unknown
// fields at its root.
const gadgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.my-tools.example.org
spec:
  group: my-tools.example.org
  scope: Cluster
  names: {plural: gadgets, singular: gadget, kind: Gadget, listKind: GadgetList}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, description: "What the gadget does."}
`

func decodeCRD(t testing.TB, y string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict([]byte(y), crd); err != nil {
		t.Fatalf("decoding CRD: %v", err)
	}
	return crd
}

func newCustomTestServer(t *testing.T, crds ...*apiextensionsv1.CustomResourceDefinition) (*Handler, *httptest.Server) {
	t.Helper()
	h, err := New(testResources())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := h.SetCustomResources(crds); err != nil {
		t.Fatalf("SetCustomResources: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

func getV2(t *testing.T, url string) (*spec.Swagger, *http.Response) {
	t.Helper()
	resp, body := get(t, url+"/openapi/v2", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi/v2: %d", resp.StatusCode)
	}
	sw := &spec.Swagger{}
	if err := json.Unmarshal(body, sw); err != nil {
		t.Fatalf("decoding /openapi/v2: %v", err)
	}
	return sw, resp
}

func methodsOf(item spec.PathItem) []string {
	var got []string
	for m, op := range map[string]*spec.Operation{"get": item.Get, "put": item.Put, "post": item.Post, "patch": item.Patch, "delete": item.Delete} {
		if op != nil {
			got = append(got, m)
		}
	}
	slices.Sort(got)
	return got
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshalling: %v", err)
	}
	return string(b)
}

func TestCustomResourcesV2(t *testing.T) {
	t.Parallel()
	_, srv := newCustomTestServer(t, decodeCRD(t, cronTabCRD), decodeCRD(t, gadgetCRD))
	sw, _ := getV2(t, srv.URL)

	const ns = "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs"
	for _, tc := range []struct {
		path    string
		methods []string
	}{
		{path: "/apis/stable.example.com/v1/crontabs", methods: []string{"get"}},
		{path: ns, methods: []string{"delete", "get", "post"}},
		{path: ns + "/{name}", methods: []string{"delete", "get", "patch", "put"}},
		{path: ns + "/{name}/status", methods: []string{"get", "patch", "put"}},
		{path: ns + "/{name}/scale", methods: []string{"get", "patch", "put"}},
		{path: "/apis/stable.example.com/v1beta1/namespaces/{namespace}/crontabs/{name}", methods: []string{"delete", "get", "patch", "put"}},
		{path: "/apis/my-tools.example.org/v1alpha1/gadgets", methods: []string{"delete", "get", "post"}},
		{path: "/apis/my-tools.example.org/v1alpha1/gadgets/{name}", methods: []string{"delete", "get", "patch", "put"}},
		// The built-in paths are all still there.
		{path: "/api/v1/namespaces/{namespace}/pods/{name}", methods: []string{"delete", "get", "patch", "put"}},
		{path: "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", methods: []string{"get", "patch", "put"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			item, ok := sw.Paths.Paths[tc.path]
			if !ok {
				t.Fatalf("path missing")
			}
			if diff := cmp.Diff(tc.methods, methodsOf(item)); diff != "" {
				t.Errorf("methods (-want +got):\n%s", diff)
			}
		})
	}
	for p := range sw.Paths.Paths {
		if strings.Contains(p, "/watch/") && strings.Contains(p, "example") {
			t.Errorf("custom resources have no /watch/ paths upstream: %s", p)
		}
		if strings.Contains(p, "/v0/") {
			t.Errorf("unserved version published: %s", p)
		}
	}

	item := sw.Paths.Paths[ns+"/{name}"]
	if got, want := item.Patch.ID, "patchStableExampleComV1NamespacedCronTab"; got != want {
		t.Errorf("PATCH operation ID = %q, want %q", got, want)
	}
	if got, want := item.Patch.Tags, []string{"stableExampleCom_v1"}; !slices.Equal(got, want) {
		t.Errorf("PATCH tags = %q, want %q", got, want)
	}
	if got := sw.Paths.Paths["/apis/my-tools.example.org/v1alpha1/gadgets/{name}"].Get.ID; got != "readMyToolsExampleOrgV1alpha1Gadget" {
		t.Errorf("gadget GET operation ID = %q", got)
	}
	if diff := cmp.Diff([]string{"application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"}, item.Patch.Consumes); diff != "" {
		t.Errorf("PATCH consumes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"application/json", "application/yaml"}, item.Put.Consumes); diff != "" {
		t.Errorf("PUT consumes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"application/json", "application/yaml"}, item.Get.Produces); diff != "" {
		t.Errorf("GET produces (-want +got):\n%s", diff)
	}
	if got := toJSON(t, item.Patch.Extensions[gvkExtension]); got != `{"group":"stable.example.com","kind":"CronTab","version":"v1"}` {
		t.Errorf("PATCH GVK = %s", got)
	}
	if got := toJSON(t, sw.Paths.Paths[ns+"/{name}/scale"].Get.Extensions[gvkExtension]); got != `{"group":"autoscaling","kind":"Scale","version":"v1"}` {
		t.Errorf("scale GET GVK = %s", got)
	}

	def, ok := sw.Definitions["com.example.stable.v1.CronTab"]
	if !ok {
		t.Fatalf("definition com.example.stable.v1.CronTab missing")
	}
	if got := toJSON(t, def.Extensions[gvkExtension]); got != `[{"group":"stable.example.com","kind":"CronTab","version":"v1"}]` {
		t.Errorf("CronTab GVK extension = %s", got)
	}
	if got := toJSON(t, def.Extensions["x-kubernetes-selectable-fields"]); got != `[{"fieldPath":"spec.cronSpec"}]` {
		t.Errorf("selectable fields = %s", got)
	}
	if meta := def.Properties["metadata"]; meta.Ref.String() != "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" {
		t.Errorf("metadata ref = %q", meta.Ref.String())
	}
	if def.Description != "CronTab runs an image on a schedule." {
		t.Errorf("description = %q", def.Description)
	}
	specProps := def.Properties["spec"]
	for _, tc := range []struct {
		name string
		got  any
		want string
	}{
		// v2 cannot say nullable: the type goes, and so does required.
		{name: "nullable", got: specProps.Properties["note"], want: `{}`},
		{name: "required", got: specProps.Required, want: `["cronSpec"]`},
		// No oneOf, anyOf (int-or-string) or defaults in v2.
		{name: "oneOf", got: specProps.Properties["mode"], want: `{"type":"string"}`},
		{name: "int-or-string", got: specProps.Properties["port"], want: `{"x-kubernetes-int-or-string":true}`},
		{name: "default", got: specProps.Properties["image"], want: `{"description":"The image to run.","type":"string"}`},
		// Unknown fields kept: no properties, no type.
		{name: "preserve", got: specProps.Properties["extra"], want: `{"x-kubernetes-preserve-unknown-fields":true}`},
		{name: "embedded", got: specProps.Properties["template"], want: `{"x-kubernetes-embedded-resource":true,"x-kubernetes-preserve-unknown-fields":true}`},
		{name: "list type", got: specProps.Properties["tags"], want: `{"type":"array","items":{"type":"string"},"x-kubernetes-list-type":"set"}`},
	} {
		if got := toJSON(t, tc.got); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
	for _, p := range []string{"apiVersion", "kind", "metadata", "spec", "status"} {
		if _, ok := def.Properties[p]; !ok {
			t.Errorf("CronTab lacks property %s", p)
		}
	}

	list := sw.Definitions["com.example.stable.v1.CronTabList"]
	if items := list.Properties["items"]; items.Items.Schema.Ref.String() != "#/definitions/com.example.stable.v1.CronTab" {
		t.Errorf("list items ref = %q", items.Items.Schema.Ref.String())
	}
	if got := toJSON(t, list.Extensions[gvkExtension]); got != `[{"group":"stable.example.com","kind":"CronTabList","version":"v1"}]` {
		t.Errorf("CronTabList GVK extension = %s", got)
	}
	// A root keeping unknown fields is a bare object in v2.
	if got := toJSON(t, sw.Definitions["com.example.stable.v1beta1.CronTab"]); got != `{"type":"object","x-kubernetes-group-version-kind":[{"group":"stable.example.com","kind":"CronTab","version":"v1beta1"}]}` {
		t.Errorf("v1beta1 CronTab = %s", got)
	}
	if _, ok := sw.Definitions["org.example.my-tools.v1alpha1.Gadget"]; !ok {
		t.Errorf("Gadget definition missing")
	}
	if _, ok := sw.Definitions["io.k8s.api.core.v1.Pod"]; !ok {
		t.Errorf("built-in Pod definition missing")
	}
	// Every reference resolves.
	b, _ := json.Marshal(sw)
	for _, ref := range refsIn(string(b)) {
		name, param := strings.CutPrefix(ref, "#/parameters/")
		if param {
			if _, ok := sw.Parameters[name]; !ok {
				t.Errorf("dangling reference %s", ref)
			}
			continue
		}
		if _, ok := sw.Definitions[strings.TrimPrefix(ref, "#/definitions/")]; !ok {
			t.Errorf("dangling reference %s", ref)
		}
	}
}

// refsIn returns every "$ref" value in the JSON document s.
func refsIn(s string) []string {
	var out []string
	for _, part := range strings.Split(s, `"$ref":"`)[1:] {
		out = append(out, part[:strings.IndexByte(part, '"')])
	}
	return out
}

// The protobuf form, as kubectl reads it, carries the custom resources
// too, and their PATCH takes the parameters kubectl looks for but not a
// strategic merge patch, which makes kubectl apply send a JSON merge patch.
func TestCustomResourcesV2Protobuf(t *testing.T) {
	t.Parallel()
	_, srv := newCustomTestServer(t, decodeCRD(t, cronTabCRD), decodeCRD(t, gadgetCRD))
	dc, err := clientdiscovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	doc, err := dc.OpenAPISchema()
	if err != nil {
		t.Fatalf("OpenAPISchema: %v", err)
	}
	sw, _ := getV2(t, srv.URL)
	if got, want := len(doc.GetDefinitions().GetAdditionalProperties()), len(sw.Definitions); got != want {
		t.Errorf("protobuf has %d definitions, JSON %d", got, want)
	}
	if got, want := len(doc.GetPaths().GetPath()), len(sw.Paths.Paths); got != want {
		t.Errorf("protobuf has %d paths, JSON %d", got, want)
	}
	if got, want := len(doc.GetParameters().GetAdditionalProperties()), len(sw.Parameters); got != want {
		t.Errorf("protobuf has %d parameters, JSON %d", got, want)
	}
	if doc.GetSwagger() != "2.0" || doc.GetInfo().GetTitle() != "Kubernetes" {
		t.Errorf("protobuf header: swagger %q, title %q", doc.GetSwagger(), doc.GetInfo().GetTitle())
	}
	models, err := openapiproto.NewOpenAPIData(doc)
	if err != nil {
		t.Fatalf("NewOpenAPIData: %v", err)
	}
	ct, ok := models.LookupModel("com.example.stable.v1.CronTab").(*openapiproto.Kind)
	if !ok {
		t.Fatalf("CronTab model missing or not a kind")
	}
	if spec, ok := ct.Fields["spec"].(*openapiproto.Kind); !ok || spec.Fields["cronSpec"].GetDescription() != "The schedule in cron format." {
		t.Errorf("CronTab spec.cronSpec not described: %v", ct.Fields["spec"])
	}
	if _, ok := models.LookupModel("io.k8s.api.core.v1.Pod").(*openapiproto.Kind); !ok {
		t.Errorf("Pod model missing")
	}
	gvk := schema.GroupVersionKind{Group: "stable.example.com", Version: "v1", Kind: "CronTab"}
	for _, name := range []string{"fieldValidation", "dryRun", "fieldManager", "force"} {
		if found, ok := patchSupports(doc, gvk, name); !found || !ok {
			t.Errorf("PATCH of CronTab: found %v, takes %s %v", found, name, ok)
		}
	}
	if consumes := patchConsumes(doc, gvk); slices.Contains(consumes, "application/strategic-merge-patch+json") || !slices.Contains(consumes, "application/merge-patch+json") {
		t.Errorf("PATCH of CronTab consumes %v", consumes)
	}
	if consumes := patchConsumes(doc, schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}); !slices.Contains(consumes, "application/strategic-merge-patch+json") {
		t.Errorf("PATCH of Deployment consumes %v", consumes)
	}
}

// patchConsumes is what kubectl's GetConsumes(gvk, "PATCH") returns.
func patchConsumes(doc *openapiv2.Document, gvk schema.GroupVersionKind) []string {
	for _, p := range doc.GetPaths().GetPath() {
		op := p.GetValue().GetPatch()
		for _, ext := range op.GetVendorExtension() {
			var got map[string]string
			if ext.GetName() == gvkExtension && json.Unmarshal([]byte(yamlToJSON(ext.GetValue().GetYaml())), &got) == nil &&
				got["group"] == gvk.Group && got["version"] == gvk.Version && got["kind"] == gvk.Kind {
				return op.GetConsumes()
			}
		}
	}
	return nil
}

func TestCustomResourcesV3(t *testing.T) {
	t.Parallel()
	_, srv := newCustomTestServer(t, decodeCRD(t, cronTabCRD), decodeCRD(t, gadgetCRD))
	dc, err := clientdiscovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatalf("discovery client: %v", err)
	}
	root := openapi3.NewRoot(dc.OpenAPIV3())
	gvs, err := root.GroupVersions()
	if err != nil {
		t.Fatalf("GroupVersions: %v", err)
	}
	var got []string
	for _, gv := range gvs {
		got = append(got, gv.String())
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"apps/v1", "my-tools.example.org/v1alpha1", "rbac.authorization.k8s.io/v1",
		"stable.example.com/v1", "stable.example.com/v1beta1", "v1"}, got); diff != "" {
		t.Errorf("group versions (-want +got):\n%s", diff)
	}

	doc, err := root.GVSpec(schema.GroupVersion{Group: "stable.example.com", Version: "v1"})
	if err != nil {
		t.Fatalf("GVSpec: %v", err)
	}
	ct := doc.Components.Schemas["com.example.stable.v1.CronTab"]
	if ct == nil {
		t.Fatalf("CronTab schema missing")
	}
	if got := toJSON(t, ct.Extensions[gvkExtension]); got != `[{"group":"stable.example.com","kind":"CronTab","version":"v1"}]` {
		t.Errorf("CronTab GVK = %s", got)
	}
	specProps := ct.Properties["spec"]
	for _, tc := range []struct {
		name string
		got  any
		want string
	}{
		// v3 keeps what v2 drops, and spells out int-or-string.
		{name: "nullable", got: specProps.Properties["note"], want: `{"type":"string","nullable":true}`},
		{name: "required", got: specProps.Required, want: `["cronSpec","note"]`},
		{name: "oneOf", got: specProps.Properties["mode"], want: `{"type":"string","oneOf":[{"pattern":"^a"},{"pattern":"^b"}]}`},
		{name: "int-or-string", got: specProps.Properties["port"], want: `{"anyOf":[{"type":"integer"},{"type":"string"}],"x-kubernetes-int-or-string":true}`},
		{name: "default", got: specProps.Properties["image"], want: `{"description":"The image to run.","type":"string","default":"busybox"}`},
		{name: "metadata", got: ct.Properties["metadata"].AllOf, want: `[{"$ref":"#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]`},
	} {
		if got := toJSON(t, tc.got); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
	tmpl := specProps.Properties["template"]
	for _, p := range []string{"apiVersion", "kind", "metadata"} {
		if _, ok := tmpl.Properties[p]; !ok {
			t.Errorf("embedded resource lacks %s", p)
		}
	}
	for _, name := range []string{"com.example.stable.v1.CronTabList", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
		"io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta", "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
		"io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
		"io.k8s.api.autoscaling.v1.Scale"} {
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("schema %s missing", name)
		}
	}
	if _, ok := doc.Components.Schemas["io.k8s.api.core.v1.Pod"]; ok {
		t.Errorf("a custom group version's document carries built-in kinds")
	}
	item := doc.Paths.Paths["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]
	if item == nil || item.Patch == nil {
		t.Fatalf("CronTab PATCH missing")
	}
	var ctypes []string
	for c := range item.Patch.RequestBody.Content {
		ctypes = append(ctypes, c)
	}
	slices.Sort(ctypes)
	if diff := cmp.Diff([]string{"application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"}, ctypes); diff != "" {
		t.Errorf("PATCH request body types (-want +got):\n%s", diff)
	}
	var names []string
	for _, p := range item.Patch.Parameters {
		names = append(names, p.Name)
	}
	for _, want := range []string{"fieldValidation", "dryRun", "fieldManager", "force"} {
		if !slices.Contains(names, want) {
			t.Errorf("PATCH parameters %v lack %s", names, want)
		}
	}

	beta, err := root.GVSpec(schema.GroupVersion{Group: "stable.example.com", Version: "v1beta1"})
	if err != nil {
		t.Fatalf("GVSpec v1beta1: %v", err)
	}
	if _, ok := beta.Paths.Paths["/apis/stable.example.com/v1beta1/namespaces/{namespace}/crontabs/{name}/status"]; ok {
		t.Errorf("v1beta1 has a status subresource it does not declare")
	}
	if got := toJSON(t, beta.Components.Schemas["com.example.stable.v1beta1.CronTab"].Extensions["x-kubernetes-preserve-unknown-fields"]); got != "true" {
		t.Errorf("v1beta1 root lost x-kubernetes-preserve-unknown-fields: %s", got)
	}
}

func v3IndexOf(t *testing.T, url string) v3Index {
	t.Helper()
	_, body := get(t, url+"/openapi/v3", nil)
	var index v3Index
	if err := json.Unmarshal(body, &index); err != nil {
		t.Fatalf("decoding index: %v", err)
	}
	return index
}

// Changing, adding and removing CRDs changes the documents, the index and
// its hashes; the built-in documents keep theirs.
func TestSetCustomResourcesUpdates(t *testing.T) {
	t.Parallel()
	h, srv := newCustomTestServer(t)
	const key = "apis/stable.example.com/v1"
	builtinIndex := v3IndexOf(t, srv.URL)
	_, builtinV2 := getV2(t, srv.URL)

	crd, gadget := decodeCRD(t, cronTabCRD), decodeCRD(t, gadgetCRD)
	const gadgetKey = "apis/my-tools.example.org/v1alpha1"
	if err := h.SetCustomResources([]*apiextensionsv1.CustomResourceDefinition{crd, gadget}); err != nil {
		t.Fatalf("SetCustomResources: %v", err)
	}
	first := v3IndexOf(t, srv.URL)
	gadgetFirst, _ := get(t, srv.URL+"/openapi/v3/"+gadgetKey, nil)
	if _, ok := first.Paths[key]; !ok {
		t.Fatalf("index lacks %s: %v", key, first.Paths)
	}
	if first.Paths["api/v1"] != builtinIndex.Paths["api/v1"] {
		t.Errorf("api/v1 hash changed with a custom resource")
	}
	_, v2First := getV2(t, srv.URL)
	if v2First.Header.Get("Etag") == builtinV2.Header.Get("Etag") {
		t.Errorf("v2 ETag unchanged after adding a CRD")
	}

	// The same CRDs again: nothing changes, not even Last-Modified.
	if err := h.SetCustomResources([]*apiextensionsv1.CustomResourceDefinition{gadget.DeepCopy(), crd.DeepCopy()}); err != nil {
		t.Fatalf("SetCustomResources: %v", err)
	}
	if again := v3IndexOf(t, srv.URL); again.Paths[key] != first.Paths[key] {
		t.Errorf("hash changed for the same CRD")
	}
	if _, v2Again := getV2(t, srv.URL); v2Again.Header.Get("Etag") != v2First.Header.Get("Etag") ||
		v2Again.Header.Get("Last-Modified") != v2First.Header.Get("Last-Modified") {
		t.Errorf("v2 changed for the same CRD")
	}

	// A new description: new hash, and the old URL redirects to it.
	changed := crd.DeepCopy()
	sp := changed.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	sp.Description = "Changed."
	changed.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = sp
	if err := h.SetCustomResources([]*apiextensionsv1.CustomResourceDefinition{changed, gadget}); err != nil {
		t.Fatalf("SetCustomResources: %v", err)
	}
	second := v3IndexOf(t, srv.URL)
	if second.Paths[key] == first.Paths[key] {
		t.Errorf("hash unchanged after a schema change")
	}
	// The other CRD's document is not rebuilt.
	gadgetSecond, _ := get(t, srv.URL+"/openapi/v3/"+gadgetKey, nil)
	if second.Paths[gadgetKey] != first.Paths[gadgetKey] || gadgetSecond.Header.Get("Last-Modified") != gadgetFirst.Header.Get("Last-Modified") {
		t.Errorf("the unchanged CRD's document changed")
	}
	sw, _ := getV2(t, srv.URL)
	if got := sw.Definitions["com.example.stable.v1.CronTab"].Properties["spec"].Description; got != "Changed." {
		t.Errorf("v2 CronTab spec description = %q after the change", got)
	}
	if _, ok := sw.Definitions["org.example.my-tools.v1alpha1.Gadget"]; !ok {
		t.Errorf("v2 lost the unchanged CRD")
	}
	if resp, _ := get(t, srv.URL+first.Paths[key].ServerRelativeURL, nil); resp.StatusCode != http.StatusMovedPermanently ||
		resp.Header.Get("Location") != second.Paths[key].ServerRelativeURL {
		t.Errorf("old hash: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body := get(t, srv.URL+second.Paths[key].ServerRelativeURL, nil)
	if !strings.Contains(string(body), "Changed.") {
		t.Errorf("document lacks the new description")
	}

	var v2Last *http.Response
	// Removed: gone from the index, 404, and v2 is the built-in one again
	// (dated later than the one served before it).
	if err := h.SetCustomResources(nil); err != nil {
		t.Fatalf("SetCustomResources: %v", err)
	}
	if diff := cmp.Diff(builtinIndex, v3IndexOf(t, srv.URL)); diff != "" {
		t.Errorf("index after removal (-want +got):\n%s", diff)
	}
	if resp, _ := get(t, srv.URL+"/openapi/v3/"+key, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("removed group version: %d, want 404", resp.StatusCode)
	}
	sw, v2Last = getV2(t, srv.URL)
	if v2Last.Header.Get("Etag") != builtinV2.Header.Get("Etag") {
		t.Errorf("v2 ETag after removal differs from the built-in one")
	}
	if v2Last.Header.Get("Last-Modified") == builtinV2.Header.Get("Last-Modified") && v2First.Header.Get("Last-Modified") != builtinV2.Header.Get("Last-Modified") {
		t.Errorf("v2 Last-Modified went back to the built-in one's")
	}
	if _, ok := sw.Definitions["com.example.stable.v1.CronTab"]; ok {
		t.Errorf("v2 still has CronTab")
	}
}

// A CRD clashing with a built-in resource is left out with an error; a
// CRD in a built-in group version is merged into its document.
func TestSetCustomResourcesBuiltinGroup(t *testing.T) {
	t.Parallel()
	h, err := New(testResources())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	clash := decodeCRD(t, gadgetCRD)
	clash.Name, clash.Spec.Group, clash.Spec.Versions[0].Name = "deployments.apps", "apps", "v1"
	clash.Spec.Names.Plural, clash.Spec.Scope = "deployments", apiextensionsv1.NamespaceScoped
	widget := decodeCRD(t, gadgetCRD)
	widget.Name, widget.Spec.Group, widget.Spec.Versions[0].Name = "widgets.apps", "apps", "v1"
	widget.Spec.Names = apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"}

	err = h.SetCustomResources([]*apiextensionsv1.CustomResourceDefinition{clash, widget, decodeCRD(t, cronTabCRD)})
	if err == nil || !strings.Contains(err.Error(), "deployments.apps") {
		t.Errorf("SetCustomResources = %v, want an error naming deployments.apps", err)
	}
	sw, _ := getV2(t, srv.URL)
	if _, ok := sw.Definitions["apps.v1.Gadget"]; ok {
		t.Errorf("the clashing CRD was published")
	}
	for _, name := range []string{"apps.v1.Widget", "com.example.stable.v1.CronTab", "io.k8s.api.apps.v1.Deployment"} {
		if _, ok := sw.Definitions[name]; !ok {
			t.Errorf("v2 lacks %s", name)
		}
	}
	if got := sw.Paths.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"].Patch.Consumes; !slices.Contains(got, "application/strategic-merge-patch+json") {
		t.Errorf("the built-in deployments PATCH was replaced: consumes %v", got)
	}
	_, body := get(t, srv.URL+"/openapi/v3/apis/apps/v1", nil)
	doc := &spec3.OpenAPI{}
	if err := json.Unmarshal(body, doc); err != nil {
		t.Fatalf("decoding apps/v1: %v", err)
	}
	for _, name := range []string{"apps.v1.Widget", "io.k8s.api.apps.v1.Deployment"} {
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("apps/v1 lacks %s", name)
		}
	}
	if _, ok := doc.Paths.Paths["/apis/apps/v1/widgets/{name}"]; !ok {
		t.Errorf("apps/v1 lacks the widgets path")
	}
}

func TestObjectMembers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{in: `{}`, want: map[string]string{}},
		{in: ` { "a" : 1 , "b":{"c":[1,"}",{"d":"\"]"}]},"e":"x\\"}`, want: map[string]string{"a": "1", "b": `{"c":[1,"}",{"d":"\"]"}]}`, "e": `"x\\"`}},
		{in: `{"a\"b":true,"n":null}`, want: map[string]string{`a"b`: "true", "n": "null"}},
		{in: `[1]`, wantErr: true},
		{in: `{"a":{"b":1}`, wantErr: true},
		{in: `{"a":"b`, wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			members, end, err := objectMembers([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Errorf("no error")
				}
				return
			}
			if err != nil {
				t.Fatalf("objectMembers: %v", err)
			}
			got := map[string]string{}
			for k, s := range members {
				got[k] = tc.in[s.start:s.end]
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
			if tc.in[end] != '}' || strings.TrimSpace(tc.in[end+1:]) != "" {
				t.Errorf("end %d is not the closing brace", end)
			}
		})
	}
}

func TestSplice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		doc  string
		want string
	}{
		{name: "all sections", doc: `{"swagger":"2.0","paths":{"/a":{}},"definitions":{"A":{}},"parameters":{"p":{}}}`,
			want: `{"definitions":{"A":{},"B":{}},"parameters":{"p":{},"q":{}},"paths":{"/a":{},"/b":{}},"swagger":"2.0"}`},
		{name: "empty and missing", doc: `{"swagger":"2.0","paths":{},"definitions":{}}`,
			want: `{"definitions":{"B":{}},"parameters":{"q":{}},"paths":{"/b":{}},"swagger":"2.0"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw := &spec.Swagger{}
			if err := json.Unmarshal([]byte(tc.doc), sw); err != nil {
				t.Fatal(err)
			}
			b, err := newBuiltinV2(sw, time.Time{})
			if err != nil {
				t.Fatalf("newBuiltinV2: %v", err)
			}
			plain, _ := b.doc.json.plain()
			add := additions{"paths": {[]byte(`"/b":{}`)}, "definitions": {[]byte(`"B":{}`)}, "parameters": {[]byte(`"q":{}`)}}
			var got map[string]any
			if err := json.Unmarshal(b.splice(plain, add), &got); err != nil {
				t.Fatalf("spliced JSON: %v", err)
			}
			if diff := cmp.Diff(tc.want, toJSON(t, got)); diff != "" {
				t.Errorf("spliced (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkSetCustomResources measures a rebuild with the built-in
// resources of a real server and n CronTab-like CRDs.
func BenchmarkSetCustomResources(b *testing.B) {
	h, err := New(builtin.Resources())
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	for _, n := range []int{1, 50} {
		crds := make([]*apiextensionsv1.CustomResourceDefinition, n)
		for i := range crds {
			crd := decodeCRD(b, cronTabCRD)
			crd.Spec.Group = fmt.Sprintf("g%d.example.com", i)
			crd.Name = "crontabs." + crd.Spec.Group
			crds[i] = crd
		}
		b.Run(fmt.Sprintf("%d/one-changed", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				// Change one CRD each time, as a real update does.
				crds[0].Spec.Versions[0].Schema.OpenAPIV3Schema.Description = fmt.Sprint(i)
				if err := h.SetCustomResources(crds); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%d/all-new", n), func(b *testing.B) {
			for b.Loop() {
				// As on a server's start: nothing published yet.
				h.cur.Store(h.builtin)
				h.crds, h.v2Key, h.v3Keys = nil, "", nil
				if err := h.SetCustomResources(crds); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Readers are served, from a complete set of documents, while the custom
// resources change (run with -race).
func TestSetCustomResourcesConcurrentReaders(t *testing.T) {
	t.Parallel()
	h, srv := newCustomTestServer(t)
	crd := decodeCRD(t, cronTabCRD)
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(done)
		for i := range 5 {
			c := crd.DeepCopy()
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Description = fmt.Sprint(i)
			set := []*apiextensionsv1.CustomResourceDefinition{c}
			if i%2 == 1 {
				set = nil
			}
			if err := h.SetCustomResources(set); err != nil {
				errs <- err
				return
			}
		}
	}()
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		index := v3IndexOf(t, srv.URL)
		for _, e := range index.Paths {
			// A document of an older index redirects to the current one.
			resp, _ := get(t, srv.URL+e.ServerRelativeURL, map[string]string{"Accept": mimeV3Proto})
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusMovedPermanently && resp.StatusCode != http.StatusNotFound {
				t.Fatalf("GET %s: %d", e.ServerRelativeURL, resp.StatusCode)
			}
		}
		if resp, body := get(t, srv.URL+"/openapi/v2", map[string]string{"Accept": mimeV2Proto}); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /openapi/v2: %d", resp.StatusCode)
		} else if err := proto.Unmarshal(body, &openapiv2.Document{}); err != nil {
			t.Fatalf("v2 protobuf: %v", err)
		}
	}
	select {
	case err := <-errs:
		t.Fatalf("SetCustomResources: %v", err)
	default:
	}
}
