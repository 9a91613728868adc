package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// DefaultPollInterval is how often Read looks for new log records when
// following a file that has none.
const DefaultPollInterval = 100 * time.Millisecond

// TimestampFormat is the time prefix Read writes with Options.Timestamps:
// RFC 3339 with nanoseconds always nine digits, as the kubelet writes it.
const TimestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Options select what Read sends. They mirror v1.PodLogOptions; Previous
// is the caller's business (it picks the file), and SinceSeconds is turned
// into SinceTime by the caller.
type Options struct {
	// Follow keeps reading as the file grows until stillRunning reports
	// false and the file was read to its end.
	Follow bool
	// TailLines, when set, starts at the TailLines-th last line.
	TailLines *int64
	// SinceTime, when set, skips records older than it.
	SinceTime *time.Time
	// Timestamps prefixes every line with its time in TimestampFormat and
	// a space.
	Timestamps bool
	// LimitBytes, when set, stops after that many bytes of output.
	LimitBytes *int64
	// PollInterval overrides DefaultPollInterval (tests).
	PollInterval time.Duration
}

// Read writes the log in the CRI log file at path to stdout as opts say.
// stillRunning, called only with opts.Follow, reports whether the
// container may still write to the file; nil means it does not. Read
// returns nil when it has sent everything (or LimitBytes), ctx.Err() when
// ctx ends first, and an error when the file cannot be read or stdout
// fails. Records that do not parse are skipped. stdout must not be shared
// with concurrent writers; Read buffers its writes and flushes them
// whenever it reaches the end of the file.
func Read(ctx context.Context, path string, opts Options, stdout io.Writer, stillRunning func() bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("logs: opening %s: %w", path, err)
	}
	var next *os.File // the file after a rotation, once seen
	defer func() {    // f changes on rotation
		f.Close()
		if next != nil {
			next.Close()
		}
	}()
	if opts.TailLines != nil {
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		off, err := tailOffset(f, fi.Size(), *opts.TailLines)
		if err != nil {
			return fmt.Errorf("logs: finding the last %d lines of %s: %w", *opts.TailLines, path, err)
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return fmt.Errorf("logs: %w", err)
		}
	}
	poll := opts.PollInterval
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	w := &writer{opts: opts}
	if opts.LimitBytes != nil {
		w.left = *opts.LimitBytes
		w.limited = true
	}
	w.out = bufio.NewWriterSize(stdout, 32<<10)

	r := bufio.NewReaderSize(f, 32<<10)
	var pending []byte // a record read up to EOF without its newline yet
	var timer *time.Timer
	finishing := false // the container has exited: read to the end once more
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, rerr := r.ReadSlice('\n')
		if errors.Is(rerr, bufio.ErrBufferFull) {
			pending = append(pending, line...)
			continue
		}
		if rerr == nil {
			if len(pending) > 0 {
				pending = append(pending, line...)
				line, pending = pending, pending[:0]
			}
			if err := w.record(line); err != nil {
				return w.done(err)
			}
			continue
		}
		if rerr != io.EOF {
			return fmt.Errorf("logs: reading %s: %w", path, rerr)
		}
		pending = append(pending, line...)
		// At the end of the file.
		if !opts.Follow || finishing {
			if len(pending) > 0 {
				// The writer is gone: its last record will not be
				// finished.
				if err := w.record(pending); err != nil {
					return w.done(err)
				}
			}
			return w.done(nil)
		}
		if err := w.out.Flush(); err != nil {
			return fmt.Errorf("logs: writing: %w", err)
		}
		// Rotated or truncated?
		if next != nil {
			// The old file was read to its end twice, the second time
			// after the rotation was seen: go on with the new one. A
			// record cut at the rotation is dropped.
			f.Close()
			f, next, pending = next, nil, pending[:0]
			r.Reset(f)
			continue
		}
		if nf, ok, err := reopen(f, path); err != nil {
			return err
		} else if ok {
			// The runtime may have written to the old file until it
			// reopened: read it to its end once more first.
			next = nf
			continue
		}
		if truncated(f) {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("logs: %w", err)
			}
			r.Reset(f)
			pending = pending[:0]
			continue
		}
		if stillRunning == nil || !stillRunning() {
			// Whatever the container wrote before it exited is in
			// the file now; one more pass reads it.
			finishing = true
			continue
		}
		if timer == nil {
			timer = time.NewTimer(poll)
			defer timer.Stop()
		} else {
			timer.Reset(poll)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// reopen returns a new file when path names another file than f (log
// rotation). A missing path is not an error: the runtime has not created
// the new file yet.
func reopen(f *os.File, path string) (*os.File, bool, error) {
	cur, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("logs: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil || os.SameFile(cur, fi) {
		return nil, false, nil
	}
	nf, err := os.Open(path)
	if err != nil {
		return nil, false, nil
	}
	return nf, true, nil
}

// truncated reports whether f is now shorter than the offset read so far.
func truncated(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	off, err := f.Seek(0, io.SeekCurrent)
	return err == nil && fi.Size() < off
}

// errLimit stops Read when LimitBytes are written.
var errLimit = errors.New("logs: limit reached")

// writer turns records into output. Not safe for concurrent use.
type writer struct {
	opts    Options
	out     *bufio.Writer
	limited bool
	left    int64 // bytes still allowed when limited
	// midLine[i] is set when stream i (0 stdout, 1 stderr) ended with a
	// partial record, so its next record continues a line.
	midLine [2]bool
}

// record writes one raw record (with or without its newline).
func (w *writer) record(line []byte) error {
	rec, ok := parse(line)
	if !ok {
		return nil
	}
	si := 0
	if rec.stream == "stderr" {
		si = 1
	}
	cont := w.midLine[si]
	w.midLine[si] = rec.partial
	if w.opts.SinceTime != nil && rec.time.Before(*w.opts.SinceTime) {
		return nil
	}
	if w.opts.Timestamps && !cont {
		if err := w.write([]byte(rec.time.Format(TimestampFormat) + " ")); err != nil {
			return err
		}
	}
	if err := w.write(rec.content); err != nil {
		return err
	}
	if !rec.partial {
		return w.write([]byte{'\n'})
	}
	return nil
}

func (w *writer) write(b []byte) error {
	if w.limited {
		if w.left <= 0 {
			return errLimit
		}
		if int64(len(b)) > w.left {
			b = b[:w.left]
		}
		w.left -= int64(len(b))
	}
	if _, err := w.out.Write(b); err != nil {
		return fmt.Errorf("logs: writing: %w", err)
	}
	if w.limited && w.left == 0 {
		return errLimit
	}
	return nil
}

// done flushes the output and maps errLimit to success.
func (w *writer) done(err error) error {
	if errors.Is(err, errLimit) {
		err = nil
	}
	if ferr := w.out.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("logs: writing: %w", ferr)
	}
	return err
}

