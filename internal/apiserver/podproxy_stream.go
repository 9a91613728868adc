package apiserver

// Streaming connect subresources: pods/exec, pods/attach and
// pods/portforward.
//
// Three ways in, one way out (the kubelet speaks SPDY/3.1):
//
//	SPDY upgrade (kubectl <= 1.29)        -> upgradeProxy: forward the
//	                                         upgrade, then pipe raw bytes
//	WebSocket v5/v4.channel.k8s.io (exec,  -> translateExec: one SPDY stream
//	attach; kubectl >= 1.30)                 per channel (0 stdin, 1 stdout,
//	                                         2 stderr, 3 status, 4 resize,
//	                                         255 close, v5 only)
//	WebSocket SPDY/3.1+portforward.k8s.io -> tunnelPortForward: SPDY frames
//	(kubectl >= 1.31)                        ride in binary messages; pipe
//	                                         them to an upgraded kubelet
//	                                         connection unchanged

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"

	"github.com/skiff-dev/skiff/internal/registry"
)

const (
	protocolV5 = "v5.channel.k8s.io"
	protocolV4 = "v4.channel.k8s.io"
	// protocolPortForward is what the kubelet's /portForward speaks;
	// tunneled in websockets it is prefixed with "SPDY/3.1+".
	protocolPortForward       = "portforward.k8s.io"
	protocolTunnelPortForward = "SPDY/3.1+" + protocolPortForward

	// Channel numbers of the websocket remote-command protocols.
	chanStdin  = 0
	chanStdout = 1
	chanStderr = 2
	chanError  = 3
	chanResize = 4
	chanClose  = 255 // v5: the next byte names a channel the client closed

	// wsWriteWait bounds one websocket write.
	wsWriteWait = 10 * time.Second
)

// isUpgrade reports whether r asks for a protocol upgrade.
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// wsOffers reports whether r is a websocket upgrade offering one of
// protocols as subprotocol.
func wsOffers(r *http.Request, protocols ...string) bool {
	if !isUpgrade(r) || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	for _, p := range websocket.Subprotocols(r) {
		if slices.Contains(protocols, p) {
			return true
		}
	}
	return false
}

func upgradeRequired() error {
	return apierrors.NewBadRequest("Upgrade request required")
}

// execOptions are the parsed pods/exec and pods/attach query parameters.
type execOptions struct {
	container                  string
	command                    []string
	stdin, stdout, stderr, tty bool
}

func parseExecOptions(q url.Values, attach bool) (*execOptions, error) {
	o := &execOptions{container: q.Get("container"), command: q["command"]}
	var err error
	for key, dst := range map[string]*bool{"stdin": &o.stdin, "stdout": &o.stdout, "stderr": &o.stderr, "tty": &o.tty} {
		if *dst, err = parseQueryBool(q, key); err != nil {
			return nil, err
		}
	}
	if !o.stdin && !o.stdout && !o.stderr {
		return nil, apierrors.NewBadRequest("you must specify at least 1 of stdin, stdout, stderr")
	}
	if !attach && len(o.command) == 0 {
		return nil, apierrors.NewBadRequest("you must specify at least one command for the container")
	}
	return o, nil
}

// kubeletQuery is the kubelet's /exec or /attach query. Upstream's kubelet
// reads input, output, error and tty = "1"; skiff's kubelet reads stdin,
// stdout, stderr and tty. Both spellings are sent so that either works.
func (o *execOptions) kubeletQuery() url.Values {
	q := url.Values{}
	for _, c := range o.command {
		q.Add("command", c)
	}
	for _, f := range []struct {
		on   bool
		keys []string
	}{
		{o.stdin, []string{corev1.ExecStdinParam, "stdin"}},
		{o.stdout, []string{corev1.ExecStdoutParam, "stdout"}},
		{o.stderr, []string{corev1.ExecStderrParam, "stderr"}},
		{o.tty, []string{corev1.ExecTTYParam}},
	} {
		for _, k := range f.keys {
			if f.on {
				q.Set(k, "1")
			}
		}
	}
	return q
}

