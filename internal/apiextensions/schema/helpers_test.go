package schema

import (
	"encoding/json"
	"sort"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// schemaOf decodes a YAML schema as the API server decodes a CRD's.
func schemaOf(t testing.TB, y string) *apiextensionsv1.JSONSchemaProps {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("schema YAML: %v", err)
	}
	s := &apiextensionsv1.JSONSchemaProps{}
	if err := json.Unmarshal(j, s); err != nil {
		t.Fatalf("schema JSON: %v", err)
	}
	return s
}

// objectOf decodes a YAML object as unstructured JSON (int64 numbers).
func objectOf(t testing.TB, y string) map[string]any {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("object YAML: %v", err)
	}
	var obj map[string]any
	if err := utiljson.Unmarshal(j, &obj); err != nil {
		t.Fatalf("object JSON: %v", err)
	}
	return obj
}

// messages returns the errors' messages, sorted.
func messages(errs field.ErrorList) []string {
	out := []string{}
	for _, e := range errs {
		out = append(out, e.Error())
	}
	sort.Strings(out)
	return out
}

func sorted(in []string) []string {
	out := append([]string{}, in...)
	sort.Strings(out)
	return out
}

// mustValidator builds the Validator of a YAML schema.
func mustValidator(t testing.TB, y string) *Validator {
	t.Helper()
	v, err := NewValidator(schemaOf(t, y))
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	return v
}
