// Package queue is the scheduler's queue of pods waiting for a node.
//
// Pods live in one of three places:
//
//	          Add                    Pop
//	(new) ─────────► active ─────────────────► in flight
//	                   ▲  ▲                       │
//	   back-off over   │  │ MoveOnEvent           │ Requeue(unschedulable)
//	  (Run's ticker)   │  └─── unschedulable ◄────┤
//	                   └────── backoff ◄──────────┘ Requeue(error), or a
//	                                                 move while in flight
//
// active is ordered by priority (high first), then by the time the pod
// was first queued. A pod that did not fit waits in unschedulable until
// a cluster event that could make it fit (MoveOnEvent with the plugins
// the event concerns) sends it back through backoff, whose per-pod
// delay doubles with every attempt (1s up to 10s). Pods are never
// re-queued by polling, except that a pod left unschedulable for five
// minutes is retried as a safety net, as upstream does.
//
// The queue only orders pods; it does no I/O. Run drives its timers.
package queue
