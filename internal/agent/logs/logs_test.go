package logs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)

// rec formats one CRI log record written sec seconds after t0.
func rec(sec int, stream, tag, content string) string {
	return fmt.Sprintf("%s %s %s %s\n", t0.Add(time.Duration(sec)*time.Second).Format(time.RFC3339Nano), stream, tag, content)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRead(t *testing.T) {
	t.Parallel()
	file := rec(0, "stdout", "F", "one") +
		rec(1, "stderr", "F", "two") +
		rec(2, "stdout", "P", "thr") +
		rec(3, "stdout", "P", "e") +
		rec(4, "stderr", "F", "four") +
		rec(5, "stdout", "F", "e") +
		"garbage line\n" +
		rec(6, "stdout", "F:x", "") +
		rec(7, "stdout", "F", "seven has  spaces ")
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"all", Options{}, "one\ntwo\nthrefour\ne\n\nseven has  spaces \n"},
		{"tail 0", Options{TailLines: ptr[int64](0)}, ""},
		{"tail 1", Options{TailLines: ptr[int64](1)}, "seven has  spaces \n"},
		{"tail 3 counts the lines of both streams", Options{TailLines: ptr[int64](3)}, "e\n\nseven has  spaces \n"},
		{"tail 4 takes the partial records of the line", Options{TailLines: ptr[int64](4)}, "threfour\ne\n\nseven has  spaces \n"},
		{"tail more than there is", Options{TailLines: ptr[int64](100)}, "one\ntwo\nthrefour\ne\n\nseven has  spaces \n"},
		{"since", Options{SinceTime: ptr(t0.Add(4 * time.Second))}, "four\ne\n\nseven has  spaces \n"},
		{"since the future", Options{SinceTime: ptr(t0.Add(time.Hour))}, ""},
		{"limit", Options{LimitBytes: ptr[int64](6)}, "one\ntw"},
		{"limit beyond", Options{LimitBytes: ptr[int64](1000)}, "one\ntwo\nthrefour\ne\n\nseven has  spaces \n"},
		{"timestamps", Options{Timestamps: true, TailLines: ptr[int64](4)},
			"2026-11-22T07:00:02.000000000Z thre2026-11-22T07:00:04.000000000Z four\n" +
				"e\n" + // continues the stdout line started at 07:00:02
				"2026-11-22T07:00:06.000000000Z \n" +
				"2026-11-22T07:00:07.000000000Z seven has  spaces \n"},
		{"tail and limit and timestamps", Options{Timestamps: true, TailLines: ptr[int64](1), LimitBytes: ptr[int64](35)},
			"2026-11-22T07:00:07.000000000Z seve"},
	}
	path := writeFile(t, file)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Read(context.Background(), path, tc.opts, &out, nil); err != nil {
				t.Fatalf("Read: %v", err)
			}
			if diff := cmp.Diff(tc.want, out.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadMissingFile(t *testing.T) {
	t.Parallel()
	err := Read(context.Background(), filepath.Join(t.TempDir(), "absent.log"), Options{}, &bytes.Buffer{}, nil)
	if !os.IsNotExist(err) && !strings.Contains(fmt.Sprint(err), "no such file") {
		t.Errorf("Read(absent) = %v, want a not-exist error", err)
	}
}

// TestTailLarge crosses the chunks tailOffset reads backwards.
func TestTailLarge(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	const n = 20000
	for i := range n {
		if i%7 == 0 {
			b.WriteString(rec(i, "stdout", "P", "part-"))
		}
		b.WriteString(rec(i, "stdout", "F", fmt.Sprintf("line %d %s", i, strings.Repeat("x", i%100))))
	}
	path := writeFile(t, b.String())
	for _, tail := range []int64{1, 2, 1000, 2500, n - 1, n, n + 5} {
		var out bytes.Buffer
		if err := Read(context.Background(), path, Options{TailLines: &tail}, &out, nil); err != nil {
			t.Fatalf("Read(tail %d): %v", tail, err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		want := min(tail, n)
		if int64(len(lines)) != want {
			t.Fatalf("tail %d: %d lines, want %d", tail, len(lines), want)
		}
		first := n - want
		wantFirst := fmt.Sprintf("line %d %s", first, strings.Repeat("x", int(first)%100))
		if first%7 == 0 {
			wantFirst = "part-" + wantFirst
		}
		if lines[0] != wantFirst {
			t.Errorf("tail %d: first line %q, want %q", tail, lines[0], wantFirst)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a reader and a writer goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		<-time.After(10 * time.Millisecond)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// TestFollow follows a file that grows and is rotated, until
// the container exits.
func TestFollow(t *testing.T) {
	t.Parallel()
	path := writeFile(t, rec(0, "stdout", "F", "a")+rec(1, "stdout", "F", "b"))
	var running atomic.Bool
	running.Store(true)
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Read(context.Background(), path, Options{Follow: true, TailLines: ptr[int64](1), PollInterval: 5 * time.Millisecond},
			&out, running.Load)
	}()
	expect := func(want string) {
		t.Helper()
		waitFor(t, "output "+want, func() error {
			if got := out.String(); got != want {
				return fmt.Errorf("got %q", got)
			}
			return nil
		})
	}
	expect("b\n")
	// A record written in two writes, as a slow writer might.
	full := rec(2, "stdout", "F", "c")
	appendFile(t, path, full[:10])
	appendFile(t, path, full[10:])
	expect("b\nc\n")
	// Rotation: the file is renamed, the runtime writes a last record to
	// the old one, then reopens the path.
	if err := os.Rename(path, path+".20261122-070000"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path+".20261122-070000", rec(3, "stdout", "F", "d"))
	appendFile(t, path, rec(4, "stderr", "F", "e"))
	expect("b\nc\nd\ne\n")
	select {
	case err := <-done:
		t.Fatalf("Read returned while the container runs: %v", err)
	default:
	}
	// The container writes its last line and exits: Read sends it and
	// returns.
	appendFile(t, path, rec(5, "stdout", "F", "f"))
	running.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read still following after the container exited")
	}
	if got, want := out.String(), "b\nc\nd\ne\nf\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestFollowCanceled(t *testing.T) {
	t.Parallel()
	path := writeFile(t, rec(0, "stdout", "F", "a"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out syncBuffer
	go func() {
		done <- Read(ctx, path, Options{Follow: true}, &out, func() bool { return true })
	}()
	waitFor(t, "first line", func() error {
		if out.String() != "a\n" {
			return fmt.Errorf("output %q", out.String())
		}
		return nil
	})
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("Read = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after cancel")
	}
}
