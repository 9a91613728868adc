package prober

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// Manager satisfies podstatus.Probes (not imported: another part, built at
// the same time).
var _ interface {
	Ready(containerID string) bool
	Started(containerID string) bool
} = (*Manager)(nil)

// fakeExec answers ExecSync with fn, counting calls.
type fakeExec struct {
	mu    sync.Mutex
	calls int
	fn    func(ctx context.Context, id string, cmd []string, timeout time.Duration) (cri.ExecResult, error)
}

func (f *fakeExec) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (cri.ExecResult, error) {
	f.mu.Lock()
	f.calls++
	fn := f.fn
	f.mu.Unlock()
	if fn == nil {
		return cri.ExecResult{}, nil
	}
	return fn(ctx, id, cmd, timeout)
}

func (f *fakeExec) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// exitCode answers every exec with code and output out on stdout.
func exitCode(code int32, out string) *fakeExec {
	return &fakeExec{fn: func(context.Context, string, []string, time.Duration) (cri.ExecResult, error) {
		return cri.ExecResult{ExitCode: code, Stdout: []byte(out)}, nil
	}}
}

// testPod returns a pod with IP ip whose container "app" has ports.
func testPod(ip string, ports ...v1.ContainerPort) (*v1.Pod, *v1.Container) {
	pod := &v1.Pod{}
	pod.Namespace, pod.Name, pod.UID = "ns", "web", types.UID("uid-1")
	pod.Spec.Containers = []v1.Container{{Name: "app", Ports: ports}}
	pod.Status.PodIP = ip
	return pod, &pod.Spec.Containers[0]
}

// hostPort splits a loopback listener's address into host and port.
func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, p := hostPort(t, l.Addr().String())
	l.Close()
	return p
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

type probeOutcome struct {
	Result result
	// Output is a substring of the output; Err a substring of the error.
	Output, Err string
}

func check(t *testing.T, want probeOutcome, res result, out string, err error) {
	t.Helper()
	got := probeOutcome{Result: res}
	if want.Output != "" && strings.Contains(out, want.Output) {
		got.Output = want.Output
	} else {
		got.Output = out
	}
	if err != nil {
		got.Err = err.Error()
		if want.Err != "" && strings.Contains(got.Err, want.Err) {
			got.Err = want.Err
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("probe outcome (-want +got):\n%s", diff)
	}
}

func TestExecProbe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		exec *fakeExec
		want probeOutcome
	}{
		{name: "exit 0", exec: exitCode(0, "fine"), want: probeOutcome{Result: resultSuccess, Output: "fine"}},
		{name: "exit 1 with output", exec: &fakeExec{fn: func(context.Context, string, []string, time.Duration) (cri.ExecResult, error) {
			return cri.ExecResult{ExitCode: 1, Stdout: []byte("out "), Stderr: []byte("err")}, nil
		}}, want: probeOutcome{Result: resultFailure, Output: "out err"}},
		{name: "timeout", exec: &fakeExec{fn: func(ctx context.Context, _ string, _ []string, timeout time.Duration) (cri.ExecResult, error) {
			if timeout != 2*time.Second {
				return cri.ExecResult{}, fmt.Errorf("timeout %v, want 2s", timeout)
			}
			return cri.ExecResult{}, fmt.Errorf("cri: exec: %w", context.DeadlineExceeded)
		}}, want: probeOutcome{Result: resultFailure, Output: `command "cat /tmp/healthy" timed out`}},
		{name: "runtime error", exec: &fakeExec{fn: func(context.Context, string, []string, time.Duration) (cri.ExecResult, error) {
			return cri.ExecResult{}, errors.New("container is not running")
		}}, want: probeOutcome{Result: resultUnknown, Err: "container is not running"}},
		{name: "output is limited", exec: exitCode(1, strings.Repeat("x", 20<<10)), want: probeOutcome{Result: resultFailure, Output: strings.Repeat("x", maxOutput)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := New(Config{Runtime: tt.exec})
			pod, c := testPod("127.0.0.1")
			p := &v1.Probe{TimeoutSeconds: 2, ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"cat", "/tmp/healthy"}}}}
			res, out, err := m.runProbe(context.Background(), target{pod: pod, container: c, containerID: "c1"}, p)
			if res == resultFailure && tt.want.Output == strings.Repeat("x", maxOutput) && len(out) != maxOutput {
				t.Errorf("output has %d bytes, want %d", len(out), maxOutput)
			}
			check(t, tt.want, res, out, err)
		})
	}
}

