package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// healthCheck is one named check of /healthz, /livez or /readyz.
type healthCheck struct {
	name  string
	check func(ctx context.Context) error
}

func (s *Server) healthChecks(endpoint string) []healthCheck {
	checks := []healthCheck{{name: "ping", check: func(context.Context) error { return nil }}}
	if endpoint != "livez" {
		checks = append(checks, healthCheck{name: "etcd", check: func(ctx context.Context) error {
			if s.cfg.Ready == nil {
				return nil
			}
			return s.cfg.Ready(ctx)
		}})
	}
	if endpoint == "readyz" {
		checks = append(checks, healthCheck{name: "shutdown", check: func(context.Context) error {
			select {
			case <-s.shutdown:
				return fmt.Errorf("server is shutting down")
			default:
				return nil
			}
		}})
	}
	return checks
}

// serveHealth serves /<endpoint>[/<check>] with upstream's text format.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request, parts []string) {
	endpoint := parts[0]
	checks := s.healthChecks(endpoint)
	if len(parts) > 2 {
		s.writeError(w, notFoundPath())
		return
	}
	if len(parts) == 2 {
		var found []healthCheck
		for _, c := range checks {
			if c.name == parts[1] {
				found = append(found, c)
			}
		}
		if len(found) == 0 {
			s.writeError(w, notFoundPath())
			return
		}
		checks = found
	}
	excluded := map[string]bool{}
	for _, e := range r.URL.Query()["exclude"] {
		excluded[e] = true
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var b strings.Builder
	failed := false
	for _, c := range checks {
		if excluded[c.name] {
			fmt.Fprintf(&b, "[+]%s excluded: ok\n", c.name)
			continue
		}
		if err := c.check(ctx); err != nil {
			failed = true
			fmt.Fprintf(&b, "[-]%s failed: reason withheld\n", c.name)
			s.log.Debug("health check failed", "endpoint", endpoint, "check", c.name, "err", err)
			continue
		}
		fmt.Fprintf(&b, "[+]%s ok\n", c.name)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if failed {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "%s%s check failed\n", b.String(), endpoint)
		return
	}
	if _, verbose := r.URL.Query()["verbose"]; verbose {
		fmt.Fprintf(w, "%s%s check passed\n", b.String(), endpoint)
		return
	}
	fmt.Fprint(w, "ok")
}

func jsonMarshalIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding JSON: %w", err)
	}
	return b, nil
}
