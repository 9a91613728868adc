package netpol

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TableName is the nftables table (family inet) the enforcer owns.
const TableName = "skiff-netpol"

// Names of the fixed objects of the table.
const (
	chainIngress = "pod-ingress" // base chain, hook forward: traffic to this node's pods
	chainEgress  = "pod-egress"  // base chain, hook forward: traffic from this node's pods

	setIngressIsolated = "ingress-isolated" // this node's pods selected by an Ingress policy
	setEgressIsolated  = "egress-isolated"  // this node's pods selected by an Egress policy
	setSelf            = "self"             // ip . ip for each of this node's pods

	typeAddr     = "ipv4_addr"
	typeAddrPort = "ipv4_addr . inet_proto . inet_service"
	typeAddrAddr = "ipv4_addr . ipv4_addr"
)

// Per-policy object names; <id> is policyID's "<namespace>/<name>".
//
//	sel/<id>              set: this node's pods the policy selects
//	in/<id>, out/<id>     chains: the policy's ingress and egress rules
//	in/<id>/<i>/peers     set: pods matching rule i's pod and namespace selectors
//	in/<id>/<i>/ports     set: pod IP . protocol . port for rule i's named ports
const (
	prefixSelected = "sel/"
	prefixIngress  = "in/"
	prefixEgress   = "out/"
)

// maxIDLen bounds policy IDs so that every name built from one stays
// well under nftables' 256-byte limit on object names.
const maxIDLen = 200

// snapshot is everything a ruleset is built from. Its objects come from
// informer caches and are never modified.
type snapshot struct {
	node       string
	policies   []*networkingv1.NetworkPolicy
	pods       []*corev1.Pod
	namespaces []*corev1.Namespace
}

// ruleset is the desired content of the table, minus the fixed objects
// that addBase adds. It is built by build and never modified afterwards.
type ruleset struct {
	// chains maps every chain (base chains included) to its rules.
	chains map[string][]string
	// sets maps every set (fixed ones included) to its type and its
	// elements, sorted and without duplicates.
	sets map[string]setContent
}

type setContent struct {
	typ   string
	elems [][]string
}

// pod is the part of a Pod that policies look at.
type pod struct {
	namespace string
	labels    labels.Set
	ip        string // IPv4
	local     bool   // runs on this node
	// ports are the pod's named container ports.
	ports []namedPort
}

type namedPort struct {
	name  string
	proto string // "tcp", "udp" or "sctp"
	port  int32
}

