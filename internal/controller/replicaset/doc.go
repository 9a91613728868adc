// Package replicaset is the ReplicaSet controller and, through the same
// code, the ReplicationController controller (as upstream, which runs the
// ReplicationController controller on the ReplicaSet one).
//
// Responsibility: keep spec.replicas active pods matching each owner's
// selector and controlled by it, and report what it sees in the owner's
// status.
//
// Reads (shared informers): replicasets (or replicationcontrollers) and
// pods. Before adopting it re-reads the owner from the API server.
//
// Writes:
//   - pods: creates them from spec.template (generateName "<owner>-",
//     a controller reference to the owner, the template's labels,
//     annotations and finalizers) in slow-start batches of 1, 2, 4, …
//     stopping at the first failure; deletes the least valuable surplus
//     pods (see rank.go); adopts matching orphans and releases owned
//     pods that no longer match (patches of ownerReferences);
//   - replicasets/status (replicationcontrollers/status): replicas,
//     fullyLabeledReplicas, readyReplicas, availableReplicas,
//     terminatingReplicas, observedGeneration and the ReplicaFailure
//     condition;
//   - events on the owner: SuccessfulCreate, FailedCreate,
//     SuccessfulDelete, FailedDelete.
//
// Never: it never touches pods controlled by another controller, never
// mutates objects read from the informer caches, never creates or deletes
// pods for an owner that is being deleted (the garbage collector removes
// its pods), and never creates or deletes pods for an owner while earlier
// creations or deletions of its own have not yet been observed in the pod
// cache (expectations.go), so a resync cannot double-create.
//
// Pods that are terminating (deletionTimestamp set) or finished
// (Succeeded/Failed) are not counted as replicas, so a terminating pod is
// replaced at once, as upstream does; terminating ones are reported in
// status.terminatingReplicas.
//
// # Usage
//
//	rs := replicaset.New(deps)                     // ReplicaSets
//	rc := replicaset.NewReplicationController(deps) // ReplicationControllers
//	deps.Informers.StartWithContext(ctx)
//	go rs.Run(ctx, 5) // blocks until ctx is done
package replicaset
