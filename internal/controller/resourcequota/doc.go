// Package resourcequota is the ResourceQuota controller: it keeps every
// ResourceQuota's status up to date. Enforcement (refusing creations over
// quota) is admission's job, not this package's.
//
// Responsibility: status.hard mirrors spec.hard and status.used holds, for
// every resource named in spec.hard, the namespace's current usage of the
// objects the quota's scopes select:
//   - object counts: pods (not terminal; count/pods counts every pod),
//     services, configmaps, secrets,
//     persistentvolumeclaims, replicationcontrollers, resourcequotas,
//     services.loadbalancers, services.nodeports and count/<resource>[.<group>]
//     for the same core kinds and for deployments, replicasets,
//     statefulsets, daemonsets (apps), jobs and cronjobs (batch), all
//     followed by informers; count/<resource>.<group> of any other served
//     resource is counted by listing its metadata at each sync (needs
//     NewForConfig), so it follows changes only at the next sync;
//   - compute of pods that are not terminal (nor past their deletion
//     grace period): requests.<r> and limits.<r> for every resource the
//     pods request or limit, bare cpu, memory and ephemeral-storage
//     meaning requests;
//   - storage of claims: requests.storage and the per-storage-class
//     <class>.storageclass.storage.k8s.io/{requests.storage,persistentvolumeclaims}.
//
// Scopes (spec.scopes and spec.scopeSelector: Terminating, NotTerminating,
// BestEffort, NotBestEffort, PriorityClass, CrossNamespacePodAffinity)
// select pods; a scoped quota counts nothing of other kinds, as upstream.
// Used values of resources this controller does not know are kept as they
// were.
//
// Reads (shared informers): resourcequotas and the counted kinds above;
// other counted resources through a metadata client (lists, no watch).
// Writes: resourcequotas/status only. Never: writes any other object or a
// quota's spec.
//
// Every quota is recomputed when it or another quota of its namespace is
// added, when its spec changes, when a counted object of its namespace is
// deleted or changes its usage, and at least every ResyncPeriod (5 min,
// upstream's --resource-quota-sync-period). Not when an object is created nor when
// the quota's status changes: admission has charged the creation into
// status.used already, and recomputing then from caches that may not yet
// hold the newest creations would undo their charges and let more through
// than the quota allows.
//
// # Usage
//
//	rq, err := resourcequota.NewForConfig(deps, restConfig) // or New(deps): informer-backed kinds only
//	deps.Informers.StartWithContext(ctx)
//	go rq.Run(ctx, 5) // blocks until ctx is done
package resourcequota