// build computes the ruleset for s. It is pure: the same snapshot gives the
// same ruleset, whatever the order of its slices.
func build(s snapshot) *ruleset {
	c := newCluster(s)

	rs := &ruleset{chains: map[string][]string{}, sets: map[string]setContent{}}
	policies := slices.Clone(s.policies)
	sort.Slice(policies, func(i, j int) bool {
		if policies[i].Namespace != policies[j].Namespace {
			return policies[i].Namespace < policies[j].Namespace
		}
		return policies[i].Name < policies[j].Name
	})

	// A pod cannot block itself (it reaches itself through a service:
	// DNAT to its own address, then back out of the bridge).
	ingressBase := []string{"ct state established,related accept", "ip saddr . ip daddr @" + setSelf + " accept"}
	egressBase := slices.Clone(ingressBase)
	var self [][]string
	for _, ns := range c.namespaces {
		for _, p := range c.byNS[ns] {
			if p.local {
				self = append(self, []string{p.ip, p.ip})
			}
		}
	}
	rs.addSet(setSelf, typeAddrAddr, self)
	var ingressIsolated, egressIsolated [][]string
	for _, np := range policies {
		ingress, egress := policyTypes(np)
		if !ingress && !egress {
			continue
		}
		id := policyID(np.Namespace, np.Name)
		selector := selectorFor(&np.Spec.PodSelector)
		var selected []pod
		for _, p := range c.byNS[np.Namespace] {
			if p.local && selector.Matches(p.labels) {
				selected = append(selected, p)
			}
		}
		sel := prefixSelected + id
		rs.addSet(sel, typeAddr, addrElems(selected))
		if ingress {
			ingressIsolated = append(ingressIsolated, addrElems(selected)...)
			ingressBase = append(ingressBase, fmt.Sprintf("ip daddr @%s jump %s%s", sel, prefixIngress, id))
			chain := prefixIngress + id
			rs.chains[chain] = []string{}
			for i, r := range np.Spec.Ingress {
				rs.addRule(c, chain, "ip saddr", np.Namespace, i, r.From, r.Ports, selected)
			}
		}
		if egress {
			egressIsolated = append(egressIsolated, addrElems(selected)...)
			egressBase = append(egressBase, fmt.Sprintf("ip saddr @%s jump %s%s", sel, prefixEgress, id))
			chain := prefixEgress + id
			rs.chains[chain] = []string{}
			for i, r := range np.Spec.Egress {
				// Named ports resolve against the destination, which
				// may be any pod of the cluster.
				rs.addRule(c, chain, "ip daddr", np.Namespace, i, r.To, r.Ports, c.named)
			}
		}
	}
	ingressBase = append(ingressBase, fmt.Sprintf("ip daddr @%s drop", setIngressIsolated))
	egressBase = append(egressBase, fmt.Sprintf("ip saddr @%s drop", setEgressIsolated))
	rs.chains[chainIngress] = ingressBase
	rs.chains[chainEgress] = egressBase
	rs.addSet(setIngressIsolated, typeAddr, ingressIsolated)
	rs.addSet(setEgressIsolated, typeAddr, egressIsolated)
	return rs
}

// cluster is a snapshot's pods and namespaces, indexed for build.
type cluster struct {
	// byNS holds the pods policies look at, by namespace, sorted by IP
	// so that element order does not depend on the caches' order.
	byNS map[string][]pod
	// namespaces are the keys of byNS, sorted.
	namespaces []string
	// named are the pods with named ports.
	named    []pod
	nsLabels map[string]labels.Set
}

func newCluster(s snapshot) *cluster {
	c := &cluster{byNS: map[string][]pod{}, nsLabels: make(map[string]labels.Set, len(s.namespaces))}
	for _, ns := range s.namespaces {
		c.nsLabels[ns.Name] = namespaceLabels(ns.Name, ns.Labels)
	}
	for _, p := range s.pods {
		if pp, ok := podFor(p, s.node); ok {
			c.byNS[pp.namespace] = append(c.byNS[pp.namespace], pp)
			if len(pp.ports) > 0 {
				c.named = append(c.named, pp)
			}
		}
	}
	for _, pods := range c.byNS {
		sort.Slice(pods, func(i, j int) bool { return pods[i].ip < pods[j].ip })
	}
	c.namespaces = sortedKeys(c.byNS)
	return c
}

