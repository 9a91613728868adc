package persistentvolume

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Annotations and names shared with upstream.
const (
	annBindCompleted     = "pv.kubernetes.io/bind-completed"
	annBoundByController = "pv.kubernetes.io/bound-by-controller"
	annProvisionedBy     = "pv.kubernetes.io/provisioned-by"
	annSelectedNode      = "volume.kubernetes.io/selected-node"
	annDefaultClass      = "storageclass.kubernetes.io/is-default-class"
	annBetaDefaultClass  = "storageclass.beta.kubernetes.io/is-default-class"
	annBetaClass         = "volume.beta.kubernetes.io/storage-class"
)

// claimClass is the class a claim asks for ("" for none).
func claimClass(c *corev1.PersistentVolumeClaim) string {
	if v, ok := c.Annotations[annBetaClass]; ok {
		return v
	}
	if c.Spec.StorageClassName != nil {
		return *c.Spec.StorageClassName
	}
	return ""
}

// volumeClass is the class of a volume ("" for none).
func volumeClass(pv *corev1.PersistentVolume) string {
	if v, ok := pv.Annotations[annBetaClass]; ok {
		return v
	}
	return pv.Spec.StorageClassName
}

func volumeMode(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return *m
}

// boundToClaim reports whether pv's claimRef names claim (namespace and
// name, and UID when the claimRef has one).
func boundToClaim(pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) bool {
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.Namespace != claim.Namespace || ref.Name != claim.Name {
		return false
	}
	return ref.UID == "" || ref.UID == claim.UID
}

// fits checks what every binding needs, pre-bound or not: access modes a
// superset of the claim's, capacity at least the request, and the same
// volumeMode. It returns why not, or "".
func fits(pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) string {
	if volumeMode(pv.Spec.VolumeMode) != volumeMode(claim.Spec.VolumeMode) {
		return fmt.Sprintf("volumeMode %s does not match the claim's %s", volumeMode(pv.Spec.VolumeMode), volumeMode(claim.Spec.VolumeMode))
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
// fits (access modes, capacity, volumeMode), has the claim's class, its
// labels match the claim's selector, and it is not being deleted. It
// returns the reason when it may not.
func Match(pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) (bool, string) {
	if pv.DeletionTimestamp != nil {
		return false, "volume is being deleted"
	}
	if why := fits(pv, claim); why != "" {
		return false, why
	}
	if volumeClass(pv) != claimClass(claim) {
		return false, fmt.Sprintf("storageClassName %q does not match the claim's %q", volumeClass(pv), claimClass(claim))
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

// available reports whether pv is free for any claim: no claimRef and not
// Released or Failed (a volume just created is still Pending until its own
// reconcile makes it Available).
func available(pv *corev1.PersistentVolume) bool {
	if pv.Spec.ClaimRef != nil {
		return false
	}
	return pv.Status.Phase != corev1.VolumeReleased && pv.Status.Phase != corev1.VolumeFailed
}

// FindVolume picks the volume claim should bind to among pvs, or nil: a
// volume pre-bound to the claim that fits it (not being deleted) first,
// otherwise the smallest available volume that Matches (ties by name).
func FindVolume(pvs []*corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	var best *corev1.PersistentVolume
	for _, pv := range pvs {
		if pv.DeletionTimestamp != nil {
			continue
		}
		if boundToClaim(pv, claim) {
			if fits(pv, claim) == "" {
				return pv
			}
			continue
		}
		if !available(pv) {
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

func smaller(a, b *corev1.PersistentVolume) bool {
	qa, qb := a.Spec.Capacity[corev1.ResourceStorage], b.Spec.Capacity[corev1.ResourceStorage]
	if c := qa.Cmp(qb); c != 0 {
		return c < 0
	}
	return a.Name < b.Name
}
