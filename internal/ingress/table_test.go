package ingress

import (
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// mapState is a state of plain maps for the pure table tests.
type mapState struct {
	services map[string]*corev1.Service              // "ns/name"
	slices   map[string][]*discoveryv1.EndpointSlice // "ns/service"
	certs    map[string]*tls.Certificate             // "ns/name"
}

func (m mapState) service(ns, name string) *corev1.Service { return m.services[ns+"/"+name] }
func (m mapState) endpointSlices(ns, svc string) []*discoveryv1.EndpointSlice {
	return m.slices[ns+"/"+svc]
}
func (m mapState) certificate(ns, name string) (*tls.Certificate, error) {
	if c := m.certs[ns+"/"+name]; c != nil {
		return c, nil
	}
	return nil, errors.New("not found")
}

func svc(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Ports: ports},
	}
}

func slice(ns, svcName, portName string, port int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svcName + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

func ep(ip string, ready *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
}

func ingBackend(svcName string, port any) networkingv1.IngressBackend {
	b := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svcName}}
	switch p := port.(type) {
	case int:
		b.Service.Port.Number = int32(p)
	case string:
		b.Service.Port.Name = p
	}
	return b
}

func hpath(pt networkingv1.PathType, p string, b networkingv1.IngressBackend) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: p, PathType: ptr.To(pt), Backend: b}
}

func rule(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
}

func ing(name string, age time.Duration, spec networkingv1.IngressSpec) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(-age))},
		Spec:       spec,
	}
}

