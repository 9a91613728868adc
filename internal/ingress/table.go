package ingress

import (
	"crypto/tls"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// state is what building a routing table reads besides the ingresses: the
// informers' caches in the controller, maps in unit tests. Implementations
// return objects that must not be mutated, and nil when there is none.
type state interface {
	service(namespace, name string) *corev1.Service
	// endpointSlices returns the slices labelled kubernetes.io/service-name=service.
	endpointSlices(namespace, service string) []*discoveryv1.EndpointSlice
	// certificate returns the key pair of the kubernetes.io/tls secret
	// namespace/name, or an error saying why there is none.
	certificate(namespace, name string) (*tls.Certificate, error)
}

// table is an immutable routing table: built by buildTable from one view
// of the caches, then only read (by any number of requests at once) until
// a newer table replaces it. Only the round-robin counters of its backends
// change.
type table struct {
	exact    map[string]*hostRules // by lower-case host
	wildcard map[string]*hostRules // "*.example.com" rules, by "example.com"
	anyHost  *hostRules            // rules without a host; nil when none
	// defaultBackend serves requests no rule matches: the
	// spec.defaultBackend of the oldest ingress that has one; nil means 404.
	defaultBackend *backend
	// certs holds the certificates of spec.tls by host ("*.example.com"
	// for wildcard entries).
	certs map[string]*tls.Certificate
	// backends are all backends of the table by service port key, so
	// that the next table can carry on their round-robin positions.
	backends map[string]*backend
	// warnings says what could not be honoured (a missing secret, …),
	// one line each, for the logs.
	warnings []string
}

// hostRules are the paths of one host, merged over all ingresses.
type hostRules struct {
	exact map[string]*backend
	// prefixes are sorted longest first; ImplementationSpecific paths are
	// among them.
	prefixes []prefixRoute
	// fallback serves the host's requests no path matches: the
	// defaultBackend of the oldest ingress naming this host that has one;
	// nil means the table's defaultBackend.
	fallback *backend
}

type prefixRoute struct {
	// prefix has no trailing "/" ("" is the prefix "/", matching everything).
	prefix  string
	backend *backend
}

// backend is one ingress backend resolved to its ready endpoints.
type backend struct {
	// name is "namespace/service:port", for logs and error pages.
	name string
	// endpoints are "ip:port" (or "name:port" for an ExternalName
	// service), sorted; empty means 503.
	endpoints []string
	// problem says why there are no endpoints when it is not just that
	// none is ready (missing service, unknown port, …).
	problem string
	// next is the round-robin position, shared with the backend of the
	// same key in the tables before and after (so rebuilds do not send
	// the next request to the first endpoint again). Never nil.
	next *atomic.Uint64
}

// pick returns the next endpoint round-robin; false when there is none.
// Safe for concurrent use.
func (b *backend) pick() (string, bool) {
	if len(b.endpoints) == 0 {
		return "", false
	}
	n := b.next.Add(1) - 1
	return b.endpoints[n%uint64(len(b.endpoints))], true
}

// route returns the backend for a request to host (lower case, no port)
// and path; nil means no rule matched and there is no default backend.
//
// The host picks one set of rules, the most specific that exists: the
// exact host, else a wildcard covering it (one label deep, as upstream),
// else the rules without a host. Within it an Exact path equal to path
// wins, else the longest Prefix path that is an element-wise prefix of
// path (an Exact match is never shorter than a Prefix match, so this is
// upstream's "longest match, Exact before Prefix on a tie"). Requests no
// path of their host matches go to the host's fallback, then to the
// default backend.
func (t *table) route(host, path string) *backend {
	hr := t.exact[host]
	if hr == nil {
		if i := strings.IndexByte(host, '.'); i > 0 {
			hr = t.wildcard[host[i+1:]]
		}
	}
	if hr == nil {
		hr = t.anyHost
	}
	if hr != nil {
		if b := hr.match(path); b != nil {
			return b
		}
		if hr.fallback != nil {
			return hr.fallback
		}
	}
	return t.defaultBackend
}

func (hr *hostRules) match(path string) *backend {
	if b, ok := hr.exact[path]; ok {
		return b
	}
	for _, p := range hr.prefixes {
		if prefixMatch(p.prefix, path) {
			return p.backend
		}
	}
	return nil
}

// prefixMatch reports whether prefix (without its trailing "/") is an
// element-wise prefix of path: "/foo" matches "/foo" and "/foo/bar" but
// not "/foobar".
func prefixMatch(prefix, path string) bool {
	if prefix == "" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// certificate returns the certificate of spec.tls for an SNI server name
// (lower case): the exact host's, else the wildcard's; nil when none.
func (t *table) certificate(serverName string) *tls.Certificate {
	if c := t.certs[serverName]; c != nil {
		return c
	}
	if i := strings.IndexByte(serverName, '.'); i > 0 {
		return t.certs["*"+serverName[i:]]
	}
	return nil
}

// buildTable merges ingresses (all of them ours) into one routing table.
// Where two ingresses claim the same host and path, or the same TLS host,
// the oldest (by creation time, then namespace/name) wins, as most
// controllers do. Backends continue the round-robin positions of prev's
// (nil: none). It never mutates its inputs.
func buildTable(ingresses []*networkingv1.Ingress, st state, prev *table) *table {
	ings := append([]*networkingv1.Ingress(nil), ingresses...)
	sort.SliceStable(ings, func(i, j int) bool {
		a, b := ings[i], ings[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})

	t := &table{
		exact:    map[string]*hostRules{},
		wildcard: map[string]*hostRules{},
		certs:    map[string]*tls.Certificate{},
		backends: map[string]*backend{}, // one per service port
	}
	resolve := func(ns string, ib *networkingv1.IngressBackend) *backend {
		key, b := resolveBackend(ns, ib, st)
		if old, ok := t.backends[key]; ok {
			return old
		}
		b.next = new(atomic.Uint64)
		if prev != nil && prev.backends[key] != nil {
			b.next = prev.backends[key].next
		}
		t.backends[key] = b
		return b
	}

	for _, ing := range ings {
		var ingDefault *backend
		if ing.Spec.DefaultBackend != nil {
			ingDefault = resolve(ing.Namespace, ing.Spec.DefaultBackend)
			if t.defaultBackend == nil {
				t.defaultBackend = ingDefault
			}
		}
		for _, rule := range ing.Spec.Rules {
			hr := t.hostRulesFor(strings.ToLower(rule.Host))
			if hr.fallback == nil {
				hr.fallback = ingDefault
			}
			if rule.HTTP == nil {
				continue
			}
			for _, p := range rule.HTTP.Paths {
				path := p.Path
				if path == "" {
					path = "/"
				}
				b := resolve(ing.Namespace, &p.Backend)
				if p.PathType != nil && *p.PathType == networkingv1.PathTypeExact {
					if _, taken := hr.exact[path]; !taken {
						hr.exact[path] = b
					}
					continue
				}
				prefix := strings.TrimRight(path, "/")
				if !hr.hasPrefix(prefix) {
					hr.prefixes = append(hr.prefixes, prefixRoute{prefix: prefix, backend: b})
				}
			}
		}
		t.addCertificates(ing, st)
	}
	for _, hr := range t.allHostRules() {
		sort.SliceStable(hr.prefixes, func(i, j int) bool {
			return len(hr.prefixes[i].prefix) > len(hr.prefixes[j].prefix)
		})
	}
	return t
}

func (t *table) hostRulesFor(host string) *hostRules {
	var hr *hostRules
	switch {
	case host == "":
		if t.anyHost == nil {
			t.anyHost = &hostRules{exact: map[string]*backend{}}
		}
		return t.anyHost
	case strings.HasPrefix(host, "*."):
		suffix := host[2:]
		if hr = t.wildcard[suffix]; hr == nil {
			hr = &hostRules{exact: map[string]*backend{}}
			t.wildcard[suffix] = hr
		}
	default:
		if hr = t.exact[host]; hr == nil {
			hr = &hostRules{exact: map[string]*backend{}}
			t.exact[host] = hr
		}
	}
	return hr
}

func (t *table) allHostRules() []*hostRules {
	var all []*hostRules
	for _, hr := range t.exact {
		all = append(all, hr)
	}
	for _, hr := range t.wildcard {
		all = append(all, hr)
	}
	if t.anyHost != nil {
		all = append(all, t.anyHost)
	}
	return all
}

func (hr *hostRules) hasPrefix(prefix string) bool {
	for _, p := range hr.prefixes {
		if p.prefix == prefix {
			return true
		}
	}
	return false
}

// addCertificates adds the certificates of ing's spec.tls for hosts that
// have none yet. An entry without hosts covers the hosts of ing's rules.
func (t *table) addCertificates(ing *networkingv1.Ingress, st state) {
	for _, entry := range ing.Spec.TLS {
		if entry.SecretName == "" {
			continue
		}
		cert, err := st.certificate(ing.Namespace, entry.SecretName)
		if err != nil {
			t.warnings = append(t.warnings, fmt.Sprintf("ingress %s/%s: tls secret %q: %v", ing.Namespace, ing.Name, entry.SecretName, err))
			continue
		}
		hosts := entry.Hosts
		if len(hosts) == 0 {
			for _, r := range ing.Spec.Rules {
				if r.Host != "" {
					hosts = append(hosts, r.Host)
				}
			}
		}
		for _, h := range hosts {
			h = strings.ToLower(h)
			if _, taken := t.certs[h]; !taken {
				t.certs[h] = cert
			}
		}
	}
}

// resolveBackend resolves an ingress backend in namespace ns to its ready
// endpoints, through the service port (by number or name) and the
// EndpointSlice port of the same name (which carries the resolved target
// port). It returns a key identifying the service port.
func resolveBackend(ns string, ib *networkingv1.IngressBackend, st state) (string, *backend) {
	if ib.Service == nil {
		key := fmt.Sprintf("%s/resource", ns)
		if ib.Resource != nil {
			key = fmt.Sprintf("%s/%s/%s", ns, ib.Resource.Kind, ib.Resource.Name)
		}
		return key, &backend{name: key, problem: "resource backends are not supported"}
	}
	port := ib.Service.Port.Name
	if port == "" {
		port = strconv.Itoa(int(ib.Service.Port.Number))
	}
	key := fmt.Sprintf("%s/%s:%s", ns, ib.Service.Name, port)
	b := &backend{name: key}

	svc := st.service(ns, ib.Service.Name)
	if svc == nil {
		b.problem = "service not found"
		return key, b
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if (ib.Service.Port.Name != "" && p.Name == ib.Service.Port.Name) ||
			(ib.Service.Port.Name == "" && p.Port == ib.Service.Port.Number) {
			sp = p
			break
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		n := ib.Service.Port.Number
		if sp != nil {
			n = sp.Port
		}
		if svc.Spec.ExternalName == "" || n == 0 {
			b.problem = "external name service without a name or port"
			return key, b
		}
		b.endpoints = []string{net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(int(n)))}
		return key, b
	}
	if sp == nil {
		b.problem = "service has no such port"
		return key, b
	}
	if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
		b.problem = "service port is not TCP"
		return key, b
	}

	seen := map[string]bool{}
	for _, slice := range st.endpointSlices(ns, svc.Name) {
		if slice.AddressType != discoveryv1.AddressTypeIPv4 && slice.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		var number int32
		for _, p := range slice.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			if name == sp.Name && proto == corev1.ProtocolTCP && p.Port != nil {
				number = *p.Port
				break
			}
		}
		if number == 0 {
			continue
		}
		for _, ep := range slice.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if len(ep.Addresses) == 0 {
				continue
			}
			addr := net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(number)))
			if !seen[addr] {
				seen[addr] = true
				b.endpoints = append(b.endpoints, addr)
			}
		}
	}
	sort.Strings(b.endpoints)
	return key, b
}
