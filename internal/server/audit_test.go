package server

import (
	"path/filepath"
	"testing"

	"github.com/skiff-dev/skiff/internal/audit"
)

func TestNewAuditLogger(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		cfg       AuditConfig
		wantLevel audit.Level
		wantFile  string // relative to the data dir; "" for no file
	}{
		{"defaults", AuditConfig{}, audit.LevelMetadata, AuditLogFileName},
		{"off", AuditConfig{AuditLevel: audit.LevelNone}, audit.LevelNone, ""},
		{"elsewhere at request", AuditConfig{AuditLogPath: "logs/a.log", AuditLevel: audit.LevelRequest, AuditMaxSizeMB: -1, AuditMaxBackups: -1},
			audit.LevelRequest, "logs/a.log"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := tc.cfg
			if cfg.AuditLogPath != "" {
				cfg.AuditLogPath = filepath.Join(dir, cfg.AuditLogPath)
			}
			l, err := newAuditLogger(dir, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Level(); got != tc.wantLevel {
				t.Errorf("level = %s, want %s", got, tc.wantLevel)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.wantFile == "" {
				if l != nil {
					t.Errorf("logger = %v, want nil", l)
				}
				return
			}
			matches, _ := filepath.Glob(filepath.Join(dir, tc.wantFile))
			if len(matches) != 1 {
				t.Errorf("no log file %s", tc.wantFile)
			}
		})
	}
}
