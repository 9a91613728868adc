package apiserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// In-process clients.
//
// The components "skiff server" runs beside the API server (scheduler,
// controller manager, node agent, cluster DNS, the server's own informers)
// are clients of it like any other: every request goes through the same
// handler (authentication, audit, authorization, admission, the watch
// cache). What they skip is the wire: TLS, HTTP/2 framing and the loopback
// socket. Besides its CPU (about a tenth of the server's under load), the
// wire serialised each client's requests and watch streams through one
// connection's frame writer; on two busy cores the scheduler's bindings
// queued there behind its own watch events.

// errInProcessClosed is what in-process requests get once the server shuts
// down, as a client over the network would get a refused connection.
var errInProcessClosed = errors.New("apiserver: in-process connection refused: the server is shutting down")

// inProcessBodyLimit bounds what a response may hold unread by its client
// before the handler's writes block (an HTTP/2 stream's flow-control window
// does the same over the network).
const inProcessBodyLimit = 1 << 20

// InProcessTransport returns a RoundTripper that serves requests with this
// server's handler, in-process, as if they came over TLS with the client
// certificate certPEM (the first CERTIFICATE block; it must verify against
// the server's client CAs, as it would in a handshake). Requests after the
// server began shutting down fail. Upgrades (exec, port-forward) are not
// supported: the response writer cannot be hijacked.
func (s *Server) InProcessTransport(certPEM []byte) (http.RoundTripper, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("apiserver: in-process transport: no certificate in PEM data")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("apiserver: in-process transport: %w", err)
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: s.cfg.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return nil, fmt.Errorf("apiserver: in-process transport: certificate of %q: %w", cert.Subject.CommonName, err)
	}
	return &inProcessTransport{s: s, cert: cert, chains: chains}, nil
}

type inProcessTransport struct {
	s      *Server
	cert   *x509.Certificate
	chains [][]*x509.Certificate
}

func (t *inProcessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.s.shuttingDown() {
		closeBody(req)
		return nil, errInProcessClosed
	}
	ctx, cancel := context.WithCancel(req.Context())
	sreq := req.Clone(ctx)
	sreq.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	sreq.RequestURI = req.URL.RequestURI()
	sreq.Host = req.URL.Host
	sreq.Proto, sreq.ProtoMajor, sreq.ProtoMinor = "HTTP/2.0", 2, 0
	sreq.RemoteAddr = "127.0.0.1:0"
	sreq.Close = false
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	state := &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, NegotiatedProtocol: "h2", PeerCertificates: []*x509.Certificate{t.cert}}
	if time.Now().Before(t.cert.NotAfter) {
		state.VerifiedChains = t.chains
	}
	sreq.TLS = state

	w := newInProcessWriter(cancel)
	// A client that gives up (its context ends) stops reading: writes
	// blocked on a full buffer must fail, as on a reset stream.
	w.body.stopAbort = context.AfterFunc(req.Context(), func() { w.body.abort(req.Context().Err()) })
	done := make(chan struct{})
	var aborted error // set before done is closed
	go func() {
		defer close(done)
		defer cancel()
		defer closeBody(req)
		defer w.finish()
		defer func() {
			// As net/http's server: a handler that panics (the filters
			// re-panic http.ErrAbortHandler) resets the stream rather
			// than taking the process down.
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					t.s.log.Info("panic serving in-process request", "path", sreq.URL.Path, "panic", fmt.Sprint(p))
				}
				aborted = fmt.Errorf("apiserver: in-process request aborted: %v", p)
				w.body.abort(aborted)
			}
		}()
		t.s.handler.ServeHTTP(w, sreq)
	}()
	select {
	case <-w.headerSent:
	case <-done:
		if aborted != nil {
			return nil, aborted
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.wroteHeader {
		// The handler returned without writing: an empty 200, as net/http.
		w.writeHeaderLocked(http.StatusOK)
	}
	resp := &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        w.sent,
		Body:          w.body,
		ContentLength: -1,
		Request:       req,
	}
	if n, err := strconv.ParseInt(w.sent.Get("Content-Length"), 10, 64); err == nil {
		resp.ContentLength = n
	}
	return resp, nil
}

