// Package skiff is a container orchestrator that implements the Kubernetes
// architecture in one binary and speaks the Kubernetes API, so that stock
// kubectl and client-go work against it unchanged.
//
// This root package holds no code; it documents the repository. The binary
// is cmd/skiff; everything else lives under internal/.
//
// # Organization
//
// A request flows one way, from a client down to etcd:
//
//	kubectl / client-go
//	   │ HTTPS, client certificates
//	   ▼
//	internal/apiserver   routing, authentication, content negotiation,
//	   │                 verbs, patches, watches, tables
//	   │   (mounts internal/discovery and internal/openapi, which are
//	   │    generated from the resource list)
//	   ▼
//	internal/registry    per-resource semantics (Store over a Strategy);
//	   │                 the built-in resources are described in
//	   │                 internal/registry/builtin
//	   ▼
//	internal/storage     one etcd-backed store per resource with its watch
//	   │                 cache; the compactor
//	   ▼
//	internal/etcd        the embedded etcd member, or a client of an
//	                     external cluster
//
// Everything else is a client of the API server, even in the same process:
// internal/scheduler places pods; internal/controllermanager runs the
// reconcilers of internal/controller/<name>, one package each; internal/dns
// serves cluster DNS. internal/agent is the node agent (the kubelet): it
// runs the pods bound to its node under its own containerd
// (internal/agent/containerd, spoken to through internal/agent/cri), with
// one package per concern (pods, podstatus, pull, volumes, prober,
// nodestatus, cni, kubeletserver, logs, stats, eviction, staticpods), and
// on each node the service proxy (internal/proxy), NetworkPolicy
// (internal/netpol) and the Ingress controller (internal/ingress). The API
// server reaches the agents' HTTP API through internal/kubeletclient and
// serves metrics.k8s.io from them (internal/metricsapi). internal/auth and
// internal/admission hold the authenticators, authorizers and admission
// plugins the API server runs on every request; internal/audit the audit
// log, internal/encryption secrets at rest.
//
// internal/server assembles one server process from those parts: it locks
// the data dir, creates certificates (internal/pki), starts etcd, the
// stores and the API server in order, bootstraps the system namespaces
// through the API, starts the components cmd/skiff hands it (scheduler,
// controller manager, cluster DNS, the node agent), writes the admin
// kubeconfig and supervises it all until a signal or a failure, then shuts
// down in reverse order. cmd/skiff only parses flags and builds those
// components.
//
// Tests: every package has unit tests against a real embedded etcd where
// storage is involved; test/integration runs the whole server in-process
// against client-go; test/e2e runs the built binary and drives it with
// stock kubectl 1.33 and 1.27. bench/ holds benchmarks. hack/ holds the
// developer scripts (up.sh, test.sh); .ci/run is what CI executes.
//
// See README.md to get started, docs/architecture.md for the design and
// docs/operations.md for running a server.
package skiff
