// Command apiserver benchmarks the skiff API server and prints a table of
// results against the targets in docs/benchmarks.md.
//
// It starts the real binary (bin/skiff, or one it builds) as child
// processes on temporary data directories, so that the server's resident
// memory can be read from /proc/<pid>/status:
//
//  1. start-up: a server with embedded etcd on a fresh directory, then
//     restarted on the same directory; time from exec to ready (kubeconfig
//     written and /readyz ok) on a warm disk; then VmRSS at idle of a
//     server on another fresh directory, its binary's pages evicted from
//     the page cache first, so that they are read from disk as after a
//     reboot (see benchserver.EvictFromPageCache);
//  2. load: an etcd member embedded in this process, and a server using it
//     through --etcd-servers, so that the raw etcd put rate can be measured
//     against the very same etcd: pod creates/s at 1, 8 and 64 clients
//     (client-go, no client-side rate limit) beside clientv3 Puts of a
//     pod's stored size at the same concurrency (over gRPC on loopback, as
//     the server reaches that member), and the server process's
//     CPU time per create (/proc/<pid>/stat; the process is found by its
//     --data-dir); then the floor: the same creates at 64 clients against a
//     server in this process that only puts each body to the same etcd
//     and echoes it (TLS and HTTP/2, no API server work), which bounds
//     from above what any API server could reach here (see floorRate);
//     LIST of 10,000 pods from
//     the watch cache (resourceVersion=0) and as a consistent read; 1,000
//     watchers receiving one update.
//
// Usage:
//
//	go run ./bench/apiserver [-bin bin/skiff] [-duration 5s] [-pods 10000] [-watchers 1000]
//	./bench/apiserver/run.sh   # builds bin/skiff first
//	go run ./bench/apiserver -only-list [-background-pods 35000] [-list-runs 20]
//
// -only-list skips everything but the LISTs, after creating
// -background-pods pods in another namespace so that the server's heap is
// about a full run's. The load server runs without the controller
// manager, so the benchmark creates each namespace's default service
// account itself (pods are not admitted without it).
//
// For profiles of the same paths with the server in process (client-go,
// TLS and HTTP/2 included), inprocess_test.go has BenchmarkListPods and
// BenchmarkCreatePods:
//
//	go test ./bench/apiserver -run '^$' -bench CreatePods -benchtime 20000x -cpuprofile cpu.pprof
//
// Reads: the binary. Writes: only temporary directories, removed at exit
// (kept with -keep). It is a benchmark, not a test: go test never runs it.
package main
