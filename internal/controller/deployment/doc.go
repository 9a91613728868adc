// Package deployment is the Deployment controller: it rolls a
// Deployment's pod template out through ReplicaSets, one per template, as
// the upstream controller does.
//
// Responsibility: for every Deployment, own the ReplicaSets its selector
// matches (adopting orphans, releasing what no longer matches, through
// ownership.Claim); keep one ReplicaSet per pod template, named
// <deployment>-<pod-template-hash> and carrying the pod-template-hash
// label in its labels, selector and template; move replicas from the old
// ReplicaSets to the new one by the strategy (RollingUpdate within
// maxSurge/maxUnavailable, Recreate: old to zero, wait for their pods to
// be gone, then the new one); scale proportionally when spec.replicas
// changes mid-rollout; hold a paused deployment's rollout (scaling still
// works); number revisions; delete old ReplicaSets beyond
// revisionHistoryLimit; and report status: the replica counts (with
// terminatingReplicas, as upstream's default-on beta feature does),
// observedGeneration, collisionCount and the Progressing, Available and
// ReplicaFailure conditions with upstream's reasons, so that
// `kubectl rollout status|history|undo|pause|resume` behave as upstream.
//
// Reads (shared informers): deployments, replicasets, and pods (only to
// see a Recreate rollout's old pods go away).
//
// Writes: replicasets (create, update of spec.replicas, minReadySeconds
// and the deployment.kubernetes.io/* annotations, ownerReference patches,
// delete of old ones); deployments (metadata.annotations for the revision,
// through the main resource) and deployments/status; events on the
// Deployment (ScalingReplicaSet, ReplicaSetCreateError, SelectingAll).
//
// Never: it never creates, deletes or changes pods (the ReplicaSet
// controller does), never writes a Deployment's spec (`rollout undo` is
// kubectl's client-side patch of the template), and never mutates an
// object read from the informer cache.
//
// # Guard against a stale cache
//
// Upstream's deployment controller needs no expectations and neither does
// this one: it creates one ReplicaSet at a time under a deterministic name
// (a second create fails with AlreadyExists and is resolved against the
// cache, bumping status.collisionCount when the name is taken by another
// template), and every scale is an update carrying the cached
// resourceVersion, so a decision made on a stale copy fails with a
// conflict and is retried from fresh state. One deliberate difference:
// rolling-update decisions count at most spec.replicas available pods per
// replica set, so a replica set whose status still counts pods it is
// deleting cannot justify a second scale-down (see cappedAvailable).
//
// # Usage
//
//	c := deployment.New(controller.Deps{Client: cs, Informers: factory, Recorder: rec, Logger: log})
//	factory.StartWithContext(ctx)
//	err := c.Run(ctx, 2) // blocks until ctx is done; nil on cancellation
//
// Each key is reconciled by sync: claim ReplicaSets; a deployment being
// deleted only gets its status; then Progressing records pause/resume; a
// paused deployment or a change of spec.replicas only scales; otherwise
// the strategy takes one step and the status (with the progress deadline
// estimate) is written. A rollout still in progress is requeued for when
// its progress deadline would pass, measured on Deps.Now.
package deployment
