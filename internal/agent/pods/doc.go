// Package pods is the node agent's pod sync engine: it makes the pods bound
// to one node real in the container runtime, level-triggered per pod.
//
// Inputs: the pods whose spec.nodeName is the node (an informer), the
// RuntimeClasses (an informer: a pod's class names the CRI runtime handler
// its sandbox is created with; a pod naming a missing class gets no
// sandbox, a FailedCreatePodSandBox event and a retry), the
// runtime's sandboxes and containers (cri.Runtime, listed once a second
// for all pods to notice exits), probe results (Prober, whose changes come
// in through Manager.Resync), images (ImagePuller), volumes and
// environment (VolumeManager).
//
// Outputs: CRI sandboxes and containers labelled io.kubernetes.pod.name,
// .namespace, .uid (and io.kubernetes.container.name); under RootDir,
// pods/<uid>/etc-hosts, pods/<uid>/containers/<name>/<attempt>
// (termination message files) and logs/<namespace>_<name>_<uid>/ (the
// sandbox's log dir); pod status through StatusComputer and StatusWriter;
// events; and the final delete of a pod (grace 0, UID precondition) once
// its containers are stopped and its resources released.
//
// It never stops a container because the agent stops: the runtime is the
// source of truth and a new Manager adopts what runs. It removes sandboxes
// and containers of pods not bound here only after the informer synced.
// It decides nothing about status fields itself beyond the reasons it
// hands to the StatusComputer (podstatus.Observed).
//
// # One sync
//
// A pod's sync (never two at once for one pod; different pods in
// parallel) reads the pod's sandboxes and containers and converges:
//
//	deleted / gone / unknown ─> preStop hooks, stop (grace period), stop and
//	                            remove sandboxes, tear down volumes,
//	                            delete the pod object (grace 0)
//	terminal (Succeeded, Failed, past activeDeadlineSeconds, or done under
//	its restartPolicy) ─> stop containers and sandbox, keep them for status
//	refused at admission (once, before anything runs: a host port another
//	running pod holds, for pods bound straight to the node) ─> Failed,
//	reason NodePorts, as upstream's kubelet rejects them
//	otherwise ─> sandbox (new, Attempt+1, when the newest is not Ready;
//	             its address handed to Config.ForgetNeighbor)
//	          ─> volumes ─> init containers in order, each to success
//	             (sidecars, restartPolicy Always, started and kept running)
//	          ─> app containers: start missing ones; restart exited ones
//	             per restartPolicy after the back-off (10s doubling to
//	             5m); kill those whose liveness probe failed
//	          ─> garbage: per name, keep the current container and the
//	             one before it (logs --previous), remove older ones
//	          ─> status: Observed ─> StatusComputer ─> StatusWriter
//
// A container's CRI Attempt is its restart count; the current container of
// a name is the one with the highest Attempt.
//
// Work is driven without per-pod polling: a pod is synced on its informer
// events (spec, metadata, deletion or phase changes; not on the status
// writes the agent makes itself), on Resync, at its back-off or deadline
// timers, and when the relist sees its sandboxes or containers change. A
// sync lists only that pod's objects (two calls) and inspects only those
// whose state changed; a pod new to the node skips even that.
//
// Eviction: Evict makes a pod terminal (phase Failed with the given reason
// and message) and waits until its sync stopped it; ActivePods lists the
// pods that are neither terminal nor gone.
//
// # Usage
//
//	var m *pods.Manager
//	probes := prober.New(prober.Config{..., OnChange: func(uid types.UID) { m.Resync(uid) }})
//	m, err := pods.New(pods.Config{Client: cs, NodeName: node, NodeIP: ip,
//		Runtime: rt, Volumes: vols, Prober: probes, Images: puller,
//		Status: podstatus.Computer{}, Writer: writer, Recorder: rec, RootDir: root})
//	err = m.Run(ctx) // blocks until ctx is done; the pods keep running
package pods
