// Command scheduler benchmarks the skiff scheduler end to end through the
// API server and prints a table of results against the targets in
// docs/benchmarks.md.
//
// For each node count (-nodes, default 100, 1,000 and 5,000) it starts a
// fresh `skiff server` (embedded etcd, its scheduler and controller
// manager) as a child process on a temporary data directory, registers the
// nodes through the API (capacity, allocatable, a hostname label and a
// Ready condition, as a node agent would), and then, one kind after the
// other, each in its own namespace:
//
//   - plain: P pods (-pods, default 10,000) with resource requests only;
//   - constrained: P pods with a topology spread constraint on
//     kubernetes.io/hostname (maxSkew 1, DoNotSchedule) and a preferred
//     pod anti-affinity on hostname, both selecting each other.
//
// The pods are created from -clients concurrent client-go clients
// (default 64, as bench/apiserver creates pods; no client-side rate
// limit; protobuf, client-go's default for typed clients, unless
// -content-type json) while a watch on the namespace's bound pods
// (field selector spec.nodeName!=, one event per pod) records when each
// pod first shows spec.nodeName. A pod's latency runs from just before its
// create request to that watch event; scheduled/s is P divided by the time
// from the first create to the last bound pod. Before each kind, a warm-up
// pod pinned to the last registered node must be bound, so that the
// scheduler has seen every node.
//
// The benchmark's clients share the machine with the server they measure,
// so with -scheduler server this process runs its own garbage collector
// at GOGC=400 (unless GOGC is set), which keeps its share of the two cores
// small; the server's own setting is untouched.
//
// With -scheduler inproc the pods name the scheduler "skiff-bench", which
// this process runs itself (scheduler.Run), so that -cpuprofile profiles
// the scheduler (beside the benchmark's own clients); the server's
// scheduler ignores those pods.
//
// Usage:
//
//	go run ./bench/scheduler [-bin bin/skiff] [-nodes 100,1000,5000] [-pods 10000] [-kinds plain,constrained]
//	./bench/scheduler/run.sh   # builds bin/skiff first
//
// Reads: the binary. Writes: only temporary directories, removed at exit
// (kept with -keep). It is a benchmark, not a test: go test never runs it.
package main
