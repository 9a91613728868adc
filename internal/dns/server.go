package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/skiff-dev/skiff/internal/cachetrim"
	"github.com/skiff-dev/skiff/internal/svcendpoints"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Defaults of Config.
const (
	DefaultDomain = "cluster.local"
	DefaultTTL    = 5
	// serviceIndex indexes EndpointSlices by "<ns>/<service>"
	// (svcendpoints.ServiceKey, which proxy and ingress index under the
	// same name: shared informers keep one).
	serviceIndex = "service"
	// addressIndex indexes services by cluster IP and EndpointSlices by
	// endpoint address, for reverse (PTR) lookups.
	addressIndex = "dns.address"
	// forwardTimeout bounds one upstream exchange.
	forwardTimeout = 2 * time.Second
)

// Config configures a Server. Client and Listen are required.
type Config struct {
	Client kubernetes.Interface
	// Domain is the cluster domain; "" means cluster.local.
	Domain string
	// Listen is the host:port to serve UDP and TCP on; port 0 picks one
	// (the same for both).
	Listen string
	// Upstreams are the resolvers ("host" or "host:port") other names go
	// to; empty means the nameservers of ResolvConf.
	Upstreams []string
	// ResolvConf is read for Upstreams when they are not given; "" means
	// /etc/resolv.conf.
	ResolvConf string
	// TTL of the answers for the cluster domain; 0 means DefaultTTL.
	TTL uint32
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// ListenRetry, when positive, makes Run try again this often when it
	// cannot listen (another DNS server holds the port) instead of
	// returning the error: the cluster gets its DNS once the port is free.
	ListenRetry time.Duration
	// OnListenError, if set, is called with the error when listening
	// fails and will be retried (once per run of failures).
	OnListenError func(error)
	// Informers, when set, is the factory to read services and endpoint
	// slices from (in the server: a scope of the process's shared
	// informers, see internal/informerhub); nil means one of its own on
	// Client.
	Informers informers.SharedInformerFactory
}

// Server is the cluster DNS server.
type Server struct {
	cfg       Config
	domain    string // lower case, with the trailing dot
	log       *slog.Logger
	upstreams []string

	services  corelisters.ServiceLister
	svcIndex  cache.Indexer
	slices    cache.Indexer
	factory   informers.SharedInformerFactory
	ready     chan struct{}
	addr      net.Addr
	cache     *answerCache
	queries   *prometheus.CounterVec
	forwarder *mdns.Client
	tcpFwd    *mdns.Client
}

// New checks cfg and builds a server; Run starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("dns: no API client")
	}
	if cfg.Listen == "" {
		return nil, errors.New("dns: no listen address")
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ups := cfg.Upstreams
	if len(ups) == 0 {
		path := cfg.ResolvConf
		if path == "" {
			path = "/etc/resolv.conf"
		}
		var err error
		ups, err = readNameservers(path)
		if err != nil {
			cfg.Logger.Warn("no upstream resolvers; names outside the cluster domain will fail", "err", err)
		}
	}
	var upstreams []string
	for _, u := range ups {
		if _, _, err := net.SplitHostPort(u); err != nil {
			u = net.JoinHostPort(u, "53")
		}
		upstreams = append(upstreams, u)
	}
	factory := cfg.Informers
	if factory == nil {
		factory = informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0, cachetrim.Option())
	}
	s := &Server{
		cfg:       cfg,
		domain:    mdns.Fqdn(strings.ToLower(cfg.Domain)),
		log:       cfg.Logger,
		upstreams: upstreams,
		factory:   factory,
		services:  factory.Core().V1().Services().Lister(),
		ready:     make(chan struct{}),
		cache:     newAnswerCache(10000),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_dns_queries_total",
			Help: "DNS queries answered, by where the answer came from and its response code.",
		}, []string{"source", "rcode"}),
		forwarder: &mdns.Client{Net: "udp", Timeout: forwardTimeout},
		tcpFwd:    &mdns.Client{Net: "tcp", Timeout: forwardTimeout},
	}
	svcInformer := factory.Core().V1().Services().Informer()
	if err := svcInformer.AddIndexers(cache.Indexers{addressIndex: func(obj any) ([]string, error) {
		svc, ok := obj.(*corev1.Service)
		if !ok || headless(svc) {
			return nil, nil
		}
		return canonicalAddrs(svc.Spec.ClusterIPs), nil
	}}); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	s.svcIndex = svcInformer.GetIndexer()
	sliceInformer := factory.Discovery().V1().EndpointSlices().Informer()
	if err := sliceInformer.AddIndexers(cache.Indexers{
		serviceIndex: svcendpoints.ServiceKey,
		addressIndex: func(obj any) ([]string, error) {
			es, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok || es.Labels[discoveryv1.LabelServiceName] == "" {
				return nil, nil
			}
			var out []string
			for _, ep := range es.Endpoints {
				out = append(out, canonicalAddrs(ep.Addresses)...)
			}
			return out, nil
		},
	}); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	s.slices = sliceInformer.GetIndexer()
	return s, nil
}

