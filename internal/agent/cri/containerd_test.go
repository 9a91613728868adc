package cri_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-dev/skiff/internal/agent/containerd"
	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/images"
)

// requireContainerd skips the test unless it can run containers: root,
// containerd, runc and busybox-static are needed (.ci/run installs them).
func requireContainerd(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: running containers needs root")
	}
	for _, p := range []string{containerd.DefaultBinary, containerd.DefaultCtrBinary, "/bin/busybox"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipping: %s is absent (apt-get install containerd runc busybox-static)", p)
		}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("skipping: runc is absent (apt-get install runc)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipping: no go command to build the test images")
	}
}

// poll calls f every 100ms until it returns nil or timeout passes, then
// fails with f's last error.
func poll(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, timeout, err)
		}
		<-time.After(100 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRuntimeWithContainerd runs containerd under a temp dir, imports the
// test images, and drives a pod through the CRI client: a sandbox, a
// busybox container that writes its termination log and exits 0, the test
// server and an exec into busybox that reaches it, a containerd crash the
// containers survive, then removes everything.
func TestRuntimeWithContainerd(t *testing.T) {
	requireContainerd(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	start := time.Now()
	archives, err := images.BuildTest(ctx, images.BuildOptions{OutDir: filepath.Join(dir, "images")})
	if err != nil {
		t.Fatalf("BuildTest: %v", err)
	}
	t.Logf("test images built in %v", time.Since(start).Round(time.Millisecond))

	logger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	sup, err := containerd.New(containerd.Config{
		DataDir:       filepath.Join(dir, "node"),
		ImageArchives: []string{archives[images.PauseImage]},
		// SKIFF_TEST_SNAPSHOTTER=native tries the fallback on a machine
		// where overlay mounts work.
		Snapshotter: os.Getenv("SKIFF_TEST_SNAPSHOTTER"),
		Logger:      logger,
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
	start = time.Now()
	select {
	case <-sup.Ready():
	case err := <-runErr:
		logTail(t, sup.Layout().Log)
		t.Fatalf("Supervisor.Run returned before ready: %v", err)
	case <-time.After(60 * time.Second):
		logTail(t, sup.Layout().Log)
		t.Fatalf("containerd not ready after 60s")
	}
	t.Logf("containerd ready in %v with snapshotter %s", time.Since(start).Round(time.Millisecond), sup.Snapshotter())
	for _, img := range []string{images.BusyboxImage, images.TestServerImage} {
		if err := containerd.ImportInto(ctx, filepath.Join(dir, "node"), archives[img]); err != nil {
			t.Fatalf("importing %s: %v", img, err)
		}
	}

	rt, err := cri.Dial(cri.Config{Socket: sup.Socket(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	// Remove whatever a failure leaves behind before containerd stops, so
	// that no mount outlives the temp dir.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sbs, err := rt.ListSandboxes(ctx, nil)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		for _, sb := range sbs {
			if err := rt.StopSandbox(ctx, sb.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
			if err := rt.RemoveSandbox(ctx, sb.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	if name, version, err := rt.Version(ctx); err != nil {
		t.Fatalf("Version: %v", err)
	} else {
		t.Logf("runtime %s %s", name, version)
	}

	for _, img := range []string{images.BusyboxImage, images.PauseImage, images.TestServerImage} {
		st, err := rt.ImageStatus(ctx, img)
		if err != nil || st == nil {
			t.Fatalf("ImageStatus(%s) = %v, %v; want the image", img, st, err)
		}
		if !strings.Contains(strings.Join(st.RepoTags, " "), "docker.io/"+img) {
			t.Errorf("ImageStatus(%s).RepoTags = %q, want docker.io/%s", img, st.RepoTags, img)
		}
	}
	if st, err := rt.ImageStatus(ctx, "skiff-test/absent:1"); err != nil || st != nil {
		t.Errorf("ImageStatus(absent) = %v, %v; want nil, nil", st, err)
	}

	sbCfg := cri.SandboxConfig{
		Name: "pod-a", Namespace: "default", UID: "uid-a",
		LogDir:      filepath.Join(dir, "logs", "pod-a"),
		HostNetwork: true,
		Labels:      map[string]string{"skiff.dev/pod-uid": "uid-a"},
	}
	if err := os.MkdirAll(sbCfg.LogDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sbID, err := rt.RunSandbox(ctx, sbCfg)
	if err != nil {
		logTail(t, sup.Layout().Log)
		t.Fatalf("RunSandbox: %v", err)
	}
	sb, err := rt.SandboxStatus(ctx, sbID)
	if err != nil {
		t.Fatalf("SandboxStatus: %v", err)
	}
	if sb.State != cri.SandboxReady || sb.UID != "uid-a" || sb.Name != "pod-a" || sb.Namespace != "default" {
		t.Errorf("SandboxStatus = %+v, want Ready default/pod-a uid-a", sb)
	}

	// 0. The invariants the Fake copies.
	if _, err := rt.RunSandbox(ctx, sbCfg); err == nil {
		t.Errorf("RunSandbox with the same metadata again: no error")
	}
	if _, err := rt.CreateContainer(ctx, sbID, sbCfg, cri.ContainerConfig{Name: "x", Image: "skiff-test/absent:1"}); err == nil {
		t.Errorf("CreateContainer from an absent image: no error")
	} else if !cri.IsNotFound(err) {
		t.Errorf("CreateContainer from an absent image: %v, want not found", err)
	}
	bogus := cri.SandboxConfig{Name: "pod-c", Namespace: "default", UID: "uid-c", HostNetwork: true, RuntimeHandler: "nope"}
	if _, err := rt.RunSandbox(ctx, bogus); err == nil || !strings.Contains(err.Error(), `no runtime for "nope" is configured`) {
		t.Errorf("RunSandbox with an unknown runtime handler: %v, want containerd's no runtime for \"nope\" is configured", err)
	}
	other := cri.SandboxConfig{Name: "pod-b", Namespace: "default", UID: "uid-b", HostNetwork: true, RuntimeHandler: "runc"}
	otherID, err := rt.RunSandbox(ctx, other)
	if err != nil {
		t.Fatalf("RunSandbox(pod-b): %v", err)
	}
	if err := rt.RemoveSandbox(ctx, otherID); err != nil {
		t.Errorf("RemoveSandbox of a ready sandbox: %v", err)
	}
	if _, err := rt.SandboxStatus(ctx, otherID); !cri.IsNotFound(err) {
		t.Errorf("SandboxStatus(removed while ready) error = %v, want not found", err)
	}

	// 1. A container that writes its termination log and exits 0.
	termLog := filepath.Join(dir, "termination-log")
	if err := os.WriteFile(termLog, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	hiID, err := rt.CreateContainer(ctx, sbID, sbCfg, cri.ContainerConfig{
		Name:    "hi",
		Image:   images.BusyboxImage,
		Command: []string{"sh", "-c", `echo "hi $GREETING" > /dev/termination-log; echo logged`},
		Env:     []cri.EnvVar{{Name: "GREETING", Value: "there"}},
		Mounts:  []cri.Mount{{ContainerPath: "/dev/termination-log", HostPath: termLog}},
		LogPath: "hi/0.log",
		Labels:  map[string]string{"skiff.dev/container": "hi"},
	})
	if err != nil {
		logTail(t, sup.Layout().Log)
		t.Fatalf("CreateContainer(hi): %v", err)
	}
	if err := rt.StartContainer(ctx, hiID); err != nil {
		logTail(t, sup.Layout().Log)
		t.Fatalf("StartContainer(hi): %v", err)
	}
	var hi cri.Container
	poll(t, 20*time.Second, "container hi exits", func() error {
		hi, err = rt.ContainerStatus(ctx, hiID)
		if err != nil {
			return err
		}
		if hi.State != cri.ContainerExited {
			return fmt.Errorf("state %s", hi.State)
		}
		return nil
	})
	if hi.ExitCode != 0 || hi.Reason != "Completed" || hi.Name != "hi" || hi.FinishedAt.IsZero() {
		t.Errorf("ContainerStatus(hi) = %+v, want exit 0 Completed", hi)
	}
	if b, err := os.ReadFile(termLog); err != nil || string(b) != "hi there\n" {
		t.Errorf("termination log = %q, %v; want %q", b, err, "hi there\n")
	}
	if b, err := os.ReadFile(hi.LogPath); err != nil || !strings.Contains(string(b), "stdout F logged") {
		t.Errorf("container log %s = %q, %v; want a CRI log line with %q", hi.LogPath, b, err, "logged")
	}

	// 2. The test server, and an exec from busybox that reaches it.
	port := freePort(t)
	srvID, err := rt.CreateContainer(ctx, sbID, sbCfg, cri.ContainerConfig{
		Name:  "server",
		Image: images.TestServerImage,
		Env: []cri.EnvVar{
			{Name: "PORT", Value: fmt.Sprint(port)},
			{Name: "TCP_PORT", Value: fmt.Sprint(freePort(t))},
		},
		LogPath: "server/0.log",
	})
	if err != nil {
		t.Fatalf("CreateContainer(server): %v", err)
	}
	if err := rt.StartContainer(ctx, srvID); err != nil {
		t.Fatalf("StartContainer(server): %v", err)
	}
	shID, err := rt.CreateContainer(ctx, sbID, sbCfg, cri.ContainerConfig{
		Name:    "shell",
		Image:   images.BusyboxImage,
		Command: []string{"sleep", "3600"},
	})
	if err != nil {
		t.Fatalf("CreateContainer(shell): %v", err)
	}
	if err := rt.StartContainer(ctx, shID); err != nil {
		t.Fatalf("StartContainer(shell): %v", err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	poll(t, 20*time.Second, "exec wget "+url, func() error {
		res, err := rt.ExecSync(ctx, shID, []string{"timeout", "5", "wget", "-qO-", url}, 10*time.Second)
		if err != nil {
			return err
		}
		if res.ExitCode != 0 || string(res.Stdout) != "ok\n" {
			return fmt.Errorf("exit %d, stdout %q, stderr %q", res.ExitCode, res.Stdout, res.Stderr)
		}
		return nil
	})
	// 3. containerd dies and comes back: the containers live on, and the
	// CRI serves them again.
	if err := killContainerd(sup.Layout().PIDFile); err != nil {
		t.Fatalf("killing containerd: %v", err)
	}
	poll(t, 30*time.Second, "CRI back after a containerd restart with the server still running", func() error {
		srv, err := rt.ContainerStatus(ctx, srvID)
		if err != nil {
			return err
		}
		if srv.State != cri.ContainerRunning {
			return fmt.Errorf("server is %s", srv.State)
		}
		return nil
	})
	res, err := rt.ExecSync(ctx, shID, []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, 10*time.Second)
	if err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	if diff := cmp.Diff(cri.ExecResult{Stdout: []byte("out\n"), Stderr: []byte("err\n"), ExitCode: 3}, res); diff != "" {
		t.Errorf("ExecSync (-want +got):\n%s", diff)
	}

	// 4. Lists, as an agent recovering after a restart sees them.
	sbs, err := rt.ListSandboxes(ctx, map[string]string{"skiff.dev/pod-uid": "uid-a"})
	if err != nil {
		t.Fatalf("ListSandboxes: %v", err)
	}
	if len(sbs) != 1 || sbs[0].ID != sbID || sbs[0].State != cri.SandboxReady {
		t.Errorf("ListSandboxes = %+v, want the one sandbox %s", sbs, sbID)
	}
	ctrs, err := rt.ListContainers(ctx, cri.ContainerFilter{SandboxID: sbID})
	if err != nil {
		t.Fatalf("ListContainers: %v", err)
	}
	got := map[string]cri.ContainerState{}
	for _, c := range ctrs {
		got[c.Name] = c.State
	}
	want := map[string]cri.ContainerState{"hi": cri.ContainerExited, "server": cri.ContainerRunning, "shell": cri.ContainerRunning}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListContainers (-want +got):\n%s", diff)
	}
	running, err := rt.ListContainers(ctx, cri.ContainerFilter{State: cri.ContainerRunning, Labels: map[string]string{}})
	if err != nil {
		t.Fatalf("ListContainers(running): %v", err)
	}
	if len(running) != 2 {
		t.Errorf("ListContainers(running) = %d containers, want 2", len(running))
	}

	// 5. Stop and remove everything; again is harmless.
	if err := rt.StopContainer(ctx, srvID, 5*time.Second); err != nil {
		t.Fatalf("StopContainer(server): %v", err)
	}
	srv, err := rt.ContainerStatus(ctx, srvID)
	if err != nil {
		t.Fatalf("ContainerStatus(server): %v", err)
	}
	if srv.State != cri.ContainerExited {
		t.Errorf("server after StopContainer: state %s, want Exited", srv.State)
	}
	for _, id := range []string{srvID, shID, hiID} {
		if err := rt.RemoveContainer(ctx, id); err != nil {
			t.Fatalf("RemoveContainer(%s): %v", id, err)
		}
		if err := rt.RemoveContainer(ctx, id); err != nil {
			t.Errorf("RemoveContainer(%s) again: %v", id, err)
		}
		if _, err := rt.ContainerStatus(ctx, id); !cri.IsNotFound(err) {
			t.Errorf("ContainerStatus(removed %s) error = %v, want not found", id, err)
		}
	}
	if err := rt.StopSandbox(ctx, sbID); err != nil {
		t.Fatalf("StopSandbox: %v", err)
	}
	if err := rt.RemoveSandbox(ctx, sbID); err != nil {
		t.Fatalf("RemoveSandbox: %v", err)
	}
	if err := rt.StopSandbox(ctx, sbID); err != nil {
		t.Errorf("StopSandbox(removed): %v", err)
	}
	if _, err := rt.SandboxStatus(ctx, sbID); !cri.IsNotFound(err) {
		t.Errorf("SandboxStatus(removed) error = %v, want not found", err)
	}
}

// killContainerd SIGKILLs the containerd whose pid the supervisor wrote.
func killContainerd(pidFile string) error {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}

// testWriter sends log output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// logTail prints the end of containerd's log to explain a failure.
func logTail(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("containerd log: %v", err)
		return
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	t.Logf("containerd log tail:\n%s", b)
}
