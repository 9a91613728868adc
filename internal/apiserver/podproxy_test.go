package apiserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	spdytransport "k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"

	"github.com/skiff-dev/skiff/internal/admission"
	"github.com/skiff-dev/skiff/internal/kubeletclient"
)

// fakeKubelet is a TLS server implementing the kubelet paths the API
// server proxies to: /containerLogs (echoes its request), /exec and
// /attach over SPDY (a few scripted commands), /portForward over SPDY
// (echo per stream), and /healthz.
type fakeKubelet struct {
	ts *httptest.Server
	// release lets a followed log write its second line.
	release chan struct{}
	// clientCN is the CommonName of the last client certificate seen.
	mu       sync.Mutex
	clientCN string
}

func newFakeKubelet(t *testing.T) *fakeKubelet {
	t.Helper()
	k := &fakeKubelet{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", k.logs)
	mux.HandleFunc("POST /exec/{ns}/{pod}/{container}", k.exec)
	mux.HandleFunc("POST /attach/{ns}/{pod}/{container}", k.exec)
	mux.HandleFunc("/portForward/{ns}/{pod}", k.portForward)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "ok %s", r.URL.RawQuery)
	})
	k.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			k.mu.Lock()
			k.clientCN = r.TLS.PeerCertificates[0].Subject.CommonName
			k.mu.Unlock()
		}
		mux.ServeHTTP(w, r)
	}))
	k.ts.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	k.ts.StartTLS()
	t.Cleanup(k.ts.Close)
	return k
}

func (k *fakeKubelet) port() int32 {
	_, p, _ := net.SplitHostPort(k.ts.Listener.Addr().String())
	n, _ := strconv.Atoi(p)
	return int32(n)
}

func (k *fakeKubelet) logs(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("container") == "missing" {
		http.Error(w, "container \"missing\" in pod is waiting to start: ContainerCreating", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = fmt.Fprintf(w, "%s/%s/%s %s\n", r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container"), r.URL.RawQuery)
	if r.URL.Query().Get("follow") != "true" {
		return
	}
	http.NewResponseController(w).Flush()
	select {
	case <-k.release:
		_, _ = io.WriteString(w, "second line\n")
	case <-r.Context().Done():
	}
}

// exec runs one of the scripted commands: "echo" copies stdin to stdout
// and writes "bye" to stderr; "exit3" writes to stdout and fails with
// exit code 3; "resize" prints the first terminal size it receives.
func (k *fakeKubelet) exec(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if _, err := httpstream.Handshake(r, w, []string{protocolV5, protocolV4}); err != nil {
		return
	}
	type created struct {
		s         httpstream.Stream
		replySent <-chan struct{}
	}
	streams := make(chan created, 8)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, replySent <-chan struct{}) error {
		streams <- created{s, replySent}
		return nil
	})
	if conn == nil {
		return
	}
	defer conn.Close()
	want := 1
	for _, k := range []string{"input", "output"} {
		if q.Get(k) == "1" {
			want++
		}
	}
	tty := q.Get("tty") == "1"
	if q.Get("error") == "1" && !tty {
		want++
	}
	if tty {
		want++
	}
	// As the kubelet does: run only once every stream is acknowledged.
	byType := map[string]httpstream.Stream{}
	timeout := time.After(10 * time.Second)
	for len(byType) < want {
		select {
		case c := <-streams:
			select {
			case <-c.replySent:
			case <-timeout:
				return
			}
			byType[c.s.Headers().Get(corev1.StreamType)] = c.s
		case <-timeout:
			return
		}
	}
	// kubectl 1.30's websocket client reads the connection before it has
	// created its streams, and drops what arrives for a stream it does not
	// have yet ("Unknown stream id 1, discarding message"); a real
	// container's first output comes later than this fake's.
	time.Sleep(50 * time.Millisecond)
	status := metav1.Status{Status: metav1.StatusSuccess}
	switch strings.Join(q["command"], " ") {
	case "echo":
		_, _ = io.Copy(byType[corev1.StreamTypeStdout], byType[corev1.StreamTypeStdin])
		_, _ = io.WriteString(byType[corev1.StreamTypeStderr], "bye\n")
	case "exit3":
		_, _ = io.WriteString(byType[corev1.StreamTypeStdout], "partial\n")
		status = metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  "NonZeroExitCode",
			Message: "command terminated with non-zero exit code: exit status 3",
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: "3"}}},
		}
	case "resize":
		var size remotecommand.TerminalSize
		if err := json.NewDecoder(byType[corev1.StreamTypeResize]).Decode(&size); err == nil {
			_, _ = fmt.Fprintf(byType[corev1.StreamTypeStdout], "%dx%d\n", size.Width, size.Height)
		}
	default:
		// attach: print what the kubelet was asked for.
		_, _ = fmt.Fprintf(byType[corev1.StreamTypeStdout], "%s %s\n", r.URL.Path, q.Encode())
	}
	b, _ := json.Marshal(status)
	_, _ = byType[corev1.StreamTypeError].Write(b)
	_ = byType[corev1.StreamTypeError].Close()
}

