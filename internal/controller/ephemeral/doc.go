// Package ephemeral is the ephemeral volume controller: it creates the
// PersistentVolumeClaim of every generic ephemeral volume (a pod volume
// with `ephemeral.volumeClaimTemplate`), as upstream's
// ephemeral-volume controller does.
//
// For a pod that is not being deleted, each such volume gets the claim
// "<pod name>-<volume name>" in the pod's namespace, with the template's
// labels, annotations and spec and the pod as its controlling owner, so
// that the garbage collector deletes it with the pod. A claim of that name
// the pod does not own is left alone (the scheduler then keeps the pod
// Pending with "was not created for pod"), and a Warning event on the pod
// says so. A deleted claim of a pod that still exists is created again.
//
// Reads: pods and claims (informers). Writes: claims (create) and events
// on pods.
package ephemeral
