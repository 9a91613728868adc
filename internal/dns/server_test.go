package dns

import (
	"context"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func ptr[T any](v T) *T { return &v }

func service(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}, Ports: ports, Type: corev1.ServiceTypeClusterIP},
	}
}

func slice(ns, svc string, port int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svc + "-abc", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(port)}},
	}
}

func endpoint(ip string, ready bool, hostname string) discoveryv1.Endpoint {
	ep := discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
	if hostname != "" {
		ep.Hostname = &hostname
	}
	return ep
}

// startServer runs a server over objs on loopback and returns its address.
func startServer(t *testing.T, upstreams []string, objs ...runtime.Object) string {
	t.Helper()
	s, err := New(Config{Client: fake.NewClientset(objs...), Listen: "127.0.0.1:0", Upstreams: upstreams, ResolvConf: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready after 10s")
	}
	return s.Addr().String()
}

func query(t *testing.T, addr, name string, qtype uint16, network string) *mdns.Msg {
	t.Helper()
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second}
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s: %v", name, mdns.TypeToString[qtype], err)
	}
	return resp
}

// summary renders the answer section as sorted "type value" strings.
func summary(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *mdns.A:
			out = append(out, "A "+r.A.String())
		case *mdns.AAAA:
			out = append(out, "AAAA "+r.AAAA.String())
		case *mdns.CNAME:
			out = append(out, "CNAME "+r.Target)
		case *mdns.SRV:
			out = append(out, "SRV "+r.Target+" "+strconv.Itoa(int(r.Port)))
		case *mdns.PTR:
			out = append(out, "PTR "+r.Ptr)
		default:
			out = append(out, rr.String())
		}
	}
	sort.Strings(out)
	return out
}

func TestClusterNames(t *testing.T) {
	httpPort := corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}
	headless := service("shop", "web", corev1.ClusterIPNone, httpPort)
	ext := service("shop", "ext", "")
	ext.Spec.Type, ext.Spec.ExternalName, ext.Spec.ClusterIP, ext.Spec.ClusterIPs = corev1.ServiceTypeExternalName, "example.org", "", nil
	addr := startServer(t, nil,
		service("shop", "api", "10.96.0.20", httpPort),
		slice("shop", "api", 8080, endpoint("10.42.0.5", true, "")),
		headless,
		slice("shop", "web", 8080, endpoint("10.42.0.7", true, "web-0"), endpoint("10.42.0.8", true, "web-1"), endpoint("10.42.0.9", false, "web-2")),
		ext,
	)
	tests := []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
	}{
		{"api.shop.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.96.0.20"}},
		{"API.Shop.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.96.0.20"}},
		{"api.shop.svc.cluster.local.", mdns.TypeAAAA, mdns.RcodeSuccess, nil},
		{"api.shop.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess, []string{"SRV api.shop.svc.cluster.local. 80"}},
		{"_http._tcp.api.shop.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess, []string{"SRV api.shop.svc.cluster.local. 80"}},
		{"_http._udp.api.shop.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeNameError, nil},
		{"web.shop.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.42.0.7", "A 10.42.0.8"}},
		{"web-0.web.shop.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.42.0.7"}},
		{"web-2.web.shop.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"_http._tcp.web.shop.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess, []string{"SRV web-0.web.shop.svc.cluster.local. 8080", "SRV web-1.web.shop.svc.cluster.local. 8080"}},
		{"10-42-0-5.api.shop.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.42.0.5"}},
		{"ext.shop.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"CNAME example.org."}},
		{"10-42-1-3.shop.pod.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 10.42.1.3"}},
		{"nope.shop.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"shop.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, nil},
		{"empty.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil},
		// A pod's search path: never forwarded, answered at once.
		{"example.org.shop.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"example.org.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"cluster.local.", mdns.TypeSOA, mdns.RcodeSuccess, []string{"SOA"}},
		// Reverse lookups: a cluster IP names its service, an endpoint
		// its hostname (or dashed address) under its service.
		{"20.0.96.10.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, []string{"PTR api.shop.svc.cluster.local."}},
		{"7.0.42.10.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, []string{"PTR web-0.web.shop.svc.cluster.local."}},
		{"5.0.42.10.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, []string{"PTR 10-42-0-5.api.shop.svc.cluster.local."}},
		{"20.0.96.10.in-addr.arpa.", mdns.TypeA, mdns.RcodeSuccess, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/"+mdns.TypeToString[tc.qtype], func(t *testing.T) {
			m := query(t, addr, tc.name, tc.qtype, "udp")
			if m.Rcode != tc.rcode {
				t.Fatalf("rcode = %s, want %s", mdns.RcodeToString[m.Rcode], mdns.RcodeToString[tc.rcode])
			}
			got := summary(m)
			for i, g := range got {
				if strings.Contains(g, "\tSOA\t") {
					got[i] = "SOA"
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
			if !m.Authoritative {
				t.Error("answer not authoritative")
			}
			if len(m.Answer) == 0 && (len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != mdns.TypeSOA) {
				t.Errorf("empty answer without the SOA in authority: %v", m.Ns)
			}
			for _, rr := range m.Answer {
				if rr.Header().Ttl != DefaultTTL {
					t.Errorf("TTL %d, want %d", rr.Header().Ttl, DefaultTTL)
				}
			}
		})
	}

	t.Run("tcp", func(t *testing.T) {
		m := query(t, addr, "api.shop.svc.cluster.local.", mdns.TypeA, "tcp")
		if diff := cmp.Diff([]string{"A 10.96.0.20"}, summary(m)); diff != "" {
			t.Errorf("over TCP (-want +got):\n%s", diff)
		}
	})
}

// TestForwarding checks that other names go to the upstream and that its
// answers are cached.
func TestForwarding(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan string, 10)
	up := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		asked <- r.Question[0].Name
		m := new(mdns.Msg)
		m.SetReply(r)
		m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: r.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.ParseIP("192.0.2.1")}}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = up.ActivateAndServe() }()
	t.Cleanup(func() { _ = up.Shutdown() })

	addr := startServer(t, []string{pc.LocalAddr().String()})
	for range 2 {
		m := query(t, addr, "example.org.", mdns.TypeA, "udp")
		if diff := cmp.Diff([]string{"A 192.0.2.1"}, summary(m)); diff != "" {
			t.Errorf("forwarded answer (-want +got):\n%s", diff)
		}
	}
	if got := len(asked); got != 1 {
		t.Errorf("upstream asked %d times, want 1 (second answer from the cache)", got)
	}
	if q := <-asked; q != "example.org." {
		t.Errorf("upstream asked for %q, want example.org.", q)
	}
}

