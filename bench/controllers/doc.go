// Command controllers benchmarks the skiff scheduler and controller
// manager on one large Deployment and prints a table of results (reported
// in docs/benchmarks.md).
//
// It starts the real binary (bin/skiff, or one it builds) as a child
// process, `skiff server --disable-agent` on a temporary data directory,
// which runs the API server, the scheduler and the controller manager. No
// node agent runs, so the benchmark plays the nodes itself:
//
//   - it registers -nodes Node objects, Ready, with room for every pod, and
//     renews a Lease in kube-node-lease for each every 10s, as a kubelet
//     does, so that the node lifecycle controller keeps them Ready;
//   - a fake kubelet (kubelet.go) watches the pods bound to those nodes
//     and, on -kubelet-workers goroutines, marks each one Running and Ready
//     at once (UpdateStatus with a pod IP and the Ready condition), and
//     acknowledges graceful deletions the way a kubelet does (DELETE with
//     grace period 0 and the pod's UID as precondition). It measures its
//     own rate and the lag from a pod being bound to its status written,
//     to show it is not the bottleneck.
//
// Then, timed from the request:
//
//  1. create a Deployment of -replicas pods: until every pod is created,
//     bound, Running+Ready, and the Deployment reports them available;
//  2. change the pod template (default strategy: rolling update, maxSurge
//     and maxUnavailable 25%): until the rollout completes
//     (status.updatedReplicas == availableReplicas == replicas,
//     observedGeneration caught up) and every old pod is gone.
//
// With -inprocess the API server, scheduler and controller manager run
// inside the benchmark process instead (internal/server with the same
// components as `skiff server`, each under a pprof label "component"), so
// that -cpuprofile captures them: go tool pprof -tagfocus
// component=controller-manager ... shows the controllers' share.
//
// With -server-v (and -keep) the child server logs every request and
// reconcile with its latency, for finding where the time goes.
//
// Usage:
//
//	go run ./bench/controllers [-bin bin/skiff] [-replicas 3000] [-nodes 10] [-kubelet-workers 128] [-timeout 10m]
//	go run ./bench/controllers -inprocess -cpuprofile cpu.pprof
//	./bench/controllers/run.sh   # builds bin/skiff first
//
// Reads: the binary. Writes: only temporary directories, removed at exit
// (kept with -keep), and the profile. It is a benchmark, not a test: go
// test never runs it.
package main