func TestRoute(t *testing.T) {
	const (
		exact  = networkingv1.PathTypeExact
		prefix = networkingv1.PathTypePrefix
		impl   = networkingv1.PathTypeImplementationSpecific
	)
	http := corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}
	st := mapState{
		services: map[string]*corev1.Service{
			"ns/web":   svc("ns", "web", http),
			"ns/api":   svc("ns", "api", corev1.ServicePort{Name: "", Port: 8000}),
			"ns/dflt":  svc("ns", "dflt", http),
			"ns/dflt2": svc("ns", "dflt2", http),
			"ns/empty": svc("ns", "empty", http),
		},
		slices: map[string][]*discoveryv1.EndpointSlice{
			"ns/web":   {slice("ns", "web", "http", 8080, ep("10.0.0.1", nil), ep("10.0.0.2", ptr.To(true)), ep("10.0.0.3", ptr.To(false)))},
			"ns/api":   {slice("ns", "api", "", 9000, ep("10.0.1.1", nil))},
			"ns/dflt":  {slice("ns", "dflt", "http", 80, ep("10.0.2.1", nil))},
			"ns/dflt2": {slice("ns", "dflt2", "http", 80, ep("10.0.3.1", nil))},
		},
	}
	ings := []*networkingv1.Ingress{
		ing("newer", time.Hour, networkingv1.IngressSpec{
			DefaultBackend: ptr.To(ingBackend("dflt2", "http")),
			Rules: []networkingv1.IngressRule{
				rule("web.example.com", hpath(prefix, "/", ingBackend("api", 8000))), // loses to "main"
				rule("other.example.com", hpath(exact, "/x", ingBackend("api", 8000))),
			},
		}),
		ing("main", 2*time.Hour, networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{
				rule("web.example.com",
					hpath(prefix, "/", ingBackend("web", "http")),
					hpath(prefix, "/api/", ingBackend("api", 8000)),
					hpath(exact, "/api/v1/exact", ingBackend("web", 80)),
					hpath(impl, "/impl", ingBackend("api", 8000)),
				),
				rule("*.wild.example.com", hpath(prefix, "/", ingBackend("api", 8000))),
				rule("empty.example.com",
					hpath(prefix, "/", ingBackend("empty", "http")),
					hpath(prefix, "/missing", ingBackend("nosuch", 80)),
					hpath(prefix, "/badport", ingBackend("web", 81))),
				rule("", hpath(exact, "/anyhost", ingBackend("api", 8000))),
			},
		}),
		ing("dflt", 3*time.Hour, networkingv1.IngressSpec{DefaultBackend: ptr.To(ingBackend("dflt", 80))}),
	}
	tab := buildTable(ings, st, nil)

	for _, tc := range []struct {
		name, host, path string
		want             string // backend name; "" means nil (404)
		endpoints        []string
	}{
		{name: "prefix root", host: "web.example.com", path: "/index.html", want: "ns/web:http", endpoints: []string{"10.0.0.1:8080", "10.0.0.2:8080"}},
		{name: "longer prefix wins", host: "web.example.com", path: "/api/v2", want: "ns/api:8000", endpoints: []string{"10.0.1.1:9000"}},
		{name: "prefix matches itself without slash", host: "web.example.com", path: "/api", want: "ns/api:8000"},
		{name: "prefix is element-wise", host: "web.example.com", path: "/apix", want: "ns/web:http"},
		{name: "exact beats prefix", host: "web.example.com", path: "/api/v1/exact", want: "ns/web:80"},
		{name: "exact is exact", host: "web.example.com", path: "/api/v1/exact/", want: "ns/api:8000"},
		{name: "implementation specific is prefix", host: "web.example.com", path: "/impl/a", want: "ns/api:8000"},
		{name: "wildcard one label", host: "a.wild.example.com", path: "/", want: "ns/api:8000"},
		{name: "wildcard not two labels", host: "a.b.wild.example.com", path: "/", want: "ns/dflt:80"},
		{name: "wildcard not the bare domain", host: "wild.example.com", path: "/", want: "ns/dflt:80"},
		{name: "host without rule goes to any-host rules", host: "unknown.example.com", path: "/anyhost", want: "ns/api:8000"},
		{name: "no path match: default backend", host: "unknown.example.com", path: "/", want: "ns/dflt:80"},
		{name: "host of ingress with default backend falls back to it", host: "other.example.com", path: "/y", want: "ns/dflt2:http"},
		{name: "no ready endpoints", host: "empty.example.com", path: "/", want: "ns/empty:http"},
		{name: "missing service", host: "empty.example.com", path: "/missing", want: "ns/nosuch:80"},
		{name: "missing port", host: "empty.example.com", path: "/badport", want: "ns/web:81"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tab.route(tc.host, tc.path)
			got := ""
			if b != nil {
				got = b.name
			}
			if got != tc.want {
				t.Fatalf("route(%q, %q) = %q, want %q", tc.host, tc.path, got, tc.want)
			}
			if tc.endpoints != nil {
				if diff := cmp.Diff(tc.endpoints, b.endpoints); diff != "" {
					t.Errorf("endpoints (-want +got):\n%s", diff)
				}
			}
		})
	}

	t.Run("404 without default backend", func(t *testing.T) {
		tab := buildTable(ings[1:2], st, nil) // only "main"
		if b := tab.route("nohost.example.com", "/"); b != nil {
			t.Errorf("route = %q, want nil", b.name)
		}
	})
	t.Run("round robin", func(t *testing.T) {
		b := tab.route("web.example.com", "/")
		var got []string
		for range 4 {
			e, _ := b.pick()
			got = append(got, e)
		}
		// A rebuilt table carries on where this one is.
		e, _ := buildTable(ings, st, tab).route("web.example.com", "/").pick()
		got = append(got, e)
		want := []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.1:8080"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("picks (-want +got):\n%s", diff)
		}
	})
	t.Run("problems", func(t *testing.T) {
		got := map[string]string{}
		for _, p := range []string{"/", "/missing", "/badport"} {
			b := tab.route("empty.example.com", p)
			got[p] = b.problem
		}
		want := map[string]string{"/": "", "/missing": "service not found", "/badport": "service has no such port"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	})
}

func TestPrefixMatch(t *testing.T) {
	for _, tc := range []struct {
		prefix, path string
		want         bool
	}{
		{"", "/", true},
		{"", "/anything", true},
		{"/foo", "/foo", true},
		{"/foo", "/foo/", true},
		{"/foo", "/foo/bar", true},
		{"/foo", "/foobar", false},
		{"/foo/bar", "/foo", false},
		{"/aaa/bb", "/aaa/bbb", false},
	} {
		t.Run(tc.prefix+" "+tc.path, func(t *testing.T) {
			if got := prefixMatch(tc.prefix, tc.path); got != tc.want {
				t.Errorf("prefixMatch(%q, %q) = %v, want %v", tc.prefix, tc.path, got, tc.want)
			}
		})
	}
}

