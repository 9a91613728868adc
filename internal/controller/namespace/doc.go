// Package namespace is the namespace controller: it empties namespaces that
// are being deleted and then releases them.
//
// Responsibility: for every namespace with a deletionTimestamp and the
// "kubernetes" entry in spec.finalizers, delete every object of every
// namespaced resource in it, wait until none are left, then remove
// "kubernetes" from spec.finalizers through the namespaces/<name>/finalize
// subresource, after which the API server deletes the namespace.
//
// Reads: namespaces (a shared informer), API discovery (the preferred
// version of every namespaced resource that supports list and delete or
// deletecollection), and object metadata of those resources in the
// namespace being deleted (metadata client).
//
// Writes: DELETE collection (or DELETE per object) in the namespace being
// deleted; namespaces/<name>/status (the deletion conditions
// NamespaceDeletionDiscoveryFailure, NamespaceDeletionGroupVersionParsingFailure,
// NamespaceDeletionContentFailure, NamespaceContentRemaining and
// NamespaceFinalizersRemaining, as upstream sets them); and
// namespaces/<name>/finalize.
//
// Never: it never touches a namespace without a deletionTimestamp, never
// removes finalizers from the objects it deletes (objects with finalizers or
// a grace period are waited for, not forced), and never deletes the
// namespace object itself.
//
// # Usage
//
//	c := namespace.New(clientset, metadataClient, clientset.Discovery(), logger)
//	err := c.Run(ctx) // blocks until ctx is done; returns nil on cancellation
//
// The controller is level-triggered: each namespace name taken from the
// queue is reconciled from the current state (Reconcile), and a namespace
// whose content is still going away is requeued after a delay; failures are
// requeued with per-item exponential back-off.
package namespace