// canonicalAddrs returns the addresses that parse, in netip's form.
func canonicalAddrs(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if addr, err := netip.ParseAddr(a); err == nil {
			out = append(out, addr.String())
		}
	}
	return out
}

// Collectors returns the server's Prometheus metrics.
func (s *Server) Collectors() []prometheus.Collector { return []prometheus.Collector{s.queries} }

// Ready is closed once the caches have synced and the sockets are open.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the UDP address served; valid once Ready is closed.
func (s *Server) Addr() net.Addr { return s.addr }

// Run syncs the caches, serves UDP and TCP until ctx ends, and returns
// nil then, or the first serving error.
func (s *Server) Run(ctx context.Context) error {
	// The informers stop when Run returns, whatever the reason: Shutdown
	// waits for them.
	defer s.factory.Shutdown()
	informerCtx, stopInformers := context.WithCancel(ctx)
	defer stopInformers()
	s.factory.StartWithContext(informerCtx)
	for typ, ok := range s.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dns: %v cache did not sync", typ)
		}
	}
	pc, ln, err := listenBoth(s.cfg.Listen)
	for reported := false; err != nil; pc, ln, err = listenBoth(s.cfg.Listen) {
		if s.cfg.ListenRetry <= 0 {
			return fmt.Errorf("dns: %w", err)
		}
		if !reported {
			reported = true
			s.log.Error("cluster DNS cannot listen; retrying", "addr", s.cfg.Listen, "every", s.cfg.ListenRetry, "err", err)
			if s.cfg.OnListenError != nil {
				s.cfg.OnListenError(err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.cfg.ListenRetry):
		}
	}
	s.addr = pc.LocalAddr()
	handler := mdns.HandlerFunc(s.serveDNS)
	udp := &mdns.Server{PacketConn: pc, Handler: handler}
	tcp := &mdns.Server{Listener: ln, Handler: handler}
	errc := make(chan error, 2)
	var started sync.WaitGroup
	started.Add(2)
	udp.NotifyStartedFunc = started.Done
	tcp.NotifyStartedFunc = started.Done
	go func() { errc <- udp.ActivateAndServe() }()
	go func() { errc <- tcp.ActivateAndServe() }()
	started.Wait()
	close(s.ready)
	s.log.Info("cluster DNS serving", "addr", s.addr.String(), "domain", s.domain, "upstreams", s.upstreams)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	_ = udp.Shutdown()
	_ = tcp.Shutdown()
	if serveErr != nil && ctx.Err() == nil {
		return fmt.Errorf("dns: serving: %w", serveErr)
	}
	return nil
}

// listenBoth opens UDP and TCP on the same address; with port 0 it retries
// until both get the same port.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		host, _, _ := net.SplitHostPort(addr)
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if _, p, _ := net.SplitHostPort(addr); p != "0" || attempt >= 10 {
			return nil, nil, err
		}
	}
}

