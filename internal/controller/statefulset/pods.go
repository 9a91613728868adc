package statefulset

import (
	"maps"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/controller/ownership"
)

// newPod returns the pod of set with ordinal ord made from the template
// and revision that upstream picks: the current revision below the
// partition of a RollingUpdate, else the update revision.
func (s *state) newPod(ord int) *corev1.Pod {
	tmpl, rev := &s.set.Spec.Template, s.updateRev
	if s.set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType || s.set.Spec.UpdateStrategy.Type == "" {
		ru := s.set.Spec.UpdateStrategy.RollingUpdate
		if ru != nil && ru.Partition != nil && ord < int(*ru.Partition) {
			tmpl, rev = s.currentTmpl, s.currentRev
		}
	}
	return newPod(s.set, tmpl, ord, rev)
}

// newPod builds pod ord of set from tmpl, labelled with revision.
func newPod(set *appsv1.StatefulSet, tmpl *corev1.PodTemplateSpec, ord int, revision string) *corev1.Pod {
	name := podName(set, ord)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       set.Namespace,
			Labels:          maps.Clone(tmpl.Labels),
			Annotations:     maps.Clone(tmpl.Annotations),
			OwnerReferences: []metav1.OwnerReference{ownership.NewControllerRef(set, gvk)},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.StatefulSetPodNameLabel] = name
	pod.Labels[appsv1.PodIndexLabel] = strconv.Itoa(ord)
	pod.Labels[appsv1.StatefulSetRevisionLabel] = revision
	pod.Spec.Hostname = name
	if set.Spec.ServiceName != "" {
		pod.Spec.Subdomain = set.Spec.ServiceName
	}
	// Storage: each claim template becomes a volume of the same name
	// referring to this ordinal's claim, replacing a template volume of
	// that name.
	var volumes []corev1.Volume
	claimed := map[string]bool{}
	for _, ct := range set.Spec.VolumeClaimTemplates {
		claimed[ct.Name] = true
		volumes = append(volumes, corev1.Volume{
			Name: ct.Name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: claimName(set, ct.Name, ord),
			}},
		})
	}
	for _, v := range pod.Spec.Volumes {
		if !claimed[v.Name] {
			volumes = append(volumes, v)
		}
	}
	if len(volumes) > 0 {
		pod.Spec.Volumes = volumes
	}
	return pod
}

// claimName is the name of the claim of template for ordinal ord.
func claimName(set *appsv1.StatefulSet, template string, ord int) string {
	return template + "-" + podName(set, ord)
}

// newClaim returns the claim of template ct for ordinal ord.
func newClaim(set *appsv1.StatefulSet, ct *corev1.PersistentVolumeClaim, ord int) *corev1.PersistentVolumeClaim {
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:        claimName(set, ct.Name, ord),
			Namespace:   set.Namespace,
			Labels:      maps.Clone(ct.Labels),
			Annotations: maps.Clone(ct.Annotations),
		},
		Spec: *ct.Spec.DeepCopy(),
	}
	if set.Spec.Selector != nil && len(set.Spec.Selector.MatchLabels) > 0 {
		if claim.Labels == nil {
			claim.Labels = map[string]string{}
		}
		maps.Copy(claim.Labels, set.Spec.Selector.MatchLabels)
	}
	return claim
}

// retention returns the set's claim retention policy with defaults.
func retention(set *appsv1.StatefulSet) (whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType) {
	whenDeleted, whenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	if p := set.Spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		if p.WhenDeleted != "" {
			whenDeleted = p.WhenDeleted
		}
		if p.WhenScaled != "" {
			whenScaled = p.WhenScaled
		}
	}
	return whenDeleted, whenScaled
}

// claimOwnerRefs sets the owner references of claim that the retention
// policy asks for, as upstream does: a reference to the set when the
// claims go with the set (whenDeleted=Delete) and the pod is not being
// scaled away, a reference to the pod when the claims go with scaled-down
// pods (whenScaled=Delete) and this pod is being scaled away. pod may be
// nil (not created yet). It reports whether claim changed.
func claimOwnerRefs(claim *corev1.PersistentVolumeClaim, set *appsv1.StatefulSet, pod *corev1.Pod, condemned bool) bool {
	whenDeleted, whenScaled := retention(set)
	del := appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	wantSet := whenDeleted == del && !(whenScaled == del && condemned)
	wantPod := whenScaled == del && condemned
	changed := setRef(claim, wantSet, func() metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: set.Name, UID: set.UID}
	})
	if pod != nil {
		changed = setRef(claim, wantPod, func() metav1.OwnerReference {
			return metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}
		}) || changed
	}
	return changed
}

// setRef adds (want) or removes (!want) the owner reference with uid.
func setRef(obj metav1.Object, want bool, ref func() metav1.OwnerReference) bool {
	refs := obj.GetOwnerReferences()
	r := ref()
	for i := range refs {
		if refs[i].UID == r.UID {
			if want {
				return false
			}
			obj.SetOwnerReferences(append(refs[:i:i], refs[i+1:]...))
			return true
		}
	}
	if !want {
		return false
	}
	obj.SetOwnerReferences(append(refs, r))
	return true
}
