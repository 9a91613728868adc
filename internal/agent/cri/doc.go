// Package cri is the node agent's boundary to the container runtime: the
// narrow Runtime interface the agent's pod workers call (run and stop pod
// sandboxes, create, start, stop, remove and inspect containers, list what
// exists to recover after a restart, make images present, run probes'
// commands), and Client, its implementation over the CRI v1 gRPC API
// (k8s.io/cri-api) of the containerd that the agent/containerd package runs.
//
// Beside Runtime, Client serves the agent's other parts through their own
// narrow interfaces: streaming sessions for exec, attach and port-forward
// (Exec, Attach, PortForward return containerd's one-time streaming URL),
// container usage (ListContainerStats), pulls with registry credentials
// (PullImageWithAuth), and the node's images and runtime version
// (ListImages, Version). Fake implements the same for unit tests
// (FakeStreaming adds the streaming calls).
//
// Inputs: the CRI socket. Outputs: CRI calls only. Every call carries a
// timeout (Config.Timeout, or the longer Config.PullTimeout for image pulls)
// on top of the caller's context, and every error is wrapped with the
// operation and object; IsNotFound tells a missing sandbox, container or
// image from a failure.
//
// The package holds no state of its own beyond the connection: the runtime
// is the source of truth, so an agent that restarts rebuilds its view with
// ListSandboxes and ListContainers (Nomad's RecoverTask). It must never
// decide anything about pods; mapping pods to sandboxes and containers is
// the agent's job.
//
// # Usage
//
//	rt, err := cri.Dial(cri.Config{Socket: sup.Socket()})
//	defer rt.Close()
//	sb, err := rt.RunSandbox(ctx, sbConfig)
//	id, err := rt.CreateContainer(ctx, sb, sbConfig, ctrConfig)
//	err = rt.StartContainer(ctx, id)
//	st, err := rt.ContainerStatus(ctx, id) // poll: st.State, st.ExitCode
//	err = rt.StopContainer(ctx, id, 30*time.Second)
//	err = rt.RemoveContainer(ctx, id)
//	err = rt.StopSandbox(ctx, sb); err = rt.RemoveSandbox(ctx, sb)
package cri
