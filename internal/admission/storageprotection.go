package admission

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// The finalizers StorageObjectInUseProtection adds, as upstream names
// them; the pvc-protection and pv-protection controllers remove them.
const (
	PVCProtectionFinalizer = "kubernetes.io/pvc-protection"
	PVProtectionFinalizer  = "kubernetes.io/pv-protection"
)

// StorageObjectInUseProtection adds kubernetes.io/pvc-protection to every
// new PersistentVolumeClaim and kubernetes.io/pv-protection to every new
// PersistentVolume, as upstream's plugin of that name: the object then
// outlives its deletion until the protection controller sees it unused.
// Only creates of the main resource are changed.
type StorageObjectInUseProtection struct{}

var _ Mutator = StorageObjectInUseProtection{}

// NewStorageObjectInUseProtection returns the plugin.
func NewStorageObjectInUseProtection() StorageObjectInUseProtection {
	return StorageObjectInUseProtection{}
}

// Name implements Plugin.
func (StorageObjectInUseProtection) Name() string { return "StorageObjectInUseProtection" }

// Admit adds the finalizer when it is absent.
func (StorageObjectInUseProtection) Admit(_ context.Context, r *Request) error {
	if r.Operation != Create {
		return nil
	}
	switch {
	case r.is("", "persistentvolumeclaims", ""):
		if pvc, ok := r.Object.(*corev1.PersistentVolumeClaim); ok {
			pvc.Finalizers = addFinalizer(pvc.Finalizers, PVCProtectionFinalizer)
		}
	case r.is("", "persistentvolumes", ""):
		if pv, ok := r.Object.(*corev1.PersistentVolume); ok {
			pv.Finalizers = addFinalizer(pv.Finalizers, PVProtectionFinalizer)
		}
	}
	return nil
}

func addFinalizer(finalizers []string, f string) []string {
	if slices.Contains(finalizers, f) {
		return finalizers
	}
	return append(finalizers, f)
}
