package builtin

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestPriorityClass(t *testing.T) {
	r := groupResource(t, "scheduling.k8s.io", "priorityclasses")
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000}
	if errs := create(t, r, pc); len(errs) != 0 {
		t.Fatalf("valid class rejected: %v", errs)
	}
	if pc.PreemptionPolicy == nil || *pc.PreemptionPolicy != corev1.PreemptLowerPriority {
		t.Errorf("preemptionPolicy = %v", pc.PreemptionPolicy)
	}
	tests := []struct {
		name string
		pc   *schedulingv1.PriorityClass
		want []string
	}{
		{"reserved prefix", &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-mine"}, Value: 1},
			[]string{"FieldValueForbidden metadata.name"}},
		{"too high", &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Value: 2000000000},
			[]string{"FieldValueForbidden value"}},
		{"system class", &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-node-critical"}, Value: 2000001000},
			[]string{}},
		{"bad policy", &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "x"}, PreemptionPolicy: ptr.To(corev1.PreemptionPolicy("Sometimes"))},
			[]string{"FieldValueNotSupported preemptionPolicy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, tt.pc))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	changed := pc.DeepCopy()
	changed.Value = 5
	if diff := cmp.Diff([]string{"FieldValueForbidden value"}, errStrings(update(t, r, changed, pc))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"high", int64(1000), false}, r.Strategy.Table().Row(pc)[:3]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestStorageClass(t *testing.T) {
	r := groupResource(t, "storage.k8s.io", "storageclasses")
	sc := &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: "local", Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner: "rancher.io/local-path",
	}
	checkDefaultIdempotent(t, r, sc)
	if errs := create(t, r, sc); len(errs) != 0 {
		t.Fatalf("valid class rejected: %v", errs)
	}
	if *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || *sc.VolumeBindingMode != storagev1.VolumeBindingImmediate {
		t.Errorf("defaults: %v %v", *sc.ReclaimPolicy, *sc.VolumeBindingMode)
	}
	row := r.Strategy.Table().Row(sc)
	if diff := cmp.Diff([]any{"local (default)", "rancher.io/local-path", "Delete", "Immediate", false}, row[:5]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	changed := sc.DeepCopy()
	changed.Provisioner = "example.com/other"
	changed.Parameters = map[string]string{"a": "b"}
	want := []string{"FieldValueForbidden parameters", "FieldValueForbidden provisioner"}
	if diff := cmp.Diff(want, errStrings(update(t, r, changed, sc))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	missing := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
	if diff := cmp.Diff([]string{"FieldValueRequired provisioner"}, errStrings(create(t, r, missing))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestHPA(t *testing.T) {
	r := groupResource(t, "autoscaling", "horizontalpodautoscalers")
	newHPA := func() *autoscalingv2.HorizontalPodAutoscaler {
		return &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
				MaxReplicas:    5,
			},
		}
	}
	h := newHPA()
	checkDefaultIdempotent(t, r, h)
	if errs := create(t, r, h); len(errs) != 0 {
		t.Fatalf("valid hpa rejected: %v", errs)
	}
	wantMetrics := []autoscalingv2.MetricSpec{{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](80)},
		},
	}}
	if diff := cmp.Diff(wantMetrics, h.Spec.Metrics); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if *h.Spec.MinReplicas != 1 {
		t.Errorf("minReplicas = %d", *h.Spec.MinReplicas)
	}
	h.Status.CurrentReplicas = 2
	h.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{
		Type:     autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr.To[int32](35)}},
	}}
	row := r.Strategy.Table().Row(h)
	if diff := cmp.Diff([]any{"web", "Deployment/web", "cpu: 35%/80%", "1", int64(5), int64(2)}, row[:6]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}

	withBehavior := newHPA()
	withBehavior.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
	r.Strategy.Default(withBehavior)
	if sd := withBehavior.Spec.Behavior.ScaleDown; sd == nil || *sd.StabilizationWindowSeconds != 300 || len(sd.Policies) != 1 {
		t.Errorf("scaleDown defaults: %+v", sd)
	}

	tests := []struct {
		name   string
		mutate func(h *autoscalingv2.HorizontalPodAutoscaler)
		want   []string
	}{
		{"max below min", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.MinReplicas = ptr.To[int32](3)
			h.Spec.MaxReplicas = 2
		},
			[]string{"FieldValueInvalid spec.maxReplicas"}},
		{"min zero", func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MinReplicas = ptr.To[int32](0) },
			[]string{"FieldValueInvalid spec.minReplicas"}},
		{"no target", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{}
		},
			[]string{"FieldValueRequired spec.scaleTargetRef.kind", "FieldValueRequired spec.scaleTargetRef.name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHPA()
			tt.mutate(h)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, h))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPDB(t *testing.T) {
	r := groupResource(t, "policy", "poddisruptionbudgets")
	one, half := intstr.FromInt32(1), intstr.FromString("50%")
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
	if errs := create(t, r, pdb); len(errs) != 0 {
		t.Fatalf("valid pdb rejected: %v", errs)
	}
	if diff := cmp.Diff([]any{"web", "1", "N/A", int64(0)}, r.Strategy.Table().Row(pdb)[:4]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	both := pdb.DeepCopy()
	both.Spec.MaxUnavailable = &half
	if diff := cmp.Diff([]string{"FieldValueInvalid spec"}, errStrings(create(t, r, both))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestLease(t *testing.T) {
	r := groupResource(t, "coordination.k8s.io", "leases")
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Namespace: "kube-node-lease"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-1"), LeaseDurationSeconds: ptr.To[int32](0)},
	}
	if diff := cmp.Diff([]string{"FieldValueInvalid spec.leaseDurationSeconds"}, errStrings(create(t, r, l))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := r.Strategy.Table().Row(l)[1]; got != "node-1" {
		t.Errorf("HOLDER = %v", got)
	}
}

const testCSRPEM = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBAjCBqAIBADAWMRQwEgYDVQQDDAtleGFtcGxlLmNvbTBZMBMGByqGSM49AgEG\n-----END CERTIFICATE REQUEST-----\n"

func TestCSR(t *testing.T) {
	r := groupResource(t, "certificates.k8s.io", "certificatesigningrequests")
	newCSR := func() *certificatesv1.CertificateSigningRequest {
		return &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "node-csr"},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request:    []byte(testCSRPEM),
				SignerName: "kubernetes.io/kube-apiserver-client-kubelet",
				Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
				Username:   "system:node:n1",
			},
		}
	}
	csr := newCSR()
	if errs := create(t, r, csr); len(errs) != 0 {
		t.Fatalf("valid csr rejected: %v", errs)
	}
	_, fs, err := r.Strategy.Attrs(csr)
	if err != nil || fs["spec.signerName"] != "kubernetes.io/kube-apiserver-client-kubelet" {
		t.Errorf("Attrs = %v, %v", fs, err)
	}
	row := r.Strategy.Table().Row(csr)
	if diff := cmp.Diff([]any{"kubernetes.io/kube-apiserver-client-kubelet", "system:node:n1", "<none>", "Pending"}, row[2:]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}
	csr.Status.Certificate = []byte("x")
	if got := r.Strategy.Table().Row(csr)[5]; got != "Approved,Issued" {
		t.Errorf("CONDITION = %v", got)
	}

	tests := []struct {
		name   string
		mutate func(c *certificatesv1.CertificateSigningRequest)
		want   []string
	}{
		{"no request", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = nil }, []string{"FieldValueRequired spec.request"}},
		{"no signer", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "" }, []string{"FieldValueRequired spec.signerName"}},
		{"bad usage", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Usages = []certificatesv1.KeyUsage{"flying"} },
			[]string{"FieldValueNotSupported spec.usages[0]"}},
		{"short expiration", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.ExpirationSeconds = ptr.To[int32](60) },
			[]string{"FieldValueInvalid spec.expirationSeconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCSR()
			tt.mutate(c)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, c))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	// A main update cannot change the spec.
	old := newCSR()
	changed := old.DeepCopy()
	changed.Spec.SignerName = "example.com/other"
	update(t, r, changed, old)
	if changed.Spec.SignerName != old.Spec.SignerName {
		t.Errorf("spec changed through the main resource")
	}
}

