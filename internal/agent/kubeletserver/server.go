package kubeletserver

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// The CRI labels the agent sets on every sandbox and container.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
)

// Runtime is what the server needs from the container runtime; cri.Client
// and cri.FakeStreaming implement it.
type Runtime interface {
	ListSandboxes(ctx context.Context, labels map[string]string) ([]cri.Sandbox, error)
	ListContainers(ctx context.Context, f cri.ContainerFilter) ([]cri.Container, error)
	ContainerStatus(ctx context.Context, id string) (cri.Container, error)
	Exec(ctx context.Context, req cri.ExecRequest) (string, error)
	Attach(ctx context.Context, req cri.AttachRequest) (string, error)
	PortForward(ctx context.Context, sandboxID string, ports []int32) (string, error)
}

var (
	_ Runtime = (*cri.Client)(nil)
	_ Runtime = (*cri.FakeStreaming)(nil)
)

// Config configures a Server.
type Config struct {
	// Runtime is required.
	Runtime Runtime
	// ClientCAs, when set, is the pool callers' client certificates must
	// verify against (Serve sets up TLS with it; the handler answers 401
	// to a request without a verified chain). nil lets every caller in.
	ClientCAs *x509.CertPool
	// Summary returns the /stats/summary document, encoded as JSON (the
	// shape of the kubelet's stats/v1alpha1 Summary); nil answers 404.
	Summary func(ctx context.Context) (any, error)
	// Pods returns the pods the node runs, for /pods (upstream's kubelet
	// answers it with a PodList); nil answers 404.
	Pods func() []*corev1.Pod
	// Metrics serves /metrics (the node agent's own Prometheus metrics);
	// nil answers 404.
	Metrics http.Handler
	// ResourceMetrics serves /metrics/resource (the node's, pods' and
	// containers' CPU and memory usage, as metrics-server scrapes it);
	// nil answers 404.
	ResourceMetrics http.Handler
	// Logger; nil discards.
	Logger *slog.Logger
	// LogPollInterval is how often a followed log is checked for growth;
	// 0 means logs.DefaultPollInterval.
	LogPollInterval time.Duration
	// AttachSettle is how long a container must have run before an attach
	// to it starts (0: DefaultAttachSettle; negative: no wait); see Server.settle.
	AttachSettle time.Duration
}

// Server is the kubelet HTTP API. Its handler is safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Runtime == nil {
		return nil, errors.New("kubeletserver: no runtime")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "ok")
	})
	s.mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", s.containerLogs)
	for _, p := range []string{"/exec/{ns}/{pod}/{container}", "/exec/{ns}/{pod}/{uid}/{container}"} {
		s.mux.HandleFunc("GET "+p, s.exec)
		s.mux.HandleFunc("POST "+p, s.exec)
	}
	for _, p := range []string{"/attach/{ns}/{pod}/{container}", "/attach/{ns}/{pod}/{uid}/{container}"} {
		s.mux.HandleFunc("GET "+p, s.attach)
		s.mux.HandleFunc("POST "+p, s.attach)
	}
	for _, p := range []string{"/portForward/{ns}/{pod}", "/portForward/{ns}/{pod}/{uid}"} {
		s.mux.HandleFunc("GET "+p, s.portForward)
		s.mux.HandleFunc("POST "+p, s.portForward)
	}
	s.mux.HandleFunc("GET /stats/summary", s.summary)
	s.mux.HandleFunc("GET /pods", s.pods)
	for path, h := range map[string]http.Handler{"/metrics": cfg.Metrics, "/metrics/resource": cfg.ResourceMetrics} {
		if h != nil {
			s.mux.Handle("GET "+path, h)
		}
	}
	return s, nil
}

// Handler returns the HTTP handler, client certificate check included.
// Serve uses it; tests may mount it on httptest servers.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.ClientCAs != nil && r.URL.Path != "/healthz" && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

