package proxy

import (
	"context"
	"testing"

	"sigs.k8s.io/knftables"
)

// BenchmarkFullSyncFake times computing the rules of 1,000 services of 10
// endpoints and applying them to the fake (the rule generation cost).
func BenchmarkFullSyncFake(b *testing.B) {
	svcs, slices := SyntheticServices(1000, 10)
	for b.Loop() {
		fake := knftables.NewFake(knftables.InetFamily, TableName)
		if _, err := FullSync(context.Background(), testConfig(fake), svcs, slices); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFullSyncKernel times a full rebuild of 1,000 services of 10
// endpoints with the real nft, in a network namespace (root only).
func BenchmarkFullSyncKernel(b *testing.B) {
	requireRoot(b)
	nft := nftIn(b, newNetns(b, "bench"))
	svcs, slices := SyntheticServices(1000, 10)
	var ops int
	for b.Loop() {
		res, err := FullSync(context.Background(), testConfig(nft), svcs, slices)
		if err != nil {
			b.Fatal(err)
		}
		ops = res.Operations
	}
	b.ReportMetric(float64(ops), "ops/tx")
}

// BenchmarkUpdateKernel times the incremental update of one service (an
// endpoint removed or added back) in a table of 1,000 services of 10
// endpoints, with the real nft, in a network namespace (root only).
func BenchmarkUpdateKernel(b *testing.B) {
	requireRoot(b)
	nft := nftIn(b, newNetns(b, "bench-upd"))
	n := mustNode(testConfig(nft))
	svcs, slices := SyntheticServices(1000, 10)
	a := newApplier(nft, n)
	if err := a.full(context.Background(), desiredRules(state{svcs: svcs, slices: slices}, n)); err != nil {
		b.Fatal(err)
	}
	full := slices[500]
	fewer := full.DeepCopy()
	fewer.Endpoints = fewer.Endpoints[1:]
	i := 0
	for b.Loop() {
		slices[500] = fewer
		if i%2 == 1 {
			slices[500] = full
		}
		i++
		r := buildService(servicePorts(svcs[500], slices[500:501], n), n)
		if _, err := a.update(context.Background(), map[string]*serviceRules{"bench/svc-500": r}); err != nil {
			b.Fatal(err)
		}
	}
}
