// Package dns is the cluster DNS server: it answers for the cluster domain
// (cluster.local) from the API server's Services and EndpointSlices, and
// forwards every other name to the node's resolvers.
//
// It reads Services and EndpointSlices through informers (a query never
// calls the API server) and writes nothing but DNS answers; EnsureService
// and EnsureEndpoints create the kube-system/kube-dns Service and the
// EndpointSlice that points it at wherever this server listens, since the
// server runs in the control plane's process rather than in a pod.
//
// Names it answers, as upstream's cluster DNS specification:
//
//	<svc>.<ns>.svc.<domain>              A: the cluster IP; headless: the ready endpoints' IPs;
//	                                     ExternalName: CNAME; SRV: one per named port
//	<host>.<svc>.<ns>.svc.<domain>       A of the endpoint whose hostname (StatefulSet pods)
//	                                     or dashed IP (10-42-0-5) is <host>
//	_<port>._<proto>.<svc>.<ns>.svc.<domain>  SRV for a named port
//	<a-b-c-d>.<ns>.pod.<domain>          A a.b.c.d
//	<reversed ip>.in-addr.arpa (ip6.arpa) PTR: <svc>.<ns>.svc.<domain> for a cluster IP,
//	                                     else <host>.<svc>.<ns>.svc.<domain> for a serving
//	                                     endpoint; other addresses are forwarded
//
// Other names inside the domain are NXDOMAIN, with the domain's SOA in the
// authority section, and are never forwarded: a pod's search path (ndots:5)
// turns every external name into several such queries first. AAAA queries
// for IPv4-only names get an empty NOERROR answer. Answers carry TTL 5 s, so
// that endpoint changes reach clients quickly.
//
// # Usage
//
//	s, err := dns.New(dns.Config{Client: c, Domain: "cluster.local", Listen: "10.0.0.5:53"})
//	go s.Run(ctx)   // informers, then UDP and TCP until ctx ends
//	<-s.Ready()     // caches synced, sockets open; s.Addr() is the UDP address
package dns
