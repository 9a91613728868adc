// Package admission is skiff's admission chain: the plugins the API server
// runs on a write after authentication, authorization and decoding and
// before the object is stored, as upstream's kube-apiserver does.
//
// Responsibility: mutate (defaults) and then validate (refuse) one request
// at a time. A Chain runs every Mutator in order, then every Validator in
// order; the first error stops it. Errors are *apierrors.StatusError with
// upstream's codes and texts (403 Forbidden naming the plugin's policy and
// the field, 500 for plugin failures).
//
// Plugins, in upstream's order (Default):
//
//	LimitRanger      mutating+validating  LimitRange defaults, min/max/ratio (pods, claims)
//	ServiceAccount   mutating+validating  serviceAccountName, projected token volume, mirror pods
//	NodeRestriction  validating           system:node:<n> writes only its own objects
//	PodSecurity      validating           Pod Security Standards from namespace labels
//	Priority         mutating             priorityClassName → spec.priority
//	StorageObjectInUseProtection
//	                 mutating             pvc-/pv-protection finalizers on new claims and volumes
//	RuntimeClass     mutating+validating  a pod's RuntimeClass: must exist; overhead, nodeSelector, tolerations
//	ResourceQuota    validating           quota checks and atomic charging of status.used
//
// NamespaceLifecycle lives in the registry, not here.
//
// Reads: shared informers (namespaces, service accounts, limit ranges,
// resource quotas, priority classes, runtime classes) with a live read through the client
// when the cache misses; live through the client: the quotas that limit a
// request, the pod or node a NodeRestriction check names, a namespace's
// pods when its enforce level is tightened. Writes: only
// resourcequotas/status (ResourceQuota charges usage with optimistic
// concurrency) and, from EnsurePriorityClasses, the two built-in
// PriorityClasses. Never: stores the admitted object (the caller does),
// changes r.Object in a Validator, or changes an object read from a cache.
//
// # Usage
//
//	f := informers.NewSharedInformerFactory(client, 0)
//	chain := admission.Default(f, client) // registers the informers it needs
//	f.StartWithContext(ctx)                    // the caller starts (and stops) the factory
//	f.WaitForCacheSync(ctx.Done())
//	...
//	// per write request, after decoding and before storing:
//	req := &admission.Request{Operation: admission.Create, User: user, Namespace: ns,
//	    Name: name, Resource: gvr, Object: obj}
//	if err := chain.Admit(ctx, req); err != nil {
//	    return err // a *apierrors.StatusError
//	}
//	for _, w := range req.Warnings { /* Warning: 299 - "<w>" header */ }
//
// A Chain is safe for concurrent use; a Request is not.
package admission
