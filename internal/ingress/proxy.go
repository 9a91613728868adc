package ingress

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"path"
	"strings"
	"time"
)

// targetKey carries the chosen endpoint from ServeHTTP to the proxy's
// Rewrite in the request context.
type targetKey struct{}

// ServeHTTP routes one request through the current table: 404 when no rule
// (and no default backend) matches, 503 when the backend has no ready
// endpoint, otherwise it is proxied to the next endpoint of the backend,
// round-robin. Safe for concurrent use; it serves both listeners.
func (c *Controller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := c.table.Load()
	reqPath := matchPath(r.URL.Path)
	b := t.route(normalizeHost(r.Host), reqPath)
	if b == nil {
		http.Error(w, "404 page not found: no ingress rule matches", http.StatusNotFound)
		return
	}
	ep, ok := b.pick()
	if !ok {
		reason := "no ready endpoints"
		if b.problem != "" {
			reason = b.problem
		}
		c.log.Debug("backend unavailable", "backend", b.name, "reason", reason, "host", r.Host, "path", reqPath)
		http.Error(w, "503 service unavailable: "+b.name+": "+reason, http.StatusServiceUnavailable)
		return
	}
	c.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, ep)))
}

// newProxy makes the reverse proxy: it sends the request unchanged (path,
// query, Host header) to the endpoint ServeHTTP chose, adding
// X-Forwarded-For (appended to the client's), X-Forwarded-Host,
// X-Forwarded-Proto, X-Forwarded-Port and X-Real-Ip; 502 when the
// endpoint cannot be reached.
func newProxy(log *slog.Logger) http.Handler {
	transport := &http.Transport{
		Proxy: nil, // never through the environment's proxy
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          1000,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			ep, _ := pr.In.Context().Value(targetKey{}).(string)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = ep
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
				pr.Out.Header.Set("X-Real-Ip", ip)
			}
			if local, ok := pr.In.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
				if _, port, err := net.SplitHostPort(local.String()); err == nil {
					pr.Out.Header.Set("X-Forwarded-Port", port)
				}
			}
		},
		Transport: transport,
		// FlushInterval 0: ReverseProxy still flushes at once for
		// streamed responses (event streams, unknown length).
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			ep, _ := r.Context().Value(targetKey{}).(string)
			log.Debug("proxying failed", "endpoint", ep, "host", r.Host, "path", r.URL.Path, "err", err)
			http.Error(w, "502 bad gateway", http.StatusBadGateway)
		},
	}
}

// matchPath is the path rules are matched against: the request path
// cleaned of "." and ".." elements and repeated slashes (so that
// "/api/../admin" is not routed as "/api"), keeping a trailing slash.
// The request itself is forwarded unchanged.
func matchPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	cleaned := path.Clean(p)
	if strings.HasSuffix(p, "/") && cleaned != "/" {
		cleaned += "/"
	}
	return cleaned
}

// normalizeHost turns a Host header or SNI name into a table key: lower
// case, without the port and a trailing dot.
func normalizeHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "]"), "["), ".")
	return strings.ToLower(host)
}
