package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestErrorResponses(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MaxBodyBytes = 4096 })
	code, _, body := env.do(t, "POST", "/api/v1/namespaces/default/configmaps", nil, `{"metadata":{"name":"exists"}}`)
	if code != http.StatusCreated {
		t.Fatalf("setup: %d %s", code, body)
	}
	big := `{"metadata":{"name":"big"},"data":{"k":"` + strings.Repeat("x", 5000) + `"}}`
	tests := []struct {
		name          string
		method, path  string
		header        map[string]string
		body          string
		wantCode      int
		wantReason    metav1.StatusReason
		wantMessage   string // substring
		wantWarning   string
		skipStatusChk bool
	}{
		{name: "unknown resource", method: "GET", path: "/api/v1/foos", wantCode: 404, wantReason: metav1.StatusReasonNotFound},
		{name: "unknown group", method: "GET", path: "/apis/nope.example.com/v1/things", wantCode: 404, wantReason: metav1.StatusReasonNotFound},
		{name: "cluster-scoped under namespace", method: "GET", path: "/api/v1/namespaces/default/nodes", wantCode: 404, wantReason: metav1.StatusReasonNotFound},
		{name: "unknown subresource", method: "GET", path: "/api/v1/namespaces/default/configmaps/exists/status", wantCode: 404, wantReason: metav1.StatusReasonNotFound},
		{name: "post on object", method: "POST", path: "/api/v1/namespaces/default/configmaps/exists", body: `{}`, wantCode: 405, wantReason: metav1.StatusReasonMethodNotAllowed},
		{name: "create across namespaces", method: "POST", path: "/api/v1/configmaps", body: `{}`, wantCode: 405, wantReason: metav1.StatusReasonMethodNotAllowed},
		{name: "missing object", method: "GET", path: "/api/v1/namespaces/default/configmaps/nope", wantCode: 404, wantReason: metav1.StatusReasonNotFound, wantMessage: `configmaps "nope" not found`},
		{name: "malformed json", method: "POST", path: "/api/v1/namespaces/default/configmaps", body: `{"metadata":`, wantCode: 400, wantReason: metav1.StatusReasonBadRequest},
		{name: "wrong kind", method: "POST", path: "/api/v1/namespaces/default/configmaps", body: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}`, wantCode: 400, wantReason: metav1.StatusReasonBadRequest},
		{name: "strict unknown field", method: "POST", path: "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
			body: `{"metadata":{"name":"s"},"foo":1}`, wantCode: 400, wantReason: metav1.StatusReasonBadRequest,
			wantMessage: `ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "foo"`},
		{name: "strict duplicate field", method: "POST", path: "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
			body: `{"metadata":{"name":"d","name":"d"}}`, wantCode: 400, wantReason: metav1.StatusReasonBadRequest,
			wantMessage: `duplicate field "metadata.name"`},
		{name: "warn unknown field", method: "POST", path: "/api/v1/namespaces/default/configmaps?fieldValidation=Warn",
			body: `{"metadata":{"name":"w"},"foo":1}`, wantCode: 201, wantWarning: `299 - "unknown field \"foo\""`},
		{name: "ignore unknown field", method: "POST", path: "/api/v1/namespaces/default/configmaps?fieldValidation=Ignore",
			body: `{"metadata":{"name":"i"},"foo":1}`, wantCode: 201},
		{name: "bad fieldValidation", method: "POST", path: "/api/v1/namespaces/default/configmaps?fieldValidation=Loud",
			body: `{"metadata":{"name":"l"}}`, wantCode: 422, wantReason: metav1.StatusReasonInvalid},
		{name: "bad dryRun", method: "POST", path: "/api/v1/namespaces/default/configmaps?dryRun=Some",
			body: `{"metadata":{"name":"dr"}}`, wantCode: 422, wantReason: metav1.StatusReasonInvalid},
		{name: "namespace mismatch", method: "POST", path: "/api/v1/namespaces/default/configmaps",
			body: `{"metadata":{"name":"n","namespace":"other"}}`, wantCode: 400, wantReason: metav1.StatusReasonBadRequest,
			wantMessage: "does not match the namespace"},
		{name: "name mismatch on update", method: "PUT", path: "/api/v1/namespaces/default/configmaps/exists",
			body: `{"metadata":{"name":"other"}}`, wantCode: 400, wantReason: metav1.StatusReasonBadRequest,
			wantMessage: "the name of the object (other) does not match the name on the URL (exists)"},
		{name: "body too large", method: "POST", path: "/api/v1/namespaces/default/configmaps", body: big,
			wantCode: 413, wantReason: metav1.StatusReasonRequestEntityTooLarge},
		{name: "unknown patch type", method: "PATCH", path: "/api/v1/namespaces/default/configmaps/exists",
			header: map[string]string{"Content-Type": "application/foo-patch+json"}, body: `{}`,
			wantCode: 415, wantReason: metav1.StatusReasonUnsupportedMediaType},
		{name: "unknown body type", method: "POST", path: "/api/v1/namespaces/default/configmaps",
			header: map[string]string{"Content-Type": "text/plain"}, body: `x`,
			wantCode: 415, wantReason: metav1.StatusReasonUnsupportedMediaType},
		{name: "json patch test failure", method: "PATCH", path: "/api/v1/namespaces/default/configmaps/exists",
			header: map[string]string{"Content-Type": "application/json-patch+json"}, body: `[{"op":"test","path":"/data/x","value":"y"}]`,
			wantCode: 422, wantReason: metav1.StatusReasonInvalid},
		{name: "patch of missing object", method: "PATCH", path: "/api/v1/namespaces/default/configmaps/nope",
			header: map[string]string{"Content-Type": "application/merge-patch+json"}, body: `{}`,
			wantCode: 404, wantReason: metav1.StatusReasonNotFound},
		{name: "unsupported field selector", method: "GET", path: "/api/v1/namespaces/default/configmaps?fieldSelector=spec.foo%3Dx",
			wantCode: 400, wantReason: metav1.StatusReasonBadRequest, wantMessage: "field label not supported: spec.foo"},
		{name: "bad label selector", method: "GET", path: "/api/v1/namespaces/default/configmaps?labelSelector=a%3D%3D%3Db",
			wantCode: 400, wantReason: metav1.StatusReasonBadRequest},
		{name: "resourceVersionMatch without resourceVersion", method: "GET", path: "/api/v1/namespaces/default/configmaps?resourceVersionMatch=Exact",
			wantCode: 422, wantReason: metav1.StatusReasonInvalid},
		{name: "not acceptable", method: "GET", path: "/api/v1/namespaces/default/configmaps/exists",
			header: map[string]string{"Accept": "text/html"}, wantCode: 406, wantReason: metav1.StatusReasonNotAcceptable},
		{name: "table as protobuf not acceptable", method: "GET", path: "/api/v1/namespaces/default/configmaps/exists",
			header: map[string]string{"Accept": "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"}, wantCode: 406, wantReason: metav1.StatusReasonNotAcceptable},
		{name: "unknown path", method: "GET", path: "/nothing/here", wantCode: 404, wantReason: metav1.StatusReasonNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, header, body := env.do(t, tc.method, tc.path, tc.header, tc.body)
			if code != tc.wantCode {
				t.Fatalf("code = %d, want %d; body %s", code, tc.wantCode, body)
			}
			if tc.wantWarning != "" {
				if diff := cmp.Diff([]string{tc.wantWarning}, header.Values("Warning")); diff != "" {
					t.Errorf("Warning headers (-want +got):\n%s", diff)
				}
			}
			if code < 400 {
				return
			}
			var st metav1.Status
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				t.Fatalf("body is not a Status: %v: %s", err, body)
			}
			if st.Kind != "Status" || st.APIVersion != "v1" || st.Status != metav1.StatusFailure || int(st.Code) != tc.wantCode {
				t.Errorf("status envelope = %+v", st)
			}
			if st.Reason != tc.wantReason {
				t.Errorf("reason = %q, want %q (message %q)", st.Reason, tc.wantReason, st.Message)
			}
			if !strings.Contains(st.Message, tc.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", st.Message, tc.wantMessage)
			}
		})
	}
}

func TestAuthenticationAndHealth(t *testing.T) {
	ready := make(chan struct{})
	env := newTestEnv(t, func(c *Config) {
		c.Ready = func(ctxReady context.Context) error {
			select {
			case <-ready:
				return nil
			default:
				return errNotReady
			}
		}
	})
	anon := func(method, path string) (int, string) {
		code, _, body := doWith(t, env.anon, method, env.ts.URL+path, nil, "")
		return code, body
	}
	tests := []struct {
		name     string
		path     string
		wantCode int
		wantBody string
	}{
		{"livez", "/livez", 200, "ok"},
		{"healthz not ready", "/healthz", 500, "[+]ping ok\n[-]etcd failed: reason withheld\nhealthz check failed\n"},
		{"readyz not ready", "/readyz", 500, "[+]ping ok\n[-]etcd failed: reason withheld\n[+]shutdown ok\nreadyz check failed\n"},
		{"readyz exclude", "/readyz?exclude=etcd", 200, "ok"},
		{"readyz ping", "/readyz/ping", 200, "ok"},
		{"livez verbose", "/livez?verbose", 200, "[+]ping ok\nlivez check passed\n"},
		{"unknown check", "/readyz/nope", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := anon("GET", tc.path)
			if code != tc.wantCode {
				t.Fatalf("code = %d, want %d: %s", code, tc.wantCode, body)
			}
			if tc.wantBody != "" {
				if diff := cmp.Diff(tc.wantBody, body); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
		})
	}
	close(ready)
	if code, body := anon("GET", "/readyz/etcd"); code != 200 || body != "ok" {
		t.Errorf("/readyz/etcd when ready = %d %q", code, body)
	}
	code, body := anon("GET", "/version")
	if code != 200 || !strings.Contains(body, `"gitVersion": "v1.33.0+skiff"`) {
		t.Errorf("/version = %d %s", code, body)
	}
	for _, p := range []string{"/api/v1/namespaces/default/configmaps", "/api", "/metrics", "/openapi/v2"} {
		code, body := anon("GET", p)
		var st metav1.Status
		_ = json.Unmarshal([]byte(body), &st)
		if code != 401 || st.Reason != metav1.StatusReasonUnauthorized {
			t.Errorf("anonymous GET %s = %d %s, want 401 Unauthorized", p, code, body)
		}
	}
	if code, _, body := env.do(t, "GET", "/api", nil, ""); code != 200 || !strings.Contains(body, "APIVersions") {
		t.Errorf("GET /api as admin = %d %s", code, body)
	}
	if code, _, body := env.do(t, "GET", "/metrics", nil, ""); code != 200 || !strings.Contains(body, `apiserver_request_total{code="200",group="",resource="",subresource="",verb="GET",version=""}`) {
		t.Errorf("GET /metrics = %d, missing request counter:\n%s", code, body)
	}
}

var errNotReady = errors.New("not ready")
