package statefulset

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestOrdinal(t *testing.T) {
	tests := []struct {
		set, pod string
		want     int
	}{
		{"web", "web-0", 0},
		{"web", "web-12", 12},
		{"web", "web-01", -1},
		{"web", "web--1", -1},
		{"web", "web-x", -1},
		{"web", "webby-1", -1},
		{"web-1", "web-1-2", 2},
	}
	for _, tt := range tests {
		t.Run(tt.pod, func(t *testing.T) {
			if got := ordinal(tt.set, tt.pod); got != tt.want {
				t.Errorf("ordinal(%q, %q) = %d, want %d", tt.set, tt.pod, got, tt.want)
			}
		})
	}
}

func TestClaimOwnerRefs(t *testing.T) {
	retain, del := appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", UID: "pod-uid"}}
	tests := []struct {
		name                    string
		whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType
		existing                []string // owner uids already on the claim
		condemned               bool
		want                    []string
		wantChanged             bool
	}{
		{"retain retain keeps none", retain, retain, []string{"set-uid", "pod-uid"}, false, nil, true},
		{"whenDeleted=Delete owns by set", del, retain, nil, false, []string{"set-uid"}, true},
		{"whenDeleted=Delete already set", del, retain, []string{"set-uid"}, false, []string{"set-uid"}, false},
		{"whenScaled=Delete live pod", retain, del, nil, false, nil, false},
		{"whenScaled=Delete condemned pod", retain, del, nil, true, []string{"pod-uid"}, true},
		{"both Delete live pod", del, del, []string{"pod-uid"}, false, []string{"set-uid"}, true},
		{"both Delete condemned pod", del, del, []string{"set-uid"}, true, []string{"pod-uid"}, true},
		{"other owners are kept", retain, retain, []string{"other"}, false, []string{"other"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := &appsv1.StatefulSet{
				ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "set-uid"},
				Spec: appsv1.StatefulSetSpec{PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: tt.whenDeleted, WhenScaled: tt.whenScaled,
				}},
			}
			claim := &corev1.PersistentVolumeClaim{}
			for _, uid := range tt.existing {
				claim.OwnerReferences = append(claim.OwnerReferences, metav1.OwnerReference{UID: types.UID(uid), Name: uid})
			}
			changed := claimOwnerRefs(claim, set, pod, tt.condemned)
			var got []string
			for _, r := range claim.OwnerReferences {
				got = append(got, string(r.UID))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" || changed != tt.wantChanged {
				t.Errorf("owners (-want +got):\n%s\nchanged = %v, want %v", diff, changed, tt.wantChanged)
			}
		})
	}
}

func TestNewPod(t *testing.T) {
	two := int32(2)
	set := newSet("ns", "web", 3, appsv1.OrderedReadyPodManagement)
	set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType, RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: &two}}
	set.Spec.Template.Spec.Containers[0].Image = "new"
	set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}
	set.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}, {Name: "tmp"}}
	oldTmpl := set.Spec.Template.DeepCopy()
	oldTmpl.Spec.Containers[0].Image = "old"
	s := &state{set: set, currentRev: "web-old", updateRev: "web-new", currentTmpl: oldTmpl}

	type view struct {
		Image, Revision, Claim string
		Volumes                int
	}
	got := map[int]view{}
	for ord := range 3 {
		p := s.newPod(ord)
		got[ord] = view{p.Spec.Containers[0].Image, p.Labels[appsv1.StatefulSetRevisionLabel], claimOf(p, "data"), len(p.Spec.Volumes)}
	}
	want := map[int]view{
		0: {"old", "web-old", "data-web-0", 2},
		1: {"old", "web-old", "data-web-1", 2},
		2: {"new", "web-new", "data-web-2", 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pods below/above the partition (-want +got):\n%s", diff)
	}
}
