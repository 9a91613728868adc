// Package persistentvolume is the PersistentVolume binder
// ("persistentvolume-binder"): it binds PersistentVolumeClaims to
// PersistentVolumes, keeps every volume's phase, provisions hostPath
// volumes for the default local-path StorageClass and reclaims them.
//
// Responsibility, level-triggered from the claims, volumes and classes in
// the informer caches (one queue; keys "claim:<ns>/<name>",
// "volume:<name>" and "class"):
//   - At start it creates the StorageClass local-path (provisioner
//     skiff.dev/local-path, reclaimPolicy Delete, volumeBindingMode
//     WaitForFirstConsumer, parameters.path /var/lib/skiff/storage,
//     marked the default class) unless one of that name exists; a user's
//     class is never overwritten (an older cluster keeps its Immediate
//     class), and a deleted one is only recreated at the next start.
//   - Volume phases: no claimRef, or a claimRef without a UID (pre-bound to
//     a claim that may not exist yet) → Available; claimRef to the claim
//     that names the volume in spec.volumeName → Bound; claimRef to a claim
//     that is gone (or has another UID) → reclaim: a volume with
//     reclaimPolicy Delete provisioned by skiff.dev/local-path is deleted,
//     every other one becomes Released (Delete of any other volume is
//     reported with a VolumeFailedDelete event: skiff deletes only what it
//     provisioned). A volume to delete is marked Released first, so that
//     the pv-protection controller (internal/controller/pvcprotection)
//     drops its finalizer. Deleting a provisioned volume deletes the API
//     object only: its data directory stays on the node that used it.
//   - A volume being deleted is left alone, except that a Bound one whose
//     claim is gone becomes Released (then pv-protection lets it go). A
//     claim being deleted still counts as present (its pvc-protection
//     finalizer holds it while pods use it): its volume stays Bound and
//     is reclaimed only once the claim object is gone.
//   - Retroactive default class: an unbound claim without a class (nil
//     spec.storageClassName and no beta annotation) gets the default
//     class's name (the newest class annotated
//     storageclass.kubernetes.io/is-default-class "true").
//   - Binding a Pending claim without spec.volumeName: a volume pre-bound
//     to it (claimRef namespace/name, and UID if set) is taken first;
//     otherwise the smallest Available unbound volume that matches
//     (Match: same class, access modes a superset, capacity ≥ request,
//     same volumeMode, selector matches the labels). A claim whose class
//     is WaitForFirstConsumer takes only a pre-bound volume: the
//     scheduler (internal/scheduler/plugins VolumeBinding) picks a free
//     one that fits the pod's node and pre-binds it (claimRef), or sets
//     volume.kubernetes.io/selected-node for provisioning. A claim naming a
//     volume in spec.volumeName binds to that one only, if it is free and
//     matches. A bind writes, in this order, the volume's claimRef and
//     phase Bound, the claim's volumeName and annotations
//     pv.kubernetes.io/bind-completed and bound-by-controller, then the
//     claim's status (Bound, the volume's access modes and capacity).
//     Each step is skipped when already done, so a conflict is retried and
//     a later reconcile finishes a half-done bind.
//   - Dynamic provisioning: a claim no volume fits whose class has
//     provisioner skiff.dev/local-path gets a volume pvc-<claim UID>
//     (hostPath <parameters.path>/<name>, DirectoryOrCreate; the claim's
//     request, access modes and volumeMode; the class's reclaim policy;
//     annotation pv.kubernetes.io/provisioned-by) pre-bound to the claim.
//     With the annotation volume.kubernetes.io/selected-node (set by the
//     scheduler) the volume requires kubernetes.io/hostname = that node;
//     otherwise (a class with Immediate binding) it has no node affinity
//     and its directory is created on whichever node mounts it first —
//     right for a single node, and on several nodes the data does not
//     follow the pod. Classes with volumeBindingMode WaitForFirstConsumer
//     (the default class's) are provisioned only once the selected-node
//     annotation is set. Claims of classes with other
//     provisioners stay Pending (event ExternalProvisioning).
//   - A bound claim whose volume is gone or bound elsewhere becomes Lost.
//
// Reads: claims, volumes and storage classes (informers). Writes: volumes
// (create, claimRef, status, delete), claims (storageClassName,
// volumeName, bind annotations, status), the default class, and events on
// claims.
//
// Not done: recycling, volume expansion, node affinity checks while
// binding static volumes of Immediate classes, the beta
// storage-provisioner annotations on claims, and metrics.
package persistentvolume
