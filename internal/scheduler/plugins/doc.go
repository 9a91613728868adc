// Package plugins holds the scheduler's filter and score plugins, one
// file each, with upstream semantics: NodeName, NodeUnschedulable,
// TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit (with the
// least-allocated score), NodeResourcesBalancedAllocation,
// PodTopologySpread, InterPodAffinity and ImageLocality.
//
// Plugins read only the framework.Snapshot and the pod they are given;
// they do no I/O, keep no state between pods (per-pod state goes through
// the framework.CycleState) and never mutate what they read. Filter and
// Score are called concurrently for different nodes.
//
// Default returns the plugin set and score weights upstream's default
// profile uses.
package plugins