func TestHTTPProbe(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var lastHeader http.Header
	var lastHost string
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastHeader, lastHost = r.Header.Clone(), r.Host
		mu.Unlock()
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "broken", http.StatusInternalServerError) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/here", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.invalid/ok", http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, strings.Repeat("y", 1<<20)) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tlsSrv := httptest.NewTLSServer(mux)
	t.Cleanup(tlsSrv.Close)
	ip, port := hostPort(t, srv.URL)
	_, tlsPort := hostPort(t, tlsSrv.URL)
	closed := closedPort(t)

	tests := []struct {
		name    string
		action  v1.HTTPGetAction
		timeout int32
		ports   []v1.ContainerPort
		want    probeOutcome
		// wantHeader are headers the server must have seen.
		wantHeader map[string]string
		wantHost   string
	}{
		{name: "200", action: v1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(port)},
			want:       probeOutcome{Result: resultSuccess, Output: "ok"},
			wantHeader: map[string]string{"User-Agent": "kube-probe/1.33", "Accept": "*/*"}},
		{name: "named port and headers", action: v1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("http"),
			HTTPHeaders: []v1.HTTPHeader{{Name: "X-Custom", Value: "a"}, {Name: "User-Agent", Value: "mine"}, {Name: "Host", Value: "svc.example"}}},
			ports:      []v1.ContainerPort{{Name: "metrics", ContainerPort: 1}, {Name: "http", ContainerPort: int32(port)}},
			want:       probeOutcome{Result: resultSuccess, Output: "ok"},
			wantHeader: map[string]string{"User-Agent": "mine", "X-Custom": "a"}, wantHost: "svc.example"},
		{name: "numeric port as string", action: v1.HTTPGetAction{Path: "/ok", Port: intstr.FromString(strconv.Itoa(port))},
			want: probeOutcome{Result: resultSuccess, Output: "ok"}},
		{name: "unknown named port", action: v1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("nope")},
			want: probeOutcome{Result: resultUnknown, Err: "couldn't find port: nope"}},
		{name: "500", action: v1.HTTPGetAction{Path: "/fail", Port: intstr.FromInt(port)},
			want: probeOutcome{Result: resultFailure, Output: "HTTP probe failed with statuscode: 500"}},
		{name: "404", action: v1.HTTPGetAction{Path: "/missing", Port: intstr.FromInt(port)},
			want: probeOutcome{Result: resultFailure, Output: "HTTP probe failed with statuscode: 404"}},
		{name: "redirect to the same host is followed", action: v1.HTTPGetAction{Path: "/here", Port: intstr.FromInt(port)},
			want: probeOutcome{Result: resultSuccess, Output: "ok"}},
		{name: "redirect to another host is a warning", action: v1.HTTPGetAction{Path: "/away", Port: intstr.FromInt(port)},
			want: probeOutcome{Result: resultWarning, Output: "Probe terminated redirects"}},
		{name: "timeout", action: v1.HTTPGetAction{Path: "/slow", Port: intstr.FromInt(port)}, timeout: 1,
			want: probeOutcome{Result: resultFailure, Output: "context deadline exceeded"}},
		{name: "connection refused", action: v1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(closed)},
			want: probeOutcome{Result: resultFailure, Output: "connection refused"}},
		{name: "https with a self-signed certificate", action: v1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(tlsPort), Scheme: v1.URISchemeHTTPS},
			want: probeOutcome{Result: resultSuccess, Output: "ok"}},
		{name: "explicit host", action: v1.HTTPGetAction{Host: ip, Path: "/ok", Port: intstr.FromInt(port)},
			want: probeOutcome{Result: resultSuccess, Output: "ok"}},
		{name: "body is limited", action: v1.HTTPGetAction{Path: "/big", Port: intstr.FromInt(port)},
			want: probeOutcome{Result: resultSuccess, Output: strings.Repeat("y", maxOutput)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Config{Runtime: &fakeExec{}})
			m.second = 100 * time.Millisecond
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 50 // 5 s
			}
			podIP := ip
			if tt.action.Host != "" {
				podIP = "192.0.2.1" // must not be used
			}
			pod, c := testPod(podIP, tt.ports...)
			p := &v1.Probe{TimeoutSeconds: timeout, ProbeHandler: v1.ProbeHandler{HTTPGet: &tt.action}}
			mu.Lock()
			lastHeader, lastHost = nil, ""
			mu.Unlock()
			res, out, err := m.runProbe(context.Background(), target{pod: pod, container: c, containerID: "c1"}, p)
			if tt.name == "body is limited" && len(out) != maxOutput {
				t.Errorf("body has %d bytes, want %d", len(out), maxOutput)
			}
			check(t, tt.want, res, out, err)
			mu.Lock()
			defer mu.Unlock()
			for k, v := range tt.wantHeader {
				if got := lastHeader.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tt.wantHost != "" && lastHost != tt.wantHost {
				t.Errorf("Host = %q, want %q", lastHost, tt.wantHost)
			}
		})
	}
}

