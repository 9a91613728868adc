// Package disruption is the PodDisruptionBudget controller: it keeps every
// policy/v1 PodDisruptionBudget's status, which the eviction API consults.
//
// Responsibility: for each PDB, from the pods of its namespace matching its
// selector (an empty selector matches every pod, a nil one none):
//   - expectedPods: the number of pods for a plain integer minAvailable,
//     otherwise the sum of the scales (spec.replicas) of the pods'
//     controllers (a ReplicaSet owned by a Deployment counts as the
//     Deployment; other kinds through their /scale); pods without a
//     controller are ignored with an UnmanagedPods event;
//   - desiredHealthy: minAvailable, or expectedPods - maxUnavailable
//     (percentages rounded up, as upstream);
//   - currentHealthy: Ready pods that are not being deleted and not listed
//     in disruptedPods;
//   - disruptionsAllowed = max(0, currentHealthy - desiredHealthy) (0 when
//     expectedPods is 0);
//   - disruptedPods: the eviction API's entries, dropped once the pod is
//     gone or being deleted, or 2 minutes after the eviction (event
//     NotDeleted on the pod); the PDB is rechecked when the next entry
//     expires;
//   - observedGeneration and the DisruptionAllowed condition (True
//     SufficientPods, False InsufficientPods, False SyncFailed when the
//     status cannot be computed, which also sets disruptionsAllowed to 0).
//
// Reads (shared informers): poddisruptionbudgets, pods, replicasets,
// deployments, statefulsets, replicationcontrollers; other controllers'
// /scale through an optional scale client.
// Writes: poddisruptionbudgets/status; events NoPods, UnmanagedPods,
// NoControllers, CalculateExpectedPodCountFailed, NotDeleted.
// Never: evicts or deletes pods (the eviction API does), or writes a PDB's
// spec.
//
// # Usage
//
//	pdbs, err := disruption.NewForConfig(deps, restConfig) // or New(deps): built-in controllers only
//	deps.Informers.StartWithContext(ctx)
//	go pdbs.Run(ctx, 1) // blocks until ctx is done
package disruption
