package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// kubeVersion is the Kubernetes minor version in probe and hook User-Agents
// ("kube-probe/1.33"), the version skiff's API server reports.
const kubeVersion = "1.33"

// maxOutput bounds what is read of an HTTP body or an exec probe's output,
// as upstream (10 KiB).
const maxOutput = 10 << 10

// result is the outcome of one probe run.
type result int

const (
	// resultUnknown: the probe could not run (an error); the result is
	// thrown away.
	resultUnknown result = iota
	resultSuccess
	// resultWarning counts as a success but records a ProbeWarning event
	// (an HTTP redirect to another host).
	resultWarning
	resultFailure
)

// errNoIP says the pod has no IP to probe yet.
var errNoIP = errors.New("prober: pod has no IP yet")

// target is what a probe or hook needs of its pod and container.
type target struct {
	pod         *v1.Pod
	container   *v1.Container
	containerID string
}

// podIP is the address probes and hooks go to when the action names no
// host: the pod IP, or for a host-network pod without one the node's IP.
func (t target) podIP() (string, error) {
	if ip := t.pod.Status.PodIP; ip != "" {
		return ip, nil
	}
	if t.pod.Spec.HostNetwork && t.pod.Status.HostIP != "" {
		return t.pod.Status.HostIP, nil
	}
	return "", errNoIP
}

// resolvePort turns a probe's port (a number, or a name of one of the
// container's ports) into a number.
func resolvePort(p intstr.IntOrString, c *v1.Container) (int, error) {
	port := -1
	switch p.Type {
	case intstr.Int:
		port = p.IntValue()
	case intstr.String:
		found := false
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				port, found = int(cp.ContainerPort), true
				break
			}
		}
		if !found {
			n, err := strconv.Atoi(p.StrVal)
			if err != nil {
				return -1, fmt.Errorf("couldn't find port: %v in %v", p.StrVal, c.Name)
			}
			port = n
		}
	}
	if port <= 0 || port > 65535 {
		return port, fmt.Errorf("invalid port number: %v", port)
	}
	return port, nil
}

// timeoutError reports whether err ended an exec because of its timeout.
func timeoutError(ctx context.Context, err error, started time.Time, timeout time.Duration) bool {
	if ctx.Err() != nil {
		return false // stopped, not timed out
	}
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		return true
	}
	return timeout > 0 && time.Since(started) >= timeout
}

// probeExec runs an exec probe: exit code 0 is success; output is stdout
// then stderr, at most maxOutput bytes.
func (m *Manager) probeExec(ctx context.Context, t target, cmd []string, timeout time.Duration) (result, string, error) {
	start := time.Now()
	r, err := m.cfg.Runtime.ExecSync(ctx, t.containerID, cmd, timeout)
	if err != nil {
		if timeoutError(ctx, err, start, timeout) {
			return resultFailure, fmt.Sprintf("command %q timed out", strings.Join(cmd, " ")), nil
		}
		return resultUnknown, "", fmt.Errorf("exec probe %q: %w", strings.Join(cmd, " "), err)
	}
	out := append(append([]byte(nil), r.Stdout...), r.Stderr...)
	if len(out) > maxOutput {
		out = out[:maxOutput]
	}
	if r.ExitCode == 0 {
		return resultSuccess, string(out), nil
	}
	return resultFailure, string(out), nil
}

// newHTTPClient returns the client of HTTP probes and hooks: no proxy, no
// keep-alives (a probe is one request), any certificate accepted, and
// redirects followed only to the same host, at most 10.
func newHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:              nil,
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes trust the pod, as upstream
		DisableKeepAlives:  true,
		DisableCompression: true,
		DialContext:        (&net.Dialer{}).DialContext,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}
}

