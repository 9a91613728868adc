// Package statefulset is the StatefulSet controller: it gives each
// StatefulSet (apps/v1) pods with stable names and storage, as upstream does.
//
// For a set "web" with n replicas it keeps pods web-0 … web-(n-1) (from
// spec.ordinals.start if set), each labelled statefulset.kubernetes.io/pod-name,
// apps.kubernetes.io/pod-index and controller-revision-hash (the name of the
// ControllerRevision it was made from), with hostname = pod name and
// subdomain = serviceName. Before a pod is created, the
// PersistentVolumeClaims of its volumeClaimTemplates ("<template>-web-<ordinal>")
// are, and the pod's volumes refer to them.
//
// With podManagementPolicy OrderedReady it creates one pod at a time in
// ordinal order, each Running and Ready (and available for minReadySeconds)
// before the next, and removes pods from the highest ordinal down, one at a
// time; Parallel does both at once. Failed and succeeded pods are deleted
// and recreated. The RollingUpdate strategy replaces pods whose revision is
// not the update revision, from the highest ordinal down to the partition,
// one at a time and waiting for each to be healthy (with
// rollingUpdate.maxUnavailable, up to that many replicas unhealthy at a
// time); OnDelete only makes new pods from the update revision.
// persistentVolumeClaimRetentionPolicy is implemented through owner
// references on the claims (to the set for whenDeleted=Delete, to the pod
// for whenScaled=Delete), leaving the deletion to garbage collection.
//
// Reads: StatefulSets, Pods, ControllerRevisions and PersistentVolumeClaims
// from the shared informers.
// Writes: Pods (create, delete, adopt/release), PersistentVolumeClaims
// (create, owner references), ControllerRevisions (through package
// history), StatefulSet status, Events.
// Never: updates a StatefulSet's spec, or deletes a claim itself.
//
// Not implemented yet: updating the identity labels or claims of an
// existing pod in place, waiting for a claim being deleted before
// recreating its pod, and status conditions.
package statefulset
