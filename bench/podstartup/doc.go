// Command podstartup measures how fast the node agent turns pods into
// running containers, beside what containerd alone needs for the same work.
//
// It needs root, containerd, runc, the CNI plugins and busybox-static (the
// same as the end-to-end tests). One run:
//
//  1. Bare containerd: starts a containerd of its own (the agent's
//     supervisor and configuration, pod network from the same CNI config),
//     then runs 1 and then N sandboxes, each with one busybox container,
//     straight through the CRI (RunPodSandbox, CreateContainer,
//     StartContainer), all N at once, and times each until started; then
//     N again, 32 at a time (the benchmark's own create concurrency),
//     which on two cores is kinder to containerd than all at once. The
//     target compares skiff with the faster of the two.
//  2. skiff: starts `skiff server --disable-agent` and a separate
//     `skiff agent` process (so the agent's CPU time can be read from
//     /proc apart from the control plane's), imports the busybox image,
//     then creates 1 pod and waits until it is Ready (three times), then
//     N pods at once; each pod's time is from just before its create
//     request to the watch event showing it Ready. The agent's CPU
//     seconds (utime+stime) over the N-pod phase are read from
//     /proc/<pid>/stat.
//
// Everything runs on the same machine; the benchmark's client-go side and
// the control plane take CPU too, as they would on a single-node install.
//
// Usage:
//
//	./bench/podstartup/run.sh                  # builds bin/skiff and runs with defaults
//	go run ./bench/podstartup -bin bin/skiff -pods 100
package main
