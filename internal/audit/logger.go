package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Logger.
type Config struct {
	// Path is the log file; "-" means standard output (never rotated nor
	// closed). Required. The file and its directory are created private
	// (0600, 0700): request bodies may hold anything.
	Path string
	// Level is the most the policy records; empty means Metadata.
	Level Level
	// MaxSizeMB rotates the file before it would grow past this size;
	// 0 means never.
	MaxSizeMB int
	// MaxBackups is how many rotated files are kept: Path.1 (newest) to
	// Path.N. 0 keeps none: rotation truncates.
	MaxBackups int
	// QueueSize bounds the events waiting for the writer; 0 means
	// DefaultQueueSize. A full queue drops events.
	QueueSize int
	// Logger receives the Logger's own reports (drops, write errors);
	// nil discards them.
	Logger *slog.Logger
}

// DefaultQueueSize is the queue bound when Config.QueueSize is 0:
// upstream's default buffer size for its batching backends.
const DefaultQueueSize = 10000

// dropLogInterval spaces the log records about drops and write errors.
const dropLogInterval = 10 * time.Second

// Logger writes Events as JSON lines on a goroutine of its own. Log is
// safe for concurrent use and never blocks on I/O; Close flushes and
// stops. A nil *Logger logs nothing.
//
//	New ──> (Log)* ──> Close ──> closed: Log drops silently
type Logger struct {
	level Level
	log   *slog.Logger

	// mu guards closed and sending on queue against its closing.
	mu     sync.RWMutex
	closed bool
	queue  chan []byte
	done   chan struct{}
	// closeErr is the writer's last error, set before done is closed.
	closeErr error

	dropped     atomic.Uint64
	lastDropLog atomic.Int64 // unix nanos
	events      prometheus.Counter
	errors      prometheus.Counter

	out *output // only the writer goroutine uses it
}

// New opens the log and starts its writer. Callers must Close it.
func New(cfg Config) (*Logger, error) {
	return newLogger(cfg, nil, int64(cfg.MaxSizeMB)<<20)
}

// newLogger is New with the output replaced by w (when not nil, for
// tests) and the rotation size in bytes.
func newLogger(cfg Config, w io.Writer, maxBytes int64) (*Logger, error) {
	lvl := cfg.Level
	if lvl == "" {
		lvl = LevelMetadata
	}
	if _, ok := levelOrder[lvl]; !ok {
		return nil, fmt.Errorf("audit: unknown level %q", lvl)
	}
	if cfg.Path == "" && w == nil {
		return nil, errors.New("audit: Config.Path is required")
	}
	qs := cfg.QueueSize
	if qs <= 0 {
		qs = DefaultQueueSize
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	out := &output{path: cfg.Path, maxBytes: maxBytes, backups: max(cfg.MaxBackups, 0)}
	switch {
	case w != nil:
		out.w = w
		out.path = ""
	case cfg.Path == "-":
		out.w = os.Stdout
		out.path = ""
	default:
		if err := out.open(); err != nil {
			return nil, err
		}
	}
	out.bw = bufio.NewWriterSize(out.w, 64<<10)
	l := &Logger{
		level: lvl,
		log:   logger.With("component", "audit"),
		queue: make(chan []byte, qs),
		done:  make(chan struct{}),
		out:   out,
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apiserver_audit_event_total",
			Help: "Counter of audit events generated and sent to the audit backend.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "apiserver_audit_error_total",
			Help:        "Counter of audit events that failed to be audited properly (dropped on a full queue or not written).",
			ConstLabels: prometheus.Labels{"plugin": "log"},
		}),
	}
	go l.run()
	return l, nil
}

// Level returns the configured level (the most any request gets).
func (l *Logger) Level() Level {
	if l == nil {
		return LevelNone
	}
	return l.level
}

// Log queues ev for writing. It marshals ev before returning, so the
// caller may reuse ev. When the queue is full the event is dropped and
// counted. Log after Close does nothing.
func (l *Logger) Log(ev *Event) {
	if l == nil || ev == nil {
		return
	}
	b, err := appendJSON(getBuffer(), ev)
	if err != nil {
		// Only an invalid RawMessage can fail; never lose the metadata.
		l.log.Info("audit event not encodable, bodies dropped", "auditID", ev.AuditID, "err", err)
		e := *ev
		e.RequestObject, e.ResponseObject = nil, nil
		if b, err = appendJSON(getBuffer(), &e); err != nil {
			l.fail("audit event not encodable", err)
			return
		}
	}
	b = append(b, '\n')
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	select {
	case l.queue <- b:
		l.events.Inc()
	default:
		l.dropped.Add(1)
		l.fail("audit queue full, events dropped", nil)
	}
}

