package cni

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata")

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, podCIDR, golden string
	}{
		{"ipv4", "10.42.0.0/24", "ipv4.conflist"},
		{"ipv6", "fd00:42::/64", "ipv6.conflist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Render(tt.podCIDR, "/var/lib/skiff/agent/cni")
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			path := filepath.Join("testdata", tt.golden)
			if *rewrite {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run with -rewrite to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("Render mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, podCIDR, dataDir string
	}{
		{"empty CIDR", "", "/d"},
		{"not a CIDR", "10.42.0.1", "/d"},
		{"host bits", "10.42.0.1/24", "/d"},
		{"relative data dir", "10.42.0.0/24", "cni"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Render(tt.podCIDR, tt.dataDir); err == nil {
				t.Errorf("Render(%q, %q) = nil error, want one", tt.podCIDR, tt.dataDir)
			}
		})
	}
}

// TestWriteConfig writes, rewrites with the same input, then changes the
// CIDR, checking what WriteConfig reports, the file and that no temporary
// file is left.
func TestWriteConfig(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "net.d")
	data := filepath.Join(t.TempDir(), "cni")
	path := filepath.Join(dir, ConfFile)

	steps := []struct {
		podCIDR     string
		wantChanged bool
	}{
		{"10.42.0.0/24", true},
		{"10.42.0.0/24", false},
		{"10.42.1.0/24", true},
		{"10.42.1.0/24", false},
	}
	for i, s := range steps {
		changed, err := WriteConfig(dir, s.podCIDR, data)
		if err != nil {
			t.Fatalf("step %d: WriteConfig: %v", i, err)
		}
		if changed != s.wantChanged {
			t.Errorf("step %d: WriteConfig(%s) changed = %v, want %v", i, s.podCIDR, changed, s.wantChanged)
		}
		want, err := Render(s.podCIDR, data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("step %d: file mismatch (-want +got):\n%s", i, diff)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if diff := cmp.Diff([]string{ConfFile}, names); diff != "" {
			t.Errorf("step %d: conf dir entries (-want +got):\n%s", i, diff)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", st.Mode().Perm())
	}
	if _, err := WriteConfig(dir, "bad", data); err == nil {
		t.Errorf("WriteConfig with a bad CIDR: nil error")
	}
}