// record is one parsed CRI log record.
type record struct {
	time    time.Time
	stream  string
	partial bool
	content []byte // without the newline
}

// parse splits a raw record; ok is false for a malformed one.
func parse(line []byte) (record, bool) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return record{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return record{}, false
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok || string(stream) != "stdout" && string(stream) != "stderr" {
		return record{}, false
	}
	tags, content, _ := bytes.Cut(rest, []byte{' '})
	tag, _, _ := bytes.Cut(tags, []byte{':'})
	var partial bool
	switch string(tag) {
	case "P":
		partial = true
	case "F":
	default:
		return record{}, false
	}
	return record{time: t, stream: string(stream), partial: partial, content: content}, true
}

// isFull reports whether the raw record line ends a line of output.
func isFull(line []byte) bool {
	rec, ok := parse(line)
	return ok && !rec.partial
}

// tailChunk is how much tailOffset reads at a time.
const tailChunk = 32 << 10

// tailOffset returns the offset of the first record of the n-th last line
// of output in the first size bytes of f, reading backwards in chunks. A
// line is the records up to and including a full (F) one; partial records
// after the last full one (a line being written) come along.
func tailOffset(f io.ReaderAt, size, n int64) (int64, error) {
	if n < 0 {
		return 0, nil
	}
	pos := size     // data holds the bytes from pos on
	var data []byte // not yet split into records
	var count int64
	for {
		// Split off records from the end of data; a record is known
		// whole when a newline precedes it, or it starts the file.
		for len(data) > 0 {
			end := len(data)
			j := bytes.LastIndexByte(data[:end-1], '\n')
			if j < 0 && pos > 0 {
				break // need more bytes before it
			}
			if isFull(data[j+1 : end]) {
				count++
				if count > n {
					return pos + int64(end), nil
				}
			}
			data = data[:j+1]
		}
		if pos == 0 {
			return 0, nil
		}
		rd := min(int64(tailChunk), pos)
		pos -= rd
		buf := make([]byte, rd, rd+int64(len(data)))
		if _, err := f.ReadAt(buf, pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		data = append(buf, data...)
	}
}
