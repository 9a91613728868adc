// Package apiserver is skiff's HTTP front end: it speaks the Kubernetes REST
// API so that stock kubectl and client-go work against skiff unchanged.
//
// It owns routing (/api/v1/..., /apis/<group>/<version>/...), the request
// filters (authentication from TLS client certificates, in-flight limits,
// timeouts, body limits, panic recovery, metrics and logs), content
// negotiation (JSON, YAML, protobuf; Table and PartialObjectMetadata
// views), the verb handlers (get, list, watch, create, update, patch,
// delete, deletecollection), server-side apply and managedFields tracking
// (when Config.TypeConverter is set), and the subresources status, scale,
// binding and finalize, plus /version, /healthz, /livez, /readyz and
// /metrics. The connect subresources pods/log, pods/exec, pods/attach,
// pods/portforward and nodes/proxy are proxied to the kubelet of the node
// through Config.Kubelet (kubeletclient); exec and attach websockets
// (v5/v4.channel.k8s.io) are translated to SPDY streams, port-forward
// websockets (SPDY/3.1+portforward.k8s.io) are tunneled, and SPDY
// upgrades are passed through; a pods/log websocket streams the log.
// pods/proxy and services/proxy go straight to the pod's IP or a ready
// endpoint of the service (resourceproxy.go). These requests are
// long-running, like watches.
//
// The filter chain, outermost first:
//
//	recover + log + metrics -> authenticate (TLS client cert, else bearer
//	token through Config.Authenticator (401 when it fails), else anonymous)
//	-> audit (Config.Audit) -> impersonate (Impersonate-* headers, each
//	part authorized with the verb impersonate) -> authorize (Config.Authorizer; 403 naming
//	user, verb and resource; system:masters exempt) -> in-flight limit
//	(429) -> timeout (504; watches and connect subresources are exempt
//	from both) -> body limit (413) -> route
//
// Writes carry Config.Admission into the store (registry.WithAdmission),
// which mutates after its defaults and validates after its validation.
//
// Files: server.go (Config, New, Serve), filters.go and timeout.go (the
// chain), routing.go (path -> requestInfo), resource.go (verbs), patch.go
// and apply.go (PATCH), createfields.go (managedFields of creates,
// remembered per object shape), watch.go (streaming), subresource.go (scale,
// binding), podproxy.go and podproxy_stream.go (connect subresources),
// negotiate.go and output.go (content types, Table and
// PartialObjectMetadata views), errors.go (Status), health.go, metrics.go,
// auth.go (authentication, authorization), admission.go, audit.go,
// reviews.go (access and token reviews), csrapproval.go, eviction.go
// (pods/eviction with PodDisruptionBudgets: kubectl drain).
//
// Inputs: HTTP requests, and the registry.Stores given in Config, which it
// reads and writes through their methods. Discovery and OpenAPI documents
// come from handlers it is given; it only mounts them.
//
// Outputs: HTTP responses. Every error is a metav1.Status with the upstream
// code and reason.
//
// Costs: non-long-running requests run on pooled goroutines whose stacks
// stay grown (timeout.go), and a create's managedFields come from memory
// when an object of the same shape was created before (createfields.go);
// structured-merge-diff otherwise costs as much CPU as the rest of the
// create. BenchmarkCreatePod measures a create's CPU in process.
//
// It must never talk to etcd or storage.Interface directly, never hold
// per-resource semantics (defaults, validation, graceful deletion live in
// the registry), and never mutate an object a Store returns: those are shared
// with the watch cache, so it copies before setting apiVersion/kind.
//
// # Usage
//
//	srv, err := apiserver.New(apiserver.Config{Stores: stores, Scheme: scheme, ...})
//	if err != nil { ... }
//	err = srv.Serve(ctx, ln, tlsConfig) // blocks until ctx is done
//
// Handler returns the same http.Handler without TLS serving, for callers
// that run their own http.Server (and for tests). InProcessTransport
// serves clients in the server's own process with that handler, as the
// holder of a given client certificate, without TLS or a socket.
package apiserver
