// Package benchserver runs the real skiff binary as a child process for
// the benchmarks under bench/: it starts `skiff server` on a data dir and a
// free loopback port, waits until it is ready, reads its memory from
// /proc, and stops it. It owns the child process and its log file.
package benchserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Server is one `skiff server` process.
type Server struct {
	cmd     *exec.Cmd
	dir     string
	logPath string
	// exited is closed once cmd.Wait returned; waitErr is its result, read
	// only after exited is closed.
	exited  chan struct{}
	waitErr error
	// config reaches the server as the admin; QPS limits lifted.
	Config *rest.Config
	// ready is the time from exec to ready.
	Ready time.Duration
}

// Start runs `bin server --data-dir dir --listen 127.0.0.1:<free>
// --disable-agent args...` and waits until it is ready: DIR/kubeconfig
// exists and /readyz answers 200. Its output goes to dir + ".log". The
// control plane is measured without a node agent, which would need root
// and containerd; StartNode runs one.
func Start(ctx context.Context, bin, dir string, args ...string) (*Server, error) {
	return StartNode(ctx, bin, dir, append([]string{"--disable-agent"}, args...)...)
}

// StartNode is Start with the server's node agent running (unless args
// disable it).
func StartNode(ctx context.Context, bin, dir string, args ...string) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.Remove(kubeconfig); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing old kubeconfig: %w", err)
	}
	logPath := dir + ".log"
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating server log: %w", err)
	}
	defer logFile.Close()

	argv := append([]string{"server", "--data-dir", dir, "--listen", fmt.Sprintf("127.0.0.1:%d", port)}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	c := &Server{cmd: cmd, dir: dir, logPath: logPath, exited: make(chan struct{})}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()

	var httpClient *http.Client
	var lastErr error
	deadline := start.Add(60 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return nil, fmt.Errorf("server exited during start-up (%v); log:\n%s", c.waitErr, Tail(logPath))
		case <-ctx.Done():
			c.Kill()
			return nil, ctx.Err()
		case <-tick.C:
		}
		if c.Config == nil {
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				lastErr = err
				continue
			}
			cfg.QPS, cfg.Burst = -1, 0
			if httpClient, err = rest.HTTPClientFor(cfg); err != nil {
				lastErr = err
				continue
			}
			c.Config = cfg
		}
		resp, err := httpClient.Get(strings.TrimSuffix(c.Config.Host, "/") + "/readyz")
		if err != nil {
			lastErr = err
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			lastErr = fmt.Errorf("/readyz: %s", resp.Status)
			continue
		}
		c.Ready = time.Since(start)
		httpClient.CloseIdleConnections()
		return c, nil
	}
	c.Kill()
	return nil, fmt.Errorf("server not ready within 60s: %v; log:\n%s", lastErr, Tail(logPath))
}

// ReportedReady returns the start-up time the server printed itself
// ("ready in 412ms"), or "" when it printed none.
func (c *Server) ReportedReady() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	last := "" // the log is appended to across restarts: take the last
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "ready in "); ok {
			last = strings.TrimSpace(rest)
		}
	}
	return last
}

// Memory returns the server's VmRSS and VmHWM (peak RSS) in KiB.
func (c *Server) Memory() (rss, hwm int64, err error) {
	v, err := c.status("VmRSS", "VmHWM")
	return v[0], v[1], err
}

// MemoryParts returns the server's resident anonymous and file-backed
// memory (RssAnon and RssFile) in KiB: what the process allocated, and
// the pages of its executable (and other files) mapped in.
func (c *Server) MemoryParts() (anon, file int64, err error) {
	v, err := c.status("RssAnon", "RssFile")
	return v[0], v[1], err
}

// status reads the kB values of keys from /proc/<pid>/status, in the
// order asked (0 for a key not there).
func (c *Server) status(keys ...string) ([]int64, error) {
	out := make([]int64, len(keys))
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return out, fmt.Errorf("reading server memory: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		i := slices.Index(keys, key)
		if !ok || i < 0 {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return out, fmt.Errorf("parsing %s %q: %w", key, val, err)
		}
		out[i] = n
	}
	return out, nil
}

// EvictFromPageCache writes the file at path back and asks the kernel to
// drop its cached pages (what `echo 1 > /proc/sys/vm/drop_caches` does,
// for one file and without root). A server started after it faults its
// executable in from disk, as after a reboot, instead of mapping the
// large page-cache folios a just-built binary was written into, which
// adds 5–15 MiB of file-backed RSS that depend on how the file got into
// the cache rather than on the server.
func EvictFromPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("evicting %s from the page cache: %w", path, err)
	}
	return nil
}

// Stop sends SIGTERM and waits for the process to exit, killing it after
// 30s.
func (c *Server) Stop() error {
	select {
	case <-c.exited:
		return fmt.Errorf("server had already exited (%v); log:\n%s", c.waitErr, Tail(c.logPath))
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signalling server: %w", err)
	}
	select {
	case <-c.exited:
		if c.waitErr != nil {
			return fmt.Errorf("server exited with %v; log:\n%s", c.waitErr, Tail(c.logPath))
		}
		return nil
	case <-time.After(30 * time.Second):
		c.Kill()
		return errors.New("server did not stop within 30s after SIGTERM; killed")
	}
}

// Kill ends the process at once, unless it already exited, and reaps it.
// It is safe to call after stop.
func (c *Server) Kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	c.cmd.Process.Kill()
	<-c.exited
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Tail returns the last lines of a log file, for error messages.
func Tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
