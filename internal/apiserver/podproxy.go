package apiserver

// The "connect" subresources: pods/log, pods/exec, pods/attach,
// pods/portforward and nodes/proxy. They carry no object of their own; the
// server looks up the pod (or node), checks the options, and proxies to the
// kubelet of the node through Config.Kubelet. Streaming protocols are in
// podproxy_stream.go.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/registry"
)

// podConnectSubresources are the pod subresources proxied to the kubelet.
var podConnectSubresources = map[string]bool{"log": true, "exec": true, "attach": true, "portforward": true}

// isConnect reports whether ri names a subresource served by proxying: to a
// kubelet (pods' log, exec, attach, portforward; nodes/proxy) or straight
// to a pod or a service's endpoint (pods/proxy, services/proxy). Such
// requests are long-running: no timeout, no in-flight limit.
func isConnect(ri *requestInfo) bool {
	if !ri.isResource || ri.group != "" || ri.version != "v1" || ri.name == "" {
		return false
	}
	switch ri.resource {
	case "pods":
		return ri.namespace != "" && (podConnectSubresources[ri.subresource] || ri.subresource == "proxy")
	case "services":
		return ri.namespace != "" && ri.subresource == "proxy"
	case "nodes":
		return ri.namespace == "" && ri.subresource == "proxy"
	}
	return false
}

// serveConnect handles a request for which isConnect is true.
func (s *Server) serveConnect(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	if ri.subresource == "proxy" && ri.resource != "nodes" {
		// Straight to the pod or service, not through a kubelet.
		rest, _ := proxyTargetPath(r, ri)
		var opts runtime.Object = &corev1.PodProxyOptions{Path: rest}
		if ri.resource == "services" {
			opts = &corev1.ServiceProxyOptions{Path: rest}
		}
		if !s.admitConnect(w, r, ri, opts) {
			return
		}
		if ri.resource == "services" {
			s.serviceProxy(w, r, ri, st)
		} else {
			s.podProxy(w, r, ri, st)
		}
		return
	}
	if s.cfg.Kubelet == nil {
		s.writeError(w, newStatus(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "no kubelet client configured"))
		return
	}
	if ri.resource == "nodes" {
		if !s.admitConnect(w, r, ri, &corev1.NodeProxyOptions{Path: nodeProxyPath(r, ri)}) {
			return
		}
		s.nodeProxy(w, r, ri)
		return
	}
	switch ri.subresource {
	case "log":
		if r.Method != http.MethodGet {
			s.writeError(w, methodNotAllowed())
			return
		}
		s.podLog(w, r, ri, st)
	case "exec", "attach":
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			s.writeError(w, methodNotAllowed())
			return
		}
		s.podExec(w, r, ri, st)
	case "portforward":
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			s.writeError(w, methodNotAllowed())
			return
		}
		s.podPortForward(w, r, ri, st)
	}
}

// getPod reads the pod a connect request names.
func getPod(r *http.Request, ri *requestInfo, st *registry.Store) (*corev1.Pod, error) {
	obj, err := st.Get(r.Context(), ri.namespace, ri.name)
	if err != nil {
		return nil, err
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("pods store returned %T", obj)
	}
	return pod, nil
}

// podNode returns the node a pod runs on, or upstream's 400 when it has
// none yet.
func podNode(pod *corev1.Pod) (string, error) {
	if pod.Spec.NodeName == "" {
		return "", apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	return pod.Spec.NodeName, nil
}

// podContainer resolves the container a request targets: the named one
// (any of containers, init containers and ephemeral containers), or the
// only container when none is named.
func podContainer(pod *corev1.Pod, name string) (string, error) {
	if name == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			return pod.Spec.Containers[0].Name, nil
		case 0:
			return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
		}
		var names []string
		for _, c := range pod.Spec.Containers {
			names = append(names, c.Name)
		}
		for _, c := range pod.Spec.InitContainers {
			names = append(names, c.Name)
		}
		for _, c := range pod.Spec.EphemeralContainers {
			names = append(names, c.Name)
		}
		return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", pod.Name, names))
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return name, nil
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return name, nil
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return name, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
}

// kubeletUnavailable is the Status for a kubelet that cannot be reached.
func kubeletUnavailable(node string, err error) error {
	var apiStatus apierrors.APIStatus
	if errors.As(err, &apiStatus) {
		return err // e.g. the node does not exist
	}
	return newStatus(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
		fmt.Sprintf("unable to reach the kubelet of node %s: %v", node, err))
}

// parseQueryBool reads a boolean query parameter the way upstream's
// conversions do: absent, "", "0" and "false" are false; "1" and "true"
// are true.
func parseQueryBool(q url.Values, key string) (bool, error) {
	v := q.Get(key)
	switch strings.ToLower(v) {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, apierrors.NewBadRequest(fmt.Sprintf("invalid value %q for query parameter %q: want true or false", v, key))
}

func parseQueryInt(q url.Values, key string) (*int64, error) {
	v := q.Get(key)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid value %q for query parameter %q: %v", v, key, err))
	}
	return &n, nil
}

