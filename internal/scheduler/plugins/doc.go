// Package plugins holds the scheduler's filter and score plugins, one
// file each, with upstream semantics: NodeName, NodeUnschedulable,
// TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit (with the
// least-allocated score), VolumeBinding, NodeResourcesBalancedAllocation,
// PodTopologySpread, InterPodAffinity and ImageLocality.
//
// Plugins read only the framework.Snapshot and the pod they are given
// (VolumeBinding also reads claims, volumes and storage classes from the
// scheduler's informer caches); they do no I/O and never mutate what they
// read. Per-pod state goes
// through the framework.CycleState. The one state kept between pods is a
// cache, never a decision: PodTopologySpread and InterPodAffinity (as
// built by Default) remember per-node counts and per-domain sums keyed by
// NodeInfo pointer and NodeInfo.Version, so that a cycle only revisits the
// nodes that changed (domainsums.go, podcount.go); their zero values walk
// every node's pods each time and decide the same (memo_test.go). The
// states their PreFilter/PreScore write share those sums and are valid
// until the plugin's next PreFilter/PreScore: one cycle at a time, as the
// framework runs them. Filter and Score are called concurrently for
// different nodes.
//
// Default returns the plugin set and score weights upstream's default
// profile uses.
package plugins
