// Package proxy is the service proxy: it makes a node answer for Services
// by programming its nftables table "skiff-proxy" (family inet, IPv4),
// and it routes to other nodes' pod CIDRs (RunRoutes).
//
// Inputs: Services, EndpointSlices and Nodes, through informers. Outputs:
// the table, through knftables transactions; status.loadBalancer.ingress
// of LoadBalancer services without a loadBalancerClass (set to the nodes'
// InternalIPs, as bare-metal clusters do); net.ipv4.ip_forward=1 when it
// opens nftables itself; and, from RunRoutes, routes with protocol
// RouteProtocol. It never touches another table or a route it did not add.
//
// # The table
//
// Computing rules is pure (servicePorts, buildService); applier turns the
// difference into one transaction. Each service port ("<ns>/<name>/<proto>/
// <port name>", the suffix of its objects) gets:
//
//	service-<id>    cluster IP entry (map service-ips): masquerade sources
//	                outside ClusterCIDR, goto cluster-<id> (or local-<id>
//	                under internalTrafficPolicy Local)
//	external-<id>   NodePort (map service-nodeports), externalIPs and load
//	                balancer IPs (service-ips) entry: masquerade, goto
//	                cluster-<id>; under externalTrafficPolicy Local pods
//	                and the node go to cluster-<id> (masqueraded if from
//	                the node or another node's pod), the rest to
//	                local-<id> unmasqueraded
//	cluster-<id>    DNAT to one of the usable endpoints: "dnat ip to numgen
//	                random mod N map @dnat-cluster-<id>" (index -> address
//	                . port), or straight to the only one
//	local-<id>      the same over this node's (drop when there are none)
//	dnat-<chain>    the index map of a cluster- or local- chain. Maps are
//	                named, because binding anonymous ones is quadratic in
//	                the kernel's transaction size (seconds for 1,000
//	                services); a map's elements go in one command
//
// Under sessionAffinity ClientIP (and without a PodCIDR, see below) the
// cluster- and local- chains pick an endpoint chain instead:
//
//	affinity-<id>__<ip>/<port>  set of recent clients of the endpoint
//	                (timeout = the service's), checked first
//	spread-<chain>  verdict map index -> endpoint chain, for the rest
//	endpoint-<id>__<ip>/<port>  record the client, DNAT
//
// Usable endpoints are the ready ones, or if none is ready the serving
// terminating ones. A port without usable endpoints has no chains: its
// addresses are in the maps no-endpoint-services/no-endpoint-nodeports,
// checked by filter chains (input, forward, output at priority -110,
// before DNAT for local traffic) that reject new connections (TCP reset,
// else ICMP port unreachable). Traffic still addressed to a cluster IP
// after DNAT (a port the service lacks) is rejected too (map cluster-ips,
// forward and output at -90). Base chains: nat-prerouting (dstnat) and
// nat-output (-100) jump to "services"; nat-postrouting (srcnat)
// masquerades packets carrying mark 0x4000.
//
// NodePorts answer on Config.NodeIPs, or without them on every local
// address but 127.0.0.0/8: answering on localhost would need
// route_localnet, which this proxy does not set. Same-node pod to service
// to pod traffic is masqueraded by nat-postrouting ("ct status dnat",
// source and destination in PodCIDR), because without br_netfilter the
// endpoint's reply would be bridged straight back to the client and miss
// conntrack's reverse NAT; this covers hairpin (a pod reaching itself,
// which also needs hairpinMode on the bridge port). Endpoint chains mark
// hairpin traffic of endpoints outside PodCIDR; without a PodCIDR every
// service uses them. Under externalTrafficPolicy Local, pods of other
// nodes (ClusterCIDR) are masqueraded: the endpoint may be the client
// itself, or elsewhere and answer it directly.
//
// A full rebuild of 1,000 services of 10 endpoints is about 9 commands
// per service (0.3 s); one endpoint change is 4 (flush and refill the
// dnat- map, flush and rewrite the chain).
//
// # Usage
//
//	go proxy.Run(ctx, proxy.Config{Client: c, NodeName: "n1",
//	        NodeIPs: []string{"192.168.1.10"}, PodCIDR: "10.42.0.0/24",
//	        ClusterCIDR: "10.42.0.0/16"})
//	go proxy.RunRoutes(ctx, c, "n1", logger)
//
// Run rebuilds the table from scratch (delete and recreate, one
// transaction) once its caches are synced, then rewrites only the objects
// of changed services, coalescing changes for MinSyncInterval. A failed
// transaction leaves the table as it was and is retried as a full
// rebuild. The table stays when Run returns; Cleanup deletes it.
// FullSync and SyntheticServices let benchmarks time a rebuild, and
// Config.OnSync reports every sync (for programming latency).
//
// Known gaps (issue 6): IPv6; healthCheckNodePort; no periodic check that
// someone else did not modify the table.
package proxy
