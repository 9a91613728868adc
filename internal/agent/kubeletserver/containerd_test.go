package kubeletserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/skiff-dev/skiff/internal/agent/containerd/containerdtest"
	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/images"
)

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

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestWithContainerd proves the chain client-go -> this server ->
// containerd's streaming server -> a container: an exec with stdin,
// stdout, stderr and an exit code over SPDY, a port-forward to the test
// server, and the logs of a real CRI log file.
func TestWithContainerd(t *testing.T) {
	n := containerdtest.Start(t, images.BusyboxImage, images.TestServerImage)
	rt := n.Runtime
	dir := filepath.Dir(n.DataDir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, nil))

	// A pod as the agent makes it: host network (no CNI needed here),
	// the conventional labels and log paths.
	labels := map[string]string{LabelPodName: "web", LabelPodNamespace: "default", LabelPodUID: "uid-1"}
	sbCfg := cri.SandboxConfig{
		Name: "web", Namespace: "default", UID: "uid-1", HostNetwork: true,
		LogDir: filepath.Join(dir, "agent", "logs", "default_web_uid-1"),
		Labels: labels,
	}
	if err := os.MkdirAll(sbCfg.LogDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sbID, err := rt.RunSandbox(ctx, sbCfg)
	if err != nil {
		t.Fatalf("RunSandbox: %v", err)
	}
	port := freePort(t)
	start := func(name string, cfg cri.ContainerConfig) string {
		t.Helper()
		cfg.Name, cfg.LogPath = name, name+"/0.log"
		cfg.Labels = map[string]string{LabelContainerName: name}
		for k, v := range labels {
			cfg.Labels[k] = v
		}
		id, err := rt.CreateContainer(ctx, sbID, sbCfg, cfg)
		if err != nil {
			t.Fatalf("CreateContainer(%s): %v", name, err)
		}
		if err := rt.StartContainer(ctx, id); err != nil {
			t.Fatalf("StartContainer(%s): %v", name, err)
		}
		return id
	}
	start("shell", cri.ContainerConfig{Image: images.BusyboxImage, Command: []string{"sh", "-c", "echo started; exec sleep 3600"}})
	start("server", cri.ContainerConfig{Image: images.TestServerImage, Env: []cri.EnvVar{
		{Name: "PORT", Value: fmt.Sprint(port)}, {Name: "TCP_PORT", Value: fmt.Sprint(freePort(t))},
	}})

	s, err := New(Config{Runtime: rt, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	restCfg := &rest.Config{Host: ts.URL}

	t.Run("logs", func(t *testing.T) {
		poll(t, 20*time.Second, "shell's log", func() error {
			code, body := get(t, ts.URL+"/containerLogs/default/web/shell?timestamps=true")
			if code != 200 || !strings.HasSuffix(body, "Z started\n") {
				return fmt.Errorf("%d %q", code, body)
			}
			return nil
		})
	})

	t.Run("exec", func(t *testing.T) {
		u, _ := url.Parse(ts.URL + "/exec/default/web/shell?command=sh&command=-c&command=" +
			url.QueryEscape("cat; echo to-stderr >&2; exit 3") + "&stdin=1&stdout=1&stderr=1")
		ex, err := remotecommand.NewSPDYExecutor(restCfg, "POST", u)
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{
			Stdin: strings.NewReader("hello through the kubelet\n"), Stdout: &stdout, Stderr: &stderr,
		})
		var exitErr utilexec.CodeExitError
		if !errors.As(err, &exitErr) || exitErr.Code != 3 {
			t.Errorf("exec: %v, want exit code 3", err)
		}
		if stdout.String() != "hello through the kubelet\n" || stderr.String() != "to-stderr\n" {
			t.Errorf("exec: stdout %q, stderr %q", stdout.String(), stderr.String())
		}
	})

	t.Run("exec with a tty", func(t *testing.T) {
		u, _ := url.Parse(ts.URL + "/exec/default/web/uid-1/shell?command=sh&command=-c&command=" +
			url.QueryEscape("tty >/dev/null && echo is-a-tty") + "&stdout=1&tty=1")
		ex, err := remotecommand.NewSPDYExecutor(restCfg, "POST", u)
		if err != nil {
			t.Fatal(err)
		}
		var stdout bytes.Buffer
		if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Tty: true}); err != nil {
			t.Fatalf("exec: %v", err)
		}
		if got := strings.TrimSpace(stdout.String()); got != "is-a-tty" {
			t.Errorf("exec with a tty: %q, want is-a-tty", stdout.String())
		}
	})

	t.Run("exec over a websocket", func(t *testing.T) {
		// The old channel protocol (kubectl before 1.30 spoke it to
		// the API server); the bytes and Sec-WebSocket-* headers pass
		// through unchanged.
		u := "ws" + strings.TrimPrefix(ts.URL, "http") + "/exec/default/web/shell?command=sh&command=-c&command=" +
			url.QueryEscape("echo hi; echo there >&2") + "&stdout=1&stderr=1"
		d := websocket.Dialer{Subprotocols: []string{"v4.channel.k8s.io"}, HandshakeTimeout: 10 * time.Second}
		conn, resp, err := d.DialContext(ctx, u, nil)
		if err != nil {
			t.Fatalf("websocket dial: %v (%v)", err, resp)
		}
		defer conn.Close()
		if conn.Subprotocol() != "v4.channel.k8s.io" {
			t.Errorf("subprotocol %q, want v4.channel.k8s.io", conn.Subprotocol())
		}
		got := map[byte]string{}
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				break
			}
			if len(msg) > 1 {
				got[msg[0]] += string(msg[1:])
			}
		}
		if got[1] != "hi\n" || got[2] != "there\n" || !strings.Contains(got[3], "Success") {
			t.Errorf("channels = %q, want hi on 1, there on 2, a Success status on 3", got)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		transport, upgrader, err := spdy.RoundTripperFor(restCfg)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(ts.URL + "/portForward/default/web")
		dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
		stopCh, readyCh := make(chan struct{}), make(chan struct{})
		fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, stopCh, readyCh, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		fwErr := make(chan error, 1)
		go func() { fwErr <- fw.ForwardPorts() }()
		defer func() {
			close(stopCh)
			if err := <-fwErr; err != nil {
				t.Errorf("ForwardPorts: %v", err)
			}
		}()
		select {
		case <-readyCh:
		case err := <-fwErr:
			t.Fatalf("ForwardPorts: %v", err)
		case <-ctx.Done():
			t.Fatal("port-forward not ready")
		}
		ports, err := fw.GetPorts()
		if err != nil || len(ports) != 1 {
			t.Fatalf("GetPorts = %v, %v", ports, err)
		}
		local := fmt.Sprintf("http://127.0.0.1:%d/healthz", ports[0].Local)
		poll(t, 20*time.Second, "GET "+local, func() error {
			resp, err := http.Get(local)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(b) != "ok\n" {
				return fmt.Errorf("%s %q", resp.Status, b)
			}
			return nil
		})
	})
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
