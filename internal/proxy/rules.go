package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/knftables"
)

// TableName is the nftables table the proxy owns (family inet).
const TableName = "skiff-proxy"

// Names of the fixed objects in the table.
const (
	chainFilterInput          = "filter-input"
	chainFilterForward        = "filter-forward"
	chainFilterOutput         = "filter-output"
	chainFilterOutputPostDNAT = "filter-output-post-dnat"
	chainNATPrerouting        = "nat-prerouting"
	chainNATOutput            = "nat-output"
	chainNATPostrouting       = "nat-postrouting"
	chainServices             = "services"
	chainServiceEndpointCheck = "service-endpoints-check"
	chainNodePortEndpointChk  = "nodeport-endpoints-check"
	chainClusterIPsCheck      = "cluster-ips-check"
	chainMarkForMasquerade    = "mark-for-masquerade"
	chainMasquerading         = "masquerading"
	chainReject               = "reject-chain"

	mapServiceIPs          = "service-ips"
	mapServiceNodePorts    = "service-nodeports"
	mapNoEndpointServices  = "no-endpoint-services"
	mapNoEndpointNodePorts = "no-endpoint-nodeports"
	mapClusterIPs          = "cluster-ips"
	setNodePortIPs         = "nodeport-ips"

	// masqueradeMark is the packet mark bit that asks the postrouting
	// chain to masquerade; it is cleared there.
	masqueradeMark = "0x4000"

	ipKey        = "ipv4_addr"
	ipProtoKey   = "ipv4_addr . inet_proto . inet_service"
	portProtoKey = "inet_proto . inet_service"
)

// Prefixes of the per-service objects; each is followed by a
// servicePort.id, and endpoint objects by "__<ip>/<port>".
const (
	prefixService  = "service-"  // cluster IP entry: masquerade off-cluster sources, then cluster- or local-
	prefixExternal = "external-" // NodePort, external and load balancer IPs entry
	prefixCluster  = "cluster-"  // spread over all usable endpoints
	prefixLocal    = "local-"    // spread over this node's usable endpoints
	prefixEndpoint = "endpoint-" // DNAT to one endpoint
	prefixAffinity = "affinity-" // set of recent clients of one endpoint (ClientIP affinity)
	prefixSpread   = "spread-"   // verdict map index -> endpoint chain of a cluster- or local- chain
	prefixDNAT     = "dnat-"     // map index -> endpoint address and port of a cluster- or local- chain
)

// spreadMapType is the type (typeof) of the spread- maps, dnatMapType of
// the dnat- maps of a protocol. The maps are named, not anonymous
// ("vmap { 0 : goto … }"): binding an anonymous set scans the whole
// transaction in the kernel, which made rebuilding 1,000 services
// quadratic (about 5 s of kernel time instead of 0.6 s on kernel 6.18).
// The port's protocol is part of the type: nft refuses a "th dport" map
// in a rule that matches "meta l4proto tcp" once it reads the map back
// from the kernel, and a "tcp dport" one in a UDP rule.
const spreadMapType = "numgen random mod 2 : verdict"

func dnatMapType(proto string) string {
	return "numgen random mod 2 : ip daddr . " + proto + " dport"
}

// serviceRules is what one Service contributes to the table: regular
// chains with their rules, spread and dnat maps, session affinity sets and
// elements of the shared maps. It is built by buildService and never
// modified afterwards.
type serviceRules struct {
	chains map[string][]string      // chain name -> rules, in order
	maps   map[string]indexMap      // spread- and dnat- maps by name
	sets   map[string]time.Duration // affinity set name -> element timeout
	elems  map[elemID]string        // (map, key) -> verdict
}

// indexMap is a spread- or dnat- map: values[i] under key i. Its type
// never changes under one name (the name has the port's protocol).
type indexMap struct {
	typeOf string
	values []string
}

func (m indexMap) equal(o indexMap) bool {
	return m.typeOf == o.typeOf && slices.Equal(m.values, o.values)
}

// elemID names an element of one of the shared maps; key is the element
// key joined by " . ".
type elemID struct {
	m   string
	key string
}

func (e elemID) element(value string) *knftables.Element {
	return &knftables.Element{Map: e.m, Key: strings.Split(e.key, " . "), Value: []string{value}}
}

func newServiceRules() *serviceRules {
	return &serviceRules{
		chains: map[string][]string{},
		maps:   map[string]indexMap{},
		sets:   map[string]time.Duration{},
		elems:  map[elemID]string{},
	}
}

