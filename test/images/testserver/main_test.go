package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestHandlers(t *testing.T) {
	t.Setenv("TESTSERVER_PROBE", "42")
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/f"
	if err := os.WriteFile(file, []byte("content"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &server{}
	// Steps run in order on one server: /fail-health changes /healthz.
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		target   string
		wantCode int
		wantBody string // substring
	}{
		{name: "hostname", handler: s.hostname, target: "/", wantCode: 200, wantBody: host + "\n"},
		{name: "unknown path", handler: s.hostname, target: "/nope", wantCode: 404},
		{name: "healthy", handler: s.healthz, target: "/healthz", wantCode: 200, wantBody: "ok\n"},
		{name: "env", handler: s.env, target: "/env", wantCode: 200, wantBody: "TESTSERVER_PROBE=42\n"},
		{name: "alloc", handler: s.alloc, target: "/alloc?mb=2", wantCode: 200, wantBody: "holding 2 MiB"},
		{name: "alloc more", handler: s.alloc, target: "/alloc?mb=1", wantCode: 200, wantBody: "holding 3 MiB"},
		{name: "alloc bad", handler: s.alloc, target: "/alloc?mb=x", wantCode: 400},
		{name: "exit bad", handler: s.exit, target: "/exit?code=x", wantCode: 400},
		{name: "file", handler: s.file, target: "/file?path=" + file, wantCode: 200, wantBody: "content"},
		{name: "file missing", handler: s.file, target: "/file?path=/nonexistent", wantCode: 404},
		{name: "fail health", handler: s.failHealth, target: "/fail-health", wantCode: 200},
		{name: "unhealthy", handler: s.healthz, target: "/healthz", wantCode: 500},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		tt.handler(w, httptest.NewRequest("GET", tt.target, nil))
		if w.Code != tt.wantCode || !strings.Contains(w.Body.String(), tt.wantBody) {
			t.Errorf("%s: GET %s = %d %q, want %d with %q", tt.name, tt.target, w.Code, w.Body.String(), tt.wantCode, tt.wantBody)
		}
	}
}

func TestAdmissionDenyForbidden(t *testing.T) {
	tests := []struct {
		name, body  string
		wantCode    int
		wantAllowed bool
	}{
		{"allowed", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","object":{"data":{"ok":"1"}}}}`, 200, true},
		{"refused", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u2","object":{"data":{"forbidden":"1"}}}}`, 200, false},
		{"not a review", `{}`, 400, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			admissionDenyForbidden(rec, httptest.NewRequest("POST", "/admission/deny-forbidden", strings.NewReader(tc.body)))
			if rec.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			if tc.wantCode != 200 {
				return
			}
			var got admissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Response == nil || got.Response.Allowed != tc.wantAllowed || got.Response.UID == "" || got.Kind != "AdmissionReview" || got.Request != nil {
				t.Errorf("review %s", rec.Body)
			}
		})
	}
}