func TestHTTPProbeHostNetworkUsesHostIP(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	ip, port := hostPort(t, srv.URL)
	m := New(Config{Runtime: &fakeExec{}})
	pod, c := testPod("")
	p := &v1.Probe{TimeoutSeconds: 5, ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Port: intstr.FromInt(port)}}}
	tg := target{pod: pod, container: c, containerID: "c1"}

	res, _, err := m.runProbe(context.Background(), tg, p)
	if res != resultUnknown || !errors.Is(err, errNoIP) {
		t.Errorf("without any IP: got %v, %v; want unknown, errNoIP", res, err)
	}
	pod.Spec.HostNetwork = true
	pod.Status.HostIP = ip
	res, out, err := m.runProbe(context.Background(), tg, p)
	check(t, probeOutcome{Result: resultSuccess}, res, out, err)
}

func TestTCPProbe(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ip, port := hostPort(t, l.Addr().String())
	closed := closedPort(t)
	tests := []struct {
		name   string
		action v1.TCPSocketAction
		ports  []v1.ContainerPort
		want   probeOutcome
	}{
		{name: "open", action: v1.TCPSocketAction{Port: intstr.FromInt(port)}, want: probeOutcome{Result: resultSuccess}},
		{name: "named port", action: v1.TCPSocketAction{Port: intstr.FromString("p")},
			ports: []v1.ContainerPort{{Name: "p", ContainerPort: int32(port)}}, want: probeOutcome{Result: resultSuccess}},
		{name: "closed", action: v1.TCPSocketAction{Port: intstr.FromInt(closed)}, want: probeOutcome{Result: resultFailure, Output: "connection refused"}},
		{name: "port out of range", action: v1.TCPSocketAction{Port: intstr.FromInt(70000)}, want: probeOutcome{Result: resultUnknown, Err: "invalid port number: 70000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := New(Config{Runtime: &fakeExec{}})
			pod, c := testPod(ip, tt.ports...)
			p := &v1.Probe{TimeoutSeconds: 5, ProbeHandler: v1.ProbeHandler{TCPSocket: &tt.action}}
			res, out, err := m.runProbe(context.Background(), target{pod: pod, container: c, containerID: "c1"}, p)
			check(t, tt.want, res, out, err)
		})
	}
}

// startGRPC serves the health service (if hs is not nil) on loopback.
func startGRPC(t *testing.T, hs *health.Server) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	if hs != nil {
		healthpb.RegisterHealthServer(s, hs)
	}
	go s.Serve(l) //nolint:errcheck // ends with Stop
	t.Cleanup(s.Stop)
	_, port := hostPort(t, l.Addr().String())
	return port
}

func TestGRPCProbe(t *testing.T) {
	t.Parallel()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	port := startGRPC(t, hs)
	bare := startGRPC(t, nil)
	closed := closedPort(t)
	svc := func(s string) *string { return &s }
	tests := []struct {
		name   string
		action v1.GRPCAction
		want   probeOutcome
	}{
		{name: "serving", action: v1.GRPCAction{Port: int32(port)}, want: probeOutcome{Result: resultSuccess, Output: "service healthy"}},
		{name: "not serving", action: v1.GRPCAction{Port: int32(port), Service: svc("db")},
			want: probeOutcome{Result: resultFailure, Output: `service unhealthy (responded with "NOT_SERVING")`}},
		{name: "unknown service", action: v1.GRPCAction{Port: int32(port), Service: svc("other")},
			want: probeOutcome{Result: resultFailure, Output: "error: health rpc probe failed"}},
		{name: "no health service", action: v1.GRPCAction{Port: int32(bare)},
			want: probeOutcome{Result: resultFailure, Output: "does not implement the grpc health protocol"}},
		{name: "closed port", action: v1.GRPCAction{Port: int32(closed)},
			want: probeOutcome{Result: resultFailure, Output: "failed to connect service"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := New(Config{Runtime: &fakeExec{}})
			pod, c := testPod("127.0.0.1")
			p := &v1.Probe{TimeoutSeconds: 5, ProbeHandler: v1.ProbeHandler{GRPC: &tt.action}}
			res, out, err := m.runProbe(context.Background(), target{pod: pod, container: c, containerID: "c1"}, p)
			check(t, tt.want, res, out, err)
		})
	}
}
