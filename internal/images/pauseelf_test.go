package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestPauseBinary runs the built-in pause program: it must survive SIGCHLD,
// reap its children, and exit 0 on SIGTERM.
func TestPauseBinary(t *testing.T) {
	if runtime.GOARCH != "amd64" || runtime.GOOS != "linux" {
		if _, err := PauseBinary(); err == nil {
			t.Fatal("PauseBinary succeeded on an architecture without a built-in program")
		}
		t.Skipf("no built-in pause binary for %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	b, err := PauseBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(p)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Signals sent before the handlers are installed would kill it with
		// the default action; wait until it is asleep in pause(2).
		waitSleeping(t, cmd.Process.Pid)
		if err := cmd.Process.Signal(syscall.SIGCHLD); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("exited on SIGCHLD: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("on %v: %v, want exit 0", sig, err)
			}
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("still running 5s after %v", sig)
		}
	}
}

// waitSleeping polls /proc until pid is in interruptible sleep.
func waitSleeping(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join("/proc", itoa(int64(pid)), "stat"))
		if err == nil {
			// "pid (comm) S ..."
			for i := len(b) - 1; i > 0; i-- {
				if b[i] == ')' && i+2 < len(b) {
					if b[i+2] == 'S' {
						return
					}
					break
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pid %d never went to sleep", pid)
}
