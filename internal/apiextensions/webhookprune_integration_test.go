package apiextensions_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/controller/controllertest"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// TestMutatingWebhookAdditionsPruned: what a mutating webhook adds to a
// custom resource is pruned by the schema like a request's fields (the
// upstream conformance test "should mutate custom resource with pruning").
func TestMutatingWebhookAdditionsPruned(t *testing.T) {
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		patch := `[{"op":"add","path":"/data/mutation-stage-1","value":"yes"},{"op":"add","path":"/unknown","value":"yes"}]`
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true,
			Patch: []byte(patch), PatchType: ptr.To(admissionv1.PatchTypeJSONPatch)}
		review.Request = nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&review)
	}))
	defer hook.Close()
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw})

	cfg := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	establish(ctx, t, cfg, &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "prunees.prune.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "prune.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "prunees", Kind: "Prunee"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"data": {Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true,
							Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}},
					},
				}},
			}},
		},
	})
	client := testserver.Client(t, cfg)
	none := admissionregistrationv1.SideEffectClassNone
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "prune"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "prune.example.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To(hook.URL), CABundle: caBundle},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"prune.example.com"}, APIVersions: []string{"v1"}, Resources: []string{"prunees"}},
			}},
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the webhook: %v", err)
	}
	res := dynamic.NewForConfigOrDie(cfg).Resource(schema.GroupVersionResource{Group: "prune.example.com", Version: "v1", Resource: "prunees"}).Namespace("default")
	n := 0
	controllertest.Eventually(t, func() error {
		n++
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "prune.example.com/v1", "kind": "Prunee",
			"metadata": map[string]any{"name": fmt.Sprintf("p%d", n)},
			"data":     map[string]any{"mutation-start": "yes"},
		}}
		got, err := res.Create(ctx, obj, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if got.Object["data"].(map[string]any)["mutation-stage-1"] != "yes" {
			return fmt.Errorf("not mutated yet: %v", got.Object)
		}
		if _, ok := got.Object["unknown"]; ok {
			return fmt.Errorf("unknown field not pruned: %v", got.Object)
		}
		return nil
	})
}
