// Package garbagecollector is the garbage collector: it deletes objects
// whose owners are gone and carries out the foreground and orphan
// deletion of owners, by owner references, with upstream's semantics.
//
// Responsibility:
//   - Background (the default): when every owner of an object is gone
//     (checked by a live GET and uid comparison, never from the cache
//     alone), the object is deleted; when some owners are gone and another
//     is alive, only the references to the gone ones are removed.
//   - Foreground: an owner with a deletionTimestamp and the
//     foregroundDeletion finalizer has its dependents deleted (those that
//     have dependents of their own in the foreground, so the whole subtree
//     goes first); once no dependent with blockOwnerDeletion true is left,
//     the finalizer is removed and the API server deletes the owner.
//   - Orphan: an owner with a deletionTimestamp and the orphan finalizer
//     has its references removed from every dependent, then the finalizer.
//
// A namespaced dependent's owner is looked up in the dependent's namespace
// (or cluster-wide for a cluster-scoped kind): a reference to an owner of a
// namespaced kind living in another namespace is treated as absent, as is
// a namespaced owner of a cluster-scoped dependent (both are reported with
// an OwnerRefInvalidNamespace warning event, as upstream).
//
// Reads: discovery (every resource, in its preferred version, that
// supports list, watch and delete, except events; re-read every
// ResyncPeriod so new resources are watched and removed ones dropped), the
// metadata of those objects (the graph of owners and dependents) through
// the manager's shared typed informers for built-in resources and one
// metadata informer each for any other, and live GETs of owners and
// dependents through the metadata client.
//
// Writes: DELETE of garbage (preconditions on uid and resourceVersion, so a
// replaced or just-adopted object is never deleted by mistake), and JSON
// merge patches of metadata.ownerReferences and metadata.finalizers
// conditioned on uid and resourceVersion.
//
// Never: it never deletes an object that has a live owner, never deletes
// an owner (the API server does once the finalizers are gone), never
// removes finalizers other than orphan and foregroundDeletion, and never
// changes anything but metadata.
//
// # Usage
//
//	gc := garbagecollector.New(deps, metadataClient, clientset.Discovery())
//	err := gc.Run(ctx, workers) // blocks until ctx is done; nil on cancellation
//
// Informer events feed a graph (uid → node, owner uid → dependents) that
// decides what to look at; two reconcile loops keyed by uid do the work:
// attempt-to-delete (possible garbage, and owners deleting their
// dependents) and orphan. Each is level-triggered: it re-reads the object
// live and converges, whatever event brought it there.
//
// Known weaknesses (as upstream): dependents not yet seen by the informers
// when an owner finishes its foreground or orphan deletion are not waited
// for or orphaned; they are then collected as garbage in the background.
// Resources are watched in their preferred version only.
package garbagecollector
