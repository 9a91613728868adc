package webhook_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/testserver"
)

// TestWebhooksThroughTheAPIServer registers a mutating and a validating
// webhook (url client configs to a local TLS server) and writes config
// maps through the real API server: the mutating one labels them, the
// validating one refuses those carrying a "forbidden" key.
func TestWebhooksThroughTheAPIServer(t *testing.T) {
	var calls atomic.Int32
	hook := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		var cm corev1.ConfigMap
		_ = json.Unmarshal(review.Request.Object.Raw, &cm)
		switch r.URL.Path {
		case "/mutate":
			patch := `[{"op":"add","path":"/metadata/labels","value":{"mutated":"yes"}}]`
			if cm.Labels != nil {
				patch = `[{"op":"add","path":"/metadata/labels/mutated","value":"yes"}]`
			}
			resp.Patch = []byte(patch)
			resp.PatchType = ptr.To(admissionv1.PatchTypeJSONPatch)
		case "/validate":
			var old corev1.ConfigMap
			_ = json.Unmarshal(review.Request.OldObject.Raw, &old)
			if review.Request.Operation == admissionv1.Delete && old.Labels["keep"] == "yes" {
				resp.Allowed = false
				resp.Result = &metav1.Status{Message: "kept config maps stay", Code: http.StatusForbidden}
			}
			if _, bad := cm.Data["forbidden"]; bad {
				resp.Allowed = false
				resp.Result = &metav1.Status{Message: "forbidden keys are forbidden"}
			}
			resp.Warnings = []string{"checked by the test webhook"}
		}
		review.Response = resp
		review.Request = nil
		_ = json.NewEncoder(w).Encode(&review)
	}))
	hook.EnableHTTP2 = true
	hook.StartTLS()
	defer hook.Close()
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw})

	cfg := testserver.Start(t, testserver.Options{})
	client := testserver.Client(t, cfg)
	ctx := context.Background()

	none := admissionregistrationv1.SideEffectClassNone
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
	}}
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"webhooks": "on"}}
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "label"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "label.example.com",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To(hook.URL + "/mutate"), CABundle: caBundle},
			Rules:                   rules,
			NamespaceSelector:       selector,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the mutating webhook: %v", err)
	}
	if _, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "deny"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         "deny.example.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To(hook.URL + "/validate"), CABundle: caBundle},
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name:       "not-skipped",
				Expression: "object == null || !has(object.metadata.labels) || !('skip-webhook' in object.metadata.labels)",
			}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete},
				Rule:       rules[0].Rule,
			}},
			NamespaceSelector:       selector,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the validating webhook: %v", err)
	}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "hooked", Labels: map[string]string{"webhooks": "on"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The configurations reach the API server's informers shortly after
	// they are written.
	var created *corev1.ConfigMap
	for deadline := time.Now().Add(20 * time.Second); ; {
		_ = client.CoreV1().ConfigMaps("hooked").Delete(ctx, "probe", metav1.DeleteOptions{})
		cm, err := client.CoreV1().ConfigMaps("hooked").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating a config map: %v", err)
		}
		if cm.Labels["mutated"] == "yes" {
			created = cm
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mutating webhook never labelled a config map: %+v", cm.ObjectMeta)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if created.Name != "probe" {
		t.Fatalf("unexpected object %+v", created.ObjectMeta)
	}

	// The validating webhook refuses, with its message.
	_, err := client.CoreV1().ConfigMaps("hooked").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Data: map[string]string{"forbidden": "x"},
	}, metav1.CreateOptions{})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `admission webhook "deny.example.com" denied the request: forbidden keys are forbidden`) {
		t.Errorf("create refused by the webhook: %v", err)
	}

	// A false matchCondition skips the webhook.
	if _, err := client.CoreV1().ConfigMaps("hooked").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "skipped", Labels: map[string]string{"skip-webhook": "yes"}}, Data: map[string]string{"forbidden": "x"},
	}, metav1.CreateOptions{}); err != nil {
		t.Errorf("create that a matchCondition keeps from the webhook: %v", err)
	}

	// Outside the selected namespace nothing is called.
	before := calls.Load()
	other, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "plain"}, Data: map[string]string{"forbidden": "x"},
	}, metav1.CreateOptions{})
	if err != nil || other.Labels["mutated"] != "" || calls.Load() != before {
		t.Errorf("config map outside the selected namespace: %v %+v (%d calls, was %d)", err, other, calls.Load(), before)
	}

	// An update is admitted too.
	created.Data = map[string]string{"forbidden": "now"}
	if _, err := client.CoreV1().ConfigMaps("hooked").Update(ctx, created, metav1.UpdateOptions{}); !apierrors.IsBadRequest(err) {
		t.Errorf("update refused by the webhook: %v", err)
	}

	// So is a delete, with the stored object as the old one.
	if _, err := client.CoreV1().ConfigMaps("hooked").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kept", Labels: map[string]string{"keep": "yes"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = client.CoreV1().ConfigMaps("hooked").Delete(ctx, "kept", metav1.DeleteOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "kept config maps stay") {
		t.Errorf("delete refused by the webhook: %v", err)
	}
	if err := client.CoreV1().ConfigMaps("hooked").Delete(ctx, "probe", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete allowed by the webhook: %v", err)
	}
}