func TestCertificateLookup(t *testing.T) {
	a, w := &tls.Certificate{}, &tls.Certificate{}
	st := mapState{certs: map[string]*tls.Certificate{"ns/a": a, "ns/w": w}}
	tab := buildTable([]*networkingv1.Ingress{
		ing("one", time.Hour, networkingv1.IngressSpec{
			TLS: []networkingv1.IngressTLS{
				{Hosts: []string{"A.example.com"}, SecretName: "a"},
				{Hosts: []string{"*.wild.example.com"}, SecretName: "w"},
				{Hosts: []string{"gone.example.com"}, SecretName: "gone"},
			},
			Rules: []networkingv1.IngressRule{rule("a.example.com", hpath(networkingv1.PathTypePrefix, "/", ingBackend("x", 80)))},
		}),
		ing("implicit", 0, networkingv1.IngressSpec{
			TLS:   []networkingv1.IngressTLS{{SecretName: "w"}},
			Rules: []networkingv1.IngressRule{rule("r.example.com", hpath(networkingv1.PathTypePrefix, "/", ingBackend("x", 80)))},
		}),
	}, st, nil)
	for _, tc := range []struct {
		name string
		want *tls.Certificate
	}{
		{"a.example.com", a},
		{"x.wild.example.com", w},
		{"r.example.com", w},
		{"x.y.wild.example.com", nil},
		{"gone.example.com", nil},
		{"", nil},
	} {
		if got := tab.certificate(tc.name); got != tc.want {
			t.Errorf("certificate(%q) = %p, want %p", tc.name, got, tc.want)
		}
	}
	if len(tab.warnings) != 1 {
		t.Errorf("warnings = %q, want one about the missing secret", tab.warnings)
	}
}

func TestOwns(t *testing.T) {
	class := func(name, controller string, isDefault bool) *networkingv1.IngressClass {
		c := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: controller}}
		if isDefault {
			c.Annotations = map[string]string{DefaultClassAnnotation: "true"}
		}
		return c
	}
	withClass := func(name *string, annotation *string) *networkingv1.Ingress {
		i := &networkingv1.Ingress{Spec: networkingv1.IngressSpec{IngressClassName: name}}
		if annotation != nil {
			i.Annotations = map[string]string{LegacyClassAnnotation: *annotation}
		}
		return i
	}
	ours := class("skiff", ControllerName, false)
	oursDefault := class("skiff", ControllerName, true)
	alias := class("alias", ControllerName, false)
	nginx := class("nginx", "k8s.io/ingress-nginx", false)
	nginxDefault := class("nginx", "k8s.io/ingress-nginx", true)
	for _, tc := range []struct {
		name    string
		ing     *networkingv1.Ingress
		classes []*networkingv1.IngressClass
		want    bool
	}{
		{"class name", withClass(ptr.To("skiff"), nil), nil, true},
		{"other class", withClass(ptr.To("nginx"), nil), []*networkingv1.IngressClass{ours, nginx}, false},
		{"class with our controller", withClass(ptr.To("alias"), nil), []*networkingv1.IngressClass{alias}, true},
		{"unknown class", withClass(ptr.To("alias"), nil), nil, false},
		{"no class, ours default", withClass(nil, nil), []*networkingv1.IngressClass{oursDefault, nginx}, true},
		{"no class, ours not default", withClass(nil, nil), []*networkingv1.IngressClass{ours}, false},
		{"no class, other default", withClass(nil, nil), []*networkingv1.IngressClass{ours, nginxDefault}, false},
		{"legacy annotation", withClass(nil, ptr.To("skiff")), nil, true},
		{"legacy annotation wins over class name", withClass(ptr.To("skiff"), ptr.To("nginx")), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := owns(tc.ing, tc.classes, "skiff"); got != tc.want {
				t.Errorf("owns = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMatchPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/foo", "/foo"},
		{"/foo/", "/foo/"},
		{"//foo//bar", "/foo/bar"},
		{"/api/../admin", "/admin"},
		{"/a/./b/", "/a/b/"},
		{"/..", "/"},
		{"foo", "/foo"},
	} {
		if got := matchPath(tc.in); got != tc.want {
			t.Errorf("matchPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Example.COM", "example.com"},
		{"example.com:8080", "example.com"},
		{"example.com.", "example.com"},
		{"[::1]:80", "::1"},
		{"", ""},
	} {
		if got := normalizeHost(tc.in); got != tc.want {
			t.Errorf("normalizeHost(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