// logOptions parses and validates a pods/log query into v1.PodLogOptions.
func logOptions(q url.Values) (*corev1.PodLogOptions, error) {
	opts := &corev1.PodLogOptions{Container: q.Get("container")}
	var err error
	for key, dst := range map[string]*bool{
		"follow": &opts.Follow, "previous": &opts.Previous, "timestamps": &opts.Timestamps,
		"insecureSkipTLSVerifyBackend": &opts.InsecureSkipTLSVerifyBackend,
	} {
		if *dst, err = parseQueryBool(q, key); err != nil {
			return nil, err
		}
	}
	for key, dst := range map[string]**int64{"tailLines": &opts.TailLines, "sinceSeconds": &opts.SinceSeconds, "limitBytes": &opts.LimitBytes} {
		if *dst, err = parseQueryInt(q, key); err != nil {
			return nil, err
		}
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid value %q for query parameter \"sinceTime\": %v", v, err))
		}
		mt := metav1.NewTime(t)
		opts.SinceTime = &mt
	}
	var errs field.ErrorList
	if opts.TailLines != nil && *opts.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *opts.TailLines, "must be greater than or equal to 0"))
	}
	if opts.LimitBytes != nil && *opts.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *opts.LimitBytes, "must be greater than 0"))
	}
	if opts.SinceSeconds != nil && opts.SinceTime != nil {
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	}
	if opts.SinceSeconds != nil && *opts.SinceSeconds < 1 {
		errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *opts.SinceSeconds, "must be greater than 0"))
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Kind: "PodLogOptions"}, "", errs)
	}
	return opts, nil
}

// kubeletLogQuery is the kubelet's /containerLogs query for opts.
func kubeletLogQuery(opts *corev1.PodLogOptions) url.Values {
	q := url.Values{}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Previous {
		q.Set("previous", "true")
	}
	if opts.Timestamps {
		q.Set("timestamps", "true")
	}
	if opts.SinceSeconds != nil {
		q.Set("sinceSeconds", strconv.FormatInt(*opts.SinceSeconds, 10))
	}
	if opts.SinceTime != nil {
		q.Set("sinceTime", opts.SinceTime.UTC().Format(time.RFC3339))
	}
	if opts.TailLines != nil {
		q.Set("tailLines", strconv.FormatInt(*opts.TailLines, 10))
	}
	if opts.LimitBytes != nil {
		q.Set("limitBytes", strconv.FormatInt(*opts.LimitBytes, 10))
	}
	return q
}

// podLog streams GET /containerLogs/<ns>/<pod>/<container> from the
// kubelet, flushing each chunk as it arrives. A non-2xx kubelet answer
// becomes a Status with the kubelet's code and message.
//
// insecureSkipTLSVerifyBackend is accepted but has no effect: the kubelet
// client either verifies with its configured roots or not at all.
func (s *Server) podLog(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	opts, err := logOptions(r.URL.Query())
	if err != nil {
		s.writeError(w, err)
		return
	}
	pod, err := getPod(r, ri, st)
	if err != nil {
		s.writeError(w, err)
		return
	}
	container, err := podContainer(pod, opts.Container)
	if err != nil {
		s.writeError(w, err)
		return
	}
	node, err := podNode(pod)
	if err != nil {
		s.writeError(w, err)
		return
	}
	path := "/containerLogs/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name) + "/" + url.PathEscape(container)
	resp, err := s.cfg.Kubelet.Get(r.Context(), node, path, kubeletLogQuery(opts))
	if err != nil {
		s.writeError(w, kubeletUnavailable(node, err))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		s.writeError(w, kubeletError(resp, schema.GroupResource{Resource: "pods/log"}, pod.Name))
		return
	}
	if websocket.IsWebSocketUpgrade(r) {
		streamLogWebSocket(w, r, resp.Body)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	streamBody(w, resp.Body)
}

// streamBody copies body to w, flushing after every read so that followed
// logs reach the client as they are written.
func streamBody(w http.ResponseWriter, body io.Reader) {
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// Websocket subprotocols of a streamed read (upstream's wsstream): raw
// bytes in binary messages, or base64 in text messages; no subprotocol
// means binary.
const (
	wsBinaryProtocol = "binary.k8s.io"
	wsBase64Protocol = "base64.binary.k8s.io"
)

// streamLogWebSocket sends a log over a websocket, one message per read,
// and closes it normally at the end of the log.
func streamLogWebSocket(w http.ResponseWriter, r *http.Request, body io.Reader) {
	ws, err := acceptWebSocket(w, r, wsBinaryProtocol, wsBase64Protocol)
	if err != nil {
		return // gorilla answered the client
	}
	defer ws.Close()
	// The client sends nothing; reading notices it going away.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			if _, _, err := ws.NextReader(); err != nil {
				return
			}
		}
	}()
	base64Text := ws.Subprotocol() == wsBase64Protocol
	buf := make([]byte, 32<<10)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			_ = ws.SetWriteDeadline(time.Now().Add(wsWriteWait))
			var werr error
			if base64Text {
				werr = ws.WriteMessage(websocket.TextMessage, []byte(base64.StdEncoding.EncodeToString(buf[:n])))
			} else {
				werr = ws.WriteMessage(websocket.BinaryMessage, buf[:n])
			}
			if werr != nil {
				return
			}
		}
		if rerr != nil {
			break
		}
		select {
		case <-gone:
			return
		default:
		}
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(wsWriteWait))
}