// buildService computes the rules of one service's ports. It is pure.
func buildService(ports []servicePort, n node) *serviceRules {
	r := newServiceRules()
	for i := range ports {
		r.addPort(&ports[i], n)
	}
	return r
}

func (r *serviceRules) elem(m string, value string, key ...string) {
	r.elems[elemID{m: m, key: strings.Join(key, " . ")}] = value
}

func (r *serviceRules) addPort(sp *servicePort, n node) {
	port, nodePort := itoa(int64(sp.port)), itoa(int64(sp.nodePort))
	if len(sp.cluster) == 0 {
		// No usable endpoint anywhere: refuse connections quickly
		// (filter chains) instead of letting them time out.
		reject := "goto " + chainReject
		for _, ip := range sp.clusterIPs {
			r.elem(mapNoEndpointServices, reject, ip, sp.proto, port)
			r.elem(mapClusterIPs, reject, ip)
		}
		for _, ip := range sp.externalIPs {
			r.elem(mapNoEndpointServices, reject, ip, sp.proto, port)
		}
		if sp.nodePort != 0 {
			r.elem(mapNoEndpointNodePorts, reject, sp.proto, nodePort)
		}
		return
	}
	clusterChain, localChain := prefixCluster+sp.id, prefixLocal+sp.id
	hasClusterIP := len(sp.clusterIPs) > 0
	if (hasClusterIP && !sp.internalLocal) || sp.external() {
		r.chains[clusterChain] = r.spreadRules(clusterChain, sp, sp.cluster, n)
	}
	if (hasClusterIP && sp.internalLocal) || (sp.external() && sp.externalLocal) {
		// With no local endpoint this chain drops, as upstream does:
		// other nodes may have endpoints, so this is not a rejection.
		r.chains[localChain] = r.spreadRules(localChain, sp, sp.local, n)
	}
	podRange := n.podRange()
	for _, ip := range sp.clusterIPs {
		// Traffic to a cluster IP that nothing DNATed (a port the
		// service does not have) is refused rather than routed away.
		r.elem(mapClusterIPs, "goto "+chainReject, ip)
	}
	if hasClusterIP {
		chain := prefixService + sp.id
		var rules []string
		if podRange.IsValid() {
			// Replies from the endpoint must come back through this
			// node: masquerade everything not sent by a pod.
			rules = append(rules, fmt.Sprintf("ip saddr != %s jump %s", podRange, chainMarkForMasquerade))
		}
		target := clusterChain
		if sp.internalLocal {
			target = localChain
		}
		rules = append(rules, "goto "+target)
		r.chains[chain] = rules
		for _, ip := range sp.clusterIPs {
			r.elem(mapServiceIPs, "goto "+chain, ip, sp.proto, port)
		}
	}
	if sp.external() {
		chain := prefixExternal + sp.id
		var rules []string
		if len(sp.sourceRanges) > 0 && len(sp.lbIPs) > 0 {
			// loadBalancerSourceRanges: here rather than in a filter
			// chain, so that only the service owning the address and
			// port applies them.
			rules = append(rules, fmt.Sprintf("ip daddr %s %s dport %d ip saddr != %s drop",
				nftSet(sp.lbIPs), sp.proto, sp.port, nftSet(sp.sourceRanges)))
		}
		if !sp.externalLocal {
			rules = append(rules, "jump "+chainMarkForMasquerade, "goto "+clusterChain)
		} else {
			// Local policy keeps the client's address for traffic from
			// outside; pods and the node itself still reach every
			// endpoint (upstream's short-circuit).
			switch {
			case n.podCIDR.IsValid() && podRange != n.podCIDR:
				// Other nodes' pods are masqueraded: an endpoint
				// elsewhere would answer them directly (and one may be
				// the client itself, hairpin).
				rules = append(rules,
					fmt.Sprintf("ip saddr %s goto %s", n.podCIDR, clusterChain),
					fmt.Sprintf("ip saddr %s jump %s", podRange, chainMarkForMasquerade),
					fmt.Sprintf("ip saddr %s goto %s", podRange, clusterChain))
			case podRange.IsValid():
				rules = append(rules, fmt.Sprintf("ip saddr %s goto %s", podRange, clusterChain))
			}
			rules = append(rules,
				"fib saddr type local jump "+chainMarkForMasquerade,
				"fib saddr type local goto "+clusterChain,
				"goto "+localChain)
		}
		r.chains[chain] = rules
		for _, ip := range sp.externalIPs {
			r.elem(mapServiceIPs, "goto "+chain, ip, sp.proto, port)
		}
		if sp.nodePort != 0 {
			r.elem(mapServiceNodePorts, "goto "+chain, sp.proto, nodePort)
		}
	}
}