// podExec serves pods/exec and pods/attach.
func (s *Server) podExec(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	attach := ri.subresource == "attach"
	opts, err := parseExecOptions(r.URL.Query(), attach)
	if err != nil {
		s.writeError(w, err)
		return
	}
	var connectOpts runtime.Object = &corev1.PodExecOptions{Stdin: opts.stdin, Stdout: opts.stdout, Stderr: opts.stderr,
		TTY: opts.tty, Container: opts.container, Command: opts.command}
	if attach {
		connectOpts = &corev1.PodAttachOptions{Stdin: opts.stdin, Stdout: opts.stdout, Stderr: opts.stderr,
			TTY: opts.tty, Container: opts.container}
	}
	if !s.admitConnect(w, r, ri, connectOpts) {
		return
	}
	pod, err := getPod(r, ri, st)
	if err != nil {
		s.writeError(w, err)
		return
	}
	container, err := podContainer(pod, opts.container)
	if err != nil {
		s.writeError(w, err)
		return
	}
	node, err := podNode(pod)
	if err != nil {
		s.writeError(w, err)
		return
	}
	if !isUpgrade(r) {
		s.writeError(w, upgradeRequired())
		return
	}
	kind := "exec"
	if attach {
		kind = "attach"
	}
	path := "/" + kind + "/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name) + "/" + url.PathEscape(container)
	u, err := s.cfg.Kubelet.URL(r.Context(), node, path, opts.kubeletQuery())
	if err != nil {
		s.writeError(w, kubeletUnavailable(node, err))
		return
	}
	if wsOffers(r, protocolV5, protocolV4) {
		s.translateExec(w, r, u, node, pod, ri.subresource, opts)
		return
	}
	s.upgradeProxy(w, r, u, node)
}

// podPortForward serves pods/portforward.
func (s *Server) podPortForward(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	kq := url.Values{}
	for _, p := range r.URL.Query()["ports"] {
		for _, v := range strings.Split(p, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 || n > 65535 {
				s.writeError(w, apierrors.NewBadRequest(fmt.Sprintf("invalid port %q: must be between 1 and 65535", v)))
				return
			}
			kq.Add("port", strconv.Itoa(n))
		}
	}
	pf := &corev1.PodPortForwardOptions{}
	for _, p := range kq["port"] {
		n, _ := strconv.Atoi(p)
		pf.Ports = append(pf.Ports, int32(n))
	}
	if !s.admitConnect(w, r, ri, pf) {
		return
	}
	pod, err := getPod(r, ri, st)
	if err != nil {
		s.writeError(w, err)
		return
	}
	node, err := podNode(pod)
	if err != nil {
		s.writeError(w, err)
		return
	}
	if !isUpgrade(r) {
		s.writeError(w, upgradeRequired())
		return
	}
	path := "/portForward/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name)
	u, err := s.cfg.Kubelet.URL(r.Context(), node, path, kq)
	if err != nil {
		s.writeError(w, kubeletUnavailable(node, err))
		return
	}
	if wsOffers(r, protocolTunnelPortForward) {
		s.tunnelPortForward(w, r, u, node, pod)
		return
	}
	s.upgradeProxy(w, r, u, node)
}

// upgradeProxy forwards r's upgrade to u on the kubelet and, on 101, pipes
// the two connections until either side closes. A non-101 kubelet answer
// is relayed to the client as it is.
func (s *Server) upgradeProxy(w http.ResponseWriter, r *http.Request, u *url.URL, node string) {
	header := http.Header{}
	for k, vs := range r.Header {
		switch {
		case k == "Authorization", strings.HasPrefix(k, "Impersonate-"):
			continue
		case hopHeader(k) && k != "Connection" && k != "Upgrade":
			continue
		}
		header[k] = vs
	}
	backend, resp, err := s.cfg.Kubelet.Upgrade(r.Context(), r.Method, u, header)
	if err != nil {
		s.writeError(w, kubeletUnavailable(node, err))
		return
	}
	if backend == nil {
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			if !hopHeader(k) {
				w.Header()[k] = vs
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		return
	}
	defer backend.Close()
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.writeError(w, fmt.Errorf("upgrading the connection: %w", err))
		return
	}
	defer client.Close()
	var head strings.Builder
	head.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	if err := resp.Header.Write(&head); err != nil {
		return
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(client, head.String()); err != nil {
		return
	}
	// Bytes the client sent after its request head may sit in brw.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := backend.Write(b); err != nil {
			return
		}
	}
	s.pipe(client, backend)
}

