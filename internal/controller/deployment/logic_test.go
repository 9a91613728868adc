package deployment

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestResolveFenceposts(t *testing.T) {
	pct := intstr.FromString
	num := intstr.FromInt32
	tests := []struct {
		name                string
		surge, unavailable  intstr.IntOrString
		desired             int32
		wantSurge, wantUnav int32
	}{
		{"defaults of 25% on 10 round surge up and unavailable down", pct("25%"), pct("25%"), 10, 3, 2},
		{"25% of 1", pct("25%"), pct("25%"), 1, 1, 0},
		{"both zero leaves one unavailable", num(0), num(0), 5, 0, 1},
		{"absolute numbers", num(2), num(0), 10, 2, 0},
		{"percent of zero replicas", pct("50%"), pct("50%"), 0, 0, 1},
		{"100%", pct("100%"), pct("100%"), 3, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, u := resolveFenceposts(&tt.surge, &tt.unavailable, tt.desired)
			if diff := cmp.Diff([2]int32{tt.wantSurge, tt.wantUnav}, [2]int32{s, u}); diff != "" {
				t.Errorf("surge, unavailable (-want +got):\n%s", diff)
			}
		})
	}
}

// testDeployment is a RollingUpdate deployment of n replicas.
func testDeployment(n int32, surge, unavailable intstr.IntOrString) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "d", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable},
			},
		},
	}
}

// testRS is a replica set of spec replicas with available ones, created
// age seconds after a fixed instant.
func testRS(name string, spec, available int32, age int, annotations map[string]string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Annotations: annotations,
			CreationTimestamp: metav1.NewTime(time.Unix(1_000_000+int64(age), 0)),
		},
		Spec:   appsv1.ReplicaSetSpec{Replicas: &spec},
		Status: appsv1.ReplicaSetStatus{Replicas: spec, AvailableReplicas: available, ReadyReplicas: available},
	}
}

func TestNewRSNewReplicas(t *testing.T) {
	tests := []struct {
		name      string
		d         *appsv1.Deployment
		old, newN int32
		want      int32
	}{
		{"surge room", testDeployment(10, intstr.FromInt32(2), intstr.FromInt32(0)), 10, 0, 2},
		{"no room", testDeployment(10, intstr.FromInt32(2), intstr.FromInt32(0)), 10, 2, 2},
		{"capped at desired", testDeployment(10, intstr.FromInt32(5), intstr.FromInt32(0)), 2, 7, 10},
		{"recreate takes all", &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(4)), Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}, 4, 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, nw := testRS("old", tt.old, tt.old, 0, nil), testRS("new", tt.newN, 0, 1, nil)
			if got := newRSNewReplicas(tt.d, []*appsv1.ReplicaSet{old, nw}, nw); got != tt.want {
				t.Errorf("newRSNewReplicas = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestProportionalSizes(t *testing.T) {
	maxAnn := func(n int) map[string]string { return map[string]string{MaxReplicasAnnotation: strconv.Itoa(n)} }
	tests := []struct {
		name   string
		d      *appsv1.Deployment
		rss    []*appsv1.ReplicaSet
		want   map[string]int32
		wantOp string
	}{
		{
			name:   "scale up 10 to 20 mid-rollout",
			d:      testDeployment(20, intstr.FromInt32(3), intstr.FromInt32(2)),
			rss:    []*appsv1.ReplicaSet{testRS("old", 8, 8, 0, maxAnn(13)), testRS("new", 5, 0, 1, maxAnn(13))},
			want:   map[string]int32{"old": 14, "new": 9},
			wantOp: "up",
		},
		{
			name:   "scale down 20 to 10 mid-rollout",
			d:      testDeployment(10, intstr.FromInt32(3), intstr.FromInt32(2)),
			rss:    []*appsv1.ReplicaSet{testRS("old", 14, 14, 0, maxAnn(23)), testRS("new", 9, 0, 1, maxAnn(23))},
			want:   map[string]int32{"old": 8, "new": 5},
			wantOp: "down",
		},
		{
			name:   "leftover goes to the largest",
			d:      testDeployment(4, intstr.FromInt32(0), intstr.FromInt32(1)),
			rss:    []*appsv1.ReplicaSet{testRS("a", 1, 1, 0, maxAnn(3)), testRS("b", 1, 1, 1, maxAnn(3)), testRS("c", 1, 1, 2, maxAnn(3))},
			want:   map[string]int32{"a": 1, "b": 1, "c": 2},
			wantOp: "up",
		},
		{
			name:   "to zero",
			d:      testDeployment(0, intstr.FromInt32(1), intstr.FromInt32(1)),
			rss:    []*appsv1.ReplicaSet{testRS("old", 3, 3, 0, maxAnn(4)), testRS("new", 1, 0, 1, maxAnn(4))},
			want:   map[string]int32{"old": 0, "new": 0},
			wantOp: "down",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sizes, op := proportionalSizes(tt.d, tt.rss)
			got := map[string]int32{}
			for _, s := range sizes {
				got[s.rs.Name] = s.n
			}
			if diff := cmp.Diff(tt.want, got); diff != "" || op != tt.wantOp {
				t.Errorf("op %q (want %q), sizes (-want +got):\n%s", op, tt.wantOp, diff)
			}
		})
	}
}

func TestComputeHash(t *testing.T) {
	tmpl := func(image string) *corev1.PodTemplateSpec {
		return &corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "fe"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
		}
	}
	one, two := int32(1), int32(2)
	a := ComputeHash(tmpl("a"), nil)
	tests := []struct {
		name  string
		got   string
		equal bool
	}{
		{"same template, same hash", ComputeHash(tmpl("a"), nil), true},
		{"other template", ComputeHash(tmpl("b"), nil), false},
		{"collision count 1", ComputeHash(tmpl("a"), &one), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.got == a) != tt.equal {
				t.Errorf("hash %q vs %q: equal %v, want %v", tt.got, a, tt.got == a, tt.equal)
			}
		})
	}
	if ComputeHash(tmpl("a"), &one) == ComputeHash(tmpl("a"), &two) {
		t.Errorf("collision counts 1 and 2 hash alike")
	}
	if strings.ContainsAny(a, "aeiou") {
		t.Errorf("hash %q has vowels; SafeEncodeString avoids them", a)
	}
}

