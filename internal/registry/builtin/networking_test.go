package builtin

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func testIngress() *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("nginx"),
			Rules: []networkingv1.IngressRule{{
				Host: "example.com",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path:     "/",
						PathType: ptr.To(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80},
						}},
					}},
				}},
			}},
		},
	}
}

func TestIngress(t *testing.T) {
	r := groupResource(t, "networking.k8s.io", "ingresses")
	tests := []struct {
		name   string
		mutate func(ing *networkingv1.Ingress)
		want   []string
	}{
		{"valid", func(*networkingv1.Ingress) {}, []string{}},
		{"no rules or backend", func(ing *networkingv1.Ingress) { ing.Spec.Rules = nil }, []string{"FieldValueInvalid spec"}},
		{"no pathType", func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].HTTP.Paths[0].PathType = nil },
			[]string{"FieldValueRequired spec.rules[0].http.paths[0].pathType"}},
		{"relative path", func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].HTTP.Paths[0].Path = "api" },
			[]string{"FieldValueInvalid spec.rules[0].http.paths[0].path"}},
		{"no port", func(ing *networkingv1.Ingress) {
			ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port = networkingv1.ServiceBackendPort{}
		}, []string{"FieldValueRequired spec.rules[0].http.paths[0].backend"}},
		{"bad host", func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].Host = "Example_com" },
			[]string{"FieldValueInvalid spec.rules[0].host"}},
		{"wildcard host", func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].Host = "*.example.com" }, []string{}},
		{"IP host", func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].Host = "10.0.0.1" },
			[]string{"FieldValueInvalid spec.rules[0].host"}},
		{"path ending in /..", func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].HTTP.Paths[0].Path = "/a/.." },
			[]string{"FieldValueInvalid spec.rules[0].http.paths[0].path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ing := testIngress()
			tt.mutate(ing)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, ing))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	ing := testIngress()
	ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"example.com"}}}
	ing.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "10.0.0.5"}}
	row := r.Strategy.Table().Row(ing)
	if diff := cmp.Diff([]any{"web", "nginx", "example.com", "10.0.0.5", "80, 443"}, row[:5]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestIngressHostsCell(t *testing.T) {
	rule := func(h string) networkingv1.IngressRule { return networkingv1.IngressRule{Host: h} }
	tests := []struct {
		rules []networkingv1.IngressRule
		want  string
	}{
		{nil, "*"},
		{[]networkingv1.IngressRule{rule("")}, "*"},
		{[]networkingv1.IngressRule{rule("a"), rule("b")}, "a,b"},
		{[]networkingv1.IngressRule{rule("a"), rule("b"), rule("c"), rule("d"), rule("e")}, "a,b,c + 2 more..."},
	}
	for _, tt := range tests {
		if got := ingressHostsCell(tt.rules); got != tt.want {
			t.Errorf("ingressHostsCell(%v) = %q, want %q", tt.rules, got, tt.want)
		}
	}
}

func TestIngressClassControllerImmutable(t *testing.T) {
	r := groupResource(t, "networking.k8s.io", "ingressclasses")
	old := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}}
	if errs := create(t, r, old); len(errs) != 0 {
		t.Fatalf("valid class rejected: %v", errs)
	}
	ic := old.DeepCopy()
	ic.Spec.Controller = "example.com/other"
	if diff := cmp.Diff([]string{"FieldValueInvalid spec.controller"}, errStrings(update(t, r, ic, old))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	params := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: networkingv1.IngressClassSpec{
		Controller: "k8s.io/ingress-nginx",
		Parameters: &networkingv1.IngressClassParametersReference{Kind: "ConfigMap", Name: "cfg"},
	}}
	if errs := create(t, r, params); len(errs) != 0 {
		t.Errorf("class with parameters rejected: %v", errs)
	}
	if s := params.Spec.Parameters.Scope; s == nil || *s != "Cluster" {
		t.Errorf("parameters.scope = %v, want Cluster", s)
	}
	missing := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	if diff := cmp.Diff([]string{"FieldValueRequired spec.controller"}, errStrings(create(t, r, missing))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNetworkPolicy(t *testing.T) {
	r := groupResource(t, "networking.k8s.io", "networkpolicies")
	port := intstr.FromInt32(80)
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny", Namespace: "default"},
		Spec: networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &port}}}},
			Egress:  []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}}}},
		},
	}
	checkDefaultIdempotent(t, r, np)
	if errs := create(t, r, np); len(errs) != 0 {
		t.Fatalf("valid policy rejected: %v", errs)
	}
	if diff := cmp.Diff([]networkingv1.PolicyType{"Ingress", "Egress"}, np.Spec.PolicyTypes); diff != "" {
		t.Errorf("policyTypes (-want +got):\n%s", diff)
	}
	if p := np.Spec.Ingress[0].Ports[0].Protocol; p == nil || *p != corev1.ProtocolTCP {
		t.Errorf("protocol = %v", p)
	}
	bad := np.DeepCopy()
	bad.Spec.Egress[0].To[0].IPBlock.Except = []string{"192.168.0.0/16"}
	badPort := intstr.FromInt32(70000)
	bad.Spec.Ingress[0].Ports[0].Port = &badPort
	want := []string{"FieldValueInvalid spec.egress[0].to[0].ipBlock.except[0]", "FieldValueInvalid spec.ingress[0].ports[0].port"}
	if diff := cmp.Diff(want, errStrings(create(t, r, bad))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	row := r.Strategy.Table().Row(np)
	if row[1] != "<none>" {
		t.Errorf("POD-SELECTOR = %v", row[1])
	}
}

func TestEndpointSlice(t *testing.T) {
	r := groupResource(t, "discovery.k8s.io", "endpointslices")
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abc", Namespace: "default"},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.1"}}, {Addresses: []string{"10.0.0.2"}},
			{Addresses: []string{"10.0.0.3"}}, {Addresses: []string{"10.0.0.4"}},
		},
		Ports: []discoveryv1.EndpointPort{{Port: ptr.To[int32](8080)}},
	}
	checkDefaultIdempotent(t, r, es)
	if errs := create(t, r, es); len(errs) != 0 {
		t.Fatalf("valid slice rejected: %v", errs)
	}
	if *es.Ports[0].Name != "" || *es.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("port defaults: %+v", es.Ports[0])
	}
	row := r.Strategy.Table().Row(es)
	if diff := cmp.Diff([]any{"web-abc", "IPv4", "8080", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."}, row[:4]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	bad := es.DeepCopy()
	bad.Endpoints[0].Addresses = []string{"fd00::1"}
	if diff := cmp.Diff([]string{"FieldValueInvalid endpoints[0].addresses[0]"}, errStrings(create(t, r, bad))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	changed := es.DeepCopy()
	changed.AddressType = discoveryv1.AddressTypeFQDN
	changed.Endpoints = nil
	if diff := cmp.Diff([]string{"FieldValueInvalid addressType"}, errStrings(update(t, r, changed, es))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
