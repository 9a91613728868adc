// Package clusterroleaggregation is the cluster role aggregation
// controller, as upstream's clusterrole-aggregation controller: a
// ClusterRole with an aggregationRule gets as its rules the union of the
// rules of every other ClusterRole matched by one of its
// clusterRoleSelectors, so that for example admin, edit and view pick up
// the rules of roles labelled rbac.authorization.k8s.io/aggregate-to-view.
//
// Reads: clusterroles (shared informer).
//
// Writes: clusterroles (update only): the rules of aggregated cluster
// roles, and only when the union differs from what they hold.
//
// Never: it never touches a cluster role without an aggregationRule, never
// creates or deletes cluster roles, and never mutates a cached object.
//
// # Usage
//
//	c := clusterroleaggregation.New(deps) // registers the clusterroles informer
//	deps.Informers.StartWithContext(ctx)
//	err := c.Run(ctx, workers) // blocks until ctx is done
package clusterroleaggregation
