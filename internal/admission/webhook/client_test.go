package webhook

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func service(name string, typ corev1.ServiceType, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec:       corev1.ServiceSpec{Type: typ, Ports: ports},
	}
}

func endpointSlice(name, svc, portName string, port int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port)}},
	}
}

func endpoint(addr string, ready *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	https := corev1.ServicePort{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443)}
	ext := service("ext", corev1.ServiceTypeExternalName)
	ext.Spec.ExternalName = "hooks.example.com"
	svcs := serviceLister(t,
		service("hook", corev1.ServiceTypeClusterIP, https),
		ext,
		service("empty", corev1.ServiceTypeClusterIP, https),
		service("unready", corev1.ServiceTypeClusterIP, https),
		service("named", corev1.ServiceTypeClusterIP, https),
	)
	slices := sliceLister(t,
		endpointSlice("hook-1", "hook", "https", 8443, endpoint("10.0.0.1", nil), endpoint("10.0.0.2", ptr.To(false))),
		endpointSlice("unready-1", "unready", "https", 8443, endpoint("10.0.0.3", ptr.To(false))),
		endpointSlice("named-1", "named", "metrics", 9090, endpoint("10.0.0.4", ptr.To(true))),
	)
	res := resolver{services: svcs, slices: slices}
	ref := func(name string, port int32, path string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
			Namespace: "ns", Name: name, Port: ptr.To(port), Path: ptr.To(path)}}
	}
	tests := []struct {
		name       string
		cc         admissionregistrationv1.WebhookClientConfig
		wantURL    string
		wantHost   string
		wantServer string
		wantErr    string
	}{
		{name: "url", cc: admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://hooks.example.com:8443/v")},
			wantURL: "https://hooks.example.com:8443/v"},
		{name: "service to its ready endpoint", cc: ref("hook", 443, "/validate"),
			wantURL: "https://10.0.0.1:8443/validate", wantHost: "hook.ns.svc:443", wantServer: "hook.ns.svc"},
		{name: "external name", cc: ref("ext", 443, "/v"),
			wantURL: "https://hooks.example.com:443/v", wantHost: "ext.ns.svc:443", wantServer: "ext.ns.svc"},
		{name: "no such service", cc: ref("gone", 443, ""), wantErr: `resolving service ns/gone: service "gone" not found`},
		{name: "no such port", cc: ref("hook", 444, ""), wantErr: `no service port 444 found for service "hook"`},
		{name: "no slices", cc: ref("empty", 443, ""), wantErr: `no endpoints available for service "empty"`},
		{name: "only unready endpoints", cc: ref("unready", 443, ""), wantErr: `no endpoints available for service "unready"`},
		{name: "slice port of another name", cc: ref("named", 443, ""), wantErr: `no endpoints available for service "named"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := res.resolve(&tt.cc)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("resolve: error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if got.url.String() != tt.wantURL || got.host != tt.wantHost || got.serverName != tt.wantServer {
				t.Errorf("resolve = (%s, host %q, server name %q), want (%s, %q, %q)",
					got.url, got.host, got.serverName, tt.wantURL, tt.wantHost, tt.wantServer)
			}
		})
	}
}

// TestServiceWebhook calls a webhook through its service: the ready
// endpoint's address, TLS verified as <service>.<namespace>.svc.
func TestServiceWebhook(t *testing.T) {
	t.Parallel()
	cert, ca := newCert(t, "hook.ns.svc")
	var host, path atomic.Value
	var proto atomic.Int32
	srv := newServerWithCert(t, func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host)
		path.Store(r.URL.Path)
		proto.Store(int32(r.ProtoMajor))
		reviewHandler(allowAll, nil)(w, r)
	}, cert)
	u, _ := url.Parse(srv.URL)
	_, portStr, _ := net.SplitHostPort(u.Host)
	port, _ := strconv.Atoi(portStr)

	svcs := serviceLister(t, service("hook", corev1.ServiceTypeClusterIP,
		corev1.ServicePort{Name: "https", Port: 443, TargetPort: intstr.FromInt32(int32(port))}))
	slices := sliceLister(t, endpointSlice("hook-1", "hook", "https", int32(port), endpoint("127.0.0.1", ptr.To(true))))
	w := validatingHook("v.example.com", "", ca, func(h *admissionregistrationv1.ValidatingWebhook) {
		h.ClientConfig.URL = nil
		h.ClientConfig.Service = &admissionregistrationv1.ServiceReference{Namespace: "ns", Name: "hook", Path: ptr.To("/validate"), Port: ptr.To[int32](443)}
	})
	p := NewValidating(Config{Validating: validatingLister(t, validatingConfig("cfg", w)), Services: svcs, Slices: slices})
	if err := p.Validate(context.Background(), podCreate(testPod("p"))); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if host.Load() != "hook.ns.svc:443" || path.Load() != "/validate" || proto.Load() != 2 {
		t.Errorf("request host %v path %v HTTP/%v, want hook.ns.svc:443, /validate, HTTP/2", host.Load(), path.Load(), proto.Load())
	}

	// Without a ready endpoint the call fails (failurePolicy Fail).
	p = NewValidating(Config{Validating: validatingLister(t, validatingConfig("cfg", w)), Services: svcs, Slices: sliceLister(t)})
	err := p.Validate(context.Background(), podCreate(testPod("p")))
	want := `500 Internal error occurred: failed calling webhook "v.example.com": failed to call webhook: no endpoints available for service "hook"`
	if got := errText(t, err); got != want {
		t.Errorf("Validate without endpoints: got %q, want %q", got, want)
	}
}

func TestClientCache(t *testing.T) {
	t.Parallel()
	_, ca1 := newCert(t, "a")
	_, ca2 := newCert(t, "b")
	var c clientCache
	a, err := c.get(ca1, "")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	tests := []struct {
		name   string
		ca     []byte
		server string
		same   bool
	}{
		{"same bundle", ca1, "", true},
		{"other bundle", ca2, "", false},
		{"other server name", ca1, "x.ns.svc", false},
		{"system roots", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := c.get(tt.ca, tt.server)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if (a == b) != tt.same {
				t.Errorf("same client %v, want %v", a == b, tt.same)
			}
		})
	}
	if _, err := c.get([]byte("not pem"), ""); err == nil || !strings.Contains(err.Error(), "unable to load root certificates") {
		t.Errorf("bad bundle: %v, want unable to load root certificates", err)
	}
	for i := range maxClients + 5 {
		if _, err := c.get(nil, strconv.Itoa(i)); err != nil {
			t.Fatalf("get: %v", err)
		}
	}
	if n := len(c.clients); n > maxClients {
		t.Errorf("cache holds %d clients, want at most %d", n, maxClients)
	}
}