// pipe copies both ways between a and b until one direction ends or the
// server shuts down, then closes both.
func (s *Server) pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(a, b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(b, a); done <- struct{}{} }()
	select {
	case <-done:
	case <-s.shutdown:
	}
	_ = a.Close()
	_ = b.Close()
}

// dialKubeletSPDY upgrades a connection to u on the kubelet to SPDY/3.1,
// offering protocols. On failure the returned error is the Status the
// client should see.
func (s *Server) dialKubeletSPDY(r *http.Request, u *url.URL, node string, gr schema.GroupResource, name string, protocols ...string) (net.Conn, string, error) {
	header := http.Header{}
	header.Set("Connection", "Upgrade")
	header.Set("Upgrade", "SPDY/3.1")
	for _, p := range protocols {
		header.Add("X-Stream-Protocol-Version", p)
	}
	conn, resp, err := s.cfg.Kubelet.Upgrade(r.Context(), http.MethodPost, u, header)
	if err != nil {
		return nil, "", kubeletUnavailable(node, err)
	}
	if conn == nil {
		defer resp.Body.Close()
		return nil, "", kubeletError(resp, gr, name)
	}
	proto := resp.Header.Get("X-Stream-Protocol-Version")
	if !slices.Contains(protocols, proto) {
		_ = conn.Close()
		return nil, "", newStatus(http.StatusBadGateway, metav1.StatusReasonInternalError,
			fmt.Sprintf("the kubelet of node %s did not negotiate a supported stream protocol (got %q, want one of %v)", node, proto, protocols))
	}
	return conn, proto, nil
}