// TestNoUpstream: without resolvers, other names fail with SERVFAIL rather
// than hanging.
func TestNoUpstream(t *testing.T) {
	addr := startServer(t, nil)
	if m := query(t, addr, "example.org.", mdns.TypeA, "udp"); m.Rcode != mdns.RcodeServerFailure {
		t.Errorf("rcode = %s, want SERVFAIL", mdns.RcodeToString[m.Rcode])
	}
}

func TestEnsureServiceAndEndpoints(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset()
	for range 2 { // idempotent
		if err := EnsureService(ctx, c, "10.96.0.10"); err != nil {
			t.Fatal(err)
		}
	}
	if err := EnsureEndpoints(ctx, c, "10.0.0.5", 53); err != nil {
		t.Fatal(err)
	}
	if err := EnsureEndpoints(ctx, c, "10.0.0.6", 53); err != nil {
		t.Fatal(err)
	}
	svc, err := c.CoreV1().Services(ServiceNamespace).Get(ctx, ServiceName, metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != "10.96.0.10" || len(svc.Spec.Ports) != 2 {
		t.Fatalf("service: %+v, %v", svc, err)
	}
	l, err := c.DiscoveryV1().EndpointSlices(ServiceNamespace).List(ctx, metav1.ListOptions{})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("slices: %v, %v", l, err)
	}
	if got := l.Items[0].Endpoints[0].Addresses; !cmp.Equal(got, []string{"10.0.0.6"}) {
		t.Errorf("endpoint addresses = %v, want the latest", got)
	}
}

// TestPortTaken: without ListenRetry, Run returns the listen error (it
// used to hang waiting for informers it had not stopped); with it, the
// error is reported once and the server starts when the port is free.
func TestPortTaken(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := taken.LocalAddr().String()

	s, err := New(Config{Client: fake.NewClientset(), Listen: addr, ResolvConf: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("Run with the port taken = %v, want address already in use", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run with the port taken did not return")
	}

	reported := make(chan error, 10)
	s, err = New(Config{Client: fake.NewClientset(), Listen: addr, ResolvConf: "/nonexistent",
		ListenRetry: 20 * time.Millisecond, OnListenError: func(err error) { reported <- err }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- s.Run(ctx) }()
	select {
	case <-reported:
	case <-time.After(10 * time.Second):
		t.Fatal("listen error not reported")
	}
	taken.Close()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run returned: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not serving after the port was freed")
	}
	if got := s.Addr().String(); got != addr {
		t.Errorf("serving on %s, want %s", got, addr)
	}
	if n := len(reported); n != 0 {
		t.Errorf("listen error reported %d more times, want once", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestReverseAddr(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // "" for not a reverse name
	}{
		{"5.0.42.10.in-addr.arpa.", "10.42.0.5"},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "2001:db8::1"},
		{"0.42.10.in-addr.arpa.", ""},     // a network, not an address
		{"256.0.42.10.in-addr.arpa.", ""}, // not a byte
		{"05.0.42.10.in-addr.arpa.", ""},  // leading zero
		{"10.in-addr.arpa.", ""},
		{"x.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", ""},
		{"example.org.", ""},
	} {
		addr, ok := reverseAddr(tc.name)
		got := ""
		if ok {
			got = addr.String()
		}
		if got != tc.want {
			t.Errorf("reverseAddr(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
