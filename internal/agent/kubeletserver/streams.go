package kubeletserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// Timeouts of the proxy to the runtime's streaming server.
const (
	// dialTimeout bounds connecting to the streaming server and reading
	// its answer to the upgrade request.
	dialTimeout = 30 * time.Second
	// lingerAfterServer is how long the proxy keeps sending the client's
	// bytes after the streaming server closed its side: the client
	// should close as well soon.
	lingerAfterServer = 10 * time.Second
	// DefaultAttachSettle: see Config.AttachSettle and Server.settle.
	DefaultAttachSettle = time.Second
	// settlePoll is how often a settling container's state is read.
	settlePoll = 25 * time.Millisecond
)

// streamFlags reads stdin, stdout, stderr and tty as upstream's
// remotecommand does: with a TTY, stderr is merged into stdout. The
// kubelet's own names (input, output, error) and the API's (stdin, stdout,
// stderr) are both accepted.
func streamFlags(r *http.Request) (tty, stdin, stdout, stderr bool, err error) {
	tty = boolParam(r, "tty")
	stdin = boolParam(r, "stdin") || boolParam(r, "input")
	stdout = boolParam(r, "stdout") || boolParam(r, "output")
	stderr = boolParam(r, "stderr") || boolParam(r, "error")
	if tty {
		stderr = false
	}
	if !stdin && !stdout && !stderr {
		return false, false, false, false, errorf(http.StatusBadRequest, "you must specify at least 1 of stdin, stdout, stderr")
	}
	return tty, stdin, stdout, stderr, nil
}