// closeBody closes the request body, as RoundTrip must.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// inProcessWriter is the handler's ResponseWriter: the status and headers
// go to RoundTrip when first written, the body into a pipe its client
// reads.
type inProcessWriter struct {
	header     http.Header
	headerSent chan struct{} // closed when the header is written
	body       *inProcessBody

	mu          sync.Mutex
	wroteHeader bool
	status      int
	sent        http.Header // the header as written; guarded by mu
}

func newInProcessWriter(cancel context.CancelFunc) *inProcessWriter {
	w := &inProcessWriter{header: make(http.Header), headerSent: make(chan struct{})}
	w.body = &inProcessBody{cancel: cancel}
	w.body.cond.L = &w.body.mu
	return w
}

func (w *inProcessWriter) Header() http.Header { return w.header }

func (w *inProcessWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeaderLocked(code)
}

func (w *inProcessWriter) writeHeaderLocked(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader, w.status, w.sent = true, code, w.header.Clone()
	close(w.headerSent)
}

func (w *inProcessWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if !w.wroteHeader {
		if _, ok := w.header["Content-Type"]; !ok && len(p) > 0 {
			w.header.Set("Content-Type", http.DetectContentType(p))
		}
		w.writeHeaderLocked(http.StatusOK)
	}
	w.mu.Unlock()
	return w.body.write(p)
}

// Flush sends the header if it was not yet; written data reaches the
// reader at once.
func (w *inProcessWriter) Flush() { w.WriteHeader(http.StatusOK) }

// finish ends the body once the handler returned.
func (w *inProcessWriter) finish() { w.body.closeWrite() }

// inProcessBody is a pipe with a buffer: writes block only while
// inProcessBodyLimit bytes wait unread. Closing it (the client is done, a
// watch is stopped) cancels the handler's request context, as a reset
// stream does. The buffer is taken from a pool when data arrives and
// returned once it is read, so idle watches hold none.
type inProcessBody struct {
	mu        sync.Mutex
	cond      sync.Cond
	buf       *bytes.Buffer // unread data; nil when there is none
	werr      error         // set when the writer is done: io.EOF
	rerr      error         // set when the body is closed or the client gave up
	cancel    context.CancelFunc
	stopAbort func() bool
}

// bodyBuffers are the pipes' buffers, shared.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (b *inProcessBody) write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.buf != nil && b.buf.Len() >= inProcessBodyLimit && b.rerr == nil {
		b.cond.Wait()
	}
	if b.rerr != nil {
		return 0, io.ErrClosedPipe
	}
	if b.buf == nil {
		b.buf = bodyBuffers.Get().(*bytes.Buffer)
	}
	b.buf.Write(p)
	b.cond.Broadcast()
	return len(p), nil
}

// closeWrite marks the end of the body.
func (b *inProcessBody) closeWrite() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.werr == nil {
		b.werr = io.EOF
	}
	b.cond.Broadcast()
}

func (b *inProcessBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.buf == nil && b.werr == nil && b.rerr == nil {
		b.cond.Wait()
	}
	if b.rerr != nil {
		return 0, b.rerr
	}
	if b.buf == nil {
		b.stopAbort() // the whole body was read: nothing left to abort
		return 0, b.werr
	}
	n, _ := b.buf.Read(p)
	if b.buf.Len() == 0 {
		b.releaseLocked()
	}
	b.cond.Broadcast()
	return n, nil
}

// releaseLocked returns the buffer to the pool (unless a large response
// grew it past the limit). Called with mu held.
func (b *inProcessBody) releaseLocked() {
	if b.buf == nil {
		return
	}
	if b.buf.Cap() <= 2*inProcessBodyLimit {
		b.buf.Reset()
		bodyBuffers.Put(b.buf)
	}
	b.buf = nil
}

// Close ends the response: the handler's context is cancelled and its
// further writes fail.
func (b *inProcessBody) Close() error {
	b.cancel() // first: a handler whose write fails finds its context done
	b.abort(errBodyClosed)
	b.stopAbort()
	return nil
}

// errBodyClosed is what reads of a closed body return, as net/http's.
var errBodyClosed = errors.New("http: read on closed response body")

// abort fails further reads with err and further writes.
func (b *inProcessBody) abort(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rerr == nil {
		b.rerr = err
	}
	b.releaseLocked()
	b.cond.Broadcast()
}
