package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// withTimeout runs next with a deadline. If next has not finished when the
// deadline passes, the client gets a 504 Timeout Status and whatever next
// writes afterwards is discarded. next's response is buffered, so this is
// only for non-long-running requests. A panic in next is re-raised on the
// calling goroutine.
func (s *Server) withTimeout(w http.ResponseWriter, r *http.Request, timeout time.Duration, next func(http.ResponseWriter, *http.Request)) {
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	tw := &timeoutWriter{header: http.Header{}}
	done := make(chan struct{})
	panicked := make(chan any, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panicked <- p
				} else {
					// Keep the stack of the goroutine that panicked.
					panicked <- fmt.Sprintf("%v\n%s", p, debug.Stack())
				}
			}
			close(done)
		}()
		next(tw, r.WithContext(ctx))
	}()
	select {
	case <-done:
		select {
		case p := <-panicked:
			panic(p)
		default:
		}
		tw.mu.Lock()
		defer tw.mu.Unlock()
		dst := w.Header()
		for k, v := range tw.header {
			dst[k] = v
		}
		code := tw.code
		if code == 0 {
			code = http.StatusOK
		}
		w.WriteHeader(code)
		_, _ = w.Write(tw.buf.Bytes())
	case <-ctx.Done():
		tw.mu.Lock()
		tw.timedOut = true
		tw.mu.Unlock()
		s.writeError(w, errRequestTimeout)
	}
}

var errRequestTimeout error = &timeoutError{}

type timeoutError struct{}

func (*timeoutError) Error() string { return "request timed out" }

// Status makes timeoutError an APIStatus.
func (*timeoutError) Status() metav1.Status { return timeoutStatus() }

// timeoutWriter buffers a response until the handler finishes. Guarded by
// mu; writes after timedOut are dropped.
type timeoutWriter struct {
	mu       sync.Mutex
	header   http.Header
	buf      bytes.Buffer
	code     int
	timedOut bool
}

func (tw *timeoutWriter) Header() http.Header { return tw.header }

func (tw *timeoutWriter) WriteHeader(code int) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.code == 0 {
		tw.code = code
	}
}

func (tw *timeoutWriter) Write(b []byte) (int, error) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.timedOut {
		return 0, http.ErrHandlerTimeout
	}
	if tw.code == 0 {
		tw.code = http.StatusOK
	}
	return tw.buf.Write(b)
}
