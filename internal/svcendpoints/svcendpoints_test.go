package svcendpoints

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

func TestReady(t *testing.T) {
	slices := []*discoveryv1.EndpointSlice{
		{
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(int32(8443))}, {Name: ptr.To("http"), Port: ptr.To(int32(8080))}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
				{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
				{Addresses: []string{"10.0.0.3"}}, // readiness unknown counts as ready
			},
		},
		{
			AddressType: discoveryv1.AddressTypeIPv6,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(int32(9443))}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"fd00::1"}}},
		},
		{
			AddressType: discoveryv1.AddressTypeFQDN,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(int32(443))}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"example.com"}}},
		},
		{
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: ptr.To(int32(80))}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.9"}}},
		},
	}
	for _, tc := range []struct {
		port string
		want []string
	}{
		{"https", []string{"10.0.0.1:8443", "10.0.0.3:8443", "[fd00::1]:9443"}},
		{"http", []string{"10.0.0.1:8080", "10.0.0.3:8080"}},
		{"", []string{"10.0.0.9:80"}},
		{"none", nil},
	} {
		list := &discoveryv1.EndpointSliceList{}
		for _, s := range slices {
			list.Items = append(list.Items, *s)
		}
		if diff := cmp.Diff(tc.want, ReadyInList(list, tc.port)); diff != "" {
			t.Errorf("list, port %q (-want +got):\n%s", tc.port, diff)
		}
		if diff := cmp.Diff(tc.want, Ready(slices, tc.port)); diff != "" {
			t.Errorf("port %q (-want +got):\n%s", tc.port, diff)
		}
	}
}

func TestPortName(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "dns-udp", Port: 53, Protocol: corev1.ProtocolUDP},
		{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
		{Name: "https", Port: 443},
	}}}
	for _, tc := range []struct {
		port     int32
		want     string
		wantFind bool
	}{
		{53, "dns-tcp", true}, // the TCP port of that number, not the UDP one listed first
		{443, "https", true},  // no protocol means TCP
		{8080, "", false},
	} {
		if got, ok := PortName(svc, tc.port); got != tc.want || ok != tc.wantFind {
			t.Errorf("PortName(%d) = %q, %v; want %q, %v", tc.port, got, ok, tc.want, tc.wantFind)
		}
	}
}
