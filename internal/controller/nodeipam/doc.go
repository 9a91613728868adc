// Package nodeipam is the node IPAM controller: it gives every node a pod
// CIDR from the cluster CIDR, as upstream's node-ipam-controller with its
// range allocator does (k3s defaults: 10.42.0.0/16 cut into /24s).
//
// Reads: nodes (shared informer).
//
// Writes: node spec.podCIDR and spec.podCIDRs (a merge patch, once per node;
// the API server keeps them immutable), and the event CIDRNotAvailable on a
// node when the cluster CIDR has no free subnet left.
//
// State: which subnets are taken, in memory, rebuilt from the nodes' pod
// CIDRs before the first node is handled; a subnet is taken from the moment
// it is chosen for a node (before the patch is seen by the informer) and
// released when the node is gone from the cache, which then re-queues the
// nodes still waiting for one.
//
// Never: it never changes or removes a pod CIDR a node already has, never
// hands out a subnet twice, and never deletes nodes. Only single-stack: one
// cluster CIDR (IPv4 or IPv6), one pod CIDR per node.
//
// # Usage
//
//	c := nodeipam.New(deps) // registers the node informer on deps.Informers
//	c.ClusterCIDR = netip.MustParsePrefix("10.42.0.0/16") // optional, before Run
//	deps.Informers.StartWithContext(ctx)
//	err := c.Run(ctx, workers) // rebuilds the allocations, then blocks until ctx is done
package nodeipam