// newHTTPRequest builds the GET of an httpGet action: scheme (default
// http), host (default the pod IP), port (named or numeric), path and
// headers; User-Agent is "kube-<purpose>/<version>" and Accept "*/*"
// unless the action sets them (an empty Accept removes it); a Host header
// sets the request's host.
func newHTTPRequest(ctx context.Context, a *v1.HTTPGetAction, t target, purpose string) (*http.Request, error) {
	scheme := strings.ToLower(string(a.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	host := a.Host
	if host == "" {
		ip, err := t.podIP()
		if err != nil {
			return nil, err
		}
		host = ip
	}
	var port int
	if a.Port.Type == intstr.String && a.Port.StrVal == "" {
		port = 80
	} else {
		p, err := resolvePort(a.Port, t.container)
		if err != nil {
			return nil, err
		}
		port = p
	}
	u, err := url.Parse(a.Path)
	if err != nil {
		u = &url.URL{Path: a.Path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("building request for %s: %w", u, err)
	}
	h := http.Header{}
	for _, hd := range a.HTTPHeaders {
		h.Add(hd.Name, hd.Value)
	}
	if _, ok := h["User-Agent"]; !ok {
		h.Set("User-Agent", "kube-"+purpose+"/"+kubeVersion)
	}
	if _, ok := h["Accept"]; !ok {
		h.Set("Accept", "*/*")
	} else if h.Get("Accept") == "" {
		h.Del("Accept")
	}
	req.Header = h
	req.Host = h.Get("Host")
	return req, nil
}

// probeHTTP runs an httpGet probe: a status in 200–399 is success (a
// redirect that was not followed a warning), anything else or no answer
// within timeout a failure.
func (m *Manager) probeHTTP(ctx context.Context, t target, a *v1.HTTPGetAction, timeout time.Duration) (result, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := newHTTPRequest(ctx, a, t, "probe")
	if err != nil {
		return resultUnknown, "", err
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return resultFailure, err.Error(), nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxOutput))
	if err != nil {
		return resultFailure, err.Error(), nil
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		if resp.StatusCode >= 300 {
			return resultWarning, fmt.Sprintf("Probe terminated redirects, Response body: %s", b), nil
		}
		return resultSuccess, string(b), nil
	}
	return resultFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode), nil
}

// probeTCP runs a tcpSocket probe: a connection within timeout is success.
func probeTCP(ctx context.Context, t target, a *v1.TCPSocketAction, timeout time.Duration) (result, string, error) {
	host := a.Host
	if host == "" {
		ip, err := t.podIP()
		if err != nil {
			return resultUnknown, "", err
		}
		host = ip
	}
	port, err := resolvePort(a.Port, t.container)
	if err != nil {
		return resultUnknown, "", err
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return resultFailure, err.Error(), nil
	}
	_ = conn.Close() // the connection was made; closing cannot fail the probe
	return resultSuccess, "", nil
}

// probeGRPC runs a grpc probe: grpc.health.v1.Health/Check of the service
// answering SERVING within timeout is success.
func probeGRPC(ctx context.Context, t target, a *v1.GRPCAction, timeout time.Duration) (result, string, error) {
	ip, err := t.podIP()
	if err != nil {
		return resultUnknown, "", err
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(int(a.Port)))
	service := ""
	if a.Service != nil {
		service = *a.Service
	}
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent("kube-probe/"+kubeVersion))
	if err != nil {
		return resultFailure, fmt.Sprintf("error: failed to create client for %q: %v", addr, err), nil
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		st, _ := status.FromError(err)
		switch st.Code() {
		case codes.Unimplemented:
			return resultFailure, fmt.Sprintf("this server does not implement the grpc health protocol (grpc.health.v1.Health): %s", st.Message()), nil
		case codes.DeadlineExceeded:
			return resultFailure, fmt.Sprintf("timeout: health rpc did not complete within %v", timeout), nil
		case codes.Unavailable:
			return resultFailure, fmt.Sprintf("timeout: failed to connect service %q within %v: %+v", addr, timeout, err), nil
		default:
			return resultFailure, fmt.Sprintf("error: health rpc probe failed: %+v", err), nil
		}
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return resultFailure, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String()), nil
	}
	return resultSuccess, "service healthy", nil
}

// runProbe runs one probe of t once.
func (m *Manager) runProbe(ctx context.Context, t target, p *v1.Probe) (result, string, error) {
	timeout := seconds(p.TimeoutSeconds, 1, m.second)
	switch {
	case p.Exec != nil:
		return m.probeExec(ctx, t, p.Exec.Command, timeout)
	case p.HTTPGet != nil:
		return m.probeHTTP(ctx, t, p.HTTPGet, timeout)
	case p.TCPSocket != nil:
		return probeTCP(ctx, t, p.TCPSocket, timeout)
	case p.GRPC != nil:
		return probeGRPC(ctx, t, p.GRPC, timeout)
	}
	return resultUnknown, "", fmt.Errorf("missing probe handler for container %q", t.container.Name)
}

// seconds converts a probe's seconds field to a duration, def when it is
// not positive; unit is one second except in tests.
func seconds(n, def int32, unit time.Duration) time.Duration {
	if n <= 0 {
		n = def
	}
	return time.Duration(n) * unit
}
