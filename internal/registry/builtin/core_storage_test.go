package builtin

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPVCUpdateStorageClassName(t *testing.T) {
	claim := func(class *string, volume string, phase corev1.PersistentVolumeClaimPhase, ann map[string]string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default", Annotations: ann},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				StorageClassName: class,
				VolumeName:       volume,
				VolumeMode:       ptr.To(corev1.PersistentVolumeFilesystem),
			},
			Status: corev1.PersistentVolumeClaimStatus{Phase: phase},
		}
	}
	beta := map[string]string{betaStorageClassAnnotation: "old"}
	tests := []struct {
		name     string
		old, new *corev1.PersistentVolumeClaim
		ok       bool
	}{
		{"nil to value, unbound", claim(nil, "", corev1.ClaimPending, nil), claim(ptr.To("local-path"), "", corev1.ClaimPending, nil), true},
		{"nil to empty, unbound", claim(nil, "", corev1.ClaimPending, nil), claim(ptr.To(""), "", corev1.ClaimPending, nil), true},
		{"nil to value, volumeName set", claim(nil, "pv1", corev1.ClaimPending, nil), claim(ptr.To("local-path"), "pv1", corev1.ClaimPending, nil), false},
		{"nil to value, bound", claim(nil, "pv1", corev1.ClaimBound, nil), claim(ptr.To("local-path"), "pv1", corev1.ClaimBound, nil), false},
		{"nil to value with beta annotation", claim(nil, "", corev1.ClaimPending, beta), claim(ptr.To("local-path"), "", corev1.ClaimPending, beta), false},
		{"value to other value", claim(ptr.To("a"), "", corev1.ClaimPending, nil), claim(ptr.To("b"), "", corev1.ClaimPending, nil), false},
		{"value to nil", claim(ptr.To("a"), "", corev1.ClaimPending, nil), claim(nil, "", corev1.ClaimPending, nil), false},
		{"empty to value", claim(ptr.To(""), "", corev1.ClaimPending, nil), claim(ptr.To("a"), "", corev1.ClaimPending, nil), false},
		{"unchanged", claim(ptr.To("a"), "", corev1.ClaimPending, nil), claim(ptr.To("a"), "", corev1.ClaimPending, nil), true},
		{"binding sets volumeName", claim(ptr.To("a"), "", corev1.ClaimPending, nil), claim(ptr.To("a"), "pv1", corev1.ClaimPending, nil), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := validatePVCUpdate(tt.new, tt.old)
			if got := len(errs) == 0; got != tt.ok {
				t.Errorf("validatePVCUpdate ok = %v, want %v (errors: %v)", got, tt.ok, errs)
			}
		})
	}
}