// portForward echoes every data stream and closes the matching error
// stream when the data stream ends.
func (k *fakeKubelet) portForward(w http.ResponseWriter, r *http.Request) {
	if _, err := httpstream.Handshake(r, w, []string{protocolPortForward}); err != nil {
		return
	}
	var done sync.Map // requestID -> chan struct{}
	doneOf := func(id string) chan struct{} {
		ch, _ := done.LoadOrStore(id, make(chan struct{}))
		return ch.(chan struct{})
	}
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(s httpstream.Stream, _ <-chan struct{}) error {
		id := s.Headers().Get(corev1.PortForwardRequestIDHeader)
		go func() {
			if s.Headers().Get(corev1.StreamType) == corev1.StreamTypeError {
				<-doneOf(id)
				_ = s.Close()
				return
			}
			_, _ = io.Copy(s, s)
			_ = s.Close()
			close(doneOf(id))
		}()
		return nil
	})
	if conn == nil {
		return
	}
	<-conn.CloseChan()
}

// connectEnv is an API server with a kubelet client, one fake kubelet,
// node "n1" pointing at it and pods in namespace default:
// "one" (container app, on n1), "two" (containers a and b, on n1),
// "pending" (no node) and "lost" (on node n2, whose kubelet is gone).
type connectEnv struct {
	*testEnv
	kubelet *fakeKubelet
	cs      *kubernetes.Clientset
}

