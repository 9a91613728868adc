// Package volumematch decides which PersistentVolume a
// PersistentVolumeClaim may bind to, as upstream's binder does: class,
// access modes, capacity, volume mode, selector, pre-binding. It is pure
// (no I/O): the persistent volume binder (internal/controller/persistentvolume)
// and the scheduler's VolumeBinding plugin share it, so that the node the
// scheduler picks for a delayed claim and the volume the binder then binds
// agree.
package volumematch

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	storagehelpers "k8s.io/component-helpers/storage/volume"
)

// VolumeMode is m, or Filesystem when unset.
func VolumeMode(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return *m
}

// Fits checks what every binding needs, pre-bound or not: access modes a
// superset of the claim's, capacity at least the request, and the same
// volumeMode. It returns why not, or "".
func Fits(pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) string {
	if VolumeMode(pv.Spec.VolumeMode) != VolumeMode(claim.Spec.VolumeMode) {
		return fmt.Sprintf("volumeMode %s does not match the claim's %s", VolumeMode(pv.Spec.VolumeMode), VolumeMode(claim.Spec.VolumeMode))
	}
	for _, m := range claim.Spec.AccessModes {
		if !slices.Contains(pv.Spec.AccessModes, m) {
			return fmt.Sprintf("access mode %s is not offered", m)
		}
	}
	want := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	have := pv.Spec.Capacity[corev1.ResourceStorage]
	if have.Cmp(want) < 0 {
		return fmt.Sprintf("capacity %s is less than the requested %s", have.String(), want.String())
	}
	return ""
}

// Match reports whether the unbound volume pv may be bound to claim: it
// Fits (access modes, capacity, volumeMode), has the claim's class, its
// labels match the claim's selector, and it is not being deleted. It
// returns the reason when it may not.
func Match(pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) (bool, string) {
	if pv.DeletionTimestamp != nil {
		return false, "volume is being deleted"
	}
	if why := Fits(pv, claim); why != "" {
		return false, why
	}
	if storagehelpers.GetPersistentVolumeClass(pv) != storagehelpers.GetPersistentVolumeClaimClass(claim) {
		return false, fmt.Sprintf("storageClassName %q does not match the claim's %q", storagehelpers.GetPersistentVolumeClass(pv), storagehelpers.GetPersistentVolumeClaimClass(claim))
	}
	if claim.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(claim.Spec.Selector)
		if err != nil {
			return false, fmt.Sprintf("invalid selector: %v", err)
		}
		if !sel.Matches(labels.Set(pv.Labels)) {
			return false, "labels do not match the claim's selector"
		}
	}
	return true, ""
}

// Available reports whether pv is free for any claim: no claimRef and not
// Released or Failed (a volume just created is still Pending until its own
// reconcile makes it Available).
func Available(pv *corev1.PersistentVolume) bool {
	if pv.Spec.ClaimRef != nil {
		return false
	}
	return pv.Status.Phase != corev1.VolumeReleased && pv.Status.Phase != corev1.VolumeFailed
}

// FindVolume picks the volume claim should bind to among pvs, or nil: a
// volume pre-bound to the claim that fits it (not being deleted) first,
// otherwise the smallest available volume that Matches (ties by name).
// With delayBinding (the claim's class is WaitForFirstConsumer) only a
// pre-bound volume is taken, as upstream: the scheduler chooses among the
// free ones for the node it picks, and pre-binds the one it chose.
func FindVolume(pvs []*corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim, delayBinding bool) *corev1.PersistentVolume {
	var best *corev1.PersistentVolume
	for _, pv := range pvs {
		if pv.DeletionTimestamp != nil {
			continue
		}
		if storagehelpers.IsVolumeBoundToClaim(pv, claim) {
			if Fits(pv, claim) == "" {
				return pv
			}
			continue
		}
		if delayBinding || !Available(pv) {
			continue
		}
		if ok, _ := Match(pv, claim); !ok {
			continue
		}
		if best == nil || smaller(pv, best) {
			best = pv
		}
	}
	return best
}

// smaller orders volumes by capacity, then name.
func smaller(a, b *corev1.PersistentVolume) bool {
	qa, qb := a.Spec.Capacity[corev1.ResourceStorage], b.Spec.Capacity[corev1.ResourceStorage]
	if c := qa.Cmp(qb); c != 0 {
		return c < 0
	}
	return a.Name < b.Name
}