// serveDNS answers one query.
func (s *Server) serveDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	if len(req.Question) != 1 || req.Opcode != mdns.OpcodeQuery {
		m := new(mdns.Msg)
		m.SetRcode(req, mdns.RcodeNotImplemented)
		s.write(w, req, m, "local")
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if name == s.domain || strings.HasSuffix(name, "."+s.domain) {
		m := s.answer(req, name, q.Qtype)
		s.write(w, req, m, "cluster")
		return
	}
	if addr, ok := reverseAddr(name); ok {
		if targets := s.reverse(addr); len(targets) > 0 {
			m := new(mdns.Msg)
			m.SetReply(req)
			m.Authoritative = true
			if q.Qtype == mdns.TypePTR || q.Qtype == mdns.TypeANY {
				for _, t := range targets {
					m.Answer = append(m.Answer, &mdns.PTR{Hdr: s.hdr(q.Name, mdns.TypePTR), Ptr: t})
				}
			} else {
				zone := "in-addr.arpa."
				if addr.Is6() {
					zone = "ip6.arpa."
				}
				m.Ns = []mdns.RR{s.soaOf(zone)}
			}
			s.write(w, req, m, "cluster")
			return
		}
		// Not a cluster address: upstream may know it.
	}
	m, err := s.forward(req)
	if err != nil {
		s.log.Debug("forwarding failed", "name", q.Name, "err", err)
		m = new(mdns.Msg)
		m.SetRcode(req, mdns.RcodeServerFailure)
	}
	s.write(w, req, m, "forward")
}

func (s *Server) write(w mdns.ResponseWriter, req, m *mdns.Msg, source string) {
	// Keep UDP answers within what the client can take.
	size := 512
	if opt := req.IsEdns0(); opt != nil {
		size = int(opt.UDPSize())
	}
	if _, isUDP := w.RemoteAddr().(*net.UDPAddr); isUDP {
		m.Truncate(size)
	}
	s.queries.WithLabelValues(source, mdns.RcodeToString[m.Rcode]).Inc()
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("writing answer", "err", err)
	}
}

// answer answers a question inside the cluster domain.
func (s *Server) answer(req *mdns.Msg, name string, qtype uint16) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	labels := mdns.SplitDomainName(strings.TrimSuffix(name, s.domain))
	var rrs []mdns.RR
	var found bool
	switch {
	case len(labels) == 0:
		// The zone apex.
		found = true
		if qtype == mdns.TypeSOA || qtype == mdns.TypeANY {
			rrs = append(rrs, s.soa())
		}
	case len(labels) >= 2 && labels[len(labels)-1] == "svc":
		rrs, found = s.serviceRecords(name, labels[:len(labels)-1], qtype)
	case len(labels) == 3 && labels[2] == "pod":
		rrs, found = s.podRecord(name, labels[0], qtype)
	}
	if !found {
		m.Rcode = mdns.RcodeNameError
	}
	m.Answer = rrs
	if len(rrs) == 0 {
		m.Ns = []mdns.RR{s.soa()}
	} else {
		m.Extra = s.additional(rrs)
	}
	return m
}

// serviceRecords answers names under svc.<domain>; labels are the labels
// before "svc". found reports whether the name exists.
func (s *Server) serviceRecords(name string, labels []string, qtype uint16) ([]mdns.RR, bool) {
	n := len(labels)
	switch {
	case n == 1:
		// <ns>.svc: a namespace; it exists when it has services.
		svcs, err := s.services.Services(labels[0]).List(everything)
		return nil, err == nil && len(svcs) > 0
	case n == 2:
		svc, err := s.services.Services(labels[1]).Get(labels[0])
		if err != nil {
			return nil, false
		}
		return s.serviceAnswer(name, svc, qtype), true
	case n == 3:
		svc, err := s.services.Services(labels[2]).Get(labels[1])
		if err != nil {
			return nil, false
		}
		return s.endpointAnswer(name, svc, labels[0], qtype)
	case n == 4 && strings.HasPrefix(labels[0], "_") && strings.HasPrefix(labels[1], "_"):
		svc, err := s.services.Services(labels[3]).Get(labels[2])
		if err != nil {
			return nil, false
		}
		return s.srvAnswer(name, svc, labels[0][1:], labels[1][1:], qtype)
	}
	return nil, false
}