func newConnectEnv(t *testing.T, opts ...envOption) *connectEnv {
	t.Helper()
	ca, caKey := newCA(t)
	certPEM, keyPEM := issueClient(t, ca, caKey, "kube-apiserver-kubelet-client", []string{"system:masters"})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	var env *testEnv
	kc := kubeletclient.New(kubeletclient.Config{
		Nodes: func(ctx context.Context, name string) (*corev1.Node, error) {
			obj, err := env.server.resources[schema.GroupVersion{Version: "v1"}]["nodes"].Get(ctx, "", name)
			if err != nil {
				return nil, err
			}
			return obj.(*corev1.Node), nil
		},
		ClientCert:  pair,
		DialTimeout: 5 * time.Second,
	})
	env = newTestEnv(t, append(opts, func(c *Config) { c.Kubelet = kc })...)
	e := &connectEnv{testEnv: env, kubelet: newFakeKubelet(t), cs: env.clientset(t)}

	// A port nothing listens on, for the unreachable kubelet.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := int32(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()

	ctx := context.Background()
	for name, port := range map[string]int32{"n1": e.kubelet.port(), "n2": deadPort} {
		n, err := e.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "localhost"}, {Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
		if _, err := e.cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pods := []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "one"}, Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "two"}, Spec: corev1.PodSpec{NodeName: "n1",
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
			Containers:     []corev1.Container{{Name: "a", Image: "busybox"}, {Name: "b", Image: "busybox"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "pending"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "lost"}, Spec: corev1.PodSpec{NodeName: "n2", Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}},
	}
	for _, p := range pods {
		created, err := e.cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.NodeName != "" {
			created.Status.Phase = corev1.PodRunning
			if _, err := e.cs.CoreV1().Pods("default").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return e
}

func TestPodLog(t *testing.T) {
	t.Parallel()
	e := newConnectEnv(t)
	ctx := context.Background()
	tail := int64(5)
	rc, err := e.cs.CoreV1().Pods("default").GetLogs("two", &corev1.PodLogOptions{Container: "b", TailLines: &tail, Timestamps: true}).Stream(ctx)
	if err != nil {
		t.Fatalf("streaming logs: %v", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("default/two/b tailLines=5&timestamps=true\n", string(b)); diff != "" {
		t.Errorf("log body (-want +got):\n%s", diff)
	}
	e.kubelet.mu.Lock()
	cn := e.kubelet.clientCN
	e.kubelet.mu.Unlock()
	if cn != "kube-apiserver-kubelet-client" {
		t.Errorf("kubelet saw client certificate CN %q, want kube-apiserver-kubelet-client", cn)
	}

	tests := []struct {
		name     string
		path     string
		wantCode int
		wantMsg  string
	}{
		{"only container is the default", "/api/v1/namespaces/default/pods/one/log?limitBytes=10&previous=true", 200, "default/one/app limitBytes=10&previous=true\n"},
		{"container required", "/api/v1/namespaces/default/pods/two/log", 400, "a container name must be specified for pod two, choose one of: [a b init]"},
		{"unknown container", "/api/v1/namespaces/default/pods/two/log?container=zz", 400, "container zz is not valid for pod two"},
		{"no host", "/api/v1/namespaces/default/pods/pending/log", 400, "pod pending does not have a host assigned"},
		{"unknown pod", "/api/v1/namespaces/default/pods/nope/log", 404, `pods \"nope\" not found`},
		{"kubelet unreachable", "/api/v1/namespaces/default/pods/lost/log", 503, "unable to reach the kubelet of node n2"},
		{"container not in pod", "/api/v1/namespaces/default/pods/one/log?container=missing", 400, "container missing is not valid for pod one"},
		{"invalid options", "/api/v1/namespaces/default/pods/one/log?tailLines=-1", 422, "must be greater than or equal to 0"},
		{"both since", "/api/v1/namespaces/default/pods/one/log?sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z", 422, "at most one of `sinceTime` or `sinceSeconds`"},
		{"bad bool", "/api/v1/namespaces/default/pods/one/log?follow=maybe", 400, "follow"},
		{"wrong method", "/api/v1/namespaces/default/pods/one/log", 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodGet
			if tc.wantCode == 405 {
				method = http.MethodPost
			}
			code, _, body := e.do(t, method, tc.path, nil, "")
			if code != tc.wantCode {
				t.Fatalf("code = %d, want %d; body %s", code, tc.wantCode, body)
			}
			if !strings.Contains(body, tc.wantMsg) {
				t.Errorf("body %q does not contain %q", body, tc.wantMsg)
			}
		})
	}
}

// TestPodLogWebSocket: a log read over a websocket (upstream's
// binary.k8s.io and base64.binary.k8s.io subprotocols), closed normally at
// its end.
func TestPodLogWebSocket(t *testing.T) {
	t.Parallel()
	e := newConnectEnv(t)
	tlsCfg, err := rest.TLSConfigFor(e.adminConfig)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(e.adminConfig.Host)
	if err != nil {
		t.Fatal(err)
	}
	u.Scheme = "wss"
	u.Path = "/api/v1/namespaces/default/pods/two/log"
	u.RawQuery = "container=b"
	for _, tc := range []struct {
		protocol string
		msgType  int
		decode   func([]byte) string
	}{
		{"binary.k8s.io", websocket.BinaryMessage, func(b []byte) string { return string(b) }},
		{"base64.binary.k8s.io", websocket.TextMessage, func(b []byte) string {
			d, err := base64.StdEncoding.DecodeString(string(b))
			if err != nil {
				t.Errorf("base64 message %q: %v", b, err)
			}
			return string(d)
		}},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			d := websocket.Dialer{TLSClientConfig: tlsCfg, Subprotocols: []string{tc.protocol}}
			ws, resp, err := d.Dial(u.String(), nil)
			if err != nil {
				t.Fatalf("dial: %v (%v)", err, resp)
			}
			defer ws.Close()
			if ws.Subprotocol() != tc.protocol {
				t.Errorf("subprotocol %q", ws.Subprotocol())
			}
			var got strings.Builder
			for {
				typ, data, err := ws.ReadMessage()
				if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
					break
				}
				if err != nil {
					t.Fatalf("read: %v (so far %q)", err, got.String())
				}
				if typ != tc.msgType {
					t.Errorf("message type %d, want %d", typ, tc.msgType)
				}
				got.WriteString(tc.decode(data))
			}
			if got.String() != "default/two/b \n" {
				t.Errorf("log %q", got.String())
			}
		})
	}
}

