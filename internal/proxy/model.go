package proxy

import (
	"net/netip"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// node describes the node the rules are built for. It never changes while
// Run runs.
type node struct {
	name        string
	podCIDR     netip.Prefix // invalid when unknown
	clusterCIDR netip.Prefix // invalid when unknown
	// nodePortIPs are the addresses NodePorts answer on; empty means every
	// local address but 127.0.0.0/8 (fib daddr type local).
	nodePortIPs []string
}

// podRange is the prefix that identifies traffic from pods: the cluster
// CIDR, else the node's pod CIDR, else invalid (no such traffic is known).
func (n node) podRange() netip.Prefix {
	if n.clusterCIDR.IsValid() {
		return n.clusterCIDR
	}
	return n.podCIDR
}

// servicePort is one port of a Service, with everything the rules need.
type servicePort struct {
	// id is "<ns>/<name>/<proto>/<port name>", the suffix of every object
	// built for the port.
	id       string
	proto    string // "tcp", "udp" or "sctp"
	port     int32
	nodePort int32 // 0: none
	// clusterIPs are the IPv4 cluster IPs (none for headless services).
	clusterIPs []string
	// externalIPs are spec.externalIPs and the load balancer ingress IPs
	// (IPv4), answered like NodePorts (external traffic policy).
	externalIPs []string
	// lbIPs are the load balancer ingress IPs (IPv4, also in externalIPs)
	// and sourceRanges the IPv4 loadBalancerSourceRanges allowed to reach
	// them (empty: everyone).
	lbIPs, sourceRanges []string
	// internalLocal and externalLocal are the traffic policies.
	internalLocal, externalLocal bool
	// affinity is the ClientIP session affinity timeout; 0 means none.
	affinity time.Duration

	// cluster and local are the endpoints traffic may go to under the
	// Cluster and Local policies (see usableEndpoints), sorted.
	cluster, local []endpoint
}

// external reports whether traffic from outside the cluster reaches the
// port through a NodePort, external IP or load balancer IP.
func (sp *servicePort) external() bool {
	return sp.nodePort != 0 || len(sp.externalIPs) > 0
}

// endpoint is one backend of a service port.
type endpoint struct {
	ip    string
	port  int32
	local bool // on this node
	// ready, serving and terminating are the EndpointSlice conditions,
	// with the API's defaults for nil (ready and serving true, terminating
	// false).
	ready, serving, terminating bool
}

// key is "<ip>/<port>", the suffix of the endpoint's chain.
func (e endpoint) key() string {
	return e.ip + "/" + itoa(int64(e.port))
}

// servicePorts turns a Service and its EndpointSlices into the ports to
// program. It returns nil for services the proxy ignores (ExternalName,
// headless without external access, no IPv4 address). It never modifies
// its arguments.
func servicePorts(svc *corev1.Service, slices []*discoveryv1.EndpointSlice, n node) []servicePort {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	var clusterIPs []string
	for _, ip := range svc.Spec.ClusterIPs {
		if isIPv4(ip) {
			clusterIPs = append(clusterIPs, ip)
		}
	}
	if len(svc.Spec.ClusterIPs) == 0 && isIPv4(svc.Spec.ClusterIP) {
		clusterIPs = []string{svc.Spec.ClusterIP}
	}
	var externalIPs []string
	for _, ip := range svc.Spec.ExternalIPs {
		if isIPv4(ip) {
			externalIPs = append(externalIPs, ip)
		}
	}
	var lbIPs, sourceRanges []string
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if isIPv4(ing.IP) {
				externalIPs = append(externalIPs, ing.IP)
				lbIPs = append(lbIPs, ing.IP)
			}
		}
		for _, r := range svc.Spec.LoadBalancerSourceRanges {
			if p, err := netip.ParsePrefix(strings.TrimSpace(r)); err == nil && p.Addr().Is4() {
				sourceRanges = append(sourceRanges, p.Masked().String())
			}
		}
	}
	externalIPs = sortedUnique(externalIPs)
	lbIPs = sortedUnique(lbIPs)
	sourceRanges = sortedUnique(sourceRanges)
	externalLocal := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal &&
		(svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer)
	internalLocal := svc.Spec.InternalTrafficPolicy != nil &&
		*svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	var affinity time.Duration
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		secs := int32(corev1.DefaultClientIPServiceAffinitySeconds)
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			secs = *c.ClientIP.TimeoutSeconds
		}
		affinity = time.Duration(secs) * time.Second
	}

	var out []servicePort
	for _, p := range svc.Spec.Ports {
		proto := strings.ToLower(string(p.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		sp := servicePort{
			id:            svc.Namespace + "/" + svc.Name + "/" + proto + "/" + p.Name,
			proto:         proto,
			port:          p.Port,
			nodePort:      p.NodePort,
			clusterIPs:    clusterIPs,
			externalIPs:   externalIPs,
			lbIPs:         lbIPs,
			sourceRanges:  sourceRanges,
			internalLocal: internalLocal,
			externalLocal: externalLocal,
			affinity:      affinity,
		}
		if svc.Spec.Type == corev1.ServiceTypeClusterIP {
			sp.nodePort = 0
		}
		if len(sp.clusterIPs) == 0 && !sp.external() {
			continue
		}
		all := portEndpoints(slices, p, n.name)
		sp.cluster = usableEndpoints(all)
		var local []endpoint
		for _, e := range all {
			if e.local {
				local = append(local, e)
			}
		}
		sp.local = usableEndpoints(local)
		out = append(out, sp)
	}
	return out
}

// portEndpoints collects the IPv4 endpoints of the service port p from
// slices, one per address and port (the first seen wins, ready first).
func portEndpoints(slices []*discoveryv1.EndpointSlice, p corev1.ServicePort, nodeName string) []endpoint {
	proto := p.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	seen := map[string]int{}
	var out []endpoint
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		var port int32
		found := false
		for _, sp := range s.Ports {
			name, pproto := "", corev1.ProtocolTCP
			if sp.Name != nil {
				name = *sp.Name
			}
			if sp.Protocol != nil {
				pproto = *sp.Protocol
			}
			if name == p.Name && pproto == proto && sp.Port != nil {
				port, found = *sp.Port, true
				break
			}
		}
		if !found {
			continue
		}
		for _, ep := range s.Endpoints {
			if len(ep.Addresses) == 0 || !isIPv4(ep.Addresses[0]) {
				continue
			}
			e := endpoint{
				ip:          ep.Addresses[0],
				port:        port,
				local:       ep.NodeName != nil && *ep.NodeName == nodeName,
				ready:       ep.Conditions.Ready == nil || *ep.Conditions.Ready,
				terminating: ep.Conditions.Terminating != nil && *ep.Conditions.Terminating,
			}
			e.serving = e.ready
			if ep.Conditions.Serving != nil {
				e.serving = *ep.Conditions.Serving
			}
			if i, dup := seen[e.key()]; dup {
				if e.ready && !out[i].ready {
					out[i] = e
				}
				continue
			}
			seen[e.key()] = len(out)
			out = append(out, e)
		}
	}
	return out
}

// usableEndpoints returns the endpoints traffic may be sent to, sorted:
// the ready ones; when none is ready, those serving while terminating (as
// upstream's kube-proxy does, so that connections drain rather than fail
// during a rollout).
func usableEndpoints(eps []endpoint) []endpoint {
	var ready, terminating []endpoint
	for _, e := range eps {
		switch {
		case e.ready:
			ready = append(ready, e)
		case e.serving && e.terminating:
			terminating = append(terminating, e)
		}
	}
	out := ready
	if len(out) == 0 {
		out = terminating
	}
	sort.Slice(out, func(i, j int) bool { return lessEndpoint(out[i], out[j]) })
	return out
}

func lessEndpoint(a, b endpoint) bool {
	ai, _ := netip.ParseAddr(a.ip)
	bi, _ := netip.ParseAddr(b.ip)
	if c := ai.Compare(bi); c != 0 {
		return c < 0
	}
	return a.port < b.port
}

func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

func sortedUnique(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	sort.Strings(ss)
	out := ss[:1]
	for _, s := range ss[1:] {
		if s != out[len(out)-1] {
			out = append(out, s)
		}
	}
	return out
}
