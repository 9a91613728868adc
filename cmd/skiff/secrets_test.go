package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunSecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string // substrings
		wantStderr string   // substring
	}{
		{name: "no subcommand", args: []string{"secrets"}, wantCode: exitUsage, wantStderr: "rotate-key"},
		{name: "unknown subcommand", args: []string{"secrets", "list"}, wantCode: exitUsage, wantStderr: `unknown command "list"`},
		{name: "without data dir", args: []string{"secrets", "rotate-key"}, wantCode: exitUsage, wantStderr: "--data-dir is required"},
		{name: "negative wait", args: []string{"secrets", "rotate-key", "--data-dir", dir, "--wait", "-1s"}, wantCode: exitUsage, wantStderr: "--wait must not be negative"},
		{name: "missing data dir", args: []string{"secrets", "rotate-key", "--data-dir", filepath.Join(dir, "nope")}, wantCode: exitError, wantStderr: "data dir"},
		{name: "stopped server", args: []string{"secrets", "rotate-key", "--data-dir", dir}, wantCode: exitOK, wantStdout: []string{
			"new primary encryption key key1 added",
			"no server is running on " + dir + ": it re-encrypts every secret with key1 when it next starts",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(tc.args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d\nstderr:\n%s", code, tc.wantCode, stderr.String())
			}
			for _, want := range tc.wantStdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout = %q, want it to contain %q", stdout.String(), want)
				}
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tc.wantStderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "pki", "encryption-keys.json")); err != nil {
		t.Errorf("key file: %v", err)
	}
}
