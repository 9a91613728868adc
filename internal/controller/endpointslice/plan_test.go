package endpointslice

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var planSvc = &corev1.Service{
	ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc", UID: "svc-uid"},
	Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.1", Selector: map[string]string{"app": "web"}},
}

func testEndpoint(i int) discovery.Endpoint {
	ready := true
	return discovery.Endpoint{
		Addresses:  []string{fmt.Sprintf("10.0.%d.%d", i/250, i%250)},
		Conditions: discovery.EndpointConditions{Ready: &ready},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: fmt.Sprintf("p%04d", i)},
	}
}

func port(n int32) []discovery.EndpointPort {
	name, proto := "http", corev1.ProtocolTCP
	return []discovery.EndpointPort{{Name: &name, Port: &n, Protocol: &proto}}
}

func desiredGroup(ports []discovery.EndpointPort, from, to int) *group {
	g := &group{ports: ports, endpoints: map[string]discovery.Endpoint{}}
	for i := from; i < to; i++ {
		e := testEndpoint(i)
		g.endpoints[endpointKey(&e)] = e
	}
	return g
}

func slice(name string, ports []discovery.EndpointPort, from, to int) *discovery.EndpointSlice {
	s := newSlice(planSvc, discovery.AddressTypeIPv4, ports, sliceLabels(planSvc))
	s.Name, s.UID = name, types.UID(name)
	for i := from; i < to; i++ {
		s.Endpoints = append(s.Endpoints, testEndpoint(i))
	}
	return s
}

// summary describes changes by slice name (or "new") and endpoint count.
type summary struct{ Create, Update, Delete []string }

func summarize(c changes) summary {
	var s summary
	desc := func(x *discovery.EndpointSlice) string {
		n := x.Name
		if n == "" {
			n = "new"
		}
		return fmt.Sprintf("%s:%d", n, len(x.Endpoints))
	}
	for _, x := range c.create {
		s.Create = append(s.Create, desc(x))
	}
	for _, x := range c.update {
		s.Update = append(s.Update, desc(x))
	}
	for _, x := range c.delete {
		s.Delete = append(s.Delete, desc(x))
	}
	return s
}

func TestPlanAddressType(t *testing.T) {
	p80, p81 := port(80), port(81)
	tests := []struct {
		name     string
		existing []*discovery.EndpointSlice
		desired  map[string]*group
		want     summary
	}{
		{
			name:    "nothing: a placeholder is created",
			desired: map[string]*group{},
			want:    summary{Create: []string{"new:0"}},
		},
		{
			name:     "the placeholder is kept",
			existing: []*discovery.EndpointSlice{slice("ph", []discovery.EndpointPort{}, 0, 0)},
			desired:  map[string]*group{},
			want:     summary{},
		},
		{
			name:    "250 endpoints make 3 slices",
			desired: map[string]*group{portsKey(p80): desiredGroup(p80, 0, 250)},
			want:    summary{Create: []string{"new:100", "new:100", "new:50"}},
		},
		{
			name:     "placeholder reused for the first endpoints",
			existing: []*discovery.EndpointSlice{slice("ph", []discovery.EndpointPort{}, 0, 0)},
			desired:  map[string]*group{portsKey(p80): desiredGroup(p80, 0, 3)},
			want:     summary{Update: []string{"ph:3"}},
		},
		{
			name:     "unchanged slices are not written",
			existing: []*discovery.EndpointSlice{slice("a", p80, 0, 100), slice("b", p80, 100, 150)},
			desired:  map[string]*group{portsKey(p80): desiredGroup(p80, 0, 150)},
			want:     summary{},
		},
		{
			name:     "new endpoints go to a slice being updated anyway, then to one with room",
			existing: []*discovery.EndpointSlice{slice("a", p80, 0, 100), slice("b", p80, 100, 150)},
			desired:  map[string]*group{portsKey(p80): desiredGroup(p80, 1, 152)},
			want:     summary{Update: []string{"a:100", "b:51"}},
		},
		{
			name:     "new endpoints fill an unchanged slice with room",
			existing: []*discovery.EndpointSlice{slice("a", p80, 0, 100), slice("b", p80, 100, 150)},
			desired:  map[string]*group{portsKey(p80): desiredGroup(p80, 0, 160)},
			want:     summary{Update: []string{"b:60"}},
		},
		{
			name:     "scaling to zero leaves an empty slice",
			existing: []*discovery.EndpointSlice{slice("a", p80, 0, 100), slice("b", p80, 100, 150)},
			desired:  map[string]*group{portsKey(p80): desiredGroup(p80, 0, 0)},
			want:     summary{Update: []string{"b:0"}, Delete: []string{"a:100"}},
		},
		{
			name:     "a changed port set reuses the old slice",
			existing: []*discovery.EndpointSlice{slice("a", p80, 0, 10)},
			desired:  map[string]*group{portsKey(p81): desiredGroup(p81, 0, 10)},
			want:     summary{Update: []string{"a:10"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summarize(planAddressType(planSvc, discovery.AddressTypeIPv4, tt.existing, tt.desired, 100))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("planAddressType() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
