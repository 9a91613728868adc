package cri

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync"
)

// FakeStreaming is a Fake with the CRI's streaming calls (Exec, Attach,
// PortForward). It is a separate type because Fake's Exec field (which
// answers ExecSync) takes the name a method would need; the embedded Fake
// is the same runtime, so a test drives it as usual.
//
// Like containerd, the calls check the container or sandbox and hand out
// a URL on a streaming server: BaseURL (set with SetStreamingURL) plus
// "/exec/<n>", "/attach/<n>" or "/portforward/<n>", <n> counting calls.
// Requests records every session handed out, in order. Safe for concurrent
// use.
type FakeStreaming struct {
	*Fake

	mu       sync.Mutex
	base     string           // guarded by mu
	sessions []StreamingEntry // guarded by mu
}

// StreamingEntry is one session FakeStreaming handed out: exactly one of
// Exec, Attach and PortForward is set.
type StreamingEntry struct {
	URL         string
	Exec        *ExecRequest
	Attach      *AttachRequest
	PortForward *PortForwardEntry
}

// PortForwardEntry is a PortForward call.
type PortForwardEntry struct {
	SandboxID string
	Ports     []int32
}

// NewFakeStreaming returns f with streaming calls answered with URLs under
// baseURL (like "http://127.0.0.1:36123").
func NewFakeStreaming(f *Fake, baseURL string) *FakeStreaming {
	return &FakeStreaming{Fake: f, base: baseURL}
}

// SetStreamingURL changes the base of the URLs later calls return.
func (f *FakeStreaming) SetStreamingURL(baseURL string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.base = baseURL
}

// Sessions returns the sessions handed out so far, oldest first.
func (f *FakeStreaming) Sessions() []StreamingEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sessions)
}

func (f *FakeStreaming) session(kind string, e StreamingEntry) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.base == "" {
		return "", fmt.Errorf("cri: %s: streaming server is not configured", kind)
	}
	u, err := url.JoinPath(f.base, kind, fmt.Sprint(len(f.sessions)+1))
	if err != nil {
		return "", fmt.Errorf("cri: %s: %w", kind, err)
	}
	e.URL = u
	f.sessions = append(f.sessions, e)
	return u, nil
}

// runningContainer checks that id is a running container, as containerd
// does before an exec or attach.
func (f *FakeStreaming) runningContainer(op, id string) error {
	f.Fake.mu.Lock()
	defer f.Fake.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return notFound(op, id)
	}
	if c.c.State != ContainerRunning {
		return fmt.Errorf("cri: %s %q: container is not running", op, id)
	}
	return nil
}

// Exec implements the CRI's Exec.
func (f *FakeStreaming) Exec(_ context.Context, req ExecRequest) (string, error) {
	if err := f.runningContainer("exec in container", req.ContainerID); err != nil {
		return "", err
	}
	if len(req.Cmd) == 0 {
		return "", fmt.Errorf("cri: exec in container %q: no command", req.ContainerID)
	}
	if err := checkStreams(req.TTY, req.Stdin, req.Stdout, req.Stderr); err != nil {
		return "", fmt.Errorf("cri: exec in container %q: %w", req.ContainerID, err)
	}
	req.Cmd = slices.Clone(req.Cmd)
	return f.session("exec", StreamingEntry{Exec: &req})
}

// Attach implements the CRI's Attach.
func (f *FakeStreaming) Attach(_ context.Context, req AttachRequest) (string, error) {
	if err := f.runningContainer("attaching to container", req.ContainerID); err != nil {
		return "", err
	}
	if err := checkStreams(req.TTY, req.Stdin, req.Stdout, req.Stderr); err != nil {
		return "", fmt.Errorf("cri: attaching to container %q: %w", req.ContainerID, err)
	}
	return f.session("attach", StreamingEntry{Attach: &req})
}

// PortForward implements the CRI's PortForward: the sandbox must exist and
// be Ready.
func (f *FakeStreaming) PortForward(_ context.Context, sandboxID string, ports []int32) (string, error) {
	f.Fake.mu.Lock()
	s, ok := f.sandboxes[sandboxID]
	ready := ok && s.sb.State == SandboxReady
	f.Fake.mu.Unlock()
	if !ok {
		return "", notFound("port-forward to sandbox", sandboxID)
	}
	if !ready {
		return "", fmt.Errorf("cri: port-forward to sandbox %q: sandbox is not ready", sandboxID)
	}
	return f.session("portforward", StreamingEntry{PortForward: &PortForwardEntry{SandboxID: sandboxID, Ports: slices.Clone(ports)}})
}

// checkStreams applies the CRI's rules for the stream flags of exec and
// attach.
func checkStreams(tty, stdin, stdout, stderr bool) error {
	if !stdin && !stdout && !stderr {
		return fmt.Errorf("one of stdin, stdout or stderr must be set")
	}
	if tty && stderr {
		return fmt.Errorf("tty and stderr cannot both be set")
	}
	return nil
}
