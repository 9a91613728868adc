package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// skiffBin is the binary under test; set by TestMain before any test runs
// and only read after.
var skiffBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if bin := os.Getenv("SKIFF_BIN"); bin != "" {
		skiffBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "skiff-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: creating temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	skiffBin = filepath.Join(dir, "skiff")
	build := exec.Command("go", "build", "-o", skiffBin, "github.com/skiff-dev/skiff/cmd/skiff")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building skiff:", err)
		return 1
	}
	return m.Run()
}

// lockedBuffer collects a process's output; safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serverProc is one running "skiff server".
type serverProc struct {
	dir        string
	listen     string
	kubeconfig string
	cmd        *exec.Cmd
	output     *lockedBuffer
	done       chan struct{} // closed when the process has exited
	waitErr    error         // valid after done
}

// startServer runs skiff server on dataDir and listen, without a node
// agent, and waits until its kubeconfig appears (which the server writes
// only once it is ready). The process is killed at test cleanup if still
// running.
func startServer(t *testing.T, dataDir, listen string) *serverProc {
	t.Helper()
	return startServerArgs(t, dataDir, listen, "--disable-agent")
}

// startServerArgs is startServer with the server's other flags given.
func startServerArgs(t *testing.T, dataDir, listen string, args ...string) *serverProc {
	t.Helper()
	s := &serverProc{
		dir:        dataDir,
		listen:     listen,
		kubeconfig: filepath.Join(dataDir, "kubeconfig"),
		output:     &lockedBuffer{},
		done:       make(chan struct{}),
	}
	// The server removes an old kubeconfig itself, but only once it runs;
	// remove it first so that its appearance means this server is ready.
	if err := os.Remove(s.kubeconfig); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	s.cmd = exec.Command(skiffBin, append([]string{"server", "--data-dir", dataDir, "--listen", listen}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", skiffBin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("server output:\n%s", s.output.String())
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(s.kubeconfig); err == nil {
			break
		}
		select {
		case <-s.done:
			t.Fatalf("server exited during start-up (%v):\n%s", s.waitErr, s.output.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no kubeconfig after 60s; server output:\n%s", s.output.String())
		}
	}
	t.Logf("server ready after %v", time.Since(start).Round(time.Millisecond))
	return s
}

// stop sends SIGTERM and requires a clean exit (status 0) within 30s.
func (s *serverProc) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signalling server: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("server still running 30s after SIGTERM; output:\n%s", s.output.String())
	}
	if s.waitErr != nil {
		t.Fatalf("server exited with %v after SIGTERM; output:\n%s", s.waitErr, s.output.String())
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", freePort(t))
}

// freePort returns a TCP port that was free on every address a moment
// ago. It is chosen below the kernel's ephemeral range: a port from that
// range (what listening on port 0 returns) can be taken by any outgoing
// connection, of this test binary or another package's, between the
// check and the server's bind, which once failed a run with "address
// already in use". Ports handed out here are not handed out again.
func freePort(t *testing.T) string {
	t.Helper()
	lo := ephemeralStart()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := minTestPort + rand.IntN(lo-minTestPort)
		if portsUsed[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		portsUsed[p] = true
		return strconv.Itoa(p)
	}
	t.Fatalf("no free TCP port in [%d, %d)", minTestPort, lo)
	return ""
}

// minTestPort is the lowest port freePort picks.
const minTestPort = 20000

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// ephemeralStart returns the first port of the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), 32768 when it cannot be read or leaves
// too little room below it.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo < minTestPort+1000 {
		return 32768
	}
	return lo
}

// kubectlDir is where the versioned kubectl binaries live.
func kubectlDir() string {
	if d := os.Getenv("SKIFF_KUBECTL_DIR"); d != "" {
		return d
	}
	p, err := exec.LookPath("kubectl")
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return filepath.Dir(p)
}

// kubectl runs one kubectl binary against one server.
type kubectl struct {
	bin        string
	kubeconfig string
}

// findKubectl returns kubectl.<version> or skips the test.
func findKubectl(t *testing.T, version, kubeconfig string) kubectl {
	t.Helper()
	dir := kubectlDir()
	bin := filepath.Join(dir, "kubectl."+version)
	if dir == "" {
		t.Skipf("kubectl %s not found: no kubectl on PATH (set SKIFF_KUBECTL_DIR)", version)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("kubectl %s not found at %s (set SKIFF_KUBECTL_DIR): %v", version, bin, err)
	}
	return kubectl{bin: bin, kubeconfig: kubeconfig}
}

// result is one kubectl run.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs kubectl with args (and stdin when not empty) and a 60s bound.
func (k kubectl) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs kubectl and fails the test unless it exits 0; it returns stdout.
func (k kubectl) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := k.run(t, "", args...)
	if r.code != 0 {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}

// okStdin is ok with stdin.
func (k kubectl) okStdin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := k.run(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}

// eventually polls fn until it returns nil or timeout passes, then fails
// with fn's last error.
func eventually(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", timeout, err)
		}
		<-time.After(100 * time.Millisecond) // poll interval
	}
}
