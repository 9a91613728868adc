package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

func TestConfigDefaults(t *testing.T) {
	if os.Geteuid() != 0 {
		err := (&Config{DataDir: "/x", Kube: &rest.Config{}}).defaults()
		if err == nil || !strings.Contains(err.Error(), "needs root") {
			t.Fatalf("as a normal user: %v, want the agent to ask for root", err)
		}
		t.Skip("the remaining cases need root")
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "no data dir", cfg: Config{Kube: &rest.Config{}}, wantErr: "no data dir"},
		{name: "no API", cfg: Config{DataDir: "/x"}, wantErr: "no API server configuration"},
		{name: "no CA", cfg: Config{DataDir: "/x", NodeName: "n", NodeIP: "10.0.0.1", Kube: &rest.Config{}}, wantErr: "holds no CA"},
		{name: "bad CA", cfg: Config{DataDir: "/x", NodeName: "n", NodeIP: "10.0.0.1", Kube: &rest.Config{TLSClientConfig: rest.TLSClientConfig{CAData: []byte("junk")}}}, wantErr: "holds no CA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.defaults()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("defaults() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestLockRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "agent")
	unlock, err := lockRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockRoot(root); err == nil || !strings.Contains(err.Error(), "in use by another node agent") {
		t.Fatalf("second lock: %v, want in use", err)
	}
	unlock()
	unlock2, err := lockRoot(root)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestResetNeedsANode(t *testing.T) {
	err := Reset(context.Background(), t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "holds no node") {
		t.Fatalf("Reset of an empty dir = %v", err)
	}
}

func TestOptionalKeepsTheAgentRunning(t *testing.T) {
	var reported []string
	progress := func(format string, args ...any) { reported = append(reported, format) }
	fn := optional(context.Background(), slog.New(slog.DiscardHandler), progress, "thing", func(context.Context) error {
		return errors.New("no nftables")
	})
	if err := fn(); err != nil {
		t.Fatalf("optional part's failure returned %v, want nil", err)
	}
	if len(reported) != 1 {
		t.Errorf("progress lines = %v, want one", reported)
	}
}

func TestWritePauseArchive(t *testing.T) {
	root := t.TempDir()
	p, err := writePauseArchive(root)
	if err != nil {
		t.Skipf("no built-in pause binary here: %v", err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Size() == 0 {
		t.Fatalf("archive %s: %v", p, err)
	}
}
