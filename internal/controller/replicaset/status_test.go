package replicaset

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testRS(replicas, minReady int32, conds ...appsv1.ReplicaSetCondition) *owner {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "rs", Namespace: "ns", Generation: 3},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        &replicas,
			MinReadySeconds: minReady,
			Selector:        &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a", "tier": "web"}},
			},
		},
		Status: appsv1.ReplicaSetStatus{Conditions: conds},
	}
	return rsOwner(rs)
}

func labelled(l map[string]string) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Labels = l } }

func TestComputeStatus(t *testing.T) {
	full := labelled(map[string]string{"app": "a", "tier": "web"})
	partial := labelled(map[string]string{"app": "a"})
	zero, two := int32(0), int32(2)
	failure := appsv1.ReplicaSetCondition{
		Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
		LastTransitionTime: metav1.NewTime(now.Add(-time.Minute)), Reason: "FailedCreate", Message: "old",
	}
	tests := []struct {
		name        string
		owner       *owner
		pods        []*corev1.Pod
		terminating int32
		err         error
		want        status
		wantWait    time.Duration
	}{
		{
			name:  "counts",
			owner: testRS(3, 0),
			pods:  []*corev1.Pod{pod("a", full, readySince(time.Hour)), pod("b", partial, readySince(time.Second)), pod("c", full)},
			want: status{Replicas: 3, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
				TerminatingReplicas: &zero, ObservedGeneration: 3},
		},
		{
			name:        "min ready seconds",
			owner:       testRS(2, 10),
			pods:        []*corev1.Pod{pod("a", full, readySince(time.Hour)), pod("b", full, readySince(4*time.Second))},
			terminating: 2,
			want: status{Replicas: 2, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 1,
				TerminatingReplicas: &two, ObservedGeneration: 3},
			wantWait: 7 * time.Second,
		},
		{
			name:  "failure adds the condition",
			owner: testRS(2, 0),
			pods:  []*corev1.Pod{pod("a", full)},
			err:   errors.New("quota exceeded"),
			want: status{Replicas: 1, FullyLabeledReplicas: 1, TerminatingReplicas: &zero, ObservedGeneration: 3,
				Conditions: []condition{{Type: "ReplicaFailure", Status: corev1.ConditionTrue,
					LastTransitionTime: metav1.NewTime(now), Reason: "FailedCreate", Message: "quota exceeded"}}},
		},
		{
			name:  "failure to delete",
			owner: testRS(0, 0),
			pods:  []*corev1.Pod{pod("a", full)},
			err:   errors.New("forbidden"),
			want: status{Replicas: 1, FullyLabeledReplicas: 1, TerminatingReplicas: &zero, ObservedGeneration: 3,
				Conditions: []condition{{Type: "ReplicaFailure", Status: corev1.ConditionTrue,
					LastTransitionTime: metav1.NewTime(now), Reason: "FailedDelete", Message: "forbidden"}}},
		},
		{
			name:  "failure keeps an existing condition",
			owner: testRS(2, 0, failure),
			err:   errors.New("new"),
			want: status{TerminatingReplicas: &zero, ObservedGeneration: 3,
				Conditions: []condition{{Type: "ReplicaFailure", Status: corev1.ConditionTrue,
					LastTransitionTime: failure.LastTransitionTime, Reason: "FailedCreate", Message: "old"}}},
		},
		{
			name:  "success removes the condition",
			owner: testRS(0, 0, failure),
			want:  status{TerminatingReplicas: &zero, ObservedGeneration: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, wait := computeStatus(tt.owner, tt.pods, tt.terminating, tt.err, now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if wait != tt.wantWait {
				t.Errorf("wait = %v, want %v", wait, tt.wantWait)
			}
			if !statusEqual(got, got) {
				t.Errorf("statusEqual(x, x) = false")
			}
		})
	}
}

func TestExpectations(t *testing.T) {
	clock := now
	e := newExpectations(func() time.Time { return clock })
	if !e.satisfied("ns/rs", nil) {
		t.Fatalf("nothing pending: not satisfied")
	}
	e.created("ns/rs", "rs-1")
	e.created("ns/rs", "rs-2")
	if e.satisfied("ns/rs", nil) {
		t.Fatalf("two creations pending: satisfied")
	}
	e.seen("ns/rs", "rs-1")
	if e.satisfied("ns/rs", nil) {
		t.Fatalf("one creation pending: satisfied")
	}
	if !e.satisfied("ns/rs", []*corev1.Pod{pod("rs-2")}) {
		t.Fatalf("creations in the cache: not satisfied")
	}

	victim := pod("rs-3")
	e.deleting("ns/rs", victim.UID)
	if e.satisfied("ns/rs", []*corev1.Pod{victim}) {
		t.Fatalf("deleted pod still cached: satisfied")
	}
	terminating := pod("rs-3", func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: now} })
	if !e.satisfied("ns/rs", []*corev1.Pod{terminating}) {
		t.Fatalf("deleted pod terminating: not satisfied")
	}

	e.deleting("ns/rs", victim.UID)
	e.undelete("ns/rs", victim.UID)
	if !e.satisfied("ns/rs", []*corev1.Pod{victim}) {
		t.Fatalf("failed deletion: not satisfied")
	}

	e.created("ns/rs", "rs-4")
	clock = clock.Add(expectationTTL + time.Second)
	if !e.satisfied("ns/rs", nil) {
		t.Fatalf("expired expectations: not satisfied")
	}
}
