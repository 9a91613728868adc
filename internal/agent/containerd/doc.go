// Package containerd runs and supervises the node's own containerd: one
// process per data dir, with its root, state, socket and CNI configuration
// all under DIR/containerd, so that it never touches a system containerd.
//
// Inputs: a Config (data dir, binaries, sandbox image, archives to import).
// Outputs: DIR/containerd/config.toml (a Go template of ours; the CRI plugin
// set up for cgroupfs, restrict_oom_score_adj, our pause image and the
// overlayfs snapshotter, or native where overlay mounts fail), the
// containerd process and its socket DIR/containerd/containerd.sock, its log
// DIR/containerd/containerd.log and pid file DIR/containerd/containerd.pid.
// Images are imported with "ctr -n k8s.io images import".
//
// It must never stop workloads: stopping containerd leaves the
// containerd-shim processes, and so the containers, running; the agent
// recovers them through the CRI when containerd is back.
//
// # Usage
//
//	sup, err := containerd.New(containerd.Config{DataDir: dir, ImageArchives: []string{pauseTar}})
//	go func() { errc <- sup.Run(ctx) }() // starts, imports, restarts on death, stops when ctx ends
//	select {
//	case <-sup.Ready(): // the CRI answers on sup.Socket() and the archives are imported
//	case err := <-errc:
//	}
//
// Lifecycle of the process under Run:
//
//	            start
//	  ┌────────────────────┐
//	  v                    │ backoff (1s, doubling to 30s)
//	starting ──CRI answers──> running ──exits──> (restart)
//	  │                        │
//	  └──────── ctx done ──────┴──> stopping: SIGTERM, SIGKILL after StopTimeout ──> Run returns
package containerd
