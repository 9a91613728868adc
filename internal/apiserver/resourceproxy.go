package apiserver

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/html"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/storage"
	"github.com/skiff-dev/skiff/internal/svcendpoints"
)

// The pods/proxy and services/proxy subresources: the API server proxies
// any method on <name>/proxy/<path> to the pod, or to a ready endpoint of
// the service, as upstream does. The name may carry the scheme and port:
// "[scheme:]name[:port]" (a pod's port is a number, a service's a port
// name or number; http unless https is named, its TLS not verified as
// upstream's proxy transport does not). HTML answers have their absolute
// links rewritten to stay under the proxy path.

var endpointSlicesGVR = discoveryv1.SchemeGroupVersion.WithResource("endpointslices")

// resourceProxyTransport reaches pods and services' endpoints.
var resourceProxyTransport = &http.Transport{
	Proxy:               nil,
	DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	TLSClientConfig:     &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}, //nolint:gosec // as upstream: pods' certificates are not verifiable
	TLSHandshakeTimeout: 10 * time.Second,
	IdleConnTimeout:     90 * time.Second,
	MaxIdleConnsPerHost: 4,
}

// proxyPrefix is the path of a pod's or service's proxy root, without the
// trailing slash.
func proxyPrefix(ri *requestInfo) string {
	return "/api/v1/namespaces/" + ri.namespace + "/" + ri.resource + "/" + ri.name + "/proxy"
}

// proxyTargetPath is what follows ".../<name>/proxy" in the escaped path,
// "/" when nothing does.
func proxyTargetPath(r *http.Request, ri *requestInfo) (string, bool) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), proxyPrefix(ri))
	if !ok {
		return "", false
	}
	if rest == "" {
		rest = "/"
	}
	return rest, true
}

// podProxy serves pods/proxy.
func (s *Server) podProxy(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	scheme, name, port, ok := splitProxyName(ri.name, true)
	if !ok {
		s.writeError(w, apierrors.NewBadRequest(fmt.Sprintf("invalid pod proxy name %q: want [scheme:]name[:port]", ri.name)))
		return
	}
	obj, err := st.Get(r.Context(), ri.namespace, name)
	if err != nil {
		s.writeError(w, err)
		return
	}
	pod, isPod := obj.(*corev1.Pod)
	if !isPod {
		s.writeError(w, apierrors.NewInternalError(fmt.Errorf("pods store returned %T", obj)))
		return
	}
	if port == "" {
		for _, c := range pod.Spec.Containers {
			if len(c.Ports) > 0 {
				port = strconv.Itoa(int(c.Ports[0].ContainerPort))
				break
			}
		}
	}
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if err != nil || !ip.IsGlobalUnicast() {
		s.writeError(w, apierrors.NewBadRequest("address not allowed"))
		return
	}
	host := ip.String()
	if port != "" {
		host = net.JoinHostPort(host, port)
	}
	s.proxyTo(w, r, ri, &url.URL{Scheme: schemeOr(scheme), Host: host})
}

// serviceProxy serves services/proxy: a ready endpoint of the service port
// the name selects (the only port when it names none).
func (s *Server) serviceProxy(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	scheme, name, port, ok := splitProxyName(ri.name, false)
	if !ok {
		s.writeError(w, apierrors.NewBadRequest(fmt.Sprintf("invalid service proxy name %q: want [scheme:]name[:port]", ri.name)))
		return
	}
	obj, err := st.Get(r.Context(), ri.namespace, name)
	if err != nil {
		s.writeError(w, err)
		return
	}
	svc, isSvc := obj.(*corev1.Service)
	if !isSvc {
		s.writeError(w, apierrors.NewInternalError(fmt.Errorf("services store returned %T", obj)))
		return
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if port == "" || p.Name == port || strconv.Itoa(int(p.Port)) == port {
			sp = p
			break
		}
	}
	if sp == nil {
		s.writeError(w, apierrors.NewServiceUnavailable(fmt.Sprintf("no service port %q found for service %q", port, name)))
		return
	}
	host, err := s.serviceEndpoint(r, ri.namespace, name, sp.Name)
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.proxyTo(w, r, ri, &url.URL{Scheme: schemeOr(scheme), Host: host})
}

func schemeOr(scheme string) string {
	if scheme == "" {
		return "http"
	}
	return scheme
}