func TestEventsV1(t *testing.T) {
	r := groupResource(t, "events.k8s.io", "events")
	now := time.Now()
	ev := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "web.1", Namespace: "default"},
		EventTime:           metav1.NewMicroTime(now.Add(-2 * time.Minute)),
		ReportingController: "skiff.dev/scheduler",
		ReportingInstance:   "node-1",
		Action:              "Binding",
		Reason:              "Scheduled",
		Type:                corev1.EventTypeNormal,
		Regarding:           corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
		Note:                "Successfully assigned default/web to node-1 ",
	}
	if errs := create(t, r, ev); len(errs) != 0 {
		t.Fatalf("valid event rejected: %v", errs)
	}
	want := []any{"2m", "Normal", "Scheduled", "pod/web", "", "skiff.dev/scheduler, node-1", "Successfully assigned default/web to node-1", "2m", int64(1), "web.1"}
	if diff := cmp.Diff(want, r.Strategy.Table().Row(ev)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	_, fs, err := r.Strategy.Attrs(ev)
	if err != nil || fs["regarding.name"] != "web" || fs["reason"] != "Scheduled" {
		t.Errorf("Attrs = %v, %v", fs, err)
	}
	bad := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"}, Type: "Odd"}
	want2 := []string{
		"FieldValueInvalid type", "FieldValueRequired action", "FieldValueRequired eventTime",
		"FieldValueRequired reason", "FieldValueRequired reportingController", "FieldValueRequired reportingInstance",
	}
	if diff := cmp.Diff(want2, errStrings(create(t, r, bad))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
