package volumematch

import (
	"testing"

	"github.com/skiff-dev/skiff/internal/volumematch/volumetest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestMatch(t *testing.T) {
	claim := volumetest.Claim("data", "1Gi", ptr.To("manual"))
	rwx := volumetest.Claim("data", "1Gi", ptr.To("manual"))
	rwx.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce}
	selecting := volumetest.Claim("data", "1Gi", ptr.To("manual"))
	selecting.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "db"}}
	noClass := volumetest.Claim("data", "1Gi", ptr.To(""))
	nilClass := volumetest.Claim("data", "1Gi", nil)
	beta := volumetest.Claim("data", "1Gi", nil)
	beta.Annotations = map[string]string{corev1.BetaStorageClassAnnotation: "manual"}
	block := volumetest.Claim("data", "1Gi", ptr.To("manual"))
	block.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
	deleting := volumetest.PV("pv", "1Gi", "manual")
	deleting.DeletionTimestamp = &metav1.Time{}

	tests := []struct {
		name  string
		pv    *corev1.PersistentVolume
		claim *corev1.PersistentVolumeClaim
		want  bool
	}{
		{"exact fit", volumetest.PV("pv", "1Gi", "manual"), claim, true},
		{"larger", volumetest.PV("pv", "5Gi", "manual"), claim, true},
		{"too small", volumetest.PV("pv", "512Mi", "manual"), claim, false},
		{"other class", volumetest.PV("pv", "1Gi", "fast"), claim, false},
		{"class vs none", volumetest.PV("pv", "1Gi", ""), claim, false},
		{"empty class both", volumetest.PV("pv", "1Gi", ""), noClass, true},
		{"nil claim class, empty pv class", volumetest.PV("pv", "1Gi", ""), nilClass, true},
		{"beta class annotation", volumetest.PV("pv", "1Gi", "manual"), beta, true},
		{"access modes superset", volumetest.PV("pv", "1Gi", "manual", volumetest.WithModes(corev1.ReadWriteOnce, corev1.ReadWriteMany, corev1.ReadOnlyMany)), rwx, true},
		{"access modes missing one", volumetest.PV("pv", "1Gi", "manual"), rwx, false},
		{"block volume, filesystem claim", volumetest.PV("pv", "1Gi", "manual", volumetest.WithBlock()), claim, false},
		{"block both", volumetest.PV("pv", "1Gi", "manual", volumetest.WithBlock()), block, true},
		{"selector matches", volumetest.PV("pv", "1Gi", "manual", volumetest.WithLabels(map[string]string{"tier": "db", "x": "y"})), selecting, true},
		{"selector does not match", volumetest.PV("pv", "1Gi", "manual", volumetest.WithLabels(map[string]string{"tier": "web"})), selecting, false},
		{"selector, no labels", volumetest.PV("pv", "1Gi", "manual"), selecting, false},
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
	claim := volumetest.Claim("data", "1Gi", ptr.To("manual"))
	tests := []struct {
		name  string
		pvs   []*corev1.PersistentVolume
		delay bool
		want  string
	}{
		{"none", nil, false, ""},
		{"smallest fitting", []*corev1.PersistentVolume{
			volumetest.PV("big", "10Gi", "manual"), volumetest.PV("small", "512Mi", "manual"),
			volumetest.PV("mid", "2Gi", "manual"), volumetest.PV("other", "1Gi", "fast"),
		}, false, "mid"},
		{"ties by name", []*corev1.PersistentVolume{volumetest.PV("b", "1Gi", "manual"), volumetest.PV("a", "1Gi", "manual")}, false, "a"},
		{"pre-bound preferred over smaller", []*corev1.PersistentVolume{
			volumetest.PV("small", "1Gi", "manual"), volumetest.PV("mine", "8Gi", "other-class", volumetest.WithClaimRef("default", "data", "")),
		}, false, "mine"},
		{"pre-bound with matching uid", []*corev1.PersistentVolume{volumetest.PV("mine", "1Gi", "manual", volumetest.WithClaimRef("default", "data", "uid-data"))}, false, "mine"},
		{"pre-bound with other uid skipped", []*corev1.PersistentVolume{volumetest.PV("old", "1Gi", "manual", volumetest.WithClaimRef("default", "data", "uid-old"))}, false, ""},
		{"pre-bound to another claim skipped", []*corev1.PersistentVolume{volumetest.PV("theirs", "1Gi", "manual", volumetest.WithClaimRef("default", "other", ""))}, false, ""},
		{"pre-bound but too small skipped", []*corev1.PersistentVolume{
			volumetest.PV("mine", "100Mi", "manual", volumetest.WithClaimRef("default", "data", "")), volumetest.PV("free", "1Gi", "manual"),
		}, false, "free"},
		{"released skipped", []*corev1.PersistentVolume{volumetest.PV("rel", "1Gi", "manual", volumetest.WithPhase(corev1.VolumeReleased))}, false, ""},
		{"pending (new) accepted", []*corev1.PersistentVolume{volumetest.PV("new", "1Gi", "manual", volumetest.WithPhase(corev1.VolumePending))}, false, "new"},
		{"delayed: free volumes left to the scheduler", []*corev1.PersistentVolume{volumetest.PV("free", "1Gi", "manual")}, true, ""},
		{"delayed: pre-bound taken", []*corev1.PersistentVolume{
			volumetest.PV("free", "1Gi", "manual"), volumetest.PV("mine", "2Gi", "manual", volumetest.WithClaimRef("default", "data", "uid-data")),
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
