// Package svcendpoints picks where a Service's traffic goes from its
// EndpointSlices: the ready addresses of the endpoints serving one of its
// ports, as "host:port". The API server uses it to reach webhooks,
// extension API servers and proxied services; the service proxy, the
// ingress controller and cluster DNS index slices by service with
// ServiceKey. It reads slices its callers give it and writes nothing.
package svcendpoints

import (
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// PortName returns the name of svc's TCP port numbered port (webhooks,
// extension API servers and proxied services speak HTTP over TCP), which
// names the slices' port for Ready, and whether there is one.
func PortName(svc *corev1.Service, port int32) (string, bool) {
	for _, p := range svc.Spec.Ports {
		if p.Port == port && (p.Protocol == corev1.ProtocolTCP || p.Protocol == "") {
			return p.Name, true
		}
	}
	return "", false
}

// Ready returns "address:port" for every ready (or readiness-unknown)
// endpoint address of slices that serve the port named portName ("" for an
// unnamed port), with the slice's port number for it. Slices of FQDN
// addresses are skipped.
func Ready(slices []*discoveryv1.EndpointSlice, portName string) []string {
	var out []string
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		port := portNumber(s, portName)
		if port == 0 {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				out = append(out, net.JoinHostPort(a, strconv.Itoa(int(port))))
			}
		}
	}
	return out
}

// ReadyInList is Ready over a list's items.
func ReadyInList(list *discoveryv1.EndpointSliceList, portName string) []string {
	items := make([]*discoveryv1.EndpointSlice, len(list.Items))
	for i := range list.Items {
		items[i] = &list.Items[i]
	}
	return Ready(items, portName)
}

// portNumber returns the number of the slice's port named name ("" for an
// unnamed port), or 0.
func portNumber(s *discoveryv1.EndpointSlice, name string) int32 {
	for _, p := range s.Ports {
		pname := ""
		if p.Name != nil {
			pname = *p.Name
		}
		if pname == name && p.Port != nil {
			return *p.Port
		}
	}
	return 0
}

// ServiceKey is an informer index function of EndpointSlices: the
// "namespace/name" of the service a slice belongs to (its
// kubernetes.io/service-name label), none for a slice without one.
func ServiceKey(obj any) ([]string, error) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	svc := es.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return nil, nil
	}
	return []string{es.Namespace + "/" + svc}, nil
}
