package apiserver

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestServerSideApply(t *testing.T) {
	env := newTestEnv(t)
	applyHdr := map[string]string{"Content-Type": string(types.ApplyYAMLPatchType)}
	path := "/api/v1/namespaces/default/configmaps/cfg"
	steps := []struct {
		name     string
		query    string
		body     string
		wantCode int
		wantData map[string]string
	}{
		{"apply creates", "?fieldManager=alice", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"1\"\n", 201, map[string]string{"a": "1"}},
		{"second manager adds a field", "?fieldManager=bob", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  b: \"2\"\n", 200, map[string]string{"a": "1", "b": "2"}},
		{"conflict on a field owned by another", "?fieldManager=bob", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"x\"\n  b: \"2\"\n", 409, nil},
		{"force takes it over", "?fieldManager=bob&force=true", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"x\"\n  b: \"2\"\n", 200, map[string]string{"a": "x", "b": "2"}},
		{"alice drops her field", "?fieldManager=alice", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n", 200, map[string]string{"a": "x", "b": "2"}},
		{"bob drops b", "?fieldManager=bob", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"x\"\n", 200, map[string]string{"a": "x"}},
		{"fieldManager required", "", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n", 422, nil},
		{"wrong kind", "?fieldManager=bob", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cfg\n", 400, nil},
	}
	for _, step := range steps {
		code, _, body := env.do(t, "PATCH", path+step.query, applyHdr, step.body)
		if code != step.wantCode {
			t.Fatalf("%s: code %d, want %d: %s", step.name, code, step.wantCode, body)
		}
		if step.wantData == nil {
			continue
		}
		var cm corev1.ConfigMap
		if err := json.Unmarshal([]byte(body), &cm); err != nil {
			t.Fatal(err)
		}
		if len(cm.Data) != len(step.wantData) {
			t.Errorf("%s: data = %v, want %v", step.name, cm.Data, step.wantData)
		}
		for k, v := range step.wantData {
			if cm.Data[k] != v {
				t.Errorf("%s: data = %v, want %v", step.name, cm.Data, step.wantData)
			}
		}
		if len(cm.ManagedFields) == 0 {
			t.Errorf("%s: no managedFields", step.name)
		}
	}
	// A plain update is tracked too.
	code, _, body := env.do(t, "PATCH", path+"?fieldManager=carol", map[string]string{"Content-Type": string(types.MergePatchType)}, `{"data":{"c":"3"}}`)
	if code != 200 {
		t.Fatalf("merge patch: %d %s", code, body)
	}
	var cm corev1.ConfigMap
	if err := json.Unmarshal([]byte(body), &cm); err != nil {
		t.Fatal(err)
	}
	managers := map[string]metav1.ManagedFieldsOperationType{}
	for _, e := range cm.ManagedFields {
		managers[e.Manager] = e.Operation
	}
	if managers["carol"] != metav1.ManagedFieldsOperationUpdate || managers["bob"] != metav1.ManagedFieldsOperationApply {
		t.Errorf("managers = %v", managers)
	}
}
