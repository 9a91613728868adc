package proxy

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/knftables"

	"github.com/skiff-dev/skiff/internal/svcendpoints"
)

// state is a set of services and slices.
type state struct {
	name   string
	svcs   []*corev1.Service
	slices []*discoveryv1.EndpointSlice
}

// desiredRules builds the rules of s, as Run does.
func desiredRules(s state, n node) map[string]*serviceRules {
	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	for _, es := range s.slices {
		keys, _ := svcendpoints.ServiceKey(es)
		bySvc[keys[0]] = append(bySvc[keys[0]], es)
	}
	out := map[string]*serviceRules{}
	for _, svc := range s.svcs {
		key := svc.Namespace + "/" + svc.Name
		if ports := servicePorts(svc, bySvc[key], n); len(ports) > 0 {
			out[key] = buildService(ports, n)
		}
	}
	return out
}

// TestIncrementalMatchesFull walks through a sequence of states, updating
// the table incrementally, and checks after each step that it equals a
// table rebuilt from scratch. The fake enforces that every referenced
// chain, set and map exists and that deleted objects exist.
func TestIncrementalMatchesFull(t *testing.T) {
	n := mustNode(testConfig(nil))
	fake := knftables.NewFake(knftables.InetFamily, TableName)
	walkSteps(t, fake, n, func(t *testing.T, step state, cur map[string]*serviceRules) {
		want := knftables.NewFake(knftables.InetFamily, TableName)
		if err := newApplier(want, n).full(context.Background(), cur); err != nil {
			t.Fatalf("%s: full: %v", step.name, err)
		}
		if diff := cmp.Diff(sortedDump(want), sortedDump(fake)); diff != "" {
			t.Errorf("%s: incremental table differs from a rebuilt one (-full +incremental):\n%s", step.name, diff)
		}
	})
}

// incrementalSteps is a sequence of states that adds, changes and removes
// every kind of object.
func incrementalSteps() []state {
	return []state{
		{name: "empty"},
		{name: "one service", svcs: []*corev1.Service{service("shop", "web", "10.96.0.10")},
			slices: []*discoveryv1.EndpointSlice{slice("shop", "web", "w1", 8080, "10.42.0.5@node-a:r", "10.42.1.7@node-b:r")}},
		{name: "replace an endpoint, add a UDP service", svcs: []*corev1.Service{
			service("shop", "web", "10.96.0.10"),
			service("kube-system", "dns", "10.96.0.53", addPort("dns", corev1.ProtocolUDP, 53)),
		}, slices: []*discoveryv1.EndpointSlice{
			slice("shop", "web", "w1", 8080, "10.42.0.5@node-a:r", "10.42.1.9@node-b:r"),
			sliceFor("kube-system", "dns", "d1", "dns", corev1.ProtocolUDP, 5353, "10.42.0.5@node-a:r", "10.42.1.5@node-b:r"),
		}},
		{name: "scale up and add affinity", svcs: []*corev1.Service{
			service("shop", "web", "10.96.0.10", affinity(60)),
			service("kube-system", "dns", "10.96.0.53", addPort("dns", corev1.ProtocolUDP, 53)),
		}, slices: []*discoveryv1.EndpointSlice{
			slice("shop", "web", "w1", 8080, "10.42.0.5@node-a:r", "10.42.1.7@node-b:r", "10.42.1.8@node-b:r"),
			sliceFor("kube-system", "dns", "d1", "dns", corev1.ProtocolUDP, 5353, "10.42.0.5@node-a:r", "10.42.1.5@node-b:r", "10.42.1.6@node-b:r"),
		}},
		{name: "scale down, drop affinity", svcs: []*corev1.Service{service("shop", "web", "10.96.0.10")},
			slices: []*discoveryv1.EndpointSlice{slice("shop", "web", "w1", 8080, "10.42.1.8@node-b:r")}},
		{name: "no endpoints", svcs: []*corev1.Service{service("shop", "web", "10.96.0.10")},
			slices: []*discoveryv1.EndpointSlice{slice("shop", "web", "w1", 8080, "10.42.1.8@node-b:n")}},
		{name: "become LoadBalancer with local policy and two LBs sharing the port", svcs: []*corev1.Service{
			service("shop", "web", "10.96.0.10", loadBalancer(30080, "192.168.1.10"), externalLocal),
			service("shop", "api", "10.96.0.11", loadBalancer(30081, "192.168.1.10"), sourceRanges("10.0.0.0/8")),
		}, slices: []*discoveryv1.EndpointSlice{
			slice("shop", "web", "w1", 8080, "10.42.0.5@node-a:r"),
			slice("shop", "api", "a1", 8080, "10.42.0.6@node-a:r"),
		}},
		{name: "first LB owner goes away", svcs: []*corev1.Service{
			service("shop", "web", "10.96.0.10", loadBalancer(30081, "192.168.1.10")),
		}, slices: []*discoveryv1.EndpointSlice{
			slice("shop", "web", "w1", 8080, "10.42.0.5@node-a:r"),
		}},
		{name: "internal local and a new service", svcs: []*corev1.Service{
			service("shop", "web", "10.96.0.10", internalLocal),
			service("shop", "db", "10.96.0.12", addPortOpt()),
		}, slices: []*discoveryv1.EndpointSlice{
			slice("shop", "web", "w1", 8080, "10.42.1.7@node-b:r"),
			slice("shop", "db", "d1", 5432, "10.42.0.9@node-a:t"),
		}},
		{name: "all gone"},
	}
}

