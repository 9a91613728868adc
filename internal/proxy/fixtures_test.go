package proxy

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"
)

// testConfig is the node the unit tests build rules for, programming nft.
func testConfig(nft knftables.Interface) Config {
	return Config{
		NodeName:    "node-a",
		NodeIPs:     []string{"192.168.1.10"},
		PodCIDR:     "10.42.0.0/24",
		ClusterCIDR: "10.42.0.0/16",
		NFT:         nft,
	}
}

// svcOpt changes a test service.
type svcOpt func(*corev1.Service)

// service is a ClusterIP service ns/name with one TCP port 80 named
// "http", changed by opts.
func service(ns, name, clusterIP string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeClusterIP,
			ClusterIP:  clusterIP,
			ClusterIPs: []string{clusterIP},
			Selector:   map[string]string{"app": name},
			Ports:      []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	}
	if clusterIP == "" {
		s.Spec.ClusterIPs = nil
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func nodePort(np int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = np
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
}

func loadBalancer(np int32, ingress ...string) svcOpt {
	return func(s *corev1.Service) {
		nodePort(np)(s)
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		for _, ip := range ingress {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
	}
}

func externalLocal(s *corev1.Service) {
	s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
}

func internalLocal(s *corev1.Service) {
	s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
}

func affinity(secs int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(secs)}}
	}
}

func addPort(name string, proto corev1.Protocol, port int32) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: name, Protocol: proto, Port: port})
	}
}

// ep is a test endpoint: "ip@node" with state flags: "r" ready, "t"
// terminating+serving, "n" not ready; e.g. "10.42.0.5@node-a:r".
type ep string

// slice is an EndpointSlice for service ns/svc with port name "http" TCP
// targetPort and endpoints eps.
func slice(ns, svc, name string, targetPort int32, eps ...ep) *discoveryv1.EndpointSlice {
	return sliceFor(ns, svc, name, "http", corev1.ProtocolTCP, targetPort, eps...)
}

func sliceFor(ns, svc, name, portName string, proto corev1.Protocol, targetPort int32, eps ...ep) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Protocol: ptr.To(proto), Port: ptr.To(targetPort)}},
	}
	for _, e := range eps {
		addr, rest, _ := strings.Cut(string(e), "@")
		nodeName, state, _ := strings.Cut(rest, ":")
		c := discoveryv1.EndpointConditions{}
		switch state {
		case "r":
			c.Ready, c.Serving, c.Terminating = ptr.To(true), ptr.To(true), ptr.To(false)
		case "t":
			c.Ready, c.Serving, c.Terminating = ptr.To(false), ptr.To(true), ptr.To(true)
		case "n":
			c.Ready, c.Serving, c.Terminating = ptr.To(false), ptr.To(false), ptr.To(false)
		default:
			panic(fmt.Sprintf("bad endpoint state in %q", e))
		}
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{addr}, NodeName: ptr.To(nodeName), Conditions: c})
	}
	return es
}

func sourceRanges(ranges ...string) svcOpt {
	return func(s *corev1.Service) { s.Spec.LoadBalancerSourceRanges = ranges }
}

func port(p int32) svcOpt {
	return func(s *corev1.Service) { s.Spec.Ports[0].Port = p }
}
