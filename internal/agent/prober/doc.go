// Package prober runs the node agent's container probes (liveness,
// readiness and startup: exec, httpGet, tcpSocket and grpc) and its
// lifecycle hooks (postStart and preStop: exec, httpGet and sleep), with the
// semantics of the upstream kubelet.
//
// Inputs: the pod and container specs handed to Start (probe specs, named
// ports, the pod's IP in pod.Status.PodIP, or pod.Status.HostIP for a
// host-network pod without one), the container's start time, and the
// runtime's ExecSync for exec probes and hooks. Outputs: per container ID,
// the Started, Ready and Liveness results the pod sync engine reads;
// Config.OnChange calls when one of them changes; "Unhealthy" and
// "ProbeWarning" events on the pod. It never stops, restarts or removes a
// container and never writes pod status: the pod sync engine acts on the
// results.
//
// Each probe of a running container has one goroutine with a ticker of its
// periodSeconds; containers without probes cost nothing but a map entry.
// The startup probe gates the other two: readiness and liveness probes
// start only once it has succeeded. The first readiness (and startup)
// probe runs as soon as initialDelaySeconds have passed since the
// container started, so a pod can become Ready in milliseconds; until
// their first success they also retry between ticks (after 0.1 s, 0.2 s,
// 0.4 s, … while under the period), counting only successes of those extra
// runs, so an application that needs a moment to listen is Ready a moment
// later rather than a period later (a deliberate difference from upstream,
// which waits the period; failures, thresholds and events are upstream's).
// Liveness probes, and the probes of a container adopted long after it
// started (after an agent restart) whose result pod status already gives,
// start with a random jitter so that they do not fire together.
//
// Lifecycle hooks (RunHook) are synchronous and stateless; the caller
// bounds them with its context and records their failure events.
//
// A probe's life, per container ID:
//
//	Start ──> waiting for startup ──> waiting initialDelay ──> probing every period
//	              │ (startup probe)                                │       │
//	              │ failureThreshold failures                      │       │ liveness:
//	              v                                                │       │ failureThreshold
//	           on hold (Liveness reports failed) <─────────────────┼───────┘ failures
//	                                                               │
//	Stop / StopPod / Run's ctx done ──> goroutines end, results forgotten
//
// # Usage
//
//	m := prober.New(prober.Config{Runtime: rt, Recorder: rec, Logger: log, OnChange: requeue})
//	go m.Run(ctx)
//	// pod sync, after a container started (again with a fresher pod is fine):
//	m.Start(pod, &pod.Spec.Containers[i], id, startedAt)
//	ready, started := m.Ready(id), m.Started(id)
//	if failed, msg := m.Liveness(id); failed { /* kill and restart the container, msg in the event */ }
//	err := m.RunHook(ctx, pod, c, id, c.Lifecycle.PostStart)
//	m.Stop(id)         // container exited or removed
//	m.StopPod(pod.UID) // pod gone
package prober