// exec serves /exec/{ns}/{pod}[/{uid}]/{container}.
func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		s.writeError(w, r, errorf(http.StatusBadRequest, "you must specify at least one command for the container"))
		return
	}
	tty, stdin, stdout, stderr, err := streamFlags(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.running(ctx, r.PathValue("ns"), r.PathValue("pod"), r.PathValue("uid"), r.PathValue("container"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.cfg.Runtime.Exec(ctx, cri.ExecRequest{ContainerID: c.ID, Cmd: cmd, TTY: tty, Stdin: stdin, Stdout: stdout, Stderr: stderr})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.proxy(w, r, u)
}

// attach serves /attach/{ns}/{pod}[/{uid}]/{container}.
func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tty, stdin, stdout, stderr, err := streamFlags(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.running(ctx, r.PathValue("ns"), r.PathValue("pod"), r.PathValue("uid"), r.PathValue("container"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.settle(ctx, c, r.PathValue("pod")); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Whether the process runs on a TTY was settled when the container
	// started; the client's wish cannot change it (upstream's kubelet
	// takes it from the container's spec too).
	if v, ok := c.Annotations[cri.AnnotationTTY]; ok {
		tty = v == "true"
		if tty {
			stderr = false
		}
	}
	u, err := s.cfg.Runtime.Attach(ctx, cri.AttachRequest{ContainerID: c.ID, TTY: tty, Stdin: stdin, Stdout: stdout, Stderr: stderr})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.proxy(w, r, u)
}

// settle waits until container c has run for the settle time (see
// Config.AttachSettle) and fails as for a container that is not running
// when it exits first.
//
// An attach carries only what the process writes from then on. This agent
// reports a container running as soon as it started it, so `kubectl run
// -i` attaches some tens of milliseconds after the start, and a short
// command (echo, wget, nslookup) has often printed everything and exited
// by then: the attach succeeded and showed nothing. Upstream's kubelet
// learns of the start from its next relist (up to a second later), so
// such a pod is already complete when kubectl looks and kubectl prints its
// logs instead. Waiting here gives the same result: a container that
// exits within the settle time is refused, and kubectl falls back to its
// logs (with a warning that it could not attach).
func (s *Server) settle(ctx context.Context, c cri.Container, pod string) error {
	d := s.cfg.AttachSettle
	if d == 0 {
		d = DefaultAttachSettle
	}
	if d < 0 {
		return nil
	}
	for {
		st, err := s.cfg.Runtime.ContainerStatus(ctx, c.ID)
		if err != nil {
			return err
		}
		if st.State != cri.ContainerRunning {
			return notRunning(c.Name, pod)
		}
		left := d - time.Since(st.StartedAt)
		if st.StartedAt.IsZero() || left <= 0 {
			return nil
		}
		select {
		case <-time.After(min(left, settlePoll)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// portForward serves /portForward/{ns}/{pod}[/{uid}].
func (s *Server) portForward(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ns, pod := r.PathValue("ns"), r.PathValue("pod")
	var ports []int32
	for _, p := range r.URL.Query()["port"] {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			s.writeError(w, r, errorf(http.StatusBadRequest, "invalid port %q", p))
			return
		}
		ports = append(ports, int32(n))
	}
	sb, ok, err := s.sandbox(ctx, ns, pod, r.PathValue("uid"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !ok || sb.State != cri.SandboxReady {
		s.writeError(w, r, errorf(http.StatusNotFound, "pod %q not found", ns+"/"+pod))
		return
	}
	u, err := s.cfg.Runtime.PortForward(ctx, sb.ID, ports)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.proxy(w, r, u)
}

// proxy forwards r to the streaming URL target: it sends the request line
// and headers (Connection, Upgrade, X-Stream-Protocol-Version,
// Sec-WebSocket-* included) to the streaming server, answers the client
// with the server's answer, and, when that is 101 Switching Protocols,
// copies bytes both ways until both sides are done, passing a half-close
// on. It returns when the session is over.
func (s *Server) proxy(w http.ResponseWriter, r *http.Request, target string) {
	ctx := r.Context()
	u, err := url.Parse(target)
	if err != nil || !u.IsAbs() || u.Host == "" {
		s.writeError(w, r, fmt.Errorf("runtime returned an unusable streaming URL %q", target))
		return
	}
	backend, err := dialStreaming(ctx, u)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("connecting to the runtime's streaming server: %w", err))
		return
	}
	defer backend.Close()

	out := &http.Request{
		Method:     r.Method,
		URL:        &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     r.Header.Clone(),
		Host:       u.Host,
		Body:       http.NoBody,
	}
	if out.URL.RawQuery == "" {
		out.URL.RawQuery = r.URL.RawQuery
	}
	if r.ContentLength > 0 {
		out.Body, out.ContentLength = r.Body, r.ContentLength
	}
	backend.SetDeadline(time.Now().Add(dialTimeout))
	if err := out.Write(backend); err != nil {
		s.writeError(w, r, fmt.Errorf("sending the request to the runtime's streaming server: %w", err))
		return
	}
	br := bufio.NewReader(backend)
	resp, err := http.ReadResponse(br, out)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("reading the runtime streaming server's answer: %w", err))
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// An error (or a plain answer): pass it on.
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		return
	}
	backend.SetDeadline(time.Time{})

	client, cbuf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.writeError(w, r, fmt.Errorf("taking over the connection: %w", err))
		return
	}
	defer client.Close()
	client.SetDeadline(time.Time{})
	var head bytes.Buffer
	fmt.Fprintf(&head, "HTTP/1.1 %s\r\n", resp.Status)
	resp.Header.Write(&head)
	head.WriteString("\r\n")
	// Bytes either side sent after its head, already buffered.
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		head.Write(b)
	}
	if _, err := client.Write(head.Bytes()); err != nil {
		s.log.Debug("stream proxy: writing to the client", "err", err)
		return
	}
	if n := cbuf.Reader.Buffered(); n > 0 {
		b, _ := cbuf.Reader.Peek(n)
		if _, err := backend.Write(b); err != nil {
			s.log.Debug("stream proxy: writing to the streaming server", "err", err)
			return
		}
	}
	s.log.Debug("stream proxy: upgraded", "path", r.URL.Path, "protocol", resp.Header.Get("Upgrade"))
	pipe(ctx, client, backend)
}

// dialStreaming connects to the streaming server at u. containerd's
// serves plain HTTP on 127.0.0.1 by default; with TLS it uses a
// self-signed certificate, so the certificate is not verified (the URL
// came from the runtime over its local socket, and its token is one-time).
func dialStreaming(ctx context.Context, u *url.URL) (net.Conn, error) {
	host := u.Host
	d := &net.Dialer{Timeout: dialTimeout}
	switch u.Scheme {
	case "http":
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
		return d.DialContext(ctx, "tcp", host)
	case "https":
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "443")
		}
		td := &tls.Dialer{NetDialer: d, Config: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}}
		return td.DialContext(ctx, "tcp", host)
	default:
		return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
}

// pipe copies bytes between the client and the streaming server until both
// directions are done or ctx ends. A side that finishes sending is
// half-closed toward the other (CloseWrite), so the other can still
// answer; once the server is done, the client gets lingerAfterServer to
// finish too.
func pipe(ctx context.Context, client, server net.Conn) {
	toServer := make(chan struct{})
	toClient := make(chan struct{})
	go func() {
		defer close(toServer)
		io.Copy(server, client)
		closeWrite(server)
	}()
	go func() {
		defer close(toClient)
		io.Copy(client, server)
		closeWrite(client)
	}()
	var linger <-chan time.Time
	for toServer != nil || toClient != nil {
		select {
		case <-toServer:
			toServer = nil
		case <-toClient:
			toClient = nil
			t := time.NewTimer(lingerAfterServer)
			defer t.Stop()
			linger = t.C
		case <-linger:
			client.Close()
			server.Close()
			linger = nil
		case <-ctx.Done():
			client.Close()
			server.Close()
			return
		}
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	c.Close()
}