// spreadRules returns the rules of chain, which sends traffic to one of
// eps. Usually it DNATs itself, to the one endpoint or to a random one
// through the map dnat-<chain>; hairpin and same-bridge traffic is
// masqueraded in nat-postrouting. Under ClientIP affinity (or without a
// PodCIDR, where hairpin traffic is marked per endpoint) it goes to
// endpoint chains instead: the client's previous endpoint, else a random
// one through the map spread-<chain>. It adds the maps, endpoint chains
// and affinity sets it uses.
func (r *serviceRules) spreadRules(chain string, sp *servicePort, eps []endpoint, n node) []string {
	if len(eps) == 0 {
		return []string{"drop"}
	}
	if sp.affinity == 0 && n.podCIDR.IsValid() {
		dnat := "meta l4proto " + sp.proto + " dnat ip to "
		if len(eps) == 1 {
			return []string{dnat + eps[0].ip + ":" + itoa(int64(eps[0].port))}
		}
		m := prefixDNAT + chain
		values := make([]string, len(eps))
		for i, e := range eps {
			values[i] = e.ip + " . " + itoa(int64(e.port))
		}
		r.maps[m] = indexMap{typeOf: dnatMapType(sp.proto), values: values}
		return []string{fmt.Sprintf("%snumgen random mod %d map @%s", dnat, len(eps), m)}
	}
	var rules []string
	targets := make([]string, len(eps))
	for i, e := range eps {
		suffix := sp.id + "__" + e.key()
		epChain := prefixEndpoint + suffix
		targets[i] = "goto " + epChain
		if sp.affinity > 0 {
			set := prefixAffinity + suffix
			r.sets[set] = sp.affinity
			rules = append(rules, fmt.Sprintf("ip saddr @%s goto %s", set, epChain))
		}
		if _, done := r.chains[epChain]; !done {
			r.chains[epChain] = endpointRules(sp, e, n)
		}
	}
	if len(eps) == 1 {
		return append(rules, targets[0])
	}
	m := prefixSpread + chain
	r.maps[m] = indexMap{typeOf: spreadMapType, values: targets}
	return append(rules, fmt.Sprintf("numgen random mod %d vmap @%s", len(eps), m))
}

// endpointRules records the client under session affinity and DNATs to
// e. Hairpin traffic (a pod reaching itself through the service) must be
// masqueraded: nat-postrouting does it for endpoints in the PodCIDR, this
// chain marks it for the others.
func endpointRules(sp *servicePort, e endpoint, n node) []string {
	var rules []string
	if addr, err := netip.ParseAddr(e.ip); err != nil || !n.podCIDR.IsValid() || !n.podCIDR.Contains(addr) {
		rules = append(rules, fmt.Sprintf("ip saddr %s jump %s", e.ip, chainMarkForMasquerade))
	}
	if sp.affinity > 0 {
		rules = append(rules, fmt.Sprintf("update @%s%s__%s { ip saddr }", prefixAffinity, sp.id, e.key()))
	}
	return append(rules, fmt.Sprintf("meta l4proto %s dnat ip to %s:%d", sp.proto, e.ip, e.port))
}

