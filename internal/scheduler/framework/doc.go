// Package framework defines what a scheduling decision is made of: the
// immutable Snapshot of nodes and their pods (NodeInfo), the plugin
// interfaces (PreFilter, Filter, PreScore, Score) and the typed Status
// that separates "this pod does not fit here" from "something broke".
//
// It owns no goroutines and does no I/O. The node cache
// (internal/scheduler/cache) produces Snapshots; the plugins
// (internal/scheduler/plugins) implement the interfaces; the scheduler
// (internal/scheduler) runs them through Framework.
//
// # Usage
//
//	fw := framework.New(plugins...)
//	result, err := fw.Schedule(ctx, pod, snapshot, opts)
//	var fit *framework.FitError
//	switch {
//	case err == nil:        // result.Node is the chosen node
//	case errors.As(err, &fit): // unschedulable: fit.Error() reads like upstream
//	default:                // an internal error
//	}
//
// Filtering samples as upstream does (percentageOfNodesToScore): it
// stops once NumFeasibleNodesToFind feasible nodes are found (adaptive:
// 50% minus 1% per 125 nodes, at least 5% and 100 nodes), starting each
// decision where the previous one stopped. Two optional plugin abilities
// keep a decision's cost low at thousands of nodes: a PositionFilter
// rejects (or passes) nodes by their position in the snapshot's list
// before any filter reads them, and a PositionScorer scores a feasible
// node by its position; both come from state the plugins keep from one
// decision to the next, and neither changes any decision or reason.
//
// When no node fits, SelectVictims plans a preemption over the same
// snapshot: the cheapest set of lower-priority pods on one node whose
// removal lets the pod fit (budgets honoured where possible).
//
// A Snapshot and everything reachable from it must never be changed once
// it is handed to plugins; plugins that need a changed view (preemption)
// clone the NodeInfo first.
package framework
