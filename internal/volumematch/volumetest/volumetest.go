// Package volumetest builds PersistentVolumes and PersistentVolumeClaims
// for the tests of volume matching and binding. It reads and writes
// nothing.
package volumetest

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// Option changes a volume built by PV.
type Option func(*corev1.PersistentVolume)

// PV returns a ReadWriteOnce hostPath volume of size and class with
// reclaim policy Retain, changed by opts.
func PV(name, size, class string, opts ...Option) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
			StorageClassName:              class,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
		},
	}
	for _, o := range opts {
		o(pv)
	}
	return pv
}

// WithModes sets the volume's access modes.
func WithModes(m ...corev1.PersistentVolumeAccessMode) Option {
	return func(pv *corev1.PersistentVolume) { pv.Spec.AccessModes = m }
}

// WithLabels sets the volume's labels.
func WithLabels(l map[string]string) Option {
	return func(pv *corev1.PersistentVolume) { pv.Labels = l }
}

// WithBlock makes it a block volume.
func WithBlock() Option {
	return func(pv *corev1.PersistentVolume) { pv.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock) }
}

// WithClaimRef pre-binds the volume to the claim ns/name (uid may be "").
func WithClaimRef(ns, name, uid string) Option {
	return func(pv *corev1.PersistentVolume) {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: ns, Name: name, UID: k8stypes.UID(uid)}
	}
}

// WithPhase sets the volume's status.phase.
func WithPhase(p corev1.PersistentVolumePhase) Option {
	return func(pv *corev1.PersistentVolume) { pv.Status.Phase = p }
}

// Claim returns a ReadWriteOnce claim default/name (uid "uid-<name>")
// requesting size of class (nil: none named).
func Claim(name, size string, class *string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: k8stypes.UID("uid-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			StorageClassName: class,
		},
	}
}
