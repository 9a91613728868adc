// Package nodelifecycle is the node lifecycle controller: it notices nodes
// whose agent stopped reporting, taints nodes by their conditions, evicts
// pods from nodes with NoExecute taints they do not tolerate, and deletes
// pods bound to nodes that no longer exist. It stands in for upstream's
// node-lifecycle-controller, its taint-eviction controller and the orphan
// part of its pod garbage collector.
//
// Reads: nodes, leases (only those in kube-node-lease, named after their
// node) and pods (shared informers; pods indexed by spec.nodeName).
//
// Writes:
//   - node status: when neither the node's Lease renewTime nor its Ready
//     condition's heartbeat is newer than GracePeriod, the kubelet-posted
//     conditions (Ready, MemoryPressure, DiskPressure, PIDPressure) become
//     Unknown (reason NodeStatusUnknown, "Kubelet stopped posting node
//     status."; NodeStatusNeverUpdated for conditions never posted);
//   - node spec.taints: node.kubernetes.io/unreachable (NoSchedule and
//     NoExecute) while Ready is Unknown, node.kubernetes.io/not-ready while
//     it is False, and the NoSchedule condition taints (memory-pressure,
//     disk-pressure, pid-pressure, network-unavailable, unschedulable);
//     removed when the condition clears. NoExecute taints carry TimeAdded;
//     a NoExecute taint is only changed while the node has a Ready
//     condition;
//   - pod status: Ready=False for pods on a node whose Ready is Unknown;
//     the DisruptionTarget condition before an eviction;
//   - pod deletion: pods on a node with a NoExecute taint they do not
//     tolerate at once, those tolerating it with tolerationSeconds that
//     long after the taint's TimeAdded (the earliest of the node's
//     NoExecute taints), never those tolerating it without seconds (event
//     TaintManagerEviction); pods whose node is gone, verified with a GET,
//     with grace period 0 (DisruptionTarget reason DeletionByPodGC).
//
// DefaultTolerationSeconds stands in for upstream's DefaultTolerationSeconds
// admission plugin, which skiff does not have yet: a pod with no toleration
// for the not-ready or unreachable NoExecute taint is treated as tolerating
// it for that many seconds (300). Set it to nil once admission adds the
// tolerations to the pods themselves.
//
// Every node gets a full grace period after Run starts, whatever its last
// heartbeat (upstream counts from its own observations), so a control plane
// coming back after downtime does not find every node stale at once.
//
// Time comes from Deps.Now; every deadline (a lease going stale, a
// toleration running out) is a requeue at that exact time, never a poll.
//
// Never: it never writes conditions the kubelet still reports in time,
// never deletes nodes, never evicts a pod that tolerates all of its node's
// NoExecute taints forever. Unlike upstream it has no zone disruption
// states (no eviction rate limiting when a whole zone goes dark) and
// counts a toleration from the taint's TimeAdded rather than from when the
// pod arrived on the node.
//
// # Usage
//
//	c := nodelifecycle.New(deps) // registers informers on deps.Informers
//	c.GracePeriod = 40 * time.Second // optional, before Run
//	deps.Informers.StartWithContext(ctx)
//	err := c.Run(ctx, workers) // blocks until ctx is done
package nodelifecycle
