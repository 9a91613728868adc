package apiserver

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A response longer than streamAfter reaches the client while its handler
// still runs, with the handler's header and code; a timeout after that
// cuts the stream instead of letting a short body pass for a whole one.
func TestTimeoutWriterStreamsLongResponses(t *testing.T) {
	s := &Server{handlers: newHandlerPool()}
	release := make(chan struct{})
	long := bytes.Repeat([]byte("a"), streamAfter+1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		timeout, wait := time.Minute, (<-chan struct{})(release)
		if r.URL.Query().Has("short") {
			timeout, wait = 300*time.Millisecond, nil // only the timeout ends it
		}
		s.withTimeout(w, r, timeout, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Test", "kept")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write(long)
			select {
			case <-wait:
			case <-r.Context().Done():
			}
			_, _ = w.Write([]byte("end"))
		})
	}))
	defer srv.Close()

	resp, err := http.Get(srv.URL) // returns once the header is in: the handler is still blocked
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Test") != "kept" {
		t.Errorf("streamed response: %d, X-Test %q; want 201 and the handler's header", resp.StatusCode, resp.Header.Get("X-Test"))
	}
	first := make([]byte, len(long))
	if _, err := io.ReadFull(resp.Body, first); err != nil || !bytes.Equal(first, long) {
		t.Fatalf("first %d bytes before the handler finished: %v", len(long), err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(rest) != "end" {
		t.Errorf("rest of the body = %q, %v; want \"end\"", rest, err)
	}

	resp, err = http.Get(srv.URL + "?short")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("a response cut by its timeout read as complete (%d bytes)", len(body))
	}
}

// A response within streamAfter is held back whole, so that a timeout can
// still replace it.
func TestTimeoutWriterHoldsShortResponses(t *testing.T) {
	s := &Server{handlers: newHandlerPool()}
	wrote := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.withTimeout(w, r, time.Minute, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("short"))
			close(wrote)
			<-release
		})
	}))
	defer srv.Close()
	got := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- resp
	}()
	<-wrote
	select {
	case <-got:
		t.Fatal("a short response was sent before its handler finished")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	resp, ok := <-got
	if !ok {
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "short" {
		t.Errorf("body = %q, %v", body, err)
	}
}