// fail counts one lost event and logs, at most every dropLogInterval.
func (l *Logger) fail(msg string, err error) {
	l.errors.Inc()
	now := time.Now().UnixNano()
	last := l.lastDropLog.Load()
	if now-last < int64(dropLogInterval) || !l.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	if err != nil {
		l.log.Info(msg, "err", err, "dropped", l.dropped.Load())
	} else {
		l.log.Info(msg, "dropped", l.dropped.Load())
	}
}

// Dropped returns how many events a full queue has dropped so far.
func (l *Logger) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Collectors returns the Logger's metrics for the API server's registry:
// apiserver_audit_event_total and apiserver_audit_error_total{plugin="log"}.
func (l *Logger) Collectors() []prometheus.Collector {
	if l == nil {
		return nil
	}
	return []prometheus.Collector{l.events, l.errors}
}

// Close stops accepting events, writes the queued ones and closes the
// file. It returns the last write error, if any. Safe to call more than
// once; a nil Logger returns nil.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	<-l.done
	return l.closeErr
}

// run is the writer goroutine: it writes queued lines, flushing whenever
// the queue is empty so that the file is never far behind.
func (l *Logger) run() {
	var lastErr error
	for b := range l.queue {
		if err := l.out.write(b); err != nil {
			lastErr = err
			l.fail("writing the audit log failed", err)
		}
		putBuffer(b) // the output copied it
		if len(l.queue) == 0 {
			if err := l.out.flush(); err != nil {
				lastErr = err
				l.fail("writing the audit log failed", err)
			}
		}
	}
	if err := l.out.close(); err != nil {
		lastErr = err
	}
	l.closeErr = lastErr
	close(l.done)
}

// buffers holds the encoding buffers of events already written, so that
// a busy server does not allocate one per request. Buffers grown past
// maxPooledBuffer (events with large bodies) are left to the collector.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBuffer = 16 << 10

func getBuffer() []byte { return (*buffers.Get().(*[]byte))[:0] }

func putBuffer(b []byte) {
	if cap(b) <= maxPooledBuffer {
		buffers.Put(&b)
	}
}

// output is the file and its rotation. Only the writer goroutine uses it.
type output struct {
	path     string // "" for a writer that is not a file of ours
	maxBytes int64  // 0: no rotation
	backups  int
	f        *os.File
	w        io.Writer
	bw       *bufio.Writer
	size     int64 // bytes in the current file, buffered ones included
}

func (o *output) open() error {
	if err := os.MkdirAll(filepath.Dir(o.path), 0o700); err != nil {
		return fmt.Errorf("audit: creating the log directory: %w", err)
	}
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: opening the log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("audit: opening the log: %w", err)
	}
	o.f, o.w, o.size = f, f, st.Size()
	if o.bw != nil {
		o.bw.Reset(f)
	}
	return nil
}

func (o *output) write(b []byte) error {
	if o.path != "" && o.f == nil {
		if err := o.open(); err != nil { // a failed rotation: try again
			return err
		}
	}
	if o.path != "" && o.maxBytes > 0 && o.size > 0 && o.size+int64(len(b)) > o.maxBytes {
		if err := o.rotate(); err != nil {
			return err
		}
	}
	n, err := o.bw.Write(b)
	o.size += int64(n)
	if err != nil {
		o.bw.Reset(o.w) // bufio's errors are sticky; lose the buffer, not the log
		return fmt.Errorf("audit: writing the log: %w", err)
	}
	return nil
}

// flush writes the buffer out; after an error the buffer is lost.
func (o *output) flush() error {
	if err := o.bw.Flush(); err != nil {
		o.bw.Reset(o.w)
		return fmt.Errorf("audit: writing the log: %w", err)
	}
	return nil
}

// rotate closes the file, shifts Path.i to Path.i+1 (dropping the
// oldest), renames Path to Path.1 and opens a new Path.
func (o *output) rotate() error {
	if err := o.close(); err != nil {
		return err
	}
	if o.backups == 0 {
		if err := os.Remove(o.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: rotating the log: %w", err)
		}
	} else {
		for i := o.backups - 1; i >= 1; i-- {
			err := os.Rename(o.path+"."+strconv.Itoa(i), o.path+"."+strconv.Itoa(i+1))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("audit: rotating the log: %w", err)
			}
		}
		if err := os.Rename(o.path, o.path+".1"); err != nil {
			return fmt.Errorf("audit: rotating the log: %w", err)
		}
	}
	return o.open()
}

// close flushes and closes a file of ours (only flushes otherwise).
func (o *output) close() error {
	err := o.flush()
	if o.f != nil {
		if cerr := o.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("audit: closing the log: %w", cerr)
		}
		o.f = nil
	}
	return err
}
