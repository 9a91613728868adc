// Package cache keeps the scheduler's view of nodes and the pods placed
// on them, including pods the scheduler has assumed onto a node while
// their binding is still in flight, and refreshes framework.Snapshots
// from it incrementally.
//
// It is fed by the scheduler's informer handlers (AddNode, AddPod, …)
// and by the scheduling loop (AssumePod, FinishBinding, ForgetPod). It
// does no I/O.
//
// A pod's life in the cache:
//
//	            AssumePod            FinishBinding
//	(absent) ─────────────► assumed ─────────────► assumed, bound
//	   ▲                      │  │                      │
//	   │       ForgetPod      │  │ AddPod (informer)    │ AddPod (informer)
//	   └──────────────────────┘  ▼                      ▼
//	   ◄──────────────────── added (confirmed) ◄────────┘
//	          RemovePod
//
// Assumed pods count against their node exactly like bound ones, so the
// next pod can be scheduled before the previous bind returns.
package cache