func TestPodLogKubeletErrorStatus(t *testing.T) {
	t.Parallel()
	e := newConnectEnv(t)
	// Add a container the fake kubelet answers 400 for.
	ctx := context.Background()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "waiting"}, Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "missing", Image: "busybox"}}}}
	if _, err := e.cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := e.cs.CoreV1().Pods("default").GetLogs("waiting", &corev1.PodLogOptions{}).Stream(ctx)
	want := `container "missing" in pod is waiting to start: ContainerCreating`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func TestPodLogFollowStreams(t *testing.T) {
	t.Parallel()
	e := newConnectEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := e.cs.CoreV1().Pods("default").GetLogs("one", &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 100)
	// The first line must arrive while the kubelet still holds the
	// request open.
	n, err := rc.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("default/one/app follow=true\n", string(buf[:n])); diff != "" {
		t.Errorf("first chunk (-want +got):\n%s", diff)
	}
	close(e.kubelet.release)
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("second line\n", string(rest)); diff != "" {
		t.Errorf("rest (-want +got):\n%s", diff)
	}
}

// executors returns the two ways client-go runs exec and attach.
func executors(t *testing.T, e *connectEnv, u *url.URL) map[string]remotecommand.Executor {
	t.Helper()
	spdyExec, err := remotecommand.NewSPDYExecutor(e.adminConfig, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	wsExec, err := remotecommand.NewWebSocketExecutor(e.adminConfig, "GET", u.String())
	if err != nil {
		t.Fatal(err)
	}
	wsV4, err := remotecommand.NewWebSocketExecutorForProtocols(e.adminConfig, "GET", u.String(), protocolV4)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]remotecommand.Executor{"spdy": spdyExec, "websocket": wsExec, "websocket-v4": wsV4}
}

func execURL(e *connectEnv, pod, sub string, opts *corev1.PodExecOptions) *url.URL {
	req := e.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name(pod).SubResource(sub)
	if sub == "attach" {
		req = req.VersionedParams(&corev1.PodAttachOptions{Container: opts.Container, Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, TTY: opts.TTY}, scheme.ParameterCodec)
	} else {
		req = req.VersionedParams(opts, scheme.ParameterCodec)
	}
	return req.URL()
}

type fixedSize struct{ sent bool }

func (f *fixedSize) Next() *remotecommand.TerminalSize {
	if f.sent {
		return nil
	}
	f.sent = true
	return &remotecommand.TerminalSize{Width: 80, Height: 24}
}

