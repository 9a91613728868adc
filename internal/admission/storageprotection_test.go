package admission

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestStorageObjectInUseProtection(t *testing.T) {
	t.Parallel()
	claim := func(finalizers ...string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "ns", Finalizers: finalizers}}
	}
	volume := func(finalizers ...string) *corev1.PersistentVolume {
		return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv", Finalizers: finalizers}}
	}
	finalizersOf := func(obj runtime.Object) []string {
		switch o := obj.(type) {
		case *corev1.PersistentVolumeClaim:
			return o.Finalizers
		case *corev1.PersistentVolume:
			return o.Finalizers
		case *corev1.Pod:
			return o.Finalizers
		}
		return nil
	}
	tests := []struct {
		name     string
		op       Operation
		resource string
		sub      string
		obj      runtime.Object
		want     []string
	}{
		{"new claim", Create, "persistentvolumeclaims", "", claim(), []string{PVCProtectionFinalizer}},
		{"new claim keeps its finalizers", Create, "persistentvolumeclaims", "", claim("example.com/x"), []string{"example.com/x", PVCProtectionFinalizer}},
		{"finalizer already there", Create, "persistentvolumeclaims", "", claim(PVCProtectionFinalizer), []string{PVCProtectionFinalizer}},
		{"claim update left alone", Update, "persistentvolumeclaims", "", claim(), nil},
		{"claim status left alone", Create, "persistentvolumeclaims", "status", claim(), nil},
		{"new volume", Create, "persistentvolumes", "", volume(), []string{PVProtectionFinalizer}},
		{"volume update left alone", Update, "persistentvolumes", "", volume(), nil},
		{"other resources left alone", Create, "pods", "", testPod("p"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &Request{Operation: tc.op, Namespace: "ns", Resource: gvr("", tc.resource), Subresource: tc.sub, Object: tc.obj}
			if err := NewStorageObjectInUseProtection().Admit(t.Context(), r); err != nil {
				t.Fatalf("Admit: %v", err)
			}
			if diff := cmp.Diff(tc.want, finalizersOf(r.Object)); diff != "" {
				t.Errorf("finalizers (-want +got):\n%s", diff)
			}
		})
	}
}
