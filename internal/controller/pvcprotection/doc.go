// Package pvcprotection holds the two storage-protection controllers,
// "pvc-protection" and "pv-protection": they remove the finalizers the
// StorageObjectInUseProtection admission plugin puts on every new claim
// and volume, once the object is being deleted and nothing uses it.
//
// Responsibility:
//   - pvc-protection (NewPVC): a PersistentVolumeClaim with a
//     deletionTimestamp and the finalizer kubernetes.io/pvc-protection
//     loses the finalizer once no pod of its namespace that is not
//     terminated (status.phase neither Succeeded nor Failed) uses it: a
//     persistentVolumeClaim volume naming it, or a generic ephemeral
//     volume whose claim (<pod>-<volume>, controlled by the pod) it is.
//     Pods count whether or not they are scheduled (upstream ignores
//     unscheduled pods because its scheduler and kubelet refuse claims
//     being deleted). The pod cache is checked first; before removing,
//     the namespace's pods are listed live from the API server, since the
//     cache may lag behind a pod just created. Pod adds, updates and
//     deletions re-trigger the claims being deleted that the pod uses.
//   - pv-protection (NewPV): a PersistentVolume with a deletionTimestamp
//     and the finalizer kubernetes.io/pv-protection loses the finalizer
//     once its status.phase is not Bound. The binder
//     (internal/controller/persistentvolume) moves a volume whose claim is
//     gone to Released, also when the volume is being deleted.
//
// The finalizer is removed with an Update carrying the cached
// resourceVersion, so a change in between (a pod appearing, the volume
// becoming Bound) makes it conflict and retry.
//
// Reads: claims and pods (pvc-protection), volumes (pv-protection), from
// shared informers; pods live per namespace. Writes: the finalizer lists
// of claims and volumes. Never: adds finalizers (admission does), deletes
// anything, or touches other finalizers.
//
// # Usage
//
//	pvcs := pvcprotection.NewPVC(deps) // registers claim and pod informers
//	pvs := pvcprotection.NewPV(deps)   // registers the volume informer
//	deps.Informers.StartWithContext(ctx)
//	go pvcs.Run(ctx, 1) // each blocks until ctx is done
//	go pvs.Run(ctx, 1)
package pvcprotection