// Serve serves HTTPS on ln with cert until ctx ends, then closes ln and
// the open streams and returns nil. Callers present client certificates
// verified against Config.ClientCAs (VerifyClientCertIfGiven: a request
// without one reaches the handler, which refuses it).
func (s *Server) Serve(ctx context.Context, ln net.Listener, cert tls.Certificate) error {
	srv := &http.Server{
		Handler: s.Handler(),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    s.cfg.ClientCAs,
			MinVersion:   tls.VersionTLS12,
		},
		// No read or write timeouts: logs, exec and port-forward
		// streams last as long as the user wants.
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("kubeletserver: serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	// ctx is the requests' base context: streams end with it.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}

func (s *Server) summary(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Summary == nil {
		http.Error(w, "stats summary is not available", http.StatusNotFound)
		return
	}
	v, err := s.cfg.Summary(r.Context())
	if err != nil {
		http.Error(w, fmt.Sprintf("getting the stats summary: %v", err), http.StatusInternalServerError)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("encoding the stats summary: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func (s *Server) pods(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.Pods == nil {
		http.Error(w, "pods are not available", http.StatusNotFound)
		return
	}
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: []corev1.Pod{}}
	for _, p := range s.cfg.Pods() {
		list.Items = append(list.Items, *p)
	}
	b, err := json.Marshal(&list)
	if err != nil {
		http.Error(w, fmt.Sprintf("encoding pods: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// httpError is an error with the HTTP status to answer it with.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// writeError answers err as plain text: its own status for an httpError,
// 404 for a runtime not-found, 500 otherwise.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	var he *httpError
	switch {
	case errors.As(err, &he):
		code = he.code
	case cri.IsNotFound(err):
		code = http.StatusNotFound
	}
	s.log.Debug("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	http.Error(w, err.Error(), code)
}

// podLabels selects a pod's sandboxes or containers.
func podLabels(ns, pod, uid string) map[string]string {
	l := map[string]string{LabelPodNamespace: ns, LabelPodName: pod}
	if uid != "" {
		l[LabelPodUID] = uid
	}
	return l
}

// sandbox returns the pod's sandbox: of those with the pod's labels, a
// Ready one before others, the newest first. ok is false when there is
// none.
func (s *Server) sandbox(ctx context.Context, ns, pod, uid string) (cri.Sandbox, bool, error) {
	sbs, err := s.cfg.Runtime.ListSandboxes(ctx, podLabels(ns, pod, uid))
	if err != nil {
		return cri.Sandbox{}, false, err
	}
	if len(sbs) == 0 {
		return cri.Sandbox{}, false, nil
	}
	slices.SortFunc(sbs, func(a, b cri.Sandbox) int {
		if ar, br := a.State == cri.SandboxReady, b.State == cri.SandboxReady; ar != br {
			if ar {
				return -1
			}
			return 1
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	return sbs[0], true, nil
}

// containers returns the pod's containers named name, current first (the
// highest Attempt, then the newest). Without uid, the pod is the one of
// the preferred sandbox (a pod deleted and created again under the same
// name may leave containers behind for a while).
func (s *Server) containers(ctx context.Context, ns, pod, uid, name string) ([]cri.Container, error) {
	if uid == "" {
		sb, ok, err := s.sandbox(ctx, ns, pod, "")
		if err != nil {
			return nil, err
		}
		if ok {
			uid = cmp.Or(sb.Labels[LabelPodUID], sb.UID)
		}
	}
	labels := podLabels(ns, pod, uid)
	labels[LabelContainerName] = name
	cs, err := s.cfg.Runtime.ListContainers(ctx, cri.ContainerFilter{Labels: labels})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(cs, func(a, b cri.Container) int {
		if a.Attempt != b.Attempt {
			return cmp.Compare(b.Attempt, a.Attempt)
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	return cs, nil
}

// running returns the current container named name, which must be running.
func (s *Server) running(ctx context.Context, ns, pod, uid, name string) (cri.Container, error) {
	cs, err := s.containers(ctx, ns, pod, uid, name)
	if err != nil {
		return cri.Container{}, err
	}
	if len(cs) == 0 {
		return cri.Container{}, errorf(http.StatusNotFound, "container not found (%q)", name)
	}
	if cs[0].State != cri.ContainerRunning {
		return cri.Container{}, notRunning(name, pod)
	}
	return cs[0], nil
}

// notRunning is the error for a stream to a container that does not run.
func notRunning(name, pod string) error {
	return errorf(http.StatusBadRequest, "container %q in pod %q is not running", name, pod)
}

// boolParam reads a flag as upstream's query encoding does ("1", "true").
func boolParam(r *http.Request, name string) bool {
	v, err := strconv.ParseBool(r.URL.Query().Get(name))
	return err == nil && v
}
