package apiserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skiff-dev/skiff/internal/auth"
	"github.com/skiff-dev/skiff/internal/auth/tokens"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// buildHandler assembles the filter chain, outermost first:
//
//	recover+log+metrics -> authenticate -> audit -> impersonate -> authorize
//	  -> in-flight limit
//	  -> timeout -> route
func (s *Server) buildHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &responseWriter{ResponseWriter: w}
		ri := parseRequestInfo(r)
		user, authnErr := s.authenticate(r)
		ctx := WithUser(r.Context(), user)
		r = r.WithContext(ctx)
		var w0 http.ResponseWriter = rw
		w0, r, auditEnd := s.auditBegin(w0, r, ri, user)

		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				auditPanicked(w0, p)
				s.log.Info("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rw.wroteHeader {
					s.writeError(rw, apierrors.NewInternalError(errors.New("This request caused apiserver to panic. Look in the logs for details.")))
				}
			}
			code := rw.status()
			auditEnd(code)
			elapsed := time.Since(start)
			s.metrics.observe(s.metricsInfo(ri), code, elapsed)
			if s.log.Enabled(ctx, slog.LevelDebug) { // spare the request ID otherwise
				s.log.Debug("request", "id", requestID(), "verb", ri.verb, "path", r.URL.Path,
					"code", code, "latency", elapsed, "user", user.Name)
			}
		}()

		if authnErr != nil {
			s.writeError(w0, authnErr)
			return
		}
		if as, err := s.impersonate(r.Context(), r, user); err != nil {
			s.writeError(w0, err)
			return
		} else if as.Name != user.Name || !slices.Equal(as.Groups, user.Groups) {
			user = as
			auditImpersonated(r.Context(), user)
			r = r.WithContext(WithUser(r.Context(), user))
		}
		if err := s.authorize(r.Context(), r, attributes(user, r, ri), ri); err != nil {
			s.writeError(w0, err)
			return
		}

		longRunning := ri.verb == "watch" || isConnect(ri)
		if !longRunning && !slices.Contains(user.Groups, auth.SystemMasters) {
			// system:masters is exempt from the limit, as upstream.
			select {
			case s.inflight <- struct{}{}:
			default:
				st := newStatus(http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests, "Too many requests, please try again later.")
				st.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
				s.writeError(w0, st)
				return
			}
			defer func() { <-s.inflight }()
		}
		if !longRunning {
			gauge := s.metrics.inflight.WithLabelValues(requestKind(r))
			gauge.Inc()
			defer gauge.Dec()

			timeout := requestTimeout
			if v := r.URL.Query().Get("timeout"); v != "" {
				if d, err := time.ParseDuration(v); err == nil && d > 0 && d < timeout {
					timeout = d
				}
			}
			if r.Body != nil {
				r.Body = http.MaxBytesReader(w0, r.Body, s.cfg.MaxBodyBytes)
			}
			s.withTimeout(w0, r, timeout, func(w http.ResponseWriter, r *http.Request) { s.route(w, r, ri) })
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w0, r.Body, s.cfg.MaxBodyBytes)
		}
		s.route(w0, r, ri)
	})
}

// requestID returns a short random ID for log correlation.
func requestID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// responseWriter records the status code for logs and metrics. It passes
// Flush through so that watches stream.
type responseWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code = code
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *responseWriter) status() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.code
}

