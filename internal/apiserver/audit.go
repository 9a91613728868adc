package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/skiff-dev/skiff/internal/audit"
	"github.com/skiff-dev/skiff/internal/auth"
)

// headerAuditID carries a request's audit ID: a client may send one (as
// upstream accepts), and every response returns it.
const headerAuditID = "Audit-Id"

// maxAuditIDLen bounds a client-chosen audit ID; a longer one is replaced.
const maxAuditIDLen = 64

// maxFailureBody bounds how much of a failed response is kept to read the
// Status from.
const maxFailureBody = 64 << 10

// auditBegin starts the audit record of one request. It returns the
// writer and request the rest of the chain uses and a function the chain
// calls once, on the request's goroutine, with the final status code.
//
// With Config.Audit set, every response carries an Audit-Id header, and,
// unless the policy says None for the request, the log receives:
//
//   - for long-running requests (watches, exec, attach, port-forward,
//     logs, node proxy), a ResponseStarted event when the response
//     starts (headers written, flushed, or the connection hijacked: 101);
//   - a ResponseComplete event from end, or a Panic event when
//     auditPanicked was called first.
//
// At Request level and above the request body is teed (at most
// Config.MaxBodyBytes) into requestObject; at RequestResponse the
// response of a non-long-running request goes into responseObject.
// Protobuf bodies are omitted and the audit.skiff.dev/omitted annotation
// says so. The returned writer keeps Flush (watches stream) and Hijack
// (upgrades), and Unwrap for http.ResponseController.
func (s *Server) auditBegin(w http.ResponseWriter, r *http.Request, ri *requestInfo, u auth.User) (http.ResponseWriter, *http.Request, func(code int)) {
	l := s.cfg.Audit
	if l == nil {
		return w, r, func(int) {}
	}
	received := time.Now()
	id := r.Header.Get(headerAuditID)
	if id == "" || len(id) > maxAuditIDLen {
		id = newAuditID()
	}
	w.Header().Set(headerAuditID, id)
	ref := auditObjectRef(ri)
	level := l.LevelFor(r.URL.Path, ref)
	if level == audit.LevelNone {
		return w, r, func(int) {}
	}
	rec := &auditRecord{
		logger:      l,
		level:       level,
		longRunning: ri.verb == "watch" || isConnect(ri),
		ev: audit.Event{
			TypeMeta:                 audit.TypeMeta,
			Level:                    level,
			AuditID:                  id,
			RequestURI:               r.RequestURI,
			Verb:                     ri.verb,
			User:                     audit.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups, Extra: u.Extra},
			SourceIPs:                sourceIPs(r),
			UserAgent:                r.UserAgent(),
			ObjectRef:                ref,
			RequestReceivedTimestamp: metav1.NewMicroTime(received),
		},
	}
	if rec.ev.RequestURI == "" {
		rec.ev.RequestURI = r.URL.RequestURI()
	}
	if level.AtLeast(audit.LevelRequest) && r.Body != nil && r.Body != http.NoBody {
		rec.reqBody = &cappedBuffer{limit: int(s.cfg.MaxBodyBytes)}
		rec.reqType = r.Header.Get("Content-Type")
		r.Body = &teeBody{ReadCloser: r.Body, buf: rec.reqBody}
	}
	r = r.WithContext(context.WithValue(r.Context(), auditKey{}, rec))
	aw := &auditWriter{ResponseWriter: w, rec: rec}
	end := func(code int) {
		ev := rec.snapshot()
		ev.StageTimestamp = metav1.NewMicroTime(time.Now())
		switch {
		case aw.panicked != nil:
			ev.Stage = audit.StagePanic
			ev.ResponseStatus = &metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError,
				Message: fmt.Sprintf("APIServer panic'd: %v", aw.panicked), Code: http.StatusInternalServerError}
		default:
			ev.Stage = audit.StageResponseComplete
			if aw.hijacked {
				code = http.StatusSwitchingProtocols // the writer saw no header
			}
			ev.ResponseStatus = s.auditStatus(code, &aw.body)
		}
		s.auditBodies(&ev, rec, aw)
		l.Log(&ev)
	}
	return aw, r, end
}

