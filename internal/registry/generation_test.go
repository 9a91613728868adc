package registry

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestWebhooksCountAsSpec checks that webhook configurations, which have
// no spec, get a generation that follows their webhooks, as upstream's.
func TestWebhooksCountAsSpec(t *testing.T) {
	e := newTestEnv(t)
	if err := admissionregistrationv1.AddToScheme(e.scheme); err != nil {
		t.Fatal(err)
	}
	type (
		obj  = *admissionregistrationv1.ValidatingWebhookConfiguration
		list = *admissionregistrationv1.ValidatingWebhookConfigurationList
	)
	res := &Resource{
		GVR:  schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"},
		Kind: "ValidatingWebhookConfiguration", ListKind: "ValidatingWebhookConfigurationList",
		Strategy: Define(Typed[obj, list]{
			New:     func() obj { return &admissionregistrationv1.ValidatingWebhookConfiguration{} },
			NewList: func() list { return &admissionregistrationv1.ValidatingWebhookConfigurationList{} },
		}),
	}
	st := e.store(res, nil)
	created, err := st.Create(e.ctx, "", &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "c"},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{{Name: "a.example.com"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g := created.(obj).Generation; g != 1 {
		t.Errorf("generation on create = %d, want 1", g)
	}
	labelled, _, err := st.Update(e.ctx, "", "c", Main, mutate(func(c obj) { c.Labels = map[string]string{"a": "b"} }), metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g := labelled.(obj).Generation; g != 1 {
		t.Errorf("generation after a label change = %d, want 1", g)
	}
	changed, _, err := st.Update(e.ctx, "", "c", Main, mutate(func(c obj) { c.Webhooks[0].Name = "b.example.com" }), metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g := changed.(obj).Generation; g != 2 {
		t.Errorf("generation after a webhook change = %d, want 2", g)
	}
}
