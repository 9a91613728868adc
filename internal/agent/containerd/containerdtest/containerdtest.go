// Package containerdtest starts a real containerd for the tests of the
// node agent's packages: the agent's own supervisor under a temporary
// directory, with the test images built and imported, and a CRI client.
// Everything it starts is stopped and removed when the test ends.
//
// It is for tests only: it needs root, containerd, runc, busybox-static
// and the go command (to build the test images), and skips the test when
// any is missing.
package containerdtest

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/agent/containerd"
	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/images"
)

// Require skips the test unless this machine can run containers.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: running containers needs root")
	}
	for _, p := range []string{containerd.DefaultBinary, containerd.DefaultCtrBinary, "/bin/busybox"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipping: %s is absent (apt-get install containerd runc busybox-static)", p)
		}
	}
	for _, bin := range []string{"runc", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping: %s is absent", bin)
		}
	}
}

// Node is a running containerd.
type Node struct {
	// DataDir is the node's data dir (containerd under DataDir/containerd).
	DataDir    string
	Supervisor *containerd.Supervisor
	Runtime    *cri.Client
	// Archives are the test images' archives by short name.
	Archives map[string]string
}

// Start skips the test unless Require passes, then builds the test
// images, starts containerd with the pause image, imports the images named
// (short names, e.g. images.BusyboxImage), and dials the CRI. At the end
// of the test every sandbox is stopped and removed, then containerd stops.
func Start(t testing.TB, imports ...string) *Node {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	archives, err := images.BuildTest(ctx, images.BuildOptions{OutDir: filepath.Join(dir, "images")})
	if err != nil {
		t.Fatalf("building the test images: %v", err)
	}
	n := &Node{DataDir: filepath.Join(dir, "node"), Archives: archives}
	n.Supervisor, err = containerd.New(containerd.Config{
		DataDir:       n.DataDir,
		ImageArchives: []string{archives[images.PauseImage]},
		// SKIFF_TEST_SNAPSHOTTER=native tries the fallback on a machine
		// where overlay mounts work.
		Snapshotter: os.Getenv("SKIFF_TEST_SNAPSHOTTER"),
		Logger:      slog.New(slog.NewTextHandler(testLog{t}, nil)),
	})
	if err != nil {
		t.Fatalf("containerd.New: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- n.Supervisor.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("Supervisor.Run: %v", err)
		}
	})
	select {
	case <-n.Supervisor.Ready():
	case err := <-runErr:
		t.Fatalf("containerd stopped before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatalf("containerd not ready after 60s")
	}
	for _, img := range imports {
		if err := containerd.ImportInto(ctx, n.DataDir, archives[img]); err != nil {
			t.Fatalf("importing %s: %v", img, err)
		}
	}
	n.Runtime, err = cri.Dial(cri.Config{Socket: n.Supervisor.Socket(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("dialing the CRI: %v", err)
	}
	t.Cleanup(func() { n.Runtime.Close() })
	// Remove whatever the test leaves behind before containerd stops, so
	// that no container, network or mount outlives the temp dir.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sbs, err := n.Runtime.ListSandboxes(ctx, nil)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		for _, sb := range sbs {
			if err := n.Runtime.StopSandbox(ctx, sb.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
			if err := n.Runtime.RemoveSandbox(ctx, sb.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return n
}

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
