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
	tw := &timeoutWriter{w: w, header: http.Header{}, buf: s.handlers.buffer()}
	done := make(chan struct{})
	panicked := make(chan any, 1)
	s.handlers.run(func() {
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
	})
	select {
	case <-done:
		select {
		case p := <-panicked:
			panic(p)
		default:
		}
		tw.mu.Lock()
		defer tw.mu.Unlock()
		if !tw.committed {
			tw.commitLocked()
		}
		s.handlers.reuse(tw.buf) // the handler is done with it
	case <-ctx.Done():
		tw.mu.Lock()
		tw.timedOut = true
		committed := tw.committed
		tw.mu.Unlock()
		if committed {
			// Part of the response is on its way: cut the stream, so that
			// the client sees a broken response rather than a short one
			// (upstream's timeout filter does the same).
			panic(http.ErrAbortHandler)
		}
		s.writeError(w, errRequestTimeout)
	}
}

// handlerPool runs request handlers on goroutines that outlive one
// request. A fresh goroutine starts with a small stack, and a create's
// deep walks (decoding, managedFields tracking) grow it several times by
// copying; a reused goroutine keeps the stack it grew. Idle workers exit
// after workerIdle.
type handlerPool struct {
	tasks chan func()
	// bufs holds response buffers for reuse (see buffer and reuse).
	bufs sync.Pool
}

// maxPooledBuffer is the largest response buffer kept for reuse; a large
// list's would otherwise stay in memory.
const maxPooledBuffer = 64 << 10

// buffer returns an empty response buffer.
func (p *handlerPool) buffer() *bytes.Buffer {
	if b, ok := p.bufs.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

// reuse takes back a buffer no one uses any more.
func (p *handlerPool) reuse(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuffer {
		b.Reset()
		p.bufs.Put(b)
	}
}

// workerIdle is how long a pooled handler goroutine waits for work.
const workerIdle = 10 * time.Second

func newHandlerPool() *handlerPool {
	return &handlerPool{tasks: make(chan func())}
}

// run starts f on an idle worker, or on a new one if none is waiting.
func (p *handlerPool) run(f func()) {
	select {
	case p.tasks <- f:
	default:
		go p.work(f)
	}
}

func (p *handlerPool) work(f func()) {
	f()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case f := <-p.tasks:
			f()
			idle.Reset(workerIdle)
		case <-idle.C:
			return
		}
	}
}

var errRequestTimeout error = &timeoutError{}

type timeoutError struct{}

func (*timeoutError) Error() string { return "request timed out" }

// Status makes timeoutError an APIStatus.
func (*timeoutError) Status() metav1.Status { return timeoutStatus() }

// streamAfter is how much of a response timeoutWriter holds back: a
// response that ends within it can still be replaced by the timeout's
// error; a longer one (a large list) streams from then on rather than
// being held whole in memory, and a timeout cuts it.
const streamAfter = 64 << 10

// timeoutWriter holds a response back until the handler finishes or the
// response outgrows streamAfter, then writes through to w. Guarded by mu;
// writes after timedOut fail.
type timeoutWriter struct {
	mu        sync.Mutex
	w         http.ResponseWriter // the real writer; written once committed
	header    http.Header
	buf       *bytes.Buffer
	code      int
	committed bool // header and buf are on w; writes go straight there
	timedOut  bool
}

// commitLocked sends the header, the code and what buf holds to w.
// Called with mu held.
func (tw *timeoutWriter) commitLocked() {
	dst := tw.w.Header()
	for k, v := range tw.header {
		dst[k] = v
	}
	if tw.code == 0 {
		tw.code = http.StatusOK
	}
	tw.w.WriteHeader(tw.code)
	if tw.buf.Len() > 0 {
		_, _ = tw.w.Write(tw.buf.Bytes()) // a failed write fails the next ones too
	}
	tw.committed = true
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
	if !tw.committed && tw.buf.Len()+len(b) > streamAfter {
		tw.commitLocked()
	}
	if tw.committed {
		return tw.w.Write(b)
	}
	return tw.buf.Write(b)
}