// addRule adds to chain the nft rules for rule i of a policy in namespace
// ns: one accept rule per (kind of peer, kind of port). peerAddr is the
// packet's address that is the peer's: "ip saddr" for ingress, "ip daddr"
// for egress. Named ports are resolved against dests.
func (rs *ruleset) addRule(c *cluster, chain, peerAddr, ns string, i int, peers []networkingv1.NetworkPolicyPeer,
	ports []networkingv1.NetworkPolicyPort, dests []pod) {
	prefix := chain + "/" + strconv.Itoa(i)

	// Peers: an empty list means every source (destination).
	peerMatches := []string{""}
	if len(peers) > 0 {
		peerMatches = nil
		var selectorPeers []networkingv1.NetworkPolicyPeer
		for _, peer := range peers {
			if peer.PodSelector != nil || peer.NamespaceSelector != nil {
				selectorPeers = append(selectorPeers, peer)
				continue
			}
			if m, ok := ipBlockMatch(peerAddr, peer.IPBlock); ok {
				peerMatches = append(peerMatches, m)
			}
		}
		if len(selectorPeers) > 0 {
			matchers := make([]peerMatcher, 0, len(selectorPeers))
			for _, peer := range selectorPeers {
				matchers = append(matchers, newPeerMatcher(peer, ns, c.nsLabels))
			}
			var matched []pod
			for _, podNS := range c.namespaces {
				var candidates []peerMatcher
				for _, m := range matchers {
					if m.inNamespace(podNS) {
						candidates = append(candidates, m)
					}
				}
				if len(candidates) == 0 {
					continue
				}
				for _, p := range c.byNS[podNS] {
					for _, m := range candidates {
						if m.pods == nil || m.pods.Matches(p.labels) {
							matched = append(matched, p)
							break
						}
					}
				}
			}
			set := prefix + "/peers"
			rs.addSet(set, typeAddr, addrElems(matched))
			peerMatches = append([]string{fmt.Sprintf("%s @%s", peerAddr, set)}, peerMatches...)
		}
	}

	// Ports: an empty list means every port of every protocol.
	portMatches := []string{""}
	if len(ports) > 0 {
		portMatches = nil
		var numbered, protos []string
		var named []networkingv1.NetworkPolicyPort
		for _, p := range ports {
			proto := protocol(ptr.Deref(p.Protocol, corev1.ProtocolTCP))
			switch {
			case p.Port == nil:
				protos = appendUnique(protos, proto)
			case p.Port.Type == intstr.String:
				named = append(named, p)
			case p.EndPort != nil && *p.EndPort > p.Port.IntVal:
				numbered = appendUnique(numbered, fmt.Sprintf("%s . %d-%d", proto, p.Port.IntVal, *p.EndPort))
			default:
				numbered = appendUnique(numbered, fmt.Sprintf("%s . %d", proto, p.Port.IntVal))
			}
		}
		if len(protos) > 0 {
			portMatches = append(portMatches, "meta l4proto "+anonSet(protos))
		}
		switch {
		case len(numbered) == 1:
			proto, port, _ := strings.Cut(numbered[0], " . ")
			portMatches = append(portMatches, fmt.Sprintf("meta l4proto %s th dport %s", proto, port))
		case len(numbered) > 1:
			portMatches = append(portMatches, "meta l4proto . th dport "+anonSet(numbered))
		}
		if len(named) > 0 {
			var elems [][]string
			for _, d := range dests {
				for _, np := range named {
					proto := protocol(ptr.Deref(np.Protocol, corev1.ProtocolTCP))
					for _, cp := range d.ports {
						if cp.name == np.Port.StrVal && cp.proto == proto {
							elems = append(elems, []string{d.ip, proto, strconv.Itoa(int(cp.port))})
						}
					}
				}
			}
			set := prefix + "/ports"
			rs.addSet(set, typeAddrPort, elems)
			portMatches = append(portMatches, "ip daddr . meta l4proto . th dport @"+set)
		}
	}

	for _, peer := range peerMatches {
		for _, port := range portMatches {
			parts := slices.DeleteFunc([]string{peer, port, "accept"}, func(s string) bool { return s == "" })
			rs.chains[chain] = append(rs.chains[chain], strings.Join(parts, " "))
		}
	}
}

// addSet records set name of type typ with elems (sorted and deduplicated
// here).
func (rs *ruleset) addSet(name, typ string, elems [][]string) {
	sorted := slices.Clone(elems)
	slices.SortFunc(sorted, func(a, b []string) int { return slices.Compare(a, b) })
	sorted = slices.CompactFunc(sorted, slices.Equal)
	if sorted == nil {
		sorted = [][]string{}
	}
	rs.sets[name] = setContent{typ: typ, elems: sorted}
}

// ipBlockMatch returns the match on addr for an IPv4 ipBlock; false for a
// missing, invalid or IPv6 block (IPv6 traffic is not handled).
func ipBlockMatch(addr string, b *networkingv1.IPBlock) (string, bool) {
	if b == nil {
		return "", false
	}
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !cidr.Addr().Is4() {
		return "", false
	}
	m := fmt.Sprintf("%s %s", addr, cidr.Masked())
	var except []string
	for _, e := range b.Except {
		if p, err := netip.ParsePrefix(e); err == nil && p.Addr().Is4() {
			except = appendUnique(except, p.Masked().String())
		}
	}
	if len(except) > 0 {
		m += fmt.Sprintf(" %s != %s", addr, anonSet(except))
	}
	return m, true
}

