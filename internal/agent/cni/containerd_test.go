package cni_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/agent/cni"
	"github.com/skiff-dev/skiff/internal/agent/containerd"
	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/images"
)

// netnsEnv marks the test process re-executed in its own network
// namespace.
const netnsEnv = "SKIFF_CNI_TEST_NETNS"

// inOwnNetns reports whether the test runs in a network namespace of its
// own. When it does not, it re-executes the test under "unshare --net",
// reports that run's outcome and returns false: the caller returns.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) != "" {
		return true
	}
	cmd := exec.Command("unshare", "--net", "--", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a new network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("the test in its network namespace failed: %v", err)
	}
	return false
}

// TestPodNetworkWithContainerd checks the configuration against the real
// plugins: a containerd started before the configuration exists picks it
// up, and two pod sandboxes get distinct addresses from the pod CIDR on the
// bridge, which are released when they are removed. The test re-executes
// itself under "unshare --net" so that the bridge, routes and iptables
// rules stay in a network namespace of its own.
func TestPodNetworkWithContainerd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: running pod sandboxes needs root")
	}
	for _, p := range []string{containerd.DefaultBinary, containerd.DefaultCtrBinary, "/bin/busybox", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipping: %s is absent (apt-get install containerd runc busybox-static containernetworking-plugins)", p)
		}
	}
	for _, bin := range []string{"runc", "go", "unshare", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping: %s is absent", bin)
		}
	}
	if !inOwnNetns(t) {
		return
	}

	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	archives, err := images.BuildTest(ctx, images.BuildOptions{OutDir: filepath.Join(dir, "images")})
	if err != nil {
		t.Fatalf("BuildTest: %v", err)
	}
	sup, err := containerd.New(containerd.Config{
		DataDir:       filepath.Join(dir, "node"),
		ImageArchives: []string{archives[images.PauseImage]},
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatalf("containerd.New: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- sup.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("Supervisor.Run: %v", err)
		}
	})
	select {
	case <-sup.Ready():
	case err := <-runErr:
		t.Fatalf("Supervisor.Run returned before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatalf("containerd not ready after 60s")
	}
	rt, err := cri.Dial(cri.Config{Socket: sup.Socket(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { rt.Close() })

	// Images, through the node status's call.
	imgs, err := rt.ListImages(ctx)
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	found := false
	for _, img := range imgs {
		if strings.Contains(strings.Join(img.RepoTags, " "), images.PauseImage) && img.Size > 0 && img.ID != "" {
			found = true
		}
	}
	if !found {
		t.Errorf("ListImages = %+v, want %s with a size", imgs, images.PauseImage)
	}

	podCIDR := netip.MustParsePrefix("10.244.9.0/24")
	ipamDir := filepath.Join(dir, "agent", "cni")
	if changed, err := cni.WriteConfig(sup.Layout().CNIConfDir, podCIDR.String(), ipamDir); err != nil || !changed {
		t.Fatalf("WriteConfig = %v, %v; want true, nil", changed, err)
	}

	var ids []string
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, id := range ids {
			if err := rt.StopSandbox(ctx, id); err != nil {
				t.Errorf("cleanup: %v", err)
			}
			if err := rt.RemoveSandbox(ctx, id); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	ips := map[string]bool{}
	for _, name := range []string{"a", "b"} {
		cfg := cri.SandboxConfig{Name: name, Namespace: "default", UID: "uid-" + name, Hostname: name}
		var id string
		// containerd loads the configuration from its conf dir watch.
		deadline := time.Now().Add(30 * time.Second)
		for {
			id, err = rt.RunSandbox(ctx, cfg)
			if err == nil || time.Now().After(deadline) {
				break
			}
			<-time.After(200 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("RunSandbox %s: %v", name, err)
		}
		ids = append(ids, id)
		sb, err := rt.SandboxStatus(ctx, id)
		if err != nil {
			t.Fatalf("SandboxStatus: %v", err)
		}
		ip, err := netip.ParseAddr(sb.IP)
		if err != nil || !podCIDR.Contains(ip) || ips[sb.IP] {
			t.Errorf("sandbox %s IP %q: want a new address in %s", name, sb.IP, podCIDR)
		}
		ips[sb.IP] = true
	}
	out, err := exec.Command("ip", "-4", "addr", "show", cni.BridgeName).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "10.244.9.1/24") {
		t.Errorf("bridge %s: %v\n%s\nwant the gateway 10.244.9.1/24", cni.BridgeName, err, out)
	}
	for _, id := range ids {
		if err := rt.StopSandbox(ctx, id); err != nil {
			t.Fatalf("StopSandbox: %v", err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(ipamDir, cni.NetworkName))
	if err != nil {
		t.Fatalf("reading the IPAM state: %v", err)
	}
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			t.Errorf("address %s still allocated after the sandboxes stopped", e.Name())
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
