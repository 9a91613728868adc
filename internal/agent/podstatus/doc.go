// Package podstatus computes the status a pod shows in the API and writes
// it there.
//
// Compute (also as the method of the stateless Computer) is a pure
// function. Inputs: the pod as the API has it (spec, and status as the
// previous status), what the runtime shows of the pod at a sync (Observed:
// its newest sandbox, its containers per name, the sync's waiting reasons
// and terminal decisions), probe results and the time. Output: a
// v1.PodStatus — phase, the agent's conditions (PodReadyToStartContainers,
// Initialized, Ready, ContainersReady, PodScheduled), init, app and
// ephemeral container statuses, pod and host IPs, start time and QoS class
// — following the upstream kubelet's rules. What others own in a status
// (other conditions, nominatedNodeName, resource claim statuses) is kept as
// the API has it. A terminal phase never changes.
//
// Writer owns the writes of pod status to the API server: callers hand it
// the latest desired status per pod (Set, which never blocks), and its
// workers write it with UpdateStatus when it differs from what the API
// holds, coalescing bursts, retrying conflicts on a fresh read, and
// dropping pods that are gone. It reads pods only by GET on conflict; it
// writes only the status subresource, and it must never touch a pod's
// spec or metadata.
//
// # Usage
//
//	w := podstatus.NewWriter(client, logger)
//	go w.Run(ctx)
//	// in the pod sync, for each pod from the informer:
//	st := podstatus.Computer{}.Compute(pod, observed, probes, time.Now())
//	w.Set(pod, st)
//	// before deleting a terminated pod, let its final status land:
//	err := w.Wait(ctx, pod.UID)
//	// when the pod is gone from the node:
//	w.Forget(pod.UID)
package podstatus
