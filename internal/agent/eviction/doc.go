// Package eviction is the node agent's eviction manager: it watches the
// node's memory and disk, reports pressure for the node's conditions, and
// when a hard threshold is crossed evicts pods, one at a time, as upstream's
// kubelet does.
//
// Reads (through Config's functions, so that the package does no I/O of
// its own beyond HostUsage): the node's usage (memory available, node and
// image file systems' free bytes and inodes), the pods the agent runs, and
// their usage (memory working set, ephemeral storage).
//
// Writes: nothing itself. It calls Config.Evict with a pod, the reason
// "Evicted" and upstream's message ("The node was low on resource:
// memory. …"); the agent kills the pod and posts its status. It answers
// Pressure (for nodestatus) and Admit (for pod admission).
//
// Thresholds default to DefaultThresholds: memory.available<100Mi,
// nodefs.available<5%, nodefs.inodesFree<5%, imagefs.available<5% (upstream's
// kubelet has 10% and 15% for the disks; see DefaultThresholds for why);
// pid.available has none unless Config.Thresholds sets one, as upstream's.
// ParseThresholds reads upstream's --eviction-hard syntax. A
// threshold crossed keeps its pressure condition for
// PressureTransitionPeriod (5 min) after it clears, as upstream's
// evictionPressureTransitionPeriod, so that the condition does not
// oscillate. Pods are ranked as upstream's:
//
//   - memory: pods whose working set exceeds their memory request first
//     (BestEffort pods, which request nothing, always do), then lower
//     priority, then the larger working set above request;
//   - disk: the same with ephemeral storage;
//   - pids: lower priority first (there are no per-pod process counts).
//
// So a BestEffort pod (which requests nothing) ranks among the pods over
// their requests, and a Guaranteed pod (usage within its request = limit)
// after all of them.
//
// Never: it never evicts static or mirror pods or pods of system-critical
// priority (>= 2000000000), never evicts more than one pod per interval,
// and never evicts when no threshold is crossed now. It does not reclaim
// node-level resources first (unused images, dead containers) as upstream
// does: TODO(issue 5).
//
// # Usage
//
//	m, err := eviction.New(eviction.Config{
//		Usage:    eviction.HostUsage(memInfoPath, root, imageDir),
//		Pods:     agent.ActivePods,
//		PodUsage: stats.PodUsage,
//		Evict:    agent.Evict,
//	})
//	reporter := nodestatus.New(nodestatus.Config{..., Usage: m.Pressure})
//	err = m.Run(ctx) // every Interval: observe, report, evict at most one pod
package eviction