// walkSteps applies incrementalSteps to nft, updating incrementally, and
// calls check after each step.
func walkSteps(t *testing.T, nft knftables.Interface, n node, check func(*testing.T, state, map[string]*serviceRules)) {
	t.Helper()
	steps := incrementalSteps()
	ctx := context.Background()
	a := newApplier(nft, n)
	if err := a.full(ctx, desiredRules(steps[0], n)); err != nil {
		t.Fatalf("full: %v", err)
	}
	prev := desiredRules(steps[0], n)
	for _, step := range steps[1:] {
		cur := desiredRules(step, n)
		changed := map[string]*serviceRules{}
		for k := range prev {
			changed[k] = nil
		}
		for k, r := range cur {
			changed[k] = r
		}
		retry, err := a.update(ctx, changed)
		if err != nil {
			t.Fatalf("%s: update: %v", step.name, err)
		}
		for len(retry) > 0 {
			again := map[string]*serviceRules{}
			for _, k := range retry {
				again[k] = cur[k]
			}
			if retry, err = a.update(ctx, again); err != nil {
				t.Fatalf("%s: update of blocked services: %v", step.name, err)
			}
		}
		check(t, step, cur)
		// Nothing changed: nothing to do.
		if _, err := a.update(ctx, cur); err != nil {
			t.Fatalf("%s: no-op update: %v", step.name, err)
		}
		if a.ops != 0 {
			t.Errorf("%s: an update without changes ran %d operations", step.name, a.ops)
		}
		prev = cur
	}
}

// TestUpdateTouchesOnlyChangedService checks that an endpoint change of
// one service among many writes only that service's objects.
func TestUpdateTouchesOnlyChangedService(t *testing.T) {
	n := mustNode(testConfig(nil))
	ctx := context.Background()
	svcs, slices := SyntheticServices(50, 4)
	fake := knftables.NewFake(knftables.InetFamily, TableName)
	a := newApplier(fake, n)
	if err := a.full(ctx, desiredRules(state{svcs: svcs, slices: slices}, n)); err != nil {
		t.Fatalf("full: %v", err)
	}
	slices[7] = slices[7].DeepCopy()
	slices[7].Endpoints = slices[7].Endpoints[:3]
	cur := desiredRules(state{svcs: svcs, slices: slices}, n)
	if _, err := a.update(ctx, map[string]*serviceRules{"bench/svc-7": cur["bench/svc-7"]}); err != nil {
		t.Fatalf("update: %v", err)
	}
	// DNAT map flush + its 3 elements (one command), chain flush + 1
	// numgen rule.
	if got, want := a.ops, 4; got != want {
		t.Errorf("removing one endpoint took %d operations, want %d", got, want)
	}
}

func addPortOpt() svcOpt { return addPort("metrics", corev1.ProtocolTCP, 9090) }
