// Package job is the Job controller (batch/v1 Jobs), including the
// TTL-after-finished behaviour upstream keeps in a separate controller.
//
// Responsibility: run each Job's pods to completion with upstream's
// semantics: spec.completions and spec.parallelism (nil completions is a
// work queue: done once any pod succeeded and none is active), the
// NonIndexed and Indexed completion modes, backoffLimit with exponential
// back-off (10s doubled per consecutive failure, at most 6m) before a
// failed pod is replaced, activeDeadlineSeconds, podFailurePolicy (FailJob,
// Ignore, Count, FailIndex), backoffLimitPerIndex and maxFailedIndexes
// (status.failedIndexes, the pods' job-index-failure-count annotations),
// successPolicy, suspend, podReplacementPolicy, managedBy (Jobs managed by
// someone else are left alone) and ttlSecondsAfterFinished.
//
// Pod tracking: every pod created carries the finalizer
// batch.kubernetes.io/job-tracking. A finished (or deleted) pod is first
// written to status.uncountedTerminatedPods, then loses its finalizer, then
// is moved into status.succeeded/failed, so a pod is counted exactly once
// even if it is deleted right after finishing. An Indexed Job counts
// indexes instead (status.completedIndexes, e.g. "1,3-5").
//
// Pods the controller removes to honour parallelism or suspension lose
// their finalizer before they are deleted, so they are not counted; pods
// deleted by anyone else count as failed (unless podReplacementPolicy is
// Failed, which waits for the Failed phase).
//
// Finishing follows the current upstream order: the Job first gets the
// interim condition SuccessCriteriaMet (reason CompletionsReached) or
// FailureTarget (BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy),
// its remaining active pods are deleted, and only when no pod is left
// terminating or uncounted does it get Complete (with completionTime) or
// Failed with the same reason and message.
//
// Reads: Jobs and Pods (shared informers).
//
// Writes: pods (create from the template with generateName "<job>-", or
// "<job>-<index>-" with the completion-index annotation and label and the
// hostname "<job>-<index>" for Indexed Jobs; delete; adopt/release through
// ownership.Claim; remove the tracking finalizer), jobs/status, deletion of
// finished Jobs whose TTL expired (foreground propagation, guarded by uid
// and resourceVersion), and events (SuccessfulCreate, FailedCreate,
// SuccessfulDelete, FailedDelete, Suspended, Resumed, Completed, and the
// failure reason such as BackoffLimitExceeded or DeadlineExceeded).
//
// Never: it never changes a Job's spec or metadata, never touches pods
// controlled by another owner, and never branches on event type. An
// Indexed Job's containers get JOB_COMPLETION_INDEX from the pod's
// completion-index annotation (a downward API field reference), as
// upstream's.
//
// # Usage
//
//	c := job.New(deps)        // registers the Job and Pod informers
//	deps.Informers.StartWithContext(ctx)
//	err := c.Run(ctx, workers) // blocks until ctx is done
//
// Creations and deletions are guarded as upstream's expectations are: while
// a pod the controller created or deleted is not yet reflected by the
// informer, the Job's pods are not managed again (see guard).
//
// Pods that still carry the tracking finalizer but whose Job is gone,
// replaced, finished or being deleted, or that lost their controller
// reference, lose the finalizer (upstream's orphan handling).
//
// Known gap: the back-off records live in memory and are per Job, not per
// index (upstream also delays per index).
package job
