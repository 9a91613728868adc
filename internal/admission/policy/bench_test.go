package policy

import (
	"context"
	"testing"
)

// BenchmarkValidateNoBindings is what every write pays when no policy is
// bound: one empty list of the bindings.
func BenchmarkValidateNoBindings(b *testing.B) {
	p := newTestPlugin(b, fixture{policies: pols(vap("replicas", "object.spec.replicas <= 5"))})
	req := createReq(web(3))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Validate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateNoMatch is a write that a bound policy does not match
// (the policy is for another resource).
func BenchmarkValidateNoMatch(b *testing.B) {
	pol := withPolicy(vap("replicas", "object.spec.replicas <= 5"), func(s *spec) {
		s.MatchConstraints.ResourceRules[0].Resources = []string{"statefulsets"}
	})
	p := newTestPlugin(b, fixture{policies: pols(pol), bindings: binds(vapb("replicas-b", "replicas"))})
	req := createReq(web(3))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Validate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateOneMatchingPolicy is a Deployment create that one
// bound policy (upstream's conformance rule on replicas) evaluates and
// admits.
func BenchmarkValidateOneMatchingPolicy(b *testing.B) {
	p := newTestPlugin(b, fixture{policies: pols(vap("replicas", "object.spec.replicas <= 5")), bindings: binds(vapb("replicas-b", "replicas"))})
	ctx := context.Background()
	dep := web(3)
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Validate(ctx, createReq(dep)); err != nil {
			b.Fatal(err)
		}
	}
}
