// Package server assembles and supervises the control plane of one skiff
// server process: etcd, the per-resource storage and registry stores, the
// API server, and the in-process clients of the API (bootstrap, the etcd
// compactor, the namespace controller).
//
// Inputs: a [Config] built from flags. It reads and writes only its data
// dir:
//
//	DIR/skiff.lock   exclusive flock held while the server runs (holder's pid)
//	DIR/etcd/        the embedded etcd member (absent with external etcd)
//	DIR/pki/         certificates, see package pki
//	DIR/kubeconfig   admin kubeconfig, written once the server is ready and
//	                 removed at the next start until that server is ready
//
// Outputs: the HTTPS API on Config.Listen; the system namespaces default,
// kube-system, kube-public and kube-node-lease (created through the API as
// the admin, idempotently); one progress line per start-up stage on
// Config.Progress; component logs on Config.Logger.
//
// Every component but etcd talks to the others through the API server,
// even in this process: the bootstrap uses client-go with the admin
// certificate, each component its own identity's (Component.Identity).
// Those clients reach the API server's handler in-process
// (apiserver.InProcessTransport): every filter runs as for a client over
// TLS, with the identity of their certificate, without the socket.
// Their reads go through one set of informers (internal/informerhub,
// listing as the admin; Env.Informers), which start once the API serves:
// security.go wires authorization (node, then RBAC; the default policy
// is written at every start) and admission on them; tokens.go the bearer token authenticators;
// encryption.go secrets at rest; audit.go the audit log. The package never serves HTTP itself and
// never touches etcd keys directly.
//
// # Usage
//
// cmd/skiff calls Run with a context cancelled on SIGTERM or SIGINT:
//
//	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
//	defer stop()
//	err := server.Run(ctx, server.Config{DataDir: dir, Listen: "127.0.0.1:6443"})
//
// Run returns nil after a shutdown caused by ctx and an error when start-up
// fails or a component stops on its own.
//
// # Lifecycle
//
// Start-up is a sequence where each stage waits for the previous one to be
// ready; shutdown runs it backwards (see group):
//
//	lock ─> listen ─> pki ─> etcd ─> watch caches ─> API server
//	   ─> /readyz ok ─> namespaces ─> compactor, namespace controller
//	   ─> kubeconfig written ─> running
//
//	running ──ctx done──────────> stopping ──> Run returns nil
//	running ──component exits──> stopping ──> Run returns the cause
//
// Stopping cancels the controllers, then the API server (it stops
// accepting, ends watches and drains requests for up to 10 s), then the
// watch caches, then closes etcd and releases the lock.
package server
