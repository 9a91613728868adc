package cni_test

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/internal/agent/cni"
)

// TestForgetNeighbor deletes a stale neighbor entry from a bridge, in a
// network namespace of the test's own (it re-executes itself under
// "unshare --net"), and finds nothing to delete the second time.
func TestForgetNeighbor(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: making a bridge and neighbor entries needs root")
	}
	for _, bin := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping: %s is absent", bin)
		}
	}
	if !inOwnNetns(t) {
		return
	}

	ip := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ip("link", "add", "br-test", "type", "bridge")
	ip("link", "set", "br-test", "up")
	ip("addr", "add", "10.99.0.1/24", "dev", "br-test")
	ip("neigh", "replace", "10.99.0.7", "lladdr", "02:00:00:00:00:07", "dev", "br-test", "nud", "stale")
	ip("neigh", "replace", "10.99.0.8", "lladdr", "02:00:00:00:00:08", "dev", "br-test", "nud", "stale")
	ip("-6", "neigh", "replace", "fd00::7", "lladdr", "02:00:00:00:00:09", "dev", "br-test", "nud", "stale")

	if err := cni.ForgetNeighbor("br-test", netip.MustParseAddr("10.99.0.7")); err != nil {
		t.Fatalf("ForgetNeighbor: %v", err)
	}
	if err := cni.ForgetNeighbor("br-test", netip.MustParseAddr("fd00::7")); err != nil {
		t.Fatalf("ForgetNeighbor(IPv6): %v", err)
	}
	out := ip("neigh", "show", "dev", "br-test")
	if strings.Contains(out, "10.99.0.7 ") || !strings.Contains(out, "10.99.0.8 ") {
		t.Errorf("after forgetting 10.99.0.7, neighbors are:\n%s\nwant 10.99.0.8 alone", out)
	}
	if out := ip("-6", "neigh", "show", "dev", "br-test"); strings.Contains(out, "fd00::7 ") {
		t.Errorf("after forgetting fd00::7, IPv6 neighbors are:\n%s", out)
	}
	// Nothing left to delete, no bridge: not errors.
	if err := cni.ForgetNeighbor("br-test", netip.MustParseAddr("10.99.0.7")); err != nil {
		t.Errorf("ForgetNeighbor of an absent entry: %v", err)
	}
	if err := cni.ForgetNeighbor("no-such-bridge", netip.MustParseAddr("10.99.0.7")); err != nil {
		t.Errorf("ForgetNeighbor on an absent interface: %v", err)
	}
}