// kubeletError turns a kubelet's non-2xx answer into a Status: a Status
// body passes through, any other body becomes the message.
func kubeletError(resp *http.Response, gr schema.GroupResource, name string) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if st, ok := decodeStatus(body); ok {
		return &apierrors.StatusError{ErrStatus: st}
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	err := apierrors.NewGenericServerResponse(resp.StatusCode, "", gr, name, msg, 0, false)
	err.ErrStatus.Message = msg
	return err
}

// decodeStatus reads body as a JSON metav1.Status, if it is one.
func decodeStatus(body []byte) (metav1.Status, bool) {
	var st metav1.Status
	if len(body) == 0 || body[0] != '{' {
		return st, false
	}
	if err := json.Unmarshal(body, &st); err != nil || st.Kind != "Status" || st.Code == 0 {
		return st, false
	}
	return st, true
}

// nodeProxy proxies /api/v1/nodes/<name>/proxy/<path> to <path> on the
// node's kubelet (any method; the response streams).
// nodeProxyPath is the path a nodes/proxy request asks of the node, as
// its NodeProxyOptions carries it ("/" when none).
func nodeProxyPath(r *http.Request, ri *requestInfo) string {
	rest := strings.TrimPrefix(r.URL.Path, "/api/v1/nodes/"+ri.name+"/proxy")
	if rest == "" || rest == r.URL.Path {
		return "/"
	}
	return rest
}

func (s *Server) nodeProxy(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	// The proxied path is everything after ".../proxy", kept escaped.
	prefix := "/api/v1/nodes/" + ri.name + "/proxy"
	escaped := r.URL.EscapedPath()
	rest := strings.TrimPrefix(escaped, prefix)
	if rest == escaped {
		s.writeError(w, notFoundPath())
		return
	}
	if rest == "" {
		rest = "/"
	}
	scheme, node, port, ok := splitProxyName(ri.name, true)
	if !ok {
		s.writeError(w, apierrors.NewBadRequest(fmt.Sprintf("invalid node proxy name %q: want [scheme:]name[:port]", ri.name)))
		return
	}
	u, err := s.cfg.Kubelet.URL(r.Context(), node, "", nil)
	if err != nil {
		s.writeError(w, kubeletUnavailable(node, err))
		return
	}
	if port != "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	if scheme != "" {
		u.Scheme = scheme
	}
	target, err := url.Parse(rest)
	if err != nil {
		s.writeError(w, apierrors.NewBadRequest(fmt.Sprintf("invalid proxy path: %v", err)))
		return
	}
	u.Path, u.RawPath = target.Path, target.RawPath
	u.RawQuery = r.URL.RawQuery
	if isUpgrade(r) {
		s.upgradeProxy(w, r, u, ri.name)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), r.Body)
	if err != nil {
		s.writeError(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	req.ContentLength = r.ContentLength
	for k, vs := range r.Header {
		if hopHeader(k) || k == "Authorization" || strings.HasPrefix(k, "Impersonate-") {
			continue
		}
		req.Header[k] = vs
	}
	resp, err := s.cfg.Kubelet.Transport().RoundTrip(req)
	if err != nil {
		s.writeError(w, kubeletUnavailable(ri.name, err))
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if hopHeader(k) {
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	streamBody(w, resp.Body)
}

// splitProxyName splits the name of a nodes, pods or services proxy
// request, which may name the port and scheme to reach as upstream allows:
// "name", "name:port" or "scheme:name:port" (scheme http or https; "" where
// not given). A port must be a number when numericPort, else it may be a
// service port's name.
func splitProxyName(s string, numericPort bool) (scheme, name, port string, ok bool) {
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 1:
		return "", s, "", s != ""
	case 2:
		name, port = parts[0], parts[1]
	case 3:
		scheme, name, port = parts[0], parts[1], parts[2]
		if scheme != "http" && scheme != "https" && scheme != "" {
			return "", "", "", false
		}
	default:
		return "", "", "", false
	}
	if port != "" && numericPort {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", "", "", false
		}
	}
	return scheme, name, port, name != ""
}

// hopHeader reports the hop-by-hop headers a proxy must not forward.
func hopHeader(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}
