package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-dev/skiff/internal/audit"
	"github.com/skiff-dev/skiff/internal/server"
)

func TestParseServerAuditFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		want    server.AuditConfig
		wantErr string
	}{
		{"defaults", nil, server.AuditConfig{}, ""},
		{"all", []string{"--audit-log-path", "-", "--audit-log-level", "requestresponse", "--audit-log-maxsize", "10", "--audit-log-maxbackup", "-1"},
			server.AuditConfig{AuditLogPath: "-", AuditLevel: audit.LevelRequestResponse, AuditMaxSizeMB: 10, AuditMaxBackups: -1}, ""},
		{"bad level", []string{"--audit-log-level", "Loud"}, server.AuditConfig{}, `unknown level "Loud"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr strings.Builder
			got, err := parseServerFlags(append([]string{"--data-dir", "/d"}, tc.args...), &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(stderr.String(), tc.wantErr) {
					t.Fatalf("err = %v, stderr %q; want it to say %q", err, stderr.String(), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, stderr.String())
			}
			if diff := cmp.Diff(tc.want, got.audit); diff != "" {
				t.Errorf("audit config (-want +got):\n%s", diff)
			}
		})
	}
}