func TestPodExec(t *testing.T) {
	t.Parallel()
	e := newConnectEnv(t)
	tests := []struct {
		name     string
		pod, sub string
		opts     corev1.PodExecOptions
		stdin    string
		wantOut  string
		wantErr  string
		wantExit int
	}{
		// websocket-v4 cannot close stdin, so it is not run with stdin.
		{name: "stdin to stdout", pod: "one", sub: "exec",
			opts:  corev1.PodExecOptions{Command: []string{"echo"}, Stdin: true, Stdout: true, Stderr: true},
			stdin: "hello\nworld\n", wantOut: "hello\nworld\n", wantErr: "bye\n"},
		{name: "exit code", pod: "two", sub: "exec",
			opts:    corev1.PodExecOptions{Container: "a", Command: []string{"exit3"}, Stdout: true, Stderr: true},
			wantOut: "partial\n", wantExit: 3},
		{name: "tty resize", pod: "one", sub: "exec",
			opts:    corev1.PodExecOptions{Command: []string{"resize"}, Stdout: true, TTY: true},
			wantOut: "80x24\n"},
		{name: "attach", pod: "two", sub: "attach",
			opts:    corev1.PodExecOptions{Container: "b", Stdout: true, Stderr: true},
			wantOut: "/attach/default/two/b error=1&output=1&stderr=1&stdout=1\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for kind, ex := range executors(t, e, execURL(e, tc.pod, tc.sub, &tc.opts)) {
				if kind == "websocket-v4" && tc.opts.Stdin {
					continue
				}
				t.Run(kind, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					var stdout, stderr bytes.Buffer
					so := remotecommand.StreamOptions{Stdout: &stdout, Tty: tc.opts.TTY}
					if tc.opts.Stdin {
						so.Stdin = strings.NewReader(tc.stdin)
					}
					if tc.opts.Stderr {
						so.Stderr = &stderr
					}
					if tc.opts.TTY {
						so.TerminalSizeQueue = &fixedSize{}
					}
					err := ex.StreamWithContext(ctx, so)
					var exitErr exec.ExitError
					switch {
					case tc.wantExit != 0:
						if !errors.As(err, &exitErr) || exitErr.ExitStatus() != tc.wantExit {
							t.Errorf("error = %v, want exit code %d", err, tc.wantExit)
						}
					case err != nil:
						t.Errorf("stream: %v", err)
					}
					if diff := cmp.Diff(tc.wantOut, stdout.String()); diff != "" {
						t.Errorf("stdout (-want +got):\n%s", diff)
					}
					if diff := cmp.Diff(tc.wantErr, stderr.String()); diff != "" {
						t.Errorf("stderr (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

func TestPodExecErrors(t *testing.T) {
	t.Parallel()
	e := newConnectEnv(t)
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": protocolV4}
	tests := []struct {
		name     string
		path     string
		header   map[string]string
		wantCode int
		wantMsg  string
	}{
		{"no upgrade", "/api/v1/namespaces/default/pods/one/exec?command=ls&stdout=true", nil, 400, "Upgrade request required"},
		{"no streams", "/api/v1/namespaces/default/pods/one/exec?command=ls", upgrade, 400, "you must specify at least 1 of stdin, stdout, stderr"},
		{"no command", "/api/v1/namespaces/default/pods/one/exec?stdout=true", upgrade, 400, "you must specify at least one command for the container"},
		{"container required", "/api/v1/namespaces/default/pods/two/exec?command=ls&stdout=true", upgrade, 400, "a container name must be specified for pod two, choose one of: [a b init]"},
		{"no host", "/api/v1/namespaces/default/pods/pending/attach?stdout=true", upgrade, 400, "pod pending does not have a host assigned"},
		{"kubelet unreachable", "/api/v1/namespaces/default/pods/lost/exec?command=ls&stdout=true", upgrade, 503, "unable to reach the kubelet of node n2"},
		{"portforward no upgrade", "/api/v1/namespaces/default/pods/one/portforward?ports=80", nil, 400, "Upgrade request required"},
		{"portforward bad port", "/api/v1/namespaces/default/pods/one/portforward?ports=0", upgrade, 400, "invalid port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := e.do(t, http.MethodPost, tc.path, tc.header, "")
			if code != tc.wantCode {
				t.Fatalf("code = %d, want %d; body %s", code, tc.wantCode, body)
			}
			if !strings.Contains(body, tc.wantMsg) {
				t.Errorf("body %q does not contain %q", body, tc.wantMsg)
			}
		})
	}
}

func TestPodPortForward(t *testing.T) {
	t.Parallel()
	e := newConnectEnv(t)
	u := e.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("one").SubResource("portforward").URL()
	transport, upgrader, err := spdytransport.RoundTripperFor(e.adminConfig)
	if err != nil {
		t.Fatal(err)
	}
	spdyDialer := spdytransport.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
	wsDialer, err := portforward.NewSPDYOverWebsocketDialer(u, e.adminConfig)
	if err != nil {
		t.Fatal(err)
	}
	for kind, dialer := range map[string]httpstream.Dialer{"spdy": spdyDialer, "websocket": wsDialer} {
		t.Run(kind, func(t *testing.T) {
			stop := make(chan struct{})
			ready := make(chan struct{})
			fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- fw.ForwardPorts() }()
			defer func() {
				close(stop)
				if err := <-errc; err != nil {
					t.Errorf("ForwardPorts: %v", err)
				}
			}()
			select {
			case <-ready:
			case err := <-errc:
				t.Fatalf("port forward ended before ready: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("port forward not ready within 30s")
			}
			ports, err := fw.GetPorts()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 { // two connections over the same tunnel
				conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local))))
				if err != nil {
					t.Fatal(err)
				}
				msg := fmt.Sprintf("ping %d", i)
				if _, err := io.WriteString(conn, msg); err != nil {
					t.Fatal(err)
				}
				_ = conn.(*net.TCPConn).CloseWrite()
				_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				got, err := io.ReadAll(conn)
				conn.Close()
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(msg, string(got)); diff != "" {
					t.Errorf("echo (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestNodeProxy(t *testing.T) {
	t.Parallel()
	e := newConnectEnv(t)
	tests := []struct {
		name     string
		path     string
		wantCode int
		wantBody string
	}{
		{"kubelet path", "/api/v1/nodes/n1/proxy/healthz?x=1", 200, "ok x=1"},
		{"unknown kubelet path", "/api/v1/nodes/n1/proxy/nothing", 404, "404 page not found\n"},
		{"unknown node", "/api/v1/nodes/zz/proxy/healthz", 404, `nodes \"zz\" not found`},
		// pods/proxy goes to the pod itself (resourceproxy_test.go).
		{"pod proxy without a pod IP", "/api/v1/namespaces/default/pods/one/proxy/x", 400, "address not allowed"},
		// name:port reaches that port of the node (nothing listens on 1).
		{"node with port", "/api/v1/nodes/n1:1/proxy/healthz", 503, "n1"},
		{"unknown node with port", "/api/v1/nodes/zz:10250/proxy/healthz", 404, `nodes \"zz\" not found`},
		{"malformed name", "/api/v1/nodes/ftp:n1:x/proxy/healthz", 400, "invalid node proxy name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := e.do(t, http.MethodGet, tc.path, nil, "")
			if code != tc.wantCode {
				t.Fatalf("code = %d, want %d; body %s", code, tc.wantCode, body)
			}
			if !strings.Contains(body, tc.wantBody) {
				t.Errorf("body %q does not contain %q", body, tc.wantBody)
			}
		})
	}
}

func TestSplitProxyName(t *testing.T) {
	for _, tc := range []struct {
		in                 string
		scheme, name, port string
		ok                 bool
	}{
		{in: "n1", name: "n1", ok: true},
		{in: "n1:10250", name: "n1", port: "10250", ok: true},
		{in: "https:n1:10250", scheme: "https", name: "n1", port: "10250", ok: true},
		{in: "http:n1:", scheme: "http", name: "n1", ok: true},
		{in: "n1:http"},
		{in: "n1:0"},
		{in: "ftp:n1:80"},
		{in: ":80"},
		{in: "a:b:c:d"},
	} {
		scheme, name, port, ok := splitProxyName(tc.in, true)
		if ok != tc.ok || (ok && (scheme != tc.scheme || name != tc.name || port != tc.port)) {
			t.Errorf("splitProxyName(%q) = %q, %q, %q, %v; want %q, %q, %q, %v", tc.in, scheme, name, port, ok, tc.scheme, tc.name, tc.port, tc.ok)
		}
	}
}

func TestConnectWithoutKubeletClient(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cs := e.clientset(t)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/namespaces/default/pods/p/log", "/api/v1/nodes/n1/proxy/healthz"} {
		code, _, body := e.do(t, http.MethodGet, path, nil, "")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "no kubelet client configured") {
			t.Errorf("GET %s = %d %s, want 503 no kubelet client configured", path, code, body)
		}
	}
}

// connectAdmitter records CONNECT admissions and refuses execs of rm.
type connectAdmitter struct {
	mu   sync.Mutex
	reqs []admission.Request
}

func (a *connectAdmitter) Mutate(context.Context, *admission.Request) error         { return nil }
func (a *connectAdmitter) Validate(context.Context, *admission.Request) error       { return nil }
func (a *connectAdmitter) ValidateDelete(context.Context, *admission.Request) error { return nil }

func (a *connectAdmitter) AdmitConnect(_ context.Context, r *admission.Request) error {
	a.mu.Lock()
	a.reqs = append(a.reqs, *r)
	a.mu.Unlock()
	if o, ok := r.Object.(*corev1.PodExecOptions); ok && len(o.Command) > 0 && o.Command[0] == "rm" {
		return apierrors.NewForbidden(r.Resource.GroupResource(), r.Name, errors.New("no rm here"))
	}
	return nil
}

// TestConnectAdmission: exec, attach, port-forward and node proxy are
// admitted as CONNECT with their options as the object, before anything
// reaches the kubelet; a refusal is the plugin's status.
func TestConnectAdmission(t *testing.T) {
	t.Parallel()
	adm := &connectAdmitter{}
	e := newConnectEnv(t, func(c *Config) { c.Admission = adm })
	tests := []struct {
		name     string
		path     string
		wantCode int
		wantMsg  string
		wantKind string
		wantObj  runtime.Object
	}{
		{"exec refused", "/api/v1/namespaces/default/pods/one/exec?command=rm&command=-rf&stdout=true", 403, "no rm here",
			"PodExecOptions", &corev1.PodExecOptions{Command: []string{"rm", "-rf"}, Stdout: true}},
		// Admitted: the request goes on (and fails for want of an upgrade).
		{"exec admitted", "/api/v1/namespaces/default/pods/one/exec?command=ls&stdout=true&container=app", 400, "Upgrade request required",
			"PodExecOptions", &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true, Container: "app"}},
		{"attach", "/api/v1/namespaces/default/pods/one/attach?stdout=true&tty=true", 400, "Upgrade request required",
			"PodAttachOptions", &corev1.PodAttachOptions{Stdout: true, TTY: true}},
		{"port-forward", "/api/v1/namespaces/default/pods/one/portforward?ports=80,8080", 400, "Upgrade request required",
			"PodPortForwardOptions", &corev1.PodPortForwardOptions{Ports: []int32{80, 8080}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			adm.mu.Lock()
			adm.reqs = nil
			adm.mu.Unlock()
			code, _, body := e.do(t, http.MethodPost, tc.path, nil, "")
			if code != tc.wantCode || !strings.Contains(body, tc.wantMsg) {
				t.Fatalf("got %d %s, want %d with %q", code, body, tc.wantCode, tc.wantMsg)
			}
			adm.mu.Lock()
			defer adm.mu.Unlock()
			if len(adm.reqs) != 1 {
				t.Fatalf("%d connect admissions, want 1", len(adm.reqs))
			}
			r := adm.reqs[0]
			if r.Operation != admission.Connect || r.Kind != corev1.SchemeGroupVersion.WithKind(tc.wantKind) ||
				r.Namespace != "default" || r.Name != "one" || r.Resource.Resource != "pods" || r.Object == nil {
				t.Errorf("admission request: %+v", r)
			}
			got := r.Object.DeepCopyObject()
			got.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
			if diff := cmp.Diff(tc.wantObj, got); diff != "" {
				t.Errorf("connect options (-want +got):\n%s", diff)
			}
		})
	}
}