// serviceEndpoint picks a ready endpoint of the service for the port named
// portName ("" for an unnamed port).
func (s *Server) serviceEndpoint(r *http.Request, namespace, service, portName string) (string, error) {
	sliceStore := s.resources[endpointSlicesGVR.GroupVersion()][endpointSlicesGVR.Resource]
	unavailable := apierrors.NewServiceUnavailable(fmt.Sprintf("no endpoints available for service %q", service))
	if sliceStore == nil {
		return "", unavailable
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service})
	obj, err := sliceStore.List(r.Context(), namespace, storage.ListOptions{Predicate: storage.Predicate{Label: sel}, ResourceVersion: "0"})
	if err != nil {
		return "", err
	}
	list, ok := obj.(*discoveryv1.EndpointSliceList)
	if !ok {
		return "", apierrors.NewInternalError(fmt.Errorf("endpoint slices store returned %T", obj))
	}
	// As for pods: only addresses of the network, never this host's
	// loopback or link-local ones (endpoints may be written by hand).
	candidates := slices.DeleteFunc(svcendpoints.ReadyInList(list, portName), func(hostPort string) bool {
		ap, err := netip.ParseAddrPort(hostPort)
		return err != nil || !ap.Addr().IsGlobalUnicast()
	})
	if len(candidates) == 0 {
		return "", unavailable
	}
	return candidates[rand.IntN(len(candidates))], nil
}

// proxyTo proxies the request's path below /proxy to target; the caller's
// credentials stay here. HTML answers have their absolute links rewritten
// to stay under the proxy path.
func (s *Server) proxyTo(w http.ResponseWriter, r *http.Request, ri *requestInfo, target *url.URL) {
	rest, ok := proxyTargetPath(r, ri)
	if !ok {
		s.writeError(w, notFoundPath())
		return
	}
	if !strings.HasSuffix(r.URL.EscapedPath(), "/proxy/") && strings.HasSuffix(r.URL.EscapedPath(), "/proxy") &&
		(r.Method == http.MethodGet || r.Method == http.MethodHead) {
		// As upstream: the proxy's root is ".../proxy/"; a browser
		// following the redirect resolves relative links under it.
		loc := r.URL.EscapedPath() + "/"
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, loc, http.StatusMovedPermanently)
		return
	}
	path, err := url.Parse(rest)
	if err != nil {
		s.writeError(w, apierrors.NewBadRequest(fmt.Sprintf("invalid proxy path: %v", err)))
		return
	}
	prefix := proxyPrefix(ri)
	rp := &httputil.ReverseProxy{
		Transport:     resourceProxyTransport,
		FlushInterval: -1,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			pr.Out.URL.Path, pr.Out.URL.RawPath = path.Path, path.RawPath
			pr.Out.URL.RawQuery = r.URL.RawQuery
			pr.Out.Host = target.Host
			for k := range pr.Out.Header {
				if ck := http.CanonicalHeaderKey(k); ck == "Authorization" || strings.HasPrefix(ck, "Impersonate-") {
					pr.Out.Header.Del(k)
				}
			}
		},
		ModifyResponse: func(resp *http.Response) error { return rewriteHTML(resp, prefix) },
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			s.writeError(w, apierrors.NewServiceUnavailable(fmt.Sprintf("error trying to reach %s: %v", ri.resource, err)))
		},
	}
	rp.ServeHTTP(w, r)
}

// maxRewrittenHTML bounds the HTML bodies rewritten in memory; larger ones
// pass as they are.
const maxRewrittenHTML = 4 << 20

// linkAttrs are the attributes whose absolute paths rewriteHTML prefixes.
var linkAttrs = map[string]bool{
	"href": true, "src": true, "action": true, "formaction": true, "cite": true,
	"poster": true, "background": true, "data": true, "codebase": true, "longdesc": true, "usemap": true,
}

// rewriteHTML prefixes the absolute-path links of an HTML answer with
// prefix, as upstream's proxy does, so that a page served through the
// proxy links back through it.
func rewriteHTML(resp *http.Response, prefix string) error {
	ct := resp.Header.Get("Content-Type")
	if !strings.HasPrefix(strings.ToLower(ct), "text/html") || resp.Header.Get("Content-Encoding") != "" {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRewrittenHTML+1))
	if err != nil {
		return err
	}
	if len(body) > maxRewrittenHTML {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return nil
	}
	resp.Body.Close()
	var out bytes.Buffer
	z := html.NewTokenizer(bytes.NewReader(body))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			// As sent: decoding (Token) would unescape entities.
			out.Write(z.Raw())
			continue
		}
		raw := bytes.Clone(z.Raw())
		tok := z.Token()
		rewritten := false
		for i, a := range tok.Attr {
			if linkAttrs[a.Key] && strings.HasPrefix(a.Val, "/") && !strings.HasPrefix(a.Val, "//") && !strings.HasPrefix(a.Val, prefix) {
				tok.Attr[i].Val = prefix + a.Val
				rewritten = true
			}
		}
		if rewritten {
			out.WriteString(tok.String())
		} else {
			out.Write(raw)
		}
	}
	resp.Body = io.NopCloser(&out)
	resp.ContentLength = int64(out.Len())
	resp.Header.Set("Content-Length", strconv.Itoa(out.Len()))
	return nil
}
