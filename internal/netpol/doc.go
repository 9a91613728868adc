// Package netpol enforces networking.k8s.io/v1 NetworkPolicies for the pods
// of one node, in an nftables table of its own (inet skiff-netpol).
//
// Inputs: NetworkPolicies, Pods (labels, IP, node, named container ports)
// and Namespaces (labels) of the whole cluster, through informers.
// Output: the table, written through sigs.k8s.io/knftables in one
// transaction per sync. It never touches another table, never writes to
// the API server, and never special-cases any traffic (DNS included) that
// a policy can express.
//
// # Semantics
//
// A pod of this node selected by a policy whose policyTypes has Ingress
// (Egress) is isolated for ingress (egress): a new connection to (from) it
// passes only if a rule of one such policy allows it: its peer (from/to:
// podSelector in the policy's namespace, namespaceSelector, both, or
// ipBlock with except) and its port (protocol, number, number to endPort,
// or a name resolved against the destination pod's container ports). A
// connection needs both the source's egress and the destination's ingress
// allowed. Replies and related traffic (ct state established,related)
// always pass, as does a pod's traffic to itself (through a service);
// pods selected by no policy are not isolated. Pods on the
// host network, finished pods and pods without an IPv4 address are
// ignored (IPv6 is not enforced).
//
// # Where the rules hook
//
// Both base chains hook forward, in the inet family, and match on IP
// addresses. Forward sees a packet after the service proxy's DNAT
// (prerouting) and before its masquerade (postrouting), so policies see
// the real backend and the real client, as upstream specifies. Two pods on
// the node's bridge talk at layer 2; their packets reach the inet forward
// hook only through br_netfilter with net.bridge.bridge-nf-call-iptables=1,
// which Run makes sure of (the service proxy needs it too, to see replies
// of same-node service traffic). A bridge-family table would see those
// frames without br_netfilter, but it runs before the proxy's DNAT for
// pod-to-service traffic, after its masquerade on the way back out of the
// bridge, and never sees routed traffic to other nodes, so it could not
// tell backends or clients apart. Traffic between a pod and its own node
// (input and output hooks) is not filtered: upstream always allows it
// (probes, host-network servers). A consequence worth knowing: a
// host-network server (such as a cluster DNS running in the control
// plane's process) is reached unfiltered from its own node's pods, but
// from other nodes' pods only where their egress policies allow the node's
// address (an ipBlock), as with upstream.
//
// # The table
//
//	chain pod-egress  (forward, priority filter - 1)  chain pod-ingress (forward, priority filter)
//	  ct state established,related accept               ct state established,related accept
//	  ip saddr . ip daddr @self accept                  ip saddr . ip daddr @self accept
//	  ip saddr @sel/<ns>/<pol> jump out/<ns>/<pol>      ip daddr @sel/<ns>/<pol> jump in/<ns>/<pol>
//	  ...                                               ...
//	  ip saddr @egress-isolated drop                    ip daddr @ingress-isolated drop
//
// Each policy's chain has one accept rule per rule, kind of peer and kind
// of port; pods are only in sets (selected pods, peers matched by
// selectors, named ports as IP . protocol . port), so a pod coming or
// going changes set elements and no rule.
//
// # Usage
//
//	err := netpol.Run(ctx, netpol.Config{Client: c, NodeName: node, Logger: log})
//
// Run blocks until ctx ends. Changes are coalesced (100 ms) and applied as
// the difference from the last table written; the table is rebuilt from
// scratch on start and after a failed transaction, and stays in place when
// Run returns.
package netpol
