package proxy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

func TestServicePorts(t *testing.T) {
	n := mustNode(testConfig(nil))
	v6 := slice("shop", "web", "web-v6", 8080, "fd00::5@node-a:r")
	v6.AddressType = discoveryv1.AddressTypeIPv6
	nilConditions := slice("shop", "web", "web-nil", 8080, "10.42.0.8@node-a:r")
	nilConditions.Endpoints[0].Conditions = discoveryv1.EndpointConditions{}
	ep := func(ip string, local bool) endpoint {
		return endpoint{ip: ip, port: 8080, local: local, ready: true, serving: true}
	}
	cases := []struct {
		name   string
		svc    *corev1.Service
		slices []*discoveryv1.EndpointSlice
		want   []servicePort
	}{
		{
			name: "nil conditions are ready, duplicates keep the ready one, IPv6 is ignored",
			svc:  service("shop", "web", "10.96.0.10"),
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:n", "10.42.1.7@node-b:r"),
				slice("shop", "web", "web-2", 8080, "10.42.0.5@node-a:r"),
				nilConditions, v6,
			},
			want: []servicePort{{
				id: "shop/web/tcp/http", proto: "tcp", port: 80, clusterIPs: []string{"10.96.0.10"},
				cluster: []endpoint{ep("10.42.0.5", true), ep("10.42.0.8", true), ep("10.42.1.7", false)},
				local:   []endpoint{ep("10.42.0.5", true), ep("10.42.0.8", true)},
			}},
		},
		{
			name: "ports match by name and protocol",
			svc:  service("shop", "web", "10.96.0.10", addPort("dns", corev1.ProtocolUDP, 53)),
			slices: []*discoveryv1.EndpointSlice{
				sliceFor("shop", "web", "web-1", "dns", corev1.ProtocolTCP, 53, "10.42.0.5@node-a:r"),
				sliceFor("shop", "web", "web-2", "dns", corev1.ProtocolUDP, 5353, "10.42.0.6@node-a:r"),
			},
			want: []servicePort{
				{id: "shop/web/tcp/http", proto: "tcp", port: 80, clusterIPs: []string{"10.96.0.10"}},
				{
					id: "shop/web/udp/dns", proto: "udp", port: 53, clusterIPs: []string{"10.96.0.10"},
					cluster: []endpoint{{ip: "10.42.0.6", port: 5353, local: true, ready: true, serving: true}},
					local:   []endpoint{{ip: "10.42.0.6", port: 5353, local: true, ready: true, serving: true}},
				},
			},
		},
		{
			name: "load balancer: ingress IPv4 only, local policy, default affinity, source ranges",
			svc: service("shop", "web", "10.96.0.10", loadBalancer(30080, "192.168.1.11", "fd00::1", "192.168.1.10"), externalLocal,
				sourceRanges("10.1.2.3/8", " 192.168.0.0/16", "fd00::/8"),
				func(s *corev1.Service) {
					s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
					s.Spec.ExternalIPs = []string{"192.168.1.10"}
				}),
			want: []servicePort{{
				id: "shop/web/tcp/http", proto: "tcp", port: 80, nodePort: 30080,
				clusterIPs: []string{"10.96.0.10"}, externalIPs: []string{"192.168.1.10", "192.168.1.11"},
				lbIPs: []string{"192.168.1.10", "192.168.1.11"}, sourceRanges: []string{"10.0.0.0/8", "192.168.0.0/16"},
				externalLocal: true, affinity: 10800 * time.Second,
			}},
		},
		{
			name: "external policy means nothing for ClusterIP services; their node ports are ignored",
			svc: service("shop", "web", "10.96.0.10", func(s *corev1.Service) {
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.Ports[0].NodePort = 30080
				s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
			}),
			want: []servicePort{{
				id: "shop/web/tcp/http", proto: "tcp", port: 80, clusterIPs: []string{"10.96.0.10"}, internalLocal: true,
			}},
		},
		{
			name: "ExternalName",
			svc: service("shop", "web", "", func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeExternalName
				s.Spec.ExternalName = "example.com"
			}),
		},
		{
			name:   "headless",
			svc:    service("shop", "web", "None"),
			slices: []*discoveryv1.EndpointSlice{slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:r")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := servicePorts(tc.svc, tc.slices, n)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(servicePort{}, endpoint{})); diff != "" {
				t.Errorf("servicePorts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUsableEndpoints(t *testing.T) {
	ready := endpoint{ip: "10.42.0.5", ready: true, serving: true}
	terminating := endpoint{ip: "10.42.0.6", serving: true, terminating: true}
	notServing := endpoint{ip: "10.42.0.7", terminating: true}
	notReady := endpoint{ip: "10.42.0.8"}
	cases := []struct {
		name string
		in   []endpoint
		want []endpoint
	}{
		{"ready wins", []endpoint{terminating, ready, notReady}, []endpoint{ready}},
		{"serving terminating when none is ready", []endpoint{notServing, terminating, notReady}, []endpoint{terminating}},
		{"nothing usable", []endpoint{notServing, notReady}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, usableEndpoints(tc.in), cmp.AllowUnexported(endpoint{})); diff != "" {
				t.Errorf("usableEndpoints (-want +got):\n%s", diff)
			}
		})
	}
}
