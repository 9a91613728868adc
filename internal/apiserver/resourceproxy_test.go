package apiserver

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// hostIP returns a global unicast IPv4 address of this machine (pods/proxy
// refuses loopback, as upstream).
func hostIP(t *testing.T) string {
	t.Helper()
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
			return ipn.IP.String()
		}
	}
	t.Skip("no global unicast IPv4 address on this machine")
	return ""
}

// TestResourceProxy: pods/proxy and services/proxy reach the pod (or a
// ready endpoint) with any method, the path and query below /proxy, and
// without the caller's credentials; HTML links are rewritten to stay under
// the proxy path.
func TestResourceProxy(t *testing.T) {
	t.Parallel()
	ip := hostIP(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, `<a href="/next">next</a><img src="rel.png"><p>a &lt;b&gt; &amp; c</p><!-- &lt; --><i title="x &amp; y">`)
			return
		}
		fmt.Fprintf(w, "%s %s?%s auth=%q", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"))
	}))
	backend.Listener = ln
	backend.Start()
	defer backend.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	e := newTestEnv(t)
	cs := e.clientset(t)
	ctx := context.Background()
	pod, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "x",
			Ports: []corev1.ContainerPort{{ContainerPort: int32(port)}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.PodIP = ip
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(port))}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A hand-written slice pointing at this host's loopback is not
	// followed, as pods' addresses must be of the network.
	if _, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "lo"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "lo-1", Labels: map[string]string{discoveryv1.LabelServiceName: "lo"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(port))}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	p := strconv.Itoa(port)
	for _, tc := range []struct {
		method, path string
		wantCode     int
		want         string
	}{
		{"GET", "/api/v1/namespaces/default/pods/web/proxy/some/path?x=1", 200, `GET /some/path?x=1 auth=""`},
		{"POST", "/api/v1/namespaces/default/pods/web:" + p + "/proxy/", 200, `POST /? auth=""`},
		{"DELETE", "/api/v1/namespaces/default/pods/http:web:" + p + "/proxy/d", 200, `DELETE /d? auth=""`},
		// GET of the proxy root redirects to ".../proxy/" (followed here).
		{"GET", "/api/v1/namespaces/default/pods/web/proxy?x=1", 200, `GET /?x=1 auth=""`},
		{"PATCH", "/api/v1/namespaces/default/pods/web/proxy?x=1", 200, `PATCH /?x=1 auth=""`},
		{"PUT", "/api/v1/namespaces/default/services/web/proxy/s", 200, `PUT /s? auth=""`},
		{"GET", "/api/v1/namespaces/default/services/web:http/proxy/s", 200, `GET /s? auth=""`},
		{"GET", "/api/v1/namespaces/default/services/http:web:80/proxy/", 200, `GET /? auth=""`},
		{"GET", "/api/v1/namespaces/default/pods/web/proxy/page", 200,
			`<a href="/api/v1/namespaces/default/pods/web/proxy/next">next</a><img src="rel.png"><p>a &lt;b&gt; &amp; c</p><!-- &lt; --><i title="x &amp; y">`},
		{"GET", "/api/v1/namespaces/default/services/web:other/proxy/", 503, `no service port \"other\" found`},
		{"GET", "/api/v1/namespaces/default/pods/nope/proxy/", 404, `pods \"nope\" not found`},
		{"GET", "/api/v1/namespaces/default/services/lo/proxy/", 503, `no endpoints available for service \"lo\"`},
		{"GET", "/api/v1/namespaces/default/pods/ftp:web:1/proxy/", 400, "invalid pod proxy name"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			// The admin's client certificate authenticates; the bearer
			// token it also sends must not reach the pod (auth="").
			code, _, body := e.do(t, tc.method, tc.path, map[string]string{"Authorization": "Bearer not-for-the-pod"}, "")
			if code != tc.wantCode || !strings.Contains(body, tc.want) {
				t.Errorf("%d %q, want %d containing %q", code, body, tc.wantCode, tc.want)
			}
		})
	}

	// The redirect itself, as upstream: 301 to the root with the query.
	rt, err := rest.TransportFor(e.adminConfig)
	if err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, e.adminConfig.Host+"/api/v1/namespaces/default/services/web/proxy?m=1", nil)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/api/v1/namespaces/default/services/web/proxy/?m=1" {
			t.Errorf("%s of the proxy root: %d to %q, want 301 to .../proxy/?m=1", method, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}