// peerMatcher tells the pods a selector peer of a policy selects:
// podSelector alone selects in the policy's namespace, namespaceSelector
// alone every pod of the matching namespaces, both the matching pods there.
type peerMatcher struct {
	policyNS string
	pods     labels.Selector // nil: every pod
	// namespaces matches namespaces by name; nil: the policy's only.
	namespaces func(name string) bool
}

// inNamespace reports whether m selects pods in namespace ns.
func (m peerMatcher) inNamespace(ns string) bool {
	if m.namespaces == nil {
		return ns == m.policyNS
	}
	return m.namespaces(ns)
}

func newPeerMatcher(peer networkingv1.NetworkPolicyPeer, policyNS string, nsLabels map[string]labels.Set) peerMatcher {
	m := peerMatcher{policyNS: policyNS}
	if peer.PodSelector != nil {
		m.pods = selectorFor(peer.PodSelector)
	}
	if peer.NamespaceSelector != nil {
		sel := selectorFor(peer.NamespaceSelector)
		m.namespaces = func(name string) bool {
			l, known := nsLabels[name]
			if !known {
				l = namespaceLabels(name, nil)
			}
			return sel.Matches(l)
		}
	}
	return m
}

// selectorFor converts s; an invalid selector (which validation rejects)
// selects nothing.
func selectorFor(s *metav1.LabelSelector) labels.Selector {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return labels.Nothing()
	}
	return sel
}

// namespaceLabels returns a namespace's labels with the
// kubernetes.io/metadata.name label the API server sets, in case it is
// missing (or the namespace is not in the cache yet).
func namespaceLabels(name string, l map[string]string) labels.Set {
	out := make(labels.Set, len(l)+1)
	for k, v := range l {
		out[k] = v
	}
	out[corev1.LabelMetadataName] = name
	return out
}

// policyTypes returns whether np isolates for ingress and egress, with the
// API's default when policyTypes is empty.
func policyTypes(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

// podFor returns the policy view of p, false for pods policies ignore:
// without an IPv4 address, finished (their address may be reused), or on
// the host network (their address is the node's).
func podFor(p *corev1.Pod, node string) (pod, bool) {
	if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return pod{}, false
	}
	ip := ""
	for _, a := range append([]corev1.PodIP{{IP: p.Status.PodIP}}, p.Status.PodIPs...) {
		if addr, err := netip.ParseAddr(a.IP); err == nil && addr.Is4() {
			ip = addr.String()
			break
		}
	}
	if ip == "" {
		return pod{}, false
	}
	out := pod{namespace: p.Namespace, labels: labels.Set(p.Labels), ip: ip, local: node != "" && p.Spec.NodeName == node}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, cp := range c.Ports {
				if cp.Name != "" {
					out.ports = append(out.ports, namedPort{name: cp.Name, proto: protocol(cp.Protocol), port: cp.ContainerPort})
				}
			}
		}
	}
	return out, true
}

// policyID is "<namespace>/<name>", shortened with a hash when too long
// for object names.
func policyID(ns, name string) string {
	id := ns + "/" + name
	if len(id) <= maxIDLen {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return id[:maxIDLen-9] + "-" + hex.EncodeToString(sum[:4])
}

// protocol is p in nft's spelling; empty means TCP, as the API defaults.
func protocol(p corev1.Protocol) string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(string(p))
}

func addrElems(pods []pod) [][]string {
	out := make([][]string, 0, len(pods))
	for _, p := range pods {
		out = append(out, []string{p.ip})
	}
	return out
}

func appendUnique(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// anonSet is an nft anonymous set of values, or the value alone.
func anonSet(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return "{ " + strings.Join(values, ", ") + " }"
}
