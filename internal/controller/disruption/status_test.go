package disruption

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestExpectedPods(t *testing.T) {
	owned := func(name string, owner types.UID) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if owner != "" {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: string(owner), UID: owner, Controller: new(true)}}
		}
		return p
	}
	// rs-1 and rs-2 belong to deployment d (5 replicas); rs-3 stands
	// alone with 2 replicas.
	scales := map[types.UID]struct {
		uid types.UID
		n   int32
	}{"rs-1": {"d", 5}, "rs-2": {"d", 5}, "rs-3": {"rs-3", 2}}
	scaleOf := func(ref *metav1.OwnerReference, _ string) (types.UID, int32, bool, error) {
		s, ok := scales[ref.UID]
		return s.uid, s.n, ok, nil
	}
	pods := []*corev1.Pod{owned("a", "rs-1"), owned("b", "rs-1"), owned("c", "rs-2"), owned("d", "rs-3")}
	intOr := func(v intstr.IntOrString) *intstr.IntOrString { return &v }
	tests := []struct {
		name    string
		spec    policyv1.PodDisruptionBudgetSpec
		pods    []*corev1.Pod
		want    expected
		wantErr error
	}{{
		name: "integer minAvailable counts the pods",
		spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: intOr(intstr.FromInt32(3))},
		pods: append(pods, owned("loose", "")),
		want: expected{count: 5, desiredHealthy: 3},
	}, {
		name: "percent minAvailable sums the controllers' scales",
		spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: intOr(intstr.FromString("50%"))},
		pods: pods,
		want: expected{count: 7, desiredHealthy: 4},
	}, {
		name: "maxUnavailable rounds up",
		spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: intOr(intstr.FromString("30%"))},
		pods: pods,
		want: expected{count: 7, desiredHealthy: 4},
	}, {
		name: "integer maxUnavailable ignores unmanaged pods",
		spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: intOr(intstr.FromInt32(1))},
		pods: append(pods, owned("loose", "")),
		want: expected{count: 7, desiredHealthy: 6, unmanaged: []string{"loose"}},
	}, {
		name:    "unknown controller",
		spec:    policyv1.PodDisruptionBudgetSpec{MaxUnavailable: intOr(intstr.FromInt32(1))},
		pods:    []*corev1.Pod{owned("x", "gone")},
		wantErr: noControllersError{"x"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expectedPods(&policyv1.PodDisruptionBudget{Spec: tc.spec}, tc.pods, scaleOf)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(expected{})); d != "" {
				t.Errorf("expected (-want +got):\n%s", d)
			}
		})
	}
}
