package webhook

import (
	"context"
	"fmt"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// BenchmarkAdmitNoMatch is the cost every write pays with webhooks
// configured that do not match it: 10 configurations for deployments, a
// pod created.
func BenchmarkAdmitNoMatch(b *testing.B) {
	var cfgs []*admissionregistrationv1.MutatingWebhookConfiguration
	for i := range 10 {
		cfgs = append(cfgs, mutatingConfig(fmt.Sprintf("cfg-%d", i), mutatingHook("m.example.com", "https://127.0.0.1:1", nil,
			func(h *admissionregistrationv1.MutatingWebhook) {
				h.Rules[0].Resources = []string{"deployments"}
				h.Rules[0].APIGroups = []string{"apps"}
			})))
	}
	p := NewMutating(Config{Mutating: mutatingLister(b, cfgs...)})
	pod := testPod("p")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Admit(ctx, podCreate(pod)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateOneWebhook is one call to a local TLS webhook that
// allows (connection reused).
func BenchmarkValidateOneWebhook(b *testing.B) {
	url, ca := newWebhookServer(b, allowAll)
	p := NewValidating(Config{Validating: validatingLister(b, validatingConfig("cfg", validatingHook("v.example.com", url, ca)))})
	pod := testPod("p")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Validate(ctx, podCreate(pod)); err != nil {
			b.Fatal(err)
		}
	}
}
