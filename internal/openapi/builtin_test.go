package openapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/internal/registry/builtin"
	"k8s.io/kube-openapi/pkg/util"
)

// TestBuiltinResources checks that every built-in resource has generated
// definitions, reachable by its group/version/kind in the v2 document and
// in its group version's v3 document. It fails when a resource of a new API
// package is added without regenerating (hack/update-openapi.sh).
func TestBuiltinResources(t *testing.T) {
	t.Parallel()
	resources := builtin.Resources()
	s, err := buildSpecs(resources, nil)
	if err != nil {
		t.Fatalf("buildSpecs: %v", err)
	}
	for _, r := range resources {
		t.Run(r.GVR.String(), func(t *testing.T) {
			name := util.GetCanonicalTypeName(r.Strategy.New())
			def, ok := s.v2.Definitions[name]
			if !ok {
				t.Fatalf("v2 lacks definition %s", name)
			}
			if !hasGVK(t, def.Extensions[gvkExtension], r.GVR.Group, r.GVR.Version, r.Kind) {
				t.Errorf("v2 %s: GVK extension %v lacks %s", name, def.Extensions[gvkExtension], r.GroupVersionKind())
			}
			doc := s.v3[strings.TrimPrefix(gvPrefix(r.GVR.GroupVersion()), "/")]
			if doc == nil {
				t.Fatalf("no v3 document for %s", r.GVR.GroupVersion())
			}
			sch, ok := doc.Components.Schemas[name]
			if !ok {
				t.Fatalf("v3 lacks schema %s", name)
			}
			if !hasGVK(t, sch.Extensions[gvkExtension], r.GVR.Group, r.GVR.Version, r.Kind) {
				t.Errorf("v3 %s: GVK extension lacks %s", name, r.GroupVersionKind())
			}
		})
	}
}

func hasGVK(t *testing.T, ext any, group, version, kind string) bool {
	t.Helper()
	b, err := json.Marshal(ext)
	if err != nil {
		t.Fatalf("marshalling extension: %v", err)
	}
	var gvks []map[string]string
	if err := json.Unmarshal(b, &gvks); err != nil {
		t.Fatalf("extension %s is not a list of GVKs: %v", b, err)
	}
	for _, g := range gvks {
		if g["group"] == group && g["version"] == version && g["kind"] == kind {
			return true
		}
	}
	return false
}

// The CustomResourceDefinition kind is published under upstream's name,
// with the types it refers to.
func TestCustomResourceDefinitionKind(t *testing.T) {
	t.Parallel()
	s, err := buildSpecs(builtin.Resources(), nil)
	if err != nil {
		t.Fatalf("buildSpecs: %v", err)
	}
	const prefix = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
	for _, name := range []string{"CustomResourceDefinition", "CustomResourceDefinitionList"} {
		def, ok := s.v2.Definitions[prefix+name]
		if !ok {
			t.Fatalf("v2 lacks %s", prefix+name)
		}
		if !hasGVK(t, def.Extensions[gvkExtension], "apiextensions.k8s.io", "v1", name) {
			t.Errorf("%s: GVK extension %v", name, def.Extensions[gvkExtension])
		}
	}
	doc := s.v3["apis/apiextensions.k8s.io/v1"]
	if doc == nil {
		t.Fatalf("no v3 document for apiextensions.k8s.io/v1")
	}
	for _, name := range []string{"CustomResourceDefinition", "JSONSchemaProps", "CustomResourceDefinitionVersion"} {
		if _, ok := doc.Components.Schemas[prefix+name]; !ok {
			t.Errorf("v3 lacks %s", prefix+name)
		}
	}
	if _, ok := doc.Paths.Paths["/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}/status"]; !ok {
		t.Errorf("v3 lacks the CRD status path")
	}
}

// BenchmarkNew measures building the built-in documents.
func BenchmarkNew(b *testing.B) {
	resources := builtin.Resources()
	for b.Loop() {
		if _, err := New(resources); err != nil {
			b.Fatal(err)
		}
	}
}
