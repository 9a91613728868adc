package builtin

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func testDeployment() *appsv1.Deployment {
	labels := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: testPodTemplate(labels),
		},
	}
}

func TestDeploymentDefaults(t *testing.T) {
	r := groupResource(t, "apps", "deployments")
	d := testDeployment()
	d.Status.Replicas = 3 // cleared on create
	if errs := create(t, r, d); len(errs) != 0 {
		t.Fatalf("valid deployment rejected: %v", errs)
	}
	quarter := intstr.FromString("25%")
	want := appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](1),
		Strategy: appsv1.DeploymentStrategy{
			Type:          appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &quarter, MaxSurge: &quarter},
		},
		RevisionHistoryLimit:    ptr.To[int32](10),
		ProgressDeadlineSeconds: ptr.To[int32](600),
	}
	got := d.Spec
	got.Selector, got.Template = nil, corev1.PodTemplateSpec{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if d.Status.Replicas != 0 {
		t.Errorf("status not cleared on create: %+v", d.Status)
	}
	checkDefaultIdempotent(t, r, testDeployment())
}

func TestDeploymentValidation(t *testing.T) {
	r := groupResource(t, "apps", "deployments")
	tests := []struct {
		name   string
		mutate func(d *appsv1.Deployment)
		want   []string
	}{
		{"valid", func(d *appsv1.Deployment) {}, []string{}},
		{"no selector", func(d *appsv1.Deployment) { d.Spec.Selector = nil }, []string{"FieldValueRequired spec.selector"}},
		{"empty selector", func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} },
			[]string{"FieldValueInvalid spec.selector"}},
		{"selector does not match", func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "other"} },
			[]string{"FieldValueInvalid spec.template.metadata.labels"}},
		{"negative replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](-1) },
			[]string{"FieldValueInvalid spec.replicas"}},
		{"restartPolicy Never", func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			[]string{"FieldValueNotSupported spec.template.spec.restartPolicy"}},
		{"recreate with rollingUpdate", func(d *appsv1.Deployment) {
			d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}, []string{"FieldValueForbidden spec.strategy.rollingUpdate"}},
		{"both zero", func(d *appsv1.Deployment) {
			zero := intstr.FromInt32(0)
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: &zero, MaxSurge: &zero}
		}, []string{"FieldValueInvalid spec.strategy.rollingUpdate.maxUnavailable"}},
		{"bad percent", func(d *appsv1.Deployment) {
			bad := intstr.FromString("25")
			over := intstr.FromString("150%")
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: &over, MaxSurge: &bad}
		}, []string{"FieldValueInvalid spec.strategy.rollingUpdate.maxSurge", "FieldValueInvalid spec.strategy.rollingUpdate.maxUnavailable"}},
		{"deadline not above minReady", func(d *appsv1.Deployment) {
			d.Spec.MinReadySeconds = 600
		}, []string{"FieldValueInvalid spec.progressDeadlineSeconds"}},
		{"unknown strategy", func(d *appsv1.Deployment) { d.Spec.Strategy.Type = "Blue" },
			[]string{"FieldValueNotSupported spec.strategy.type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testDeployment()
			tt.mutate(d)
			got := errStrings(create(t, r, d))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeploymentSelectorImmutable(t *testing.T) {
	r := groupResource(t, "apps", "deployments")
	old := testDeployment()
	create(t, r, old)
	d := old.DeepCopy()
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "x"}}
	d.Spec.Template.Labels = map[string]string{"app": "web", "tier": "x"}
	got := errStrings(update(t, r, d, old))
	if diff := cmp.Diff([]string{"FieldValueInvalid spec.selector"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	scaled := old.DeepCopy()
	scaled.Spec.Replicas = ptr.To[int32](5)
	if errs := update(t, r, scaled, old); len(errs) != 0 {
		t.Errorf("scaling rejected: %v", errs)
	}
}

func TestDeploymentScaleAndTable(t *testing.T) {
	r := groupResource(t, "apps", "deployments")
	d := testDeployment()
	d.Spec.Replicas = ptr.To[int32](3)
	d.Status = appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2}
	d.CreationTimestamp = metav1.NewTime(time.Now().Add(-5 * time.Minute))
	spec, status, sel := r.Scale.Get(d)
	if spec != 3 || status != 3 || sel != "app=web" {
		t.Errorf("scale = %d %d %q", spec, status, sel)
	}
	r.Scale.SetReplicas(d, 7)
	if *d.Spec.Replicas != 7 {
		t.Errorf("SetReplicas: %d", *d.Spec.Replicas)
	}
	tbl := r.Strategy.Table()
	var names []string
	for _, c := range tbl.Columns {
		if c.Priority == 0 {
			names = append(names, c.Name)
		}
	}
	if diff := cmp.Diff([]string{"Name", "Ready", "Up-to-date", "Available", "Age"}, names); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	want := []any{"web", "2/7", int64(3), int64(2), "5m", "app", "nginx:1.27", "app=web"}
	if diff := cmp.Diff(want, tbl.Row(d)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestReplicaSet(t *testing.T) {
	r := groupResource(t, "apps", "replicasets")
	labels := map[string]string{"app": "web"}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: testPodTemplate(labels),
		},
	}
	checkDefaultIdempotent(t, r, rs)
	if errs := create(t, r, rs); len(errs) != 0 {
		t.Fatalf("valid replicaset rejected: %v", errs)
	}
	if *rs.Spec.Replicas != 1 {
		t.Errorf("replicas defaulted to %d", *rs.Spec.Replicas)
	}
	rs.Status.Replicas = 4
	_, fs, err := r.Strategy.Attrs(rs)
	if err != nil || fs["status.replicas"] != "4" {
		t.Errorf("Attrs = %v, %v", fs, err)
	}
	bad := rs.DeepCopy()
	bad.Spec.Template.Spec.ActiveDeadlineSeconds = ptr.To[int64](5)
	got := errStrings(create(t, r, bad))
	if diff := cmp.Diff([]string{"FieldValueForbidden spec.template.spec.activeDeadlineSeconds"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestStatefulSet(t *testing.T) {
	r := groupResource(t, "apps", "statefulsets")
	labels := map[string]string{"app": "db"}
	newSTS := func() *appsv1.StatefulSet {
		return &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
			Spec: appsv1.StatefulSetSpec{
				ServiceName: "db",
				Selector:    &metav1.LabelSelector{MatchLabels: labels},
				Template:    testPodTemplate(labels),
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
					ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec:       corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}},
				}},
			},
		}
	}
	checkDefaultIdempotent(t, r, newSTS())
	s := newSTS()
	// Containers mount the claim templates by name, as every StatefulSet
	// with storage does.
	s.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	if errs := create(t, r, s); len(errs) != 0 {
		t.Fatalf("valid statefulset rejected: %v", errs)
	}
	if len(s.Spec.Template.Spec.Volumes) != 0 {
		t.Errorf("validation added volumes to the stored template: %v", s.Spec.Template.Spec.Volumes)
	}
	unknown := newSTS()
	unknown.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "nope", MountPath: "/data"}}
	if got := errStrings(create(t, r, unknown)); len(got) != 1 || !strings.Contains(got[0], "volumeMounts[0].name") {
		t.Errorf("a mount of neither a volume nor a claim template: %v", got)
	}
	want := appsv1.StatefulSetSpec{
		Replicas:            ptr.To[int32](1),
		PodManagementPolicy: appsv1.OrderedReadyPodManagement,
		UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
			Type:          appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](0)},
		},
		RevisionHistoryLimit: ptr.To[int32](10),
		PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		},
		ServiceName: "db",
	}
	got := s.Spec
	got.Selector, got.Template, got.VolumeClaimTemplates = nil, corev1.PodTemplateSpec{}, nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if vm := s.Spec.VolumeClaimTemplates[0].Spec.VolumeMode; vm == nil || *vm != corev1.PersistentVolumeFilesystem {
		t.Errorf("volumeClaimTemplates volumeMode = %v", vm)
	}

	changed := s.DeepCopy()
	changed.Spec.ServiceName = "other"
	changed.Spec.Replicas = ptr.To[int32](3)
	gotErrs := errStrings(update(t, r, changed, s))
	if diff := cmp.Diff([]string{"FieldValueForbidden spec"}, gotErrs); diff != "" {
		t.Errorf("update (-want +got):\n%s", diff)
	}
	scaled := s.DeepCopy()
	scaled.Spec.Replicas = ptr.To[int32](3)
	if errs := update(t, r, scaled, s); len(errs) != 0 {
		t.Errorf("scaling rejected: %v", errs)
	}

	s.Status.ReadyReplicas = 1
	s.Spec.Replicas = ptr.To[int32](3)
	row := r.Strategy.Table().Row(s)
	if row[1] != "1/3" {
		t.Errorf("READY = %v", row[1])
	}
}

