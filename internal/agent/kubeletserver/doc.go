// Package kubeletserver is the node agent's HTTP API (the kubelet's port
// 10250): the API server proxies `kubectl logs`, `exec`, `attach`,
// `port-forward` and `cp` here, and reads resource usage from it.
//
//	GET  /healthz                                   "ok" (no client cert needed)
//	GET  /containerLogs/{ns}/{pod}/{container}      ?follow&previous&tailLines&sinceSeconds&sinceTime&timestamps&limitBytes
//	GET|POST /exec/{ns}/{pod}[/{uid}]/{container}   ?command=..&stdin=1&stdout=1&stderr=1&tty=1
//	GET|POST /attach/{ns}/{pod}[/{uid}]/{container} ?stdin=1&stdout=1&stderr=1&tty=1
//	GET|POST /portForward/{ns}/{pod}[/{uid}]        ?port=.. (optional, as websocket clients send it)
//	GET  /stats/summary                             Config.Summary as JSON
//	GET  /pods                                      Config.Pods as a PodList
//	GET  /metrics, /metrics/resource                Config.Metrics, Config.ResourceMetrics (Prometheus)
//
// Inputs: the container runtime (Runtime: sandboxes and containers found by
// the CRI labels io.kubernetes.pod.namespace, io.kubernetes.pod.name,
// io.kubernetes.pod.uid and io.kubernetes.container.name that the agent
// sets), the containers' CRI log files (read through package logs), and the
// callers' TLS client certificates. Outputs: HTTP responses only.
//
// Exec, attach and port-forward do not run anything here: the server asks
// the runtime for a streaming session (the CRI's Exec, Attach and
// PortForward calls return a one-time URL on containerd's streaming
// server), then proxies the caller's upgrade request to that URL and copies
// bytes both ways, so every protocol containerd speaks (SPDY remotecommand
// v1–v4 and portforward, the websocket channel protocols) passes through
// unchanged. An attach to a container that started less than a second ago
// (Config.AttachSettle) waits until it has run that long, and is refused
// when it exits first, so that `kubectl run -i` of a short command prints
// the command's logs instead of an empty attach.
//
// The current container of a name is the one with the highest CRI Attempt
// (ties: the newest); the previous one, for ?previous, is the next — or
// the current one itself when it has exited and waits to be restarted
// (CrashLoopBackOff), which is the run upstream's kubelet shows. The
// server never starts, stops or removes anything, and never talks to the
// API server. Errors are plain text with the upstream messages, which the
// API server passes on to kubectl.
//
// Every path but /healthz needs a client certificate that verifies against
// Config.ClientCAs (when set); there is no per-user authorization.
//
// # Usage
//
//	srv, err := kubeletserver.New(kubeletserver.Config{Runtime: rt, ClientCAs: pool, Summary: stats.Summary})
//	cert, err := kubeletserver.SelfSignedCert(filepath.Join(root, "pki"), []string{nodeName, nodeIP})
//	ln, err := net.Listen("tcp", net.JoinHostPort(nodeIP, "10250"))
//	err = srv.Serve(ctx, ln, cert) // until ctx ends
package kubeletserver