func (s *Server) serviceAnswer(name string, svc *corev1.Service, qtype uint16) []mdns.RR {
	switch svc.Spec.Type {
	case corev1.ServiceTypeExternalName:
		if qtype == mdns.TypeCNAME || qtype == mdns.TypeA || qtype == mdns.TypeAAAA || qtype == mdns.TypeANY {
			return []mdns.RR{&mdns.CNAME{Hdr: s.hdr(name, mdns.TypeCNAME), Target: mdns.Fqdn(svc.Spec.ExternalName)}}
		}
		return nil
	}
	var out []mdns.RR
	if qtype == mdns.TypeSRV || qtype == mdns.TypeANY {
		for _, p := range svc.Spec.Ports {
			if p.Name == "" {
				continue
			}
			rrs, _ := s.srvAnswer(name, svc, p.Name, strings.ToLower(string(p.Protocol)), mdns.TypeSRV)
			for _, rr := range rrs {
				rr.Header().Name = name
			}
			out = append(out, rrs...)
		}
		if qtype == mdns.TypeSRV {
			return out
		}
	}
	if headless(svc) {
		for _, ip := range s.endpointIPs(svc) {
			out = append(out, s.addressRR(name, ip, qtype)...)
		}
		return out
	}
	for _, ip := range svc.Spec.ClusterIPs {
		if addr, err := netip.ParseAddr(ip); err == nil {
			out = append(out, s.addressRR(name, addr, qtype)...)
		}
	}
	return out
}

// endpointAnswer answers <host>.<svc>.<ns>.svc for the endpoint whose
// hostname, or dashed address, is host.
func (s *Server) endpointAnswer(name string, svc *corev1.Service, host string, qtype uint16) ([]mdns.RR, bool) {
	var out []mdns.RR
	found := false
	s.eachEndpoint(svc, func(ep discoveryv1.Endpoint, addr netip.Addr) {
		if endpointHost(ep, addr) != host {
			return
		}
		found = true
		out = append(out, s.addressRR(name, addr, qtype)...)
	})
	return out, found
}