// auditPanicked marks the request served on w (auditBegin's writer, or
// one wrapping it) as panicked with p: its end logs a Panic event. The
// filter chain calls it from its recover.
func auditPanicked(w http.ResponseWriter, p any) {
	for w != nil {
		if aw, ok := w.(*auditWriter); ok {
			aw.panicked = p
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// auditAnnotate adds an annotation to the audit event of the request ctx
// belongs to (authorization.k8s.io/decision and /reason, for example).
// Without an audit record in ctx it does nothing. Safe for concurrent use.
func auditAnnotate(ctx context.Context, key, value string) {
	rec, ok := ctx.Value(auditKey{}).(*auditRecord)
	if !ok {
		return
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.ev.Annotations == nil {
		rec.ev.Annotations = map[string]string{}
	}
	rec.ev.Annotations[key] = value
}

// auditImpersonated records the user an impersonating request acts as.
func auditImpersonated(ctx context.Context, u auth.User) {
	rec, ok := ctx.Value(auditKey{}).(*auditRecord)
	if !ok {
		return
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.ev.ImpersonatedUser = &audit.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups, Extra: u.Extra}
}

// auditCreateName records the name in a create's body as the event's
// objectRef.name, as upstream's objectRef does (a generateName create
// leaves it empty). The create handler calls it once the body is decoded.
func auditCreateName(ctx context.Context, name string) {
	rec, ok := ctx.Value(auditKey{}).(*auditRecord)
	if !ok || name == "" {
		return
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.ev.ObjectRef != nil && rec.ev.ObjectRef.Name == "" {
		ref := *rec.ev.ObjectRef // shared with events already logged
		ref.Name = name
		rec.ev.ObjectRef = &ref
	}
}

type auditKey struct{}

// auditRecord is one request's audit state.
type auditRecord struct {
	logger      *audit.Logger
	level       audit.Level
	longRunning bool
	// reqBody is the teed request body (nil below Request level, except
	// for creates) and reqType its Content-Type.
	reqBody *cappedBuffer
	reqType string

	mu sync.Mutex
	ev audit.Event // guarded by mu (annotations change after begin)
}

// snapshot copies the event so far, annotations included.
func (rec *auditRecord) snapshot() audit.Event {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	ev := rec.ev
	if rec.ev.Annotations != nil {
		ev.Annotations = make(map[string]string, len(rec.ev.Annotations))
		for k, v := range rec.ev.Annotations {
			ev.Annotations[k] = v
		}
	}
	return ev
}

// started logs the ResponseStarted event of a long-running request.
func (rec *auditRecord) started(code int) {
	if !rec.longRunning {
		return
	}
	ev := rec.snapshot()
	ev.Stage = audit.StageResponseStarted
	ev.StageTimestamp = metav1.NewMicroTime(time.Now())
	ev.ResponseStatus = &metav1.Status{Code: int32(code)}
	rec.logger.Log(&ev)
}

// auditStatus is the responseStatus for code: the code alone for
// successes, and for failures also the Status the response carried, when
// body holds one.
func (s *Server) auditStatus(code int, body *cappedBuffer) *metav1.Status {
	st := &metav1.Status{Code: int32(code)}
	if code < 400 {
		return st
	}
	data, truncated := body.snapshot()
	if len(data) == 0 || truncated {
		return st
	}
	obj, _, err := s.codecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		return st
	}
	if got, ok := obj.(*metav1.Status); ok {
		st.Status, st.Message, st.Reason, st.Details = got.Status, got.Message, got.Reason, got.Details
	}
	return st
}

// auditBodies fills requestObject and responseObject as the level asks.
func (s *Server) auditBodies(ev *audit.Event, rec *auditRecord, aw *auditWriter) {
	var omitted []string
	if rec.reqBody != nil && rec.level.AtLeast(audit.LevelRequest) {
		raw, why := auditJSON(rec.reqBody, rec.reqType)
		ev.RequestObject = raw
		if why != "" {
			omitted = append(omitted, "requestObject: "+why)
		}
	}
	if rec.level.AtLeast(audit.LevelRequestResponse) && !rec.longRunning && !aw.hijacked && aw.panicked == nil {
		raw, why := auditJSON(&aw.body, aw.Header().Get("Content-Type"))
		ev.ResponseObject = raw
		if why != "" {
			omitted = append(omitted, "responseObject: "+why)
		}
	}
	if len(omitted) > 0 {
		if ev.Annotations == nil {
			ev.Annotations = map[string]string{}
		}
		ev.Annotations[audit.AnnotationOmitted] = strings.Join(omitted, "; ")
	}
}

// auditJSON returns b as JSON for the log, or why it cannot: empty
// bodies are neither logged nor explained.
func auditJSON(b *cappedBuffer, contentType string) (raw json.RawMessage, why string) {
	data, truncated := b.snapshot()
	if truncated {
		return nil, "body too large"
	}
	if len(data) == 0 {
		return nil, ""
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == runtime.ContentTypeProtobuf:
		return nil, "protobuf body"
	case strings.HasSuffix(mt, "yaml"):
		j, err := yaml.YAMLToJSON(data)
		if err != nil || !json.Valid(j) {
			return nil, "invalid YAML body"
		}
		return j, ""
	case json.Valid(data):
		return data, ""
	default:
		return nil, "body is not JSON"
	}
}

// auditWriter watches a response for the audit log: when it starts (the
// ResponseStarted event of long-running requests) and, when the level or
// a failure needs it, its body. Only the request's goroutine uses it.
type auditWriter struct {
	http.ResponseWriter
	rec *auditRecord

	wroteHeader bool
	hijacked    bool
	// panicked is set by auditPanicked.
	panicked any
	// body keeps the response of non-long-running requests at
	// RequestResponse level, and of every failure (code >= 400).
	body cappedBuffer
}

func (w *auditWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 { // 1xx are informational, not the response
		w.wroteHeader = true
		switch {
		case code >= 400:
			w.body.limit = maxFailureBody
		case w.rec.level.AtLeast(audit.LevelRequestResponse) && !w.rec.longRunning:
			w.body.limit = maxResponseCapture
		}
		w.rec.started(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

// maxResponseCapture bounds responseObject: larger responses (big lists)
// are omitted rather than held in memory.
const maxResponseCapture = 3 << 20

func (w *auditWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_, _ = w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

// Flush passes through (watches and log follows stream); flushing starts
// the response.
func (w *auditWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack takes over the connection for an upgrade (exec, attach,
// port-forward): the response is a 101 written by the caller.
func (w *auditWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if !w.wroteHeader {
		w.wroteHeader = true
		w.hijacked = true
		w.rec.started(http.StatusSwitchingProtocols)
	}
	return c, brw, nil
}

func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var (
	_ http.Flusher  = (*auditWriter)(nil)
	_ http.Hijacker = (*auditWriter)(nil)
)

// teeBody copies what the handler reads of a request body into buf.
type teeBody struct {
	io.ReadCloser
	buf *cappedBuffer
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if n > 0 {
		_, _ = t.buf.Write(p[:n])
	}
	return n, err
}

// cappedBuffer keeps at most limit bytes and remembers whether more were
// written. A zero limit keeps nothing (and is not truncation). Safe for
// concurrent use: a request body may still be read by a timed-out
// handler while end runs.
type cappedBuffer struct {
	mu        sync.Mutex
	limit     int
	buf       bytes.Buffer
	truncated bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.limit == 0 {
		return len(p), nil
	}
	room := c.limit - c.buf.Len()
	if len(p) > room {
		c.truncated = true
		p = p[:max(room, 0)]
	}
	c.buf.Write(p)
	return len(p), nil
}

// snapshot returns a copy of the bytes kept and whether some were not.
func (c *cappedBuffer) snapshot() (b []byte, truncated bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes()), c.truncated
}

// auditObjectRef is the objectRef of a resource request; nil otherwise.
func auditObjectRef(ri *requestInfo) *audit.ObjectReference {
	if !ri.isResource {
		return nil
	}
	return &audit.ObjectReference{
		Resource: ri.resource, Namespace: ri.namespace, Name: ri.name,
		APIGroup: ri.group, APIVersion: ri.version, Subresource: ri.subresource,
	}
}

// sourceIPs lists the client's addresses as upstream does: the
// X-Forwarded-For chain, then X-Real-Ip, then the connection's peer
// (always last, and the only one a client cannot forge).
func sourceIPs(r *http.Request) []string {
	var ips []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if ip := net.ParseIP(s); ip != nil {
			s = ip.String()
			for _, x := range ips {
				if x == s {
					return
				}
			}
			ips = append(ips, s)
		}
	}
	for _, s := range strings.Split(r.Header.Get("X-Forwarded-For"), ",") {
		add(s)
	}
	add(r.Header.Get("X-Real-Ip"))
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	add(host)
	return ips
}

// newAuditID returns a random (version 4) UUID.
func newAuditID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
