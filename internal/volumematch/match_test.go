package volumematch

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

type pvOpt func(*corev1.PersistentVolume)

func testPV(name, size, class string, opts ...pvOpt) *corev1.PersistentVolume {
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

func withModes(m ...corev1.PersistentVolumeAccessMode) pvOpt {
	return func(pv *corev1.PersistentVolume) { pv.Spec.AccessModes = m }
}
func withLabels(l map[string]string) pvOpt {
	return func(pv *corev1.PersistentVolume) { pv.Labels = l }
}
func withBlock() pvOpt {
	return func(pv *corev1.PersistentVolume) { pv.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock) }
}
func withClaimRef(ns, name, uid string) pvOpt {
	return func(pv *corev1.PersistentVolume) {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: ns, Name: name, UID: k8stypes.UID(uid)}
	}
}
func withPhase(p corev1.PersistentVolumePhase) pvOpt {
	return func(pv *corev1.PersistentVolume) { pv.Status.Phase = p }
}

func testClaim(name, size string, class *string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: k8stypes.UID("uid-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			StorageClassName: class,
		},
	}
}

func TestMatch(t *testing.T) {
	claim := testClaim("data", "1Gi", ptr.To("manual"))
	rwx := testClaim("data", "1Gi", ptr.To("manual"))
	rwx.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce}
	selecting := testClaim("data", "1Gi", ptr.To("manual"))
	selecting.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "db"}}
	noClass := testClaim("data", "1Gi", ptr.To(""))
	nilClass := testClaim("data", "1Gi", nil)
	beta := testClaim("data", "1Gi", nil)
	beta.Annotations = map[string]string{annBetaClass: "manual"}
	block := testClaim("data", "1Gi", ptr.To("manual"))
	block.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
	deleting := testPV("pv", "1Gi", "manual")
	deleting.DeletionTimestamp = &metav1.Time{}

	tests := []struct {
		name  string
		pv    *corev1.PersistentVolume
		claim *corev1.PersistentVolumeClaim
		want  bool
	}{
		{"exact fit", testPV("pv", "1Gi", "manual"), claim, true},
		{"larger", testPV("pv", "5Gi", "manual"), claim, true},
		{"too small", testPV("pv", "512Mi", "manual"), claim, false},
		{"other class", testPV("pv", "1Gi", "fast"), claim, false},
		{"class vs none", testPV("pv", "1Gi", ""), claim, false},
		{"empty class both", testPV("pv", "1Gi", ""), noClass, true},
		{"nil claim class, empty pv class", testPV("pv", "1Gi", ""), nilClass, true},
		{"beta class annotation", testPV("pv", "1Gi", "manual"), beta, true},
		{"access modes superset", testPV("pv", "1Gi", "manual", withModes(corev1.ReadWriteOnce, corev1.ReadWriteMany, corev1.ReadOnlyMany)), rwx, true},
		{"access modes missing one", testPV("pv", "1Gi", "manual"), rwx, false},
		{"block volume, filesystem claim", testPV("pv", "1Gi", "manual", withBlock()), claim, false},
		{"block both", testPV("pv", "1Gi", "manual", withBlock()), block, true},
		{"selector matches", testPV("pv", "1Gi", "manual", withLabels(map[string]string{"tier": "db", "x": "y"})), selecting, true},
		{"selector does not match", testPV("pv", "1Gi", "manual", withLabels(map[string]string{"tier": "web"})), selecting, false},
		{"selector, no labels", testPV("pv", "1Gi", "manual"), selecting, false},
		{"being deleted", deleting, claim, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := Match(tt.pv, tt.claim)
			if got != tt.want {
				t.Errorf("Match = %v (%s), want %v", got, why, tt.want)
			}
			if !got && why == "" {
				t.Error("no reason given for a mismatch")
			}
		})
	}
}

func TestFindVolume(t *testing.T) {
	claim := testClaim("data", "1Gi", ptr.To("manual"))
	tests := []struct {
		name  string
		pvs   []*corev1.PersistentVolume
		delay bool
		want  string
	}{
		{"none", nil, false, ""},
		{"smallest fitting", []*corev1.PersistentVolume{
			testPV("big", "10Gi", "manual"), testPV("small", "512Mi", "manual"),
			testPV("mid", "2Gi", "manual"), testPV("other", "1Gi", "fast"),
		}, false, "mid"},
		{"ties by name", []*corev1.PersistentVolume{testPV("b", "1Gi", "manual"), testPV("a", "1Gi", "manual")}, false, "a"},
		{"pre-bound preferred over smaller", []*corev1.PersistentVolume{
			testPV("small", "1Gi", "manual"), testPV("mine", "8Gi", "other-class", withClaimRef("default", "data", "")),
		}, false, "mine"},
		{"pre-bound with matching uid", []*corev1.PersistentVolume{testPV("mine", "1Gi", "manual", withClaimRef("default", "data", "uid-data"))}, false, "mine"},
		{"pre-bound with other uid skipped", []*corev1.PersistentVolume{testPV("old", "1Gi", "manual", withClaimRef("default", "data", "uid-old"))}, false, ""},
		{"pre-bound to another claim skipped", []*corev1.PersistentVolume{testPV("theirs", "1Gi", "manual", withClaimRef("default", "other", ""))}, false, ""},
		{"pre-bound but too small skipped", []*corev1.PersistentVolume{
			testPV("mine", "100Mi", "manual", withClaimRef("default", "data", "")), testPV("free", "1Gi", "manual"),
		}, false, "free"},
		{"released skipped", []*corev1.PersistentVolume{testPV("rel", "1Gi", "manual", withPhase(corev1.VolumeReleased))}, false, ""},
		{"pending (new) accepted", []*corev1.PersistentVolume{testPV("new", "1Gi", "manual", withPhase(corev1.VolumePending))}, false, "new"},
		{"delayed: free volumes left to the scheduler", []*corev1.PersistentVolume{testPV("free", "1Gi", "manual")}, true, ""},
		{"delayed: pre-bound taken", []*corev1.PersistentVolume{
			testPV("free", "1Gi", "manual"), testPV("mine", "2Gi", "manual", withClaimRef("default", "data", "uid-data")),
		}, true, "mine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FindVolume(tt.pvs, claim, tt.delay)
			name := ""
			if got != nil {
				name = got.Name
			}
			if name != tt.want {
				t.Errorf("FindVolume = %q, want %q", name, tt.want)
			}
		})
	}
}