func TestDaemonSet(t *testing.T) {
	r := groupResource(t, "apps", "daemonsets")
	labels := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "kube-system"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: testPodTemplate(labels),
		},
	}
	checkDefaultIdempotent(t, r, ds)
	if errs := create(t, r, ds); len(errs) != 0 {
		t.Fatalf("valid daemonset rejected: %v", errs)
	}
	one, zero := intstr.FromInt32(1), intstr.FromInt32(0)
	want := appsv1.DaemonSetUpdateStrategy{
		Type:          appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one, MaxSurge: &zero},
	}
	if diff := cmp.Diff(want, ds.Spec.UpdateStrategy); diff != "" {
		t.Errorf("updateStrategy (-want +got):\n%s", diff)
	}
	both := ds.DeepCopy()
	both.Spec.UpdateStrategy.RollingUpdate.MaxSurge = &one
	if diff := cmp.Diff([]string{"FieldValueInvalid spec.updateStrategy.rollingUpdate.maxSurge"}, errStrings(create(t, r, both))); diff != "" {
		t.Errorf("surge and unavailable (-want +got):\n%s", diff)
	}
	neither := ds.DeepCopy()
	neither.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = &zero
	if diff := cmp.Diff([]string{"FieldValueRequired spec.updateStrategy.rollingUpdate.maxUnavailable"}, errStrings(create(t, r, neither))); diff != "" {
		t.Errorf("neither (-want +got):\n%s", diff)
	}
	ds.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
	row := r.Strategy.Table().Row(ds)
	if row[6] != "kubernetes.io/os=linux" {
		t.Errorf("NODE SELECTOR = %v", row[6])
	}
}

func TestControllerRevision(t *testing.T) {
	r := groupResource(t, "apps", "controllerrevisions")
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-7d9f", Namespace: "default",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "web", Controller: ptr.To(true)}},
		},
		Revision: 2,
	}
	row := r.Strategy.Table().Row(cr)
	if diff := cmp.Diff([]any{"web-7d9f", "statefulset.apps/web", int64(2)}, row[:3]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	cr.Revision = -1
	if diff := cmp.Diff([]string{"FieldValueInvalid revision"}, errStrings(create(t, r, cr))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestWorkloadTemplatesGetPodDefaults checks that workload templates are
// defaulted like pods (restartPolicy Always and friends), so that a
// template without a restartPolicy is accepted.
func TestWorkloadTemplatesGetPodDefaults(t *testing.T) {
	r := groupResource(t, "apps", "deployments")
	d := testDeployment()
	d.Spec.Template.Spec.RestartPolicy = ""
	if errs := create(t, r, d); len(errs) != 0 {
		t.Fatalf("deployment without restartPolicy rejected: %v", errs)
	}
	if d.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("template restartPolicy = %q", d.Spec.Template.Spec.RestartPolicy)
	}
}
