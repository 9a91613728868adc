package cri

import (
	"context"
	"slices"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The CRI's streaming calls do not stream themselves: each returns the URL
// of a one-time session on the runtime's streaming server (containerd's,
// on 127.0.0.1), which the kubelet's HTTP server then proxies the client's
// upgraded connection to. A URL is good for one connection and expires
// after about a minute if unused.

// ExecRequest asks for an interactive exec session in a running container.
// At least one of Stdin, Stdout and Stderr must be set; with TTY, Stderr
// must be false (the terminal merges it into stdout).
type ExecRequest struct {
	ContainerID string
	Cmd         []string
	TTY         bool
	Stdin       bool
	Stdout      bool
	Stderr      bool
}

// AttachRequest asks for a session attached to a running container's main
// process. The same rules as for ExecRequest apply to the stream flags.
type AttachRequest struct {
	ContainerID string
	TTY         bool
	Stdin       bool
	Stdout      bool
	Stderr      bool
}

// Exec asks the runtime for an exec session and returns its streaming URL.
func (c *Client) Exec(ctx context.Context, req ExecRequest) (string, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	r, err := c.runtime.Exec(ctx, &runtimeapi.ExecRequest{
		ContainerId: req.ContainerID, Cmd: req.Cmd, Tty: req.TTY,
		Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr,
	})
	if err != nil {
		return "", wrap("exec in container", req.ContainerID, err)
	}
	return r.GetUrl(), nil
}

// Attach asks the runtime for an attach session and returns its streaming
// URL.
func (c *Client) Attach(ctx context.Context, req AttachRequest) (string, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	r, err := c.runtime.Attach(ctx, &runtimeapi.AttachRequest{
		ContainerId: req.ContainerID, Tty: req.TTY,
		Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr,
	})
	if err != nil {
		return "", wrap("attaching to container", req.ContainerID, err)
	}
	return r.GetUrl(), nil
}

// PortForward asks the runtime for a port-forward session into the network
// namespace of sandbox sandboxID and returns its streaming URL. ports may be
// empty: SPDY clients name the port per stream.
func (c *Client) PortForward(ctx context.Context, sandboxID string, ports []int32) (string, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	r, err := c.runtime.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: sandboxID, Port: slices.Clone(ports)})
	if err != nil {
		return "", wrap("port-forward to sandbox", sandboxID, err)
	}
	return r.GetUrl(), nil
}