// acceptWebSocket upgrades the client connection offering one protocol
// list; gorilla writes the HTTP error itself on failure.
func acceptWebSocket(w http.ResponseWriter, r *http.Request, protocols ...string) (*websocket.Conn, error) {
	up := websocket.Upgrader{
		Subprotocols:    protocols,
		ReadBufferSize:  32 << 10,
		WriteBufferSize: 32 << 10,
		// Clients authenticate with certificates, not cookies, so a
		// cross-origin page gains nothing.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return up.Upgrade(w, r, nil)
}

// translateExec serves an exec or attach websocket by opening the matching
// SPDY streams to the kubelet and relaying channel by channel. The
// kubelet's v1.Status (channel 3) is sent only after stdout and stderr
// have drained, then the websocket is closed normally.
func (s *Server) translateExec(w http.ResponseWriter, r *http.Request, u *url.URL, node string, pod *corev1.Pod, sub string, opts *execOptions) {
	gr := schema.GroupResource{Resource: "pods/" + sub}
	conn, _, err := s.dialKubeletSPDY(r, u, node, gr, pod.Name, protocolV5, protocolV4)
	if err != nil {
		s.writeError(w, err)
		return
	}
	sc, err := spdy.NewClientConnection(conn)
	if err != nil {
		_ = conn.Close()
		s.writeError(w, kubeletUnavailable(node, err))
		return
	}
	defer sc.Close()

	// Streams in the order client-go creates them; the kubelet waits for
	// exactly the ones the query announced.
	create := func(streamType string) (httpstream.Stream, error) {
		h := http.Header{}
		h.Set(corev1.StreamType, streamType)
		return sc.CreateStream(h)
	}
	var errStream, stdin, stdout, stderr, resize httpstream.Stream
	err = func() error {
		var err error
		if errStream, err = create(corev1.StreamTypeError); err != nil {
			return err
		}
		if opts.stdin {
			if stdin, err = create(corev1.StreamTypeStdin); err != nil {
				return err
			}
		}
		if opts.stdout {
			if stdout, err = create(corev1.StreamTypeStdout); err != nil {
				return err
			}
		}
		if opts.stderr && !opts.tty {
			if stderr, err = create(corev1.StreamTypeStderr); err != nil {
				return err
			}
		}
		if opts.tty {
			if resize, err = create(corev1.StreamTypeResize); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		s.writeError(w, kubeletUnavailable(node, fmt.Errorf("creating streams: %w", err)))
		return
	}

	ws, err := acceptWebSocket(w, r, protocolV5, protocolV4)
	if err != nil {
		return
	}
	defer ws.Close()
	v5 := ws.Subprotocol() == protocolV5

	var wmu sync.Mutex // one writer at a time on ws
	send := func(ch byte, data []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_ = ws.SetWriteDeadline(time.Now().Add(wsWriteWait))
		return ws.WriteMessage(websocket.BinaryMessage, append([]byte{ch}, data...))
	}

	// Client -> kubelet.
	clientGone := make(chan struct{})
	go func() {
		defer close(clientGone)
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if typ != websocket.BinaryMessage || len(data) == 0 {
				continue
			}
			var dst httpstream.Stream
			switch data[0] {
			case chanStdin:
				dst = stdin
			case chanResize:
				dst = resize
			case chanClose:
				if v5 && len(data) == 2 {
					switch data[1] {
					case chanStdin:
						if stdin != nil {
							_ = stdin.Close()
						}
					case chanResize:
						if resize != nil {
							_ = resize.Close()
						}
					}
				}
				continue
			}
			if dst != nil && len(data) > 1 {
				if _, err := dst.Write(data[1:]); err != nil {
					s.log.Debug("writing to kubelet stream failed", "channel", data[0], "err", err)
				}
			}
		}
	}()

	// Kubelet -> client.
	var wg sync.WaitGroup
	for ch, st := range map[byte]httpstream.Stream{chanStdout: stdout, chanStderr: stderr} {
		if st == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := st.Read(buf)
				if n > 0 {
					if send(ch, buf[:n]) != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
	var status []byte
	wg.Add(1)
	go func() {
		defer wg.Done()
		b, err := io.ReadAll(errStream)
		if len(b) == 0 && err != nil {
			b = statusJSON(newStatus(http.StatusInternalServerError, metav1.StatusReasonInternalError,
				fmt.Sprintf("error reading the status from the kubelet of node %s: %v", node, err)).ErrStatus)
		}
		status = b
	}()
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-clientGone:
		return
	case <-s.shutdown:
		return
	}
	if len(status) > 0 {
		if err := send(chanError, status); err != nil {
			return
		}
	}
	wmu.Lock()
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(wsWriteWait))
	wmu.Unlock()
}

// statusJSON encodes st as the JSON the error channel carries.
func statusJSON(st metav1.Status) []byte {
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	st.Status = metav1.StatusFailure
	b, _ := json.Marshal(st)
	return b
}

// tunnelPortForward serves a port-forward websocket whose binary messages
// carry SPDY frames: it upgrades a kubelet connection to SPDY and relays
// bytes unchanged in both directions.
func (s *Server) tunnelPortForward(w http.ResponseWriter, r *http.Request, u *url.URL, node string, pod *corev1.Pod) {
	conn, _, err := s.dialKubeletSPDY(r, u, node, schema.GroupResource{Resource: "pods/portforward"}, pod.Name, protocolPortForward)
	if err != nil {
		s.writeError(w, err)
		return
	}
	defer conn.Close()
	ws, err := acceptWebSocket(w, r, protocolTunnelPortForward)
	if err != nil {
		return
	}
	defer ws.Close()
	done := make(chan struct{}, 2)
	go func() { // client -> kubelet
		defer func() { done <- struct{}{} }()
		for {
			typ, rd, err := ws.NextReader()
			if err != nil {
				return
			}
			if typ != websocket.BinaryMessage {
				continue
			}
			if _, err := io.Copy(conn, rd); err != nil {
				return
			}
		}
	}()
	go func() { // kubelet -> client
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				_ = ws.SetWriteDeadline(time.Now().Add(wsWriteWait))
				if werr := ws.WriteMessage(websocket.BinaryMessage, buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
					_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(wsWriteWait))
				}
				return
			}
		}
	}()
	select {
	case <-done:
	case <-s.shutdown:
	}
	_ = conn.Close()
	_ = ws.Close()
	<-done
}
