package containerd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLayoutOf(t *testing.T) {
	t.Parallel()
	got, err := LayoutOf("/var/lib/skiff")
	if err != nil {
		t.Fatal(err)
	}
	d := "/var/lib/skiff/containerd"
	want := Layout{
		Dir: d, Config: d + "/config.toml", Root: d + "/root", State: d + "/state",
		Socket: d + "/containerd.sock", CNIConfDir: d + "/cni/net.d", Log: d + "/containerd.log",
		PIDFile: d + "/containerd.pid", Snapshotter: d + "/snapshotter",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LayoutOf (-want +got):\n%s", diff)
	}
}

func TestRenderConfig(t *testing.T) {
	t.Parallel()
	conf, err := RenderConfig(ConfigValues{
		Root: "/d/root", State: "/d/state", Socket: "/d/containerd.sock", OptDir: "/d/opt",
		CNIConfDir: "/d/cni/net.d", CNIBinDir: "/usr/lib/cni",
		SandboxImage: "skiff-test/pause:3.10", Snapshotter: "native",
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each line must appear once, as containerd 1.6 reads it.
	tests := []string{
		`version = 2`,
		`root = "/d/root"`,
		`state = "/d/state"`,
		`  address = "/d/containerd.sock"`,
		`  address = "/d/containerd.sock.ttrpc"`,
		`    path = "/d/opt"`,
		`    sandbox_image = "skiff-test/pause:3.10"`,
		`    restrict_oom_score_adj = true`,
		`      bin_dir = "/usr/lib/cni"`,
		`      conf_dir = "/d/cni/net.d"`,
		`      snapshotter = "native"`,
		`        runtime_type = "io.containerd.runc.v2"`,
		`          SystemdCgroup = false`,
	}
	lines := strings.Split(string(conf), "\n")
	for _, want := range tests {
		t.Run(strings.TrimSpace(want), func(t *testing.T) {
			n := 0
			for _, l := range lines {
				if l == want {
					n++
				}
			}
			if n != 1 {
				t.Errorf("line %q appears %d times in:\n%s", want, n, conf)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "no data dir", cfg: Config{}, want: "no data dir"},
		{name: "bad snapshotter", cfg: Config{DataDir: "/d", Snapshotter: "zfs"}, want: `unknown snapshotter "zfs"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestSupervisorRestarts kills containerd and expects the supervisor to
// start a new one that answers, then to stop it when ctx ends.
func TestSupervisorRestarts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: running containerd needs root")
	}
	if _, err := os.Stat(DefaultBinary); err != nil {
		t.Skipf("skipping: %s is absent (apt-get install containerd)", DefaultBinary)
	}
	dir := t.TempDir()
	sup, err := New(Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- sup.Run(ctx) }()
	select {
	case <-sup.Ready():
	case err := <-runErr:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("containerd not ready after 60s")
	}
	first := readPID(t, sup.Layout().PIDFile)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatalf("killing containerd: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for {
		last = func() error {
			b, err := os.ReadFile(sup.Layout().PIDFile)
			if err != nil {
				return err
			}
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid == first || pid == 0 {
				return fmt.Errorf("pid file still says %d", pid)
			}
			return ProbeCRI(context.Background(), sup.Socket())
		}()
		if last == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd not restarted after 30s: %v", last)
		}
		<-time.After(100 * time.Millisecond)
	}
	second := readPID(t, sup.Layout().PIDFile)
	cancel()
	if err := <-runErr; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
	if err := syscall.Kill(second, 0); err == nil {
		t.Errorf("containerd %d still running after Run returned", second)
	}
	if _, err := os.Stat(filepath.Join(dir, "containerd", "config.toml")); err != nil {
		t.Errorf("config.toml: %v", err)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %q: %v", b, err)
	}
	return pid
}

// testWriter sends log output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