func TestSetNewReplicaSetAnnotations(t *testing.T) {
	d := testDeployment(3, intstr.FromInt32(1), intstr.FromInt32(0))
	d.Annotations = map[string]string{
		ChangeCauseAnnotation: "because", RevisionAnnotation: "5", lastAppliedAnnotation: "{}",
	}
	tests := []struct {
		name        string
		have        map[string]string
		revision    string
		exists      bool
		want        map[string]string
		wantChanged bool
	}{
		{
			name: "new replica set", revision: "1",
			want:        map[string]string{ChangeCauseAnnotation: "because", RevisionAnnotation: "1", DesiredReplicasAnnotation: "3", MaxReplicasAnnotation: "4"},
			wantChanged: true,
		},
		{
			name: "rolled back to keeps its old revision", exists: true, revision: "4",
			have:        map[string]string{ChangeCauseAnnotation: "because", RevisionAnnotation: "1", RevisionHistoryAnnotation: "0"},
			want:        map[string]string{ChangeCauseAnnotation: "because", RevisionAnnotation: "4", RevisionHistoryAnnotation: "0,1"},
			wantChanged: true,
		},
		{
			name: "up to date", exists: true, revision: "2",
			have: map[string]string{ChangeCauseAnnotation: "because", RevisionAnnotation: "2"},
			want: map[string]string{ChangeCauseAnnotation: "because", RevisionAnnotation: "2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Annotations: tt.have}}
			changed := setNewReplicaSetAnnotations(d, rs, tt.revision, tt.exists)
			if diff := cmp.Diff(tt.want, rs.Annotations); diff != "" || changed != tt.wantChanged {
				t.Errorf("changed %v (want %v), annotations (-want +got):\n%s", changed, tt.wantChanged, diff)
			}
		})
	}
}

func TestRolloutStatusProgress(t *testing.T) {
	t0 := time.Unix(2_000_000, 0)
	deadline := int32(60)
	progressing := func(reason string, at time.Time) appsv1.DeploymentCondition {
		status := corev1.ConditionTrue
		if reason == ReasonTimedOut {
			status = corev1.ConditionFalse
		}
		return newCondition(appsv1.DeploymentProgressing, status, reason, "", at)
	}
	tests := []struct {
		name       string
		old        appsv1.DeploymentStatus
		newRS      *appsv1.ReplicaSet
		now        time.Time
		wantReason string
		wantUpdate time.Time
	}{
		{
			name:  "no progress within the deadline",
			old:   appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 1, ReadyReplicas: 2, AvailableReplicas: 2, Conditions: []appsv1.DeploymentCondition{progressing(ReasonRSUpdated, t0)}},
			newRS: testRS("new", 1, 0, 1, nil), now: t0.Add(59 * time.Second),
			wantReason: ReasonRSUpdated, wantUpdate: t0,
		},
		{
			name:  "no progress past the deadline",
			old:   appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 1, ReadyReplicas: 2, AvailableReplicas: 2, Conditions: []appsv1.DeploymentCondition{progressing(ReasonRSUpdated, t0)}},
			newRS: testRS("new", 1, 0, 1, nil), now: t0.Add(61 * time.Second),
			wantReason: ReasonTimedOut, wantUpdate: t0.Add(61 * time.Second),
		},
		{
			name:  "progress refreshes the update time",
			old:   appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 1, ReadyReplicas: 2, AvailableReplicas: 2, Conditions: []appsv1.DeploymentCondition{progressing(ReasonRSUpdated, t0)}},
			newRS: testRS("new", 2, 1, 1, nil), now: t0.Add(61 * time.Second),
			wantReason: ReasonRSUpdated, wantUpdate: t0.Add(61 * time.Second),
		},
		{
			name:  "complete",
			old:   appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, Conditions: []appsv1.DeploymentCondition{progressing(ReasonRSUpdated, t0)}},
			newRS: testRS("new", 3, 3, 1, nil), now: t0.Add(time.Hour),
			wantReason: ReasonNewRSAvailable, wantUpdate: t0.Add(time.Hour),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testDeployment(3, intstr.FromInt32(1), intstr.FromInt32(0))
			d.Spec.ProgressDeadlineSeconds = &deadline
			d.Status = tt.old
			old := testRS("old", 3-replicas(tt.newRS), 3-replicas(tt.newRS), 0, nil)
			s := rolloutStatus([]*appsv1.ReplicaSet{old, tt.newRS}, tt.newRS, d, tt.now)
			c := getCondition(s, appsv1.DeploymentProgressing)
			if c == nil || c.Reason != tt.wantReason || !c.LastUpdateTime.Time.Equal(tt.wantUpdate) {
				t.Errorf("Progressing %+v, want reason %s updated at %v", c, tt.wantReason, tt.wantUpdate)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