// route dispatches on the path.
func (s *Server) route(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	p := r.URL.Path
	parts := splitPath(p)
	switch {
	case p == "/version" || p == "/version/":
		s.serveVersion(w, r)
	case len(parts) >= 1 && (parts[0] == "healthz" || parts[0] == "livez" || parts[0] == "readyz"):
		s.serveHealth(w, r, parts)
	case p == "/metrics":
		s.metrics.handler().ServeHTTP(w, r)
	case len(parts) >= 2 && parts[0] == "debug" && parts[1] == "pprof":
		servePprof(w, r, parts[2:])
	case len(parts) >= 1 && parts[0] == "openapi":
		serveOrNotFound(s, s.cfg.OpenAPI, w, r)
	case isIssuerDiscoveryPath(p):
		serveOrNotFound(s, s.cfg.IssuerDiscovery, w, r)
	case len(parts) >= 3 && parts[0] == "apis" && s.serveAggregated(w, r, parts[1], parts[2]):
	case ri.isResource && s.cfg.Groups[ri.group] != nil:
		s.cfg.Groups[ri.group].ServeHTTP(w, r)
	case ri.isResource:
		s.serveResource(w, r, ri)
	case isDiscoveryPath(parts):
		serveOrNotFound(s, s.cfg.Discovery, w, r)
	default:
		s.writeError(w, notFoundPath())
	}
}

// serveAggregated serves the request through the extension API server of
// group/version and reports true, or reports false when the server serves
// it itself (or nobody does).
func (s *Server) serveAggregated(w http.ResponseWriter, r *http.Request, group, version string) bool {
	if s.cfg.Aggregated == nil {
		return false
	}
	h := s.cfg.Aggregated(group, version)
	if h == nil {
		return false
	}
	h.ServeHTTP(w, r)
	return true
}

// servePprof serves Go's runtime profiles under /debug/pprof/, as
// upstream's API server does with --profiling (its default): the
// authorizer has already allowed "get" on the path (cluster-admin and
// system:masters may; nobody else by default).
func servePprof(w http.ResponseWriter, r *http.Request, rest []string) {
	name := ""
	if len(rest) > 0 {
		name = rest[0]
	}
	switch name {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r)
	}
}

// isIssuerDiscoveryPath reports whether p is one of the service account
// issuer's discovery documents (with or without a trailing slash).
func isIssuerDiscoveryPath(p string) bool {
	switch strings.TrimSuffix(p, "/") {
	case tokens.OpenIDConfigPath, tokens.JWKSPath:
		return true
	}
	return false
}

func isDiscoveryPath(parts []string) bool {
	switch {
	case len(parts) >= 1 && len(parts) <= 2 && parts[0] == "api":
		return true
	case len(parts) >= 1 && len(parts) <= 3 && parts[0] == "apis":
		return true
	}
	return false
}

func serveOrNotFound(s *Server, h http.Handler, w http.ResponseWriter, r *http.Request) {
	if h == nil {
		s.writeError(w, notFoundPath())
		return
	}
	h.ServeHTTP(w, r)
}

func notFoundPath() error {
	return newStatus(http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource")
}

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.writeError(w, methodNotAllowed())
		return
	}
	b, err := jsonMarshalIndent(s.cfg.Version)
	if err != nil {
		s.writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func methodNotAllowed() error {
	return newStatus(http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "the server does not allow this method on the requested resource")
}

// requestKind is the apiserver_current_inflight_requests label of r.
func requestKind(r *http.Request) string {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return "readOnly"
	}
	return "mutating"
}

// metricsInfo bounds the label values of a request: paths that name no
// served resource are counted without group, version or resource.
func (s *Server) metricsInfo(ri *requestInfo) *requestInfo {
	if !ri.isResource {
		return ri
	}
	gv := schema.GroupVersion{Group: ri.group, Version: ri.version}
	if s.lookup(gv, ri.resource) != nil && (ri.subresource == "" || knownSubresources[ri.subresource]) {
		return ri
	}
	if ri.group == "" && ri.resource == "bindings" {
		return ri
	}
	return &requestInfo{verb: ri.verb}
}

// knownSubresources are the subresources this server serves.
var knownSubresources = map[string]bool{"status": true, "scale": true, "binding": true, "finalize": true,
	"log": true, "exec": true, "attach": true, "portforward": true, "proxy": true, "token": true, "approval": true, "eviction": true,
	"ephemeralcontainers": true}
