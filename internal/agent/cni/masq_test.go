package cni

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

func TestMasquerade(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, MasqTable)
	for range 2 { // rewritten whole, so idempotent
		if err := Masquerade(context.Background(), fake, "10.42.1.0/24", "10.42.0.0/16"); err != nil {
			t.Fatal(err)
		}
	}
	dump := fake.Dump()
	if n := strings.Count(dump, "masquerade"); n != 1 {
		t.Errorf("%d masquerade rules, want 1:\n%s", n, dump)
	}
	if !strings.Contains(dump, "ip saddr 10.42.1.0/24 ip daddr != 10.42.0.0/16 masquerade") {
		t.Errorf("rule missing:\n%s", dump)
	}
	if err := Masquerade(context.Background(), fake, "nope", "10.42.0.0/16"); err == nil {
		t.Error("bad CIDR accepted")
	}
}
