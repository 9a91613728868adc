// Package cronjob is the CronJob controller (batch/v1 CronJobs): it
// creates a Job from spec.jobTemplate at each scheduled time.
//
// Responsibility, with upstream's semantics: parse spec.schedule (package
// schedule) in spec.timeZone (or a CRON_TZ=/TZ= prefix, or the
// controller's local zone); find the most recent scheduled time not yet
// run since status.lastScheduleTime (or the CronJob's creation), bounded
// by startingDeadlineSeconds, and run only that one (more than 100 missed
// times is reported with a TooManyMissedTimes event; a time older than the
// starting deadline is skipped with a MissSchedule event); apply
// concurrencyPolicy (Allow; Forbid waits while a Job is active, so a
// missed time still within its deadline starts when the active Job ends;
// Replace deletes the active Jobs first); honour suspend; keep
// status.active, lastScheduleTime and lastSuccessfulTime; delete finished
// Jobs beyond successfulJobsHistoryLimit and failedJobsHistoryLimit,
// oldest first.
//
// Jobs are named "<cronjob>-<scheduled time in minutes since the epoch>",
// so a second create for the same time fails with AlreadyExists, and carry
// the annotation batch.kubernetes.io/cronjob-scheduled-timestamp (RFC 3339
// in the CronJob's zone) and a controller reference to the CronJob.
//
// Reads: CronJobs and Jobs (shared informers); the clock is Deps.Now.
//
// Writes: Jobs (create, delete with background propagation), the
// cronjobs/status subresource, and events (SuccessfulCreate, FailedCreate,
// SuccessfulDelete, SawCompletedJob, JobAlreadyActive, MissSchedule,
// TooManyMissedTimes, UnparseableSchedule, UnknownTimeZone, MissingJob,
// UnexpectedJob).
//
// Never: it never adopts Jobs it did not create (no selector, as
// upstream), never changes a CronJob's spec, and never polls: each sync
// asks to be called again exactly at the next scheduled time (plus a
// small delta), computed with Deps.Now.
//
// # Usage
//
//	c := cronjob.New(deps)        // registers the CronJob and Job informers
//	deps.Informers.StartWithContext(ctx)
//	err := c.Run(ctx, workers)     // blocks until ctx is done
package cronjob