// srvAnswer answers _<port>._<proto>.<svc>.<ns>.svc.
func (s *Server) srvAnswer(name string, svc *corev1.Service, port, proto string, qtype uint16) ([]mdns.RR, bool) {
	for _, p := range svc.Spec.Ports {
		if p.Name != port || !strings.EqualFold(string(p.Protocol), proto) {
			continue
		}
		if qtype != mdns.TypeSRV && qtype != mdns.TypeANY {
			return nil, true
		}
		svcName := svc.Name + "." + svc.Namespace + ".svc." + s.domain
		if !headless(svc) {
			return []mdns.RR{&mdns.SRV{Hdr: s.hdr(name, mdns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(p.Port), Target: svcName}}, true
		}
		var out []mdns.RR
		s.eachEndpoint(svc, func(ep discoveryv1.Endpoint, addr netip.Addr) {
			target := endpointHost(ep, addr) + "." + svcName
			out = append(out, &mdns.SRV{Hdr: s.hdr(name, mdns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(endpointPort(s, svc, p)), Target: target})
		})
		return out, true
	}
	return nil, false
}

// endpointPort is the port the endpoints serve a headless service's port
// on: the slice's port of the same name, else the service port.
func endpointPort(s *Server, svc *corev1.Service, p corev1.ServicePort) int32 {
	objs, _ := s.slices.ByIndex(serviceIndex, svc.Namespace+"/"+svc.Name)
	for _, o := range objs {
		for _, ep := range o.(*discoveryv1.EndpointSlice).Ports {
			if ep.Name != nil && *ep.Name == p.Name && ep.Port != nil {
				return *ep.Port
			}
		}
	}
	return p.Port
}

func (s *Server) podRecord(name, dashed string, qtype uint16) ([]mdns.RR, bool) {
	addr, err := netip.ParseAddr(strings.ReplaceAll(dashed, "-", "."))
	if err != nil || !addr.Is4() {
		v6, err6 := netip.ParseAddr(strings.ReplaceAll(dashed, "-", ":"))
		if err6 != nil {
			return nil, false
		}
		addr = v6
	}
	return s.addressRR(name, addr, qtype), true
}

// addressRR returns the A or AAAA record for addr if qtype asks for it.
func (s *Server) addressRR(name string, addr netip.Addr, qtype uint16) []mdns.RR {
	switch {
	case addr.Is4() && (qtype == mdns.TypeA || qtype == mdns.TypeANY):
		return []mdns.RR{&mdns.A{Hdr: s.hdr(name, mdns.TypeA), A: addr.AsSlice()}}
	case addr.Is6() && !addr.Is4In6() && (qtype == mdns.TypeAAAA || qtype == mdns.TypeANY):
		return []mdns.RR{&mdns.AAAA{Hdr: s.hdr(name, mdns.TypeAAAA), AAAA: addr.AsSlice()}}
	}
	return nil
}

// additional returns A records for the targets of SRV answers.
func (s *Server) additional(rrs []mdns.RR) []mdns.RR {
	var out []mdns.RR
	seen := map[string]bool{}
	for _, rr := range rrs {
		srv, ok := rr.(*mdns.SRV)
		if !ok || seen[srv.Target] {
			continue
		}
		seen[srv.Target] = true
		labels := mdns.SplitDomainName(strings.TrimSuffix(srv.Target, s.domain))
		if len(labels) < 3 {
			continue
		}
		a, _ := s.serviceRecords(srv.Target, labels[:len(labels)-1], mdns.TypeA)
		out = append(out, a...)
	}
	return out
}

func (s *Server) hdr(name string, t uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: t, Class: mdns.ClassINET, Ttl: s.cfg.TTL}
}

func (s *Server) soa() mdns.RR { return s.soaOf(s.domain) }

// soaOf is the SOA the server gives for zone (the cluster domain, or the
// reverse zone it answers a cluster address in).
func (s *Server) soaOf(zone string) mdns.RR {
	return &mdns.SOA{
		Hdr:     mdns.RR_Header{Name: zone, Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: s.cfg.TTL},
		Ns:      "ns.dns." + s.domain,
		Mbox:    "hostmaster." + s.domain,
		Serial:  uint32(time.Now().Unix()),
		Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: s.cfg.TTL,
	}
}

// reverseAddr parses a reverse lookup name (d.c.b.a.in-addr.arpa., or the
// 32 nibbles of an ip6.arpa. name) into its address.
func reverseAddr(name string) (netip.Addr, bool) {
	switch {
	case strings.HasSuffix(name, ".in-addr.arpa."):
		labels := strings.Split(strings.TrimSuffix(name, ".in-addr.arpa."), ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			n, err := strconv.ParseUint(l, 10, 8)
			if err != nil || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			b[3-i] = byte(n)
		}
		return netip.AddrFrom4(b), true
	case strings.HasSuffix(name, ".ip6.arpa."):
		labels := strings.Split(strings.TrimSuffix(name, ".ip6.arpa."), ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			n, err := strconv.ParseUint(l, 16, 4)
			if err != nil || len(l) != 1 {
				return netip.Addr{}, false
			}
			nibble := 31 - i
			b[nibble/2] |= byte(n) << (4 * (1 - nibble%2))
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// reverse returns the names of a cluster address, as upstream's cluster
// DNS does: <service>.<ns>.svc.<domain> for a service's cluster IP, else
// <host>.<service>.<ns>.svc.<domain> for a serving endpoint of a service
// (its hostname, or its address with dashes).
func (s *Server) reverse(addr netip.Addr) []string {
	key := addr.String()
	var out []string
	objs, _ := s.svcIndex.ByIndex(addressIndex, key)
	for _, o := range objs {
		svc := o.(*corev1.Service)
		out = append(out, svc.Name+"."+svc.Namespace+".svc."+s.domain)
	}
	if len(out) > 0 {
		return out
	}
	objs, _ = s.slices.ByIndex(addressIndex, key)
	seen := map[string]bool{}
	for _, o := range objs {
		es := o.(*discoveryv1.EndpointSlice)
		svc, err := s.services.Services(es.Namespace).Get(es.Labels[discoveryv1.LabelServiceName])
		if err != nil {
			continue
		}
		for _, ep := range es.Endpoints {
			if !serves(svc, ep) {
				continue
			}
			for _, a := range ep.Addresses {
				if got, err := netip.ParseAddr(a); err != nil || got != addr {
					continue
				}
				name := endpointHost(ep, addr) + "." + svc.Name + "." + svc.Namespace + ".svc." + s.domain
				if !seen[name] {
					seen[name] = true
					out = append(out, name)
				}
			}
		}
	}
	return out
}

// serves reports whether ep answers for svc: ready, or readiness unknown,
// or any with publishNotReadyAddresses.
func serves(svc *corev1.Service, ep discoveryv1.Endpoint) bool {
	return svc.Spec.PublishNotReadyAddresses || ep.Conditions.Ready == nil || *ep.Conditions.Ready
}

// eachEndpoint calls fn for every address of svc's endpoints that serves:
// ready ones, or all with publishNotReadyAddresses.
func (s *Server) eachEndpoint(svc *corev1.Service, fn func(discoveryv1.Endpoint, netip.Addr)) {
	objs, err := s.slices.ByIndex(serviceIndex, svc.Namespace+"/"+svc.Name)
	if err != nil {
		return
	}
	seen := map[netip.Addr]bool{}
	for _, o := range objs {
		es := o.(*discoveryv1.EndpointSlice)
		for _, ep := range es.Endpoints {
			if !serves(svc, ep) {
				continue
			}
			for _, a := range ep.Addresses {
				addr, err := netip.ParseAddr(a)
				if err != nil || seen[addr] {
					continue
				}
				seen[addr] = true
				fn(ep, addr)
			}
		}
	}
}

func (s *Server) endpointIPs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	s.eachEndpoint(svc, func(_ discoveryv1.Endpoint, a netip.Addr) { out = append(out, a) })
	return out
}

// endpointHost is the DNS label of an endpoint: its hostname, or its
// address with dashes.
func endpointHost(ep discoveryv1.Endpoint, addr netip.Addr) string {
	if ep.Hostname != nil && *ep.Hostname != "" {
		return strings.ToLower(*ep.Hostname)
	}
	if addr.Is4() {
		return strings.ReplaceAll(addr.String(), ".", "-")
	}
	return strings.ReplaceAll(addr.StringExpanded(), ":", "-")
}

func headless(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == corev1.ClusterIPNone
}

// forward sends req to the upstreams in turn, through the cache.
func (s *Server) forward(req *mdns.Msg) (*mdns.Msg, error) {
	if len(s.upstreams) == 0 {
		return nil, errors.New("no upstream resolvers")
	}
	q := req.Question[0]
	if m := s.cache.get(q); m != nil {
		m.Id = req.Id
		return m, nil
	}
	var lastErr error
	for _, up := range s.upstreams {
		out := req.Copy()
		resp, _, err := s.forwarder.Exchange(out, up)
		if err == nil && resp.Truncated {
			resp, _, err = s.tcpFwd.Exchange(out, up)
		}
		if err != nil {
			lastErr = err
			continue
		}
		s.cache.put(q, resp)
		return resp, nil
	}
	return nil, lastErr
}

// readNameservers returns the nameservers of a resolv.conf.
func readNameservers(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no nameserver in %s", path)
	}
	return out, nil
}