// addBase adds the fixed part of the table to tx: the hooked chains, the
// dispatch maps and the masquerade and reject chains. Adding it to a
// table that has it already changes nothing but the chains' rules, which
// are flushed and rewritten; fresh (the table was just deleted in tx)
// leaves out those flushes.
func addBase(tx *knftables.Transaction, n node, fresh bool) {
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("skiff service proxy")})
	for _, m := range []struct{ name, typ string }{
		{mapServiceIPs, ipProtoKey},
		{mapServiceNodePorts, portProtoKey},
		{mapNoEndpointServices, ipProtoKey},
		{mapNoEndpointNodePorts, portProtoKey},
		{mapClusterIPs, ipKey},
	} {
		tx.Add(&knftables.Map{Name: m.name, Type: m.typ + " : verdict"})
	}
	tx.Add(&knftables.Set{Name: setNodePortIPs, Type: "ipv4_addr"})
	if !fresh {
		tx.Flush(&knftables.Set{Name: setNodePortIPs})
	}
	for _, ip := range n.nodePortIPs {
		tx.Add(&knftables.Element{Set: setNodePortIPs, Key: []string{ip}})
	}

	// Local node ports: the configured addresses, else every local address
	// but loopback (DNAT from 127.0.0.1 would need route_localnet).
	nodePortMatch := "ip daddr @" + setNodePortIPs
	if len(n.nodePortIPs) == 0 {
		nodePortMatch = "fib daddr type local ip daddr != 127.0.0.0/8"
	}
	regular := []struct {
		name  string
		rules []string
	}{
		{chainMarkForMasquerade, []string{"meta mark set meta mark | " + masqueradeMark}},
		{chainMasquerading, []string{
			"meta mark & " + masqueradeMark + " == 0 return",
			"meta mark set meta mark ^ " + masqueradeMark,
			"masquerade fully-random",
		}},
		{chainReject, []string{
			"meta l4proto tcp reject with tcp reset",
			"reject with icmp type port-unreachable",
		}},
		{chainServiceEndpointCheck, []string{"ip daddr . meta l4proto . th dport vmap @" + mapNoEndpointServices}},
		{chainNodePortEndpointChk, []string{nodePortMatch + " meta l4proto . th dport vmap @" + mapNoEndpointNodePorts}},
		{chainClusterIPsCheck, []string{"ip daddr vmap @" + mapClusterIPs}},
		{chainServices, []string{
			"ip daddr . meta l4proto . th dport vmap @" + mapServiceIPs,
			nodePortMatch + " meta l4proto . th dport vmap @" + mapServiceNodePorts,
		}},
	}
	for _, c := range regular {
		tx.Add(&knftables.Chain{Name: c.name})
		if !fresh {
			tx.Flush(&knftables.Chain{Name: c.name})
		}
		for _, rule := range c.rules {
			tx.Add(&knftables.Rule{Chain: c.name, Rule: rule})
		}
	}

	// Traffic DNATed from a pod of this node to another (or the same)
	// is masqueraded: without br_netfilter the endpoint's reply would be
	// bridged straight back to the client and miss conntrack's reverse
	// NAT. ("ct status dnat" also matches other tables' DNAT, such as
	// hostPorts, which have the same problem.) Packets marked by
	// mark-for-masquerade are masqueraded (and unmarked) first.
	postrouting := []string{"jump " + chainMasquerading}
	if n.podCIDR.IsValid() {
		postrouting = append(postrouting, fmt.Sprintf("ct status dnat ip saddr %s ip daddr %s masquerade fully-random", n.podCIDR, n.podCIDR))
	}

	// The filter chains run before DNAT on output (-110 < -100) and after
	// it on input and forward, where only services without endpoints
	// still carry their own address. cluster-ips-check must see packets
	// after DNAT: whatever still goes to a cluster IP matched no port.
	filterPrio := knftables.BaseChainPriority("-110")
	postDNATPrio := knftables.BaseChainPriority("-90")
	natOutputPrio := knftables.BaseChainPriority("-100") // "dstnat" is only valid at prerouting
	hooked := []struct {
		name  string
		typ   knftables.BaseChainType
		hook  knftables.BaseChainHook
		prio  knftables.BaseChainPriority
		rules []string
	}{
		{chainFilterInput, knftables.FilterType, knftables.InputHook, filterPrio, []string{
			"ct state new jump " + chainNodePortEndpointChk,
			"ct state new jump " + chainServiceEndpointCheck,
		}},
		{chainFilterForward, knftables.FilterType, knftables.ForwardHook, filterPrio, []string{
			"ct state new jump " + chainServiceEndpointCheck,
			"ct state new jump " + chainClusterIPsCheck,
		}},
		{chainFilterOutput, knftables.FilterType, knftables.OutputHook, filterPrio, []string{
			"ct state new jump " + chainServiceEndpointCheck,
		}},
		{chainFilterOutputPostDNAT, knftables.FilterType, knftables.OutputHook, postDNATPrio, []string{
			"ct state new jump " + chainClusterIPsCheck,
		}},
		{chainNATPrerouting, knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority, []string{"jump " + chainServices}},
		{chainNATOutput, knftables.NATType, knftables.OutputHook, natOutputPrio, []string{"jump " + chainServices}},
		{chainNATPostrouting, knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority, postrouting},
	}
	for _, c := range hooked {
		tx.Add(&knftables.Chain{
			Name:     c.name,
			Type:     knftables.PtrTo(c.typ),
			Hook:     knftables.PtrTo(c.hook),
			Priority: knftables.PtrTo(c.prio),
		})
		if !fresh {
			tx.Flush(&knftables.Chain{Name: c.name})
		}
		for _, rule := range c.rules {
			tx.Add(&knftables.Rule{Chain: c.name, Rule: rule})
		}
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// nftSet is one value, or an anonymous set of several. Anonymous sets are
// costly in large transactions (see spreadMapType); only
// loadBalancerSourceRanges use them.
func nftSet(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return "{ " + strings.Join(values, ", ") + " }"
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
