package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/internal/netpol"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/knftables"
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

func TestDeleteNodeTables(t *testing.T) {
	fakes := map[string]*knftables.Fake{}
	open := func(f knftables.Family, name string) (knftables.Interface, error) {
		fake, ok := fakes[name]
		if !ok {
			fake = knftables.NewFake(f, name)
			fakes[name] = fake
		}
		return fake, nil
	}
	ctx := context.Background()
	// The proxy's and the masquerading tables exist, the policies' not.
	for _, tbl := range nodeTables {
		if tbl.name == netpol.TableName {
			continue
		}
		nft, _ := open(tbl.family, tbl.name)
		tx := nft.NewTransaction()
		tx.Add(&knftables.Table{})
		tx.Add(&knftables.Chain{Name: "c"})
		if err := nft.Run(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	if err := deleteNodeTables(ctx, open, log); err != nil {
		t.Fatalf("deleteNodeTables: %v", err)
	}
	for name, fake := range fakes {
		if fake.Table != nil {
			t.Errorf("table %s left: %s", name, fake.Dump())
		}
	}
	if len(fakes) != 3 {
		t.Errorf("opened %d tables, want 3", len(fakes))
	}
	// Without nftables there is nothing to delete.
	noNft := func(knftables.Family, string) (knftables.Interface, error) { return nil, errors.New("nft: not found") }
	if err := deleteNodeTables(ctx, noNft, log); err != nil {
		t.Errorf("without nftables: %v", err)
	}
}

func TestOtherNodeProcess(t *testing.T) {
	proc := t.TempDir()
	add := func(pid, netns string, args ...string) {
		t.Helper()
		dir := filepath.Join(proc, pid)
		if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(netns, filepath.Join(dir, "ns", "net")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(strings.Join(args, "\x00")+"\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	add("self", "net:[1]")
	add("10", "net:[1]", "/usr/bin/containerd", "--config", "x")
	add("11", "net:[2]", "/opt/skiff", "agent", "--server", "https://a:6443")
	add("12", "net:[1]", "bin/skiff", "reset", "--data-dir", "d")
	if got := otherNodeProcess(proc); got != "" {
		t.Fatalf("no other node in the namespace, got %q", got)
	}
	add("13", "net:[1]", "/usr/local/bin/skiff", "server", "--data-dir", "/var/lib/skiff")
	if got := otherNodeProcess(proc); !strings.HasPrefix(got, "13 /usr/local/bin/skiff server") {
		t.Fatalf("server in the namespace not found: %q", got)
	}
}
