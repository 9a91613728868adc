package builtin

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var (
	hpaConvTestTime   = metav1.NewTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	hpaConvTestTypeV1 = metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "HorizontalPodAutoscaler"}
	hpaConvTestTypeV2 = metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"}
)

func hpaConvTestQ(s string) *resource.Quantity { return ptr.To(resource.MustParse(s)) }

func hpaConvTestSelector() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
}

// hpaConvTestCPU is a CPU average-utilization metric, the one v1 can hold.
func hpaConvTestCPU(percent int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(percent)},
		},
	}
}

func hpaConvTestPods() autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.PodsMetricSourceType,
		Pods: &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: hpaConvTestQ("10")},
		},
	}
}

// hpaConvTestBaseV2 is a v2 HPA with only the fields v1 has.
func hpaConvTestBaseV2(metrics ...autoscalingv2.MetricSpec) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   hpaConvTestTypeV2,
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    5,
			Metrics:        metrics,
		},
	}
}

// hpaConvTestBaseV1 is the v1 counterpart of hpaConvTestBaseV2.
func hpaConvTestBaseV1() *autoscalingv1.HorizontalPodAutoscaler {
	return &autoscalingv1.HorizontalPodAutoscaler{
		TypeMeta:   hpaConvTestTypeV1,
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "prod"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    5,
		},
	}
}

// hpaConvTestFullV2 uses every metric source and target type, behavior,
// conditions and current metrics. The CPU utilization metric is last,
// where the v1 round trip puts it.
func hpaConvTestFullV2() *autoscalingv2.HorizontalPodAutoscaler {
	ingress := autoscalingv2.CrossVersionObjectReference{Kind: "Ingress", Name: "main", APIVersion: "networking.k8s.io/v1"}
	h := hpaConvTestBaseV2(
		autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceMemory,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: hpaConvTestQ("512Mi")},
		}},
		autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceMemory,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](75)},
		}},
		autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: hpaConvTestQ("500m")},
		}},
		autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: "qps", Selector: hpaConvTestSelector()},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: hpaConvTestQ("10")},
		}},
		autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
			DescribedObject: ingress,
			Metric:          autoscalingv2.MetricIdentifier{Name: "requests", Selector: hpaConvTestSelector()},
			Target:          autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: hpaConvTestQ("2k")},
		}},
		autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
			DescribedObject: ingress,
			Metric:          autoscalingv2.MetricIdentifier{Name: "latency"},
			Target:          autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: hpaConvTestQ("100")},
		}},
		autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: "queue_depth", Selector: hpaConvTestSelector()},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: hpaConvTestQ("30")},
		}},
		autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: "queue_age"},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: hpaConvTestQ("5")},
		}},
		autoscalingv2.MetricSpec{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{
			Name: corev1.ResourceCPU, Container: "app",
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](60)},
		}},
		autoscalingv2.MetricSpec{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{
			Name: corev1.ResourceMemory, Container: "sidecar",
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: hpaConvTestQ("64Mi")},
		}},
		hpaConvTestCPU(70),
	)
	h.Labels = map[string]string{"app": "web"}
	h.Annotations = map[string]string{"team": "payments"}
	h.ResourceVersion = "7"
	h.Generation = 3
	h.Spec.MinReplicas = ptr.To[int32](2)
	h.Spec.MaxReplicas = 10
	h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr.To[int32](0),
			SelectPolicy:               ptr.To(autoscalingv2.MaxChangePolicySelect),
			Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
				{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
			},
			Tolerance: hpaConvTestQ("50m"),
		},
		ScaleDown: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr.To[int32](300),
			SelectPolicy:               ptr.To(autoscalingv2.MinChangePolicySelect),
			Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 10, PeriodSeconds: 60}},
		},
	}
	h.Status = autoscalingv2.HorizontalPodAutoscalerStatus{
		ObservedGeneration: ptr.To[int64](3),
		LastScaleTime:      &hpaConvTestTime,
		CurrentReplicas:    4,
		DesiredReplicas:    5,
		CurrentMetrics: []autoscalingv2.MetricStatus{
			{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
				Name:    corev1.ResourceCPU,
				Current: autoscalingv2.MetricValueStatus{AverageValue: hpaConvTestQ("350m"), AverageUtilization: ptr.To[int32](65)},
			}},
			{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
				Name:    corev1.ResourceMemory,
				Current: autoscalingv2.MetricValueStatus{AverageValue: hpaConvTestQ("400Mi")},
			}},
			{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricStatus{
				Metric:  autoscalingv2.MetricIdentifier{Name: "qps", Selector: hpaConvTestSelector()},
				Current: autoscalingv2.MetricValueStatus{AverageValue: hpaConvTestQ("9")},
			}},
			{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricStatus{
				DescribedObject: ingress,
				Metric:          autoscalingv2.MetricIdentifier{Name: "requests", Selector: hpaConvTestSelector()},
				Current:         autoscalingv2.MetricValueStatus{Value: hpaConvTestQ("1800")},
			}},
			{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricStatus{
				DescribedObject: ingress,
				Metric:          autoscalingv2.MetricIdentifier{Name: "latency"},
				Current:         autoscalingv2.MetricValueStatus{AverageValue: hpaConvTestQ("90")},
			}},
			{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricStatus{
				Metric:  autoscalingv2.MetricIdentifier{Name: "queue_depth", Selector: hpaConvTestSelector()},
				Current: autoscalingv2.MetricValueStatus{Value: hpaConvTestQ("25")},
			}},
			{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricStatus{
				Metric:  autoscalingv2.MetricIdentifier{Name: "queue_age"},
				Current: autoscalingv2.MetricValueStatus{AverageValue: hpaConvTestQ("4")},
			}},
			{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricStatus{
				Name: corev1.ResourceCPU, Container: "app",
				Current: autoscalingv2.MetricValueStatus{AverageValue: hpaConvTestQ("300m"), AverageUtilization: ptr.To[int32](55)},
			}},
		},
		Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{
			{Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue, LastTransitionTime: hpaConvTestTime,
				Reason: "ReadyForNewScale", Message: "recommended size matches current size"},
			{Type: autoscalingv2.ScalingActive, Status: corev1.ConditionTrue, LastTransitionTime: hpaConvTestTime,
				Reason: "ValidMetricFound", Message: "the HPA was able to compute the replica count", ObservedGeneration: ptr.To[int64](3)},
			{Type: autoscalingv2.ScalingLimited, Status: corev1.ConditionFalse, LastTransitionTime: hpaConvTestTime,
				Reason: "DesiredWithinRange"},
		},
	}
	return h
}

func hpaConvTestKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

func TestHPAConvertV2RoundTrip(t *testing.T) {
	stale := hpaConvTestBaseV2(hpaConvTestCPU(50))
	stale.Annotations = map[string]string{
		"team": "a",
		"autoscaling.alpha.kubernetes.io/metrics":            "not json",
		"autoscaling.alpha.kubernetes.io/behavior":           `{"ScaleUp":{"StabilizationWindowSeconds":5}}`,
		"autoscaling.alpha.kubernetes.io/scale-up-tolerance": "0.2",
	}
	staleBack := stale.DeepCopy()
	staleBack.Annotations = map[string]string{"team": "a"}

	cpuStatusOnly := hpaConvTestBaseV2(hpaConvTestCPU(50))
	cpuStatusOnly.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricStatus{
			Name:    corev1.ResourceCPU,
			Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr.To[int32](40)},
		},
	}}

	cpuAverageValue := hpaConvTestBaseV2(autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: hpaConvTestQ("500m")},
		},
	})

	tests := []struct {
		name           string
		in             *autoscalingv2.HorizontalPodAutoscaler
		wantTargetCPU  *int32
		wantCurrentCPU *int32
		wantKeys       []string // sorted v1 annotation keys
		wantBack       *autoscalingv2.HorizontalPodAutoscaler
	}{
		{
			name:           "every metric type, behavior, conditions and current metrics",
			in:             hpaConvTestFullV2(),
			wantTargetCPU:  ptr.To[int32](70),
			wantCurrentCPU: ptr.To[int32](65),
			wantKeys: []string{
				"autoscaling.alpha.kubernetes.io/behavior",
				"autoscaling.alpha.kubernetes.io/conditions",
				"autoscaling.alpha.kubernetes.io/current-metrics",
				"autoscaling.alpha.kubernetes.io/metrics",
				"team",
			},
		},
		{
			name:          "cpu utilization only",
			in:            hpaConvTestBaseV2(hpaConvTestCPU(50)),
			wantTargetCPU: ptr.To[int32](50),
		},
		{
			name:           "cpu utilization status only needs no annotation",
			in:             cpuStatusOnly,
			wantTargetCPU:  ptr.To[int32](50),
			wantCurrentCPU: ptr.To[int32](40),
		},
		{
			name:     "cpu average value is not the v1 target",
			in:       cpuAverageValue,
			wantKeys: []string{"autoscaling.alpha.kubernetes.io/metrics"},
		},
		{
			name:          "stale round-trip annotations are dropped",
			in:            stale,
			wantTargetCPU: ptr.To[int32](50),
			wantKeys:      []string{"team"},
			wantBack:      staleBack,
		},
		{
			name:          "cpu utilization moves to the end",
			in:            hpaConvTestBaseV2(hpaConvTestCPU(50), hpaConvTestPods()),
			wantTargetCPU: ptr.To[int32](50),
			wantKeys:      []string{"autoscaling.alpha.kubernetes.io/metrics"},
			wantBack:      hpaConvTestBaseV2(hpaConvTestPods(), hpaConvTestCPU(50)),
		},
		{
			name:          "only the first cpu utilization target survives",
			in:            hpaConvTestBaseV2(hpaConvTestCPU(50), hpaConvTestCPU(90)),
			wantTargetCPU: ptr.To[int32](50),
			wantBack:      hpaConvTestBaseV2(hpaConvTestCPU(50)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.in.DeepCopy()
			v1, err := hpaV2ToV1(tt.in)
			if err != nil {
				t.Fatalf("hpaV2ToV1: %v", err)
			}
			if diff := cmp.Diff(before, tt.in); diff != "" {
				t.Errorf("hpaV2ToV1 modified its input (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(hpaConvTestTypeV1, v1.TypeMeta); diff != "" {
				t.Errorf("v1 TypeMeta (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantTargetCPU, v1.Spec.TargetCPUUtilizationPercentage); diff != "" {
				t.Errorf("targetCPUUtilizationPercentage (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCurrentCPU, v1.Status.CurrentCPUUtilizationPercentage); diff != "" {
				t.Errorf("currentCPUUtilizationPercentage (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantKeys, hpaConvTestKeys(v1.Annotations)); diff != "" {
				t.Errorf("v1 annotation keys (-want +got):\n%s", diff)
			}
			if tt.wantKeys == nil && v1.Annotations != nil {
				t.Errorf("v1 annotations = %#v, want nil", v1.Annotations)
			}
			if diff := cmp.Diff(before.Spec.ScaleTargetRef.Name, v1.Spec.ScaleTargetRef.Name); diff != "" {
				t.Errorf("scaleTargetRef.name (-want +got):\n%s", diff)
			}

			v1Before := v1.DeepCopy()
			back, err := hpaV1ToV2(v1)
			if err != nil {
				t.Fatalf("hpaV1ToV2: %v", err)
			}
			if diff := cmp.Diff(v1Before, v1); diff != "" {
				t.Errorf("hpaV1ToV2 modified its input (-before +after):\n%s", diff)
			}
			want := tt.wantBack
			if want == nil {
				want = before
			}
			if diff := cmp.Diff(want, back); diff != "" {
				t.Errorf("v2 -> v1 -> v2 (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHPAConvertV2ToV1Annotations(t *testing.T) {
	v1, err := hpaV2ToV1(hpaConvTestFullV2())
	if err != nil {
		t.Fatalf("hpaV2ToV1: %v", err)
	}
	if got := v1.Annotations["team"]; got != "payments" {
		t.Errorf("annotation team = %q, want payments", got)
	}
	if got := v1.Labels["app"]; got != "web" {
		t.Errorf("label app = %q, want web", got)
	}

	var specs []autoscalingv1.MetricSpec
	if err := json.Unmarshal([]byte(v1.Annotations["autoscaling.alpha.kubernetes.io/metrics"]), &specs); err != nil {
		t.Fatalf("metrics annotation: %v", err)
	}
	// All spec metrics but the CPU utilization one, in order.
	wantSpecs := []autoscalingv1.MetricSpec{
		{Type: autoscalingv1.ResourceMetricSourceType, Resource: &autoscalingv1.ResourceMetricSource{Name: corev1.ResourceMemory, TargetAverageValue: hpaConvTestQ("512Mi")}},
		{Type: autoscalingv1.ResourceMetricSourceType, Resource: &autoscalingv1.ResourceMetricSource{Name: corev1.ResourceMemory, TargetAverageUtilization: ptr.To[int32](75)}},
		{Type: autoscalingv1.ResourceMetricSourceType, Resource: &autoscalingv1.ResourceMetricSource{Name: corev1.ResourceCPU, TargetAverageValue: hpaConvTestQ("500m")}},
		{Type: autoscalingv1.PodsMetricSourceType, Pods: &autoscalingv1.PodsMetricSource{MetricName: "qps", TargetAverageValue: resource.MustParse("10"), Selector: hpaConvTestSelector()}},
		{Type: autoscalingv1.ObjectMetricSourceType, Object: &autoscalingv1.ObjectMetricSource{
			Target:     autoscalingv1.CrossVersionObjectReference{Kind: "Ingress", Name: "main", APIVersion: "networking.k8s.io/v1"},
			MetricName: "requests", TargetValue: resource.MustParse("2k"), Selector: hpaConvTestSelector(),
		}},
		{Type: autoscalingv1.ObjectMetricSourceType, Object: &autoscalingv1.ObjectMetricSource{
			Target:     autoscalingv1.CrossVersionObjectReference{Kind: "Ingress", Name: "main", APIVersion: "networking.k8s.io/v1"},
			MetricName: "latency", TargetValue: resource.MustParse("0"), AverageValue: hpaConvTestQ("100"),
		}},
		{Type: autoscalingv1.ExternalMetricSourceType, External: &autoscalingv1.ExternalMetricSource{MetricName: "queue_depth", MetricSelector: hpaConvTestSelector(), TargetValue: hpaConvTestQ("30")}},
		{Type: autoscalingv1.ExternalMetricSourceType, External: &autoscalingv1.ExternalMetricSource{MetricName: "queue_age", TargetAverageValue: hpaConvTestQ("5")}},
		{Type: autoscalingv1.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv1.ContainerResourceMetricSource{Name: corev1.ResourceCPU, Container: "app", TargetAverageUtilization: ptr.To[int32](60)}},
		{Type: autoscalingv1.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv1.ContainerResourceMetricSource{Name: corev1.ResourceMemory, Container: "sidecar", TargetAverageValue: hpaConvTestQ("64Mi")}},
	}
	if diff := cmp.Diff(wantSpecs, specs); diff != "" {
		t.Errorf("metrics annotation (-want +got):\n%s", diff)
	}

	var statuses []autoscalingv1.MetricStatus
	if err := json.Unmarshal([]byte(v1.Annotations["autoscaling.alpha.kubernetes.io/current-metrics"]), &statuses); err != nil {
		t.Fatalf("current-metrics annotation: %v", err)
	}
	// The CPU status is kept too, with its raw value.
	if len(statuses) != 8 {
		t.Fatalf("current-metrics annotation has %d entries, want 8", len(statuses))
	}
	wantCPU := &autoscalingv1.ResourceMetricStatus{Name: corev1.ResourceCPU, CurrentAverageUtilization: ptr.To[int32](65), CurrentAverageValue: resource.MustParse("350m")}
	if diff := cmp.Diff(wantCPU, statuses[0].Resource); diff != "" {
		t.Errorf("current-metrics[0].resource (-want +got):\n%s", diff)
	}
	wantObject := &autoscalingv1.ObjectMetricStatus{
		Target:     autoscalingv1.CrossVersionObjectReference{Kind: "Ingress", Name: "main", APIVersion: "networking.k8s.io/v1"},
		MetricName: "latency", CurrentValue: resource.MustParse("0"), AverageValue: hpaConvTestQ("90"),
	}
	if diff := cmp.Diff(wantObject, statuses[4].Object); diff != "" {
		t.Errorf("current-metrics[4].object (-want +got):\n%s", diff)
	}

	var conds []autoscalingv1.HorizontalPodAutoscalerCondition
	if err := json.Unmarshal([]byte(v1.Annotations["autoscaling.alpha.kubernetes.io/conditions"]), &conds); err != nil {
		t.Fatalf("conditions annotation: %v", err)
	}
	wantConds := []autoscalingv1.HorizontalPodAutoscalerCondition{
		{Type: autoscalingv1.AbleToScale, Status: corev1.ConditionTrue, LastTransitionTime: hpaConvTestTime, Reason: "ReadyForNewScale", Message: "recommended size matches current size"},
		{Type: autoscalingv1.ScalingActive, Status: corev1.ConditionTrue, LastTransitionTime: hpaConvTestTime, Reason: "ValidMetricFound", Message: "the HPA was able to compute the replica count", ObservedGeneration: ptr.To[int64](3)},
		{Type: autoscalingv1.ScalingLimited, Status: corev1.ConditionFalse, LastTransitionTime: hpaConvTestTime, Reason: "DesiredWithinRange"},
	}
	if diff := cmp.Diff(wantConds, conds); diff != "" {
		t.Errorf("conditions annotation (-want +got):\n%s", diff)
	}
}

// TestHPAConvertAnnotationFormat pins the exact bytes of each annotation.
// The behavior one uses Go field names, as Kubernetes writes it.
func TestHPAConvertAnnotationFormat(t *testing.T) {
	in := hpaConvTestBaseV2(hpaConvTestPods())
	in.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr.To[int32](0),
			SelectPolicy:               ptr.To(autoscalingv2.MaxChangePolicySelect),
			Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15}},
			Tolerance:                  hpaConvTestQ("50m"),
		},
	}
	in.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricStatus{
			Name:    corev1.ResourceCPU,
			Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr.To[int32](50), AverageValue: hpaConvTestQ("250m")},
		},
	}}
	in.Status.Conditions = []autoscalingv2.HorizontalPodAutoscalerCondition{{
		Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue, LastTransitionTime: hpaConvTestTime, Reason: "ReadyForNewScale", Message: "ok",
	}}

	v1, err := hpaV2ToV1(in)
	if err != nil {
		t.Fatalf("hpaV2ToV1: %v", err)
	}
	want := map[string]string{
		"autoscaling.alpha.kubernetes.io/metrics":         `[{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"10"}}]`,
		"autoscaling.alpha.kubernetes.io/current-metrics": `[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":50,"currentAverageValue":"250m"}}]`,
		"autoscaling.alpha.kubernetes.io/conditions":      `[{"type":"AbleToScale","status":"True","lastTransitionTime":"2024-01-02T03:04:05Z","reason":"ReadyForNewScale","message":"ok"}]`,
		"autoscaling.alpha.kubernetes.io/behavior":        `{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15}],"Tolerance":"50m"},"ScaleDown":null}`,
	}
	if diff := cmp.Diff(want, v1.Annotations); diff != "" {
		t.Errorf("v1 annotations (-want +got):\n%s", diff)
	}
	if v1.Spec.TargetCPUUtilizationPercentage != nil {
		t.Errorf("targetCPUUtilizationPercentage = %d, want nil", *v1.Spec.TargetCPUUtilizationPercentage)
	}
	if got := v1.Status.CurrentCPUUtilizationPercentage; got == nil || *got != 50 {
		t.Errorf("currentCPUUtilizationPercentage = %v, want 50", got)
	}
}

func TestHPAConvertV1RoundTrip(t *testing.T) {
	withCPU := hpaConvTestBaseV1()
	withCPU.Labels = map[string]string{"app": "web"}
	withCPU.Annotations = map[string]string{"team": "a"}
	withCPU.Spec.TargetCPUUtilizationPercentage = ptr.To[int32](60)
	withCPU.Status = autoscalingv1.HorizontalPodAutoscalerStatus{
		ObservedGeneration:              ptr.To[int64](2),
		LastScaleTime:                   &hpaConvTestTime,
		CurrentReplicas:                 3,
		DesiredReplicas:                 4,
		CurrentCPUUtilizationPercentage: ptr.To[int32](45),
	}
	withCPUV2 := hpaConvTestBaseV2(hpaConvTestCPU(60))
	withCPUV2.Labels = map[string]string{"app": "web"}
	withCPUV2.Annotations = map[string]string{"team": "a"}
	withCPUV2.Status = autoscalingv2.HorizontalPodAutoscalerStatus{
		ObservedGeneration: ptr.To[int64](2),
		LastScaleTime:      &hpaConvTestTime,
		CurrentReplicas:    3,
		DesiredReplicas:    4,
		CurrentMetrics: []autoscalingv2.MetricStatus{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{
				Name:    corev1.ResourceCPU,
				Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr.To[int32](45)},
			},
		}},
	}

	// Without a CPU target v1 means the 80% default, and says so on the way back.
	withDefault := hpaConvTestBaseV1()
	withDefault.Spec.TargetCPUUtilizationPercentage = ptr.To[int32](80)

	withOther := hpaConvTestBaseV1()
	withOther.Annotations = map[string]string{
		"autoscaling.alpha.kubernetes.io/metrics": `[{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"10"}}]`,
	}

	withBoth := withOther.DeepCopy()
	withBoth.Spec.TargetCPUUtilizationPercentage = ptr.To[int32](65)

	tests := []struct {
		name     string
		in       *autoscalingv1.HorizontalPodAutoscaler
		wantV2   *autoscalingv2.HorizontalPodAutoscaler
		wantBack *autoscalingv1.HorizontalPodAutoscaler
	}{
		{
			name:   "cpu target and status",
			in:     withCPU,
			wantV2: withCPUV2,
		},
		{
			name:     "no cpu target gets the default",
			in:       hpaConvTestBaseV1(),
			wantV2:   hpaConvTestBaseV2(hpaConvTestCPU(80)),
			wantBack: withDefault,
		},
		{
			name:   "other metrics without a cpu target get no default",
			in:     withOther,
			wantV2: hpaConvTestBaseV2(hpaConvTestPods()),
		},
		{
			name:   "other metrics come before the cpu target",
			in:     withBoth,
			wantV2: hpaConvTestBaseV2(hpaConvTestPods(), hpaConvTestCPU(65)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.in.DeepCopy()
			v2, err := hpaV1ToV2(tt.in)
			if err != nil {
				t.Fatalf("hpaV1ToV2: %v", err)
			}
			if diff := cmp.Diff(before, tt.in); diff != "" {
				t.Errorf("hpaV1ToV2 modified its input (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantV2, v2); diff != "" {
				t.Errorf("v1 -> v2 (-want +got):\n%s", diff)
			}

			v2Before := v2.DeepCopy()
			back, err := hpaV2ToV1(v2)
			if err != nil {
				t.Fatalf("hpaV2ToV1: %v", err)
			}
			if diff := cmp.Diff(v2Before, v2); diff != "" {
				t.Errorf("hpaV2ToV1 modified its input (-before +after):\n%s", diff)
			}
			want := tt.wantBack
			if want == nil {
				want = before
			}
			if diff := cmp.Diff(want, back); diff != "" {
				t.Errorf("v1 -> v2 -> v1 (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHPAConvertV1ToV2Annotations(t *testing.T) {
	behavior := &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleDown: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr.To[int32](120),
			SelectPolicy:               ptr.To(autoscalingv2.DisabledPolicySelect),
			Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 10, PeriodSeconds: 60}},
			Tolerance:                  hpaConvTestQ("100m"),
		},
	}
	withAnnotations := func(cpu *int32, current *int32, a map[string]string) *autoscalingv1.HorizontalPodAutoscaler {
		h := hpaConvTestBaseV1()
		h.Spec.TargetCPUUtilizationPercentage = cpu
		h.Status.CurrentCPUUtilizationPercentage = current
		h.Annotations = a
		return h
	}
	withV2 := func(f func(h *autoscalingv2.HorizontalPodAutoscaler), metrics ...autoscalingv2.MetricSpec) *autoscalingv2.HorizontalPodAutoscaler {
		h := hpaConvTestBaseV2(metrics...)
		f(h)
		return h
	}
	memoryStatus := autoscalingv2.MetricStatus{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricStatus{
			Name:    corev1.ResourceMemory,
			Current: autoscalingv2.MetricValueStatus{AverageValue: hpaConvTestQ("1Gi")},
		},
	}

	tests := []struct {
		name string
		in   *autoscalingv1.HorizontalPodAutoscaler
		want *autoscalingv2.HorizontalPodAutoscaler
	}{
		{
			name: "behavior as Kubernetes writes it, other annotations kept",
			in: withAnnotations(ptr.To[int32](50), nil, map[string]string{
				"keep": "me",
				"autoscaling.alpha.kubernetes.io/behavior":             `{"ScaleUp":null,"ScaleDown":{"StabilizationWindowSeconds":120,"SelectPolicy":"Disabled","Policies":[{"Type":"Percent","Value":10,"PeriodSeconds":60}],"Tolerance":"100m"}}`,
				"autoscaling.alpha.kubernetes.io/scale-up-tolerance":   "0.5",
				"autoscaling.alpha.kubernetes.io/scale-down-tolerance": "0.5",
			}),
			want: withV2(func(h *autoscalingv2.HorizontalPodAutoscaler) {
				h.Annotations = map[string]string{"keep": "me"}
				h.Spec.Behavior = behavior
			}, hpaConvTestCPU(50)),
		},
		{
			name: "behavior in camelCase is accepted",
			in: withAnnotations(ptr.To[int32](50), nil, map[string]string{
				"autoscaling.alpha.kubernetes.io/behavior": `{"scaleDown":{"stabilizationWindowSeconds":120,"selectPolicy":"Disabled","policies":[{"type":"Percent","value":10,"periodSeconds":60}],"tolerance":"0.1"}}`,
			}),
			want: withV2(func(h *autoscalingv2.HorizontalPodAutoscaler) {
				h.Spec.Behavior = behavior
			}, hpaConvTestCPU(50)),
		},
		{
			name: "empty behavior is no behavior",
			in: withAnnotations(ptr.To[int32](50), nil, map[string]string{
				"autoscaling.alpha.kubernetes.io/behavior": `{"ScaleUp":null,"ScaleDown":null}`,
			}),
			want: hpaConvTestBaseV2(hpaConvTestCPU(50)),
		},
		{
			name: "current metrics annotation wins over the v1 field",
			in: withAnnotations(ptr.To[int32](50), ptr.To[int32](30), map[string]string{
				"autoscaling.alpha.kubernetes.io/current-metrics": `[{"type":"Resource","resource":{"name":"memory","currentAverageValue":"1Gi"}}]`,
			}),
			want: withV2(func(h *autoscalingv2.HorizontalPodAutoscaler) {
				h.Status.CurrentMetrics = []autoscalingv2.MetricStatus{memoryStatus}
			}, hpaConvTestCPU(50)),
		},
		{
			name: "conditions restored",
			in: withAnnotations(ptr.To[int32](50), nil, map[string]string{
				"autoscaling.alpha.kubernetes.io/conditions": `[{"type":"ScalingActive","status":"False","lastTransitionTime":"2024-01-02T03:04:05Z","reason":"FailedGetResourceMetric","observedGeneration":4}]`,
			}),
			want: withV2(func(h *autoscalingv2.HorizontalPodAutoscaler) {
				h.Status.Conditions = []autoscalingv2.HorizontalPodAutoscalerCondition{{
					Type: autoscalingv2.ScalingActive, Status: corev1.ConditionFalse, LastTransitionTime: hpaConvTestTime,
					Reason: "FailedGetResourceMetric", ObservedGeneration: ptr.To[int64](4),
				}}
			}, hpaConvTestCPU(50)),
		},
		{
			name: "malformed annotations are ignored and removed",
			in: withAnnotations(ptr.To[int32](55), ptr.To[int32](30), map[string]string{
				"autoscaling.alpha.kubernetes.io/metrics":         "{",
				"autoscaling.alpha.kubernetes.io/current-metrics": "nope",
				"autoscaling.alpha.kubernetes.io/conditions":      `{"type":"AbleToScale"}`,
				"autoscaling.alpha.kubernetes.io/behavior":        "[]",
			}),
			want: withV2(func(h *autoscalingv2.HorizontalPodAutoscaler) {
				h.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{
					Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricStatus{
						Name:    corev1.ResourceCPU,
						Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr.To[int32](30)},
					},
				}}
			}, hpaConvTestCPU(55)),
		},
		{
			name: "malformed metrics annotation and no cpu target gets the default",
			in: withAnnotations(nil, nil, map[string]string{
				"team": "a",
				"autoscaling.alpha.kubernetes.io/metrics": "not json",
			}),
			want: withV2(func(h *autoscalingv2.HorizontalPodAutoscaler) {
				h.Annotations = map[string]string{"team": "a"}
			}, hpaConvTestCPU(80)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.in.DeepCopy()
			got, err := hpaV1ToV2(tt.in)
			if err != nil {
				t.Fatalf("hpaV1ToV2: %v", err)
			}
			if diff := cmp.Diff(before, tt.in); diff != "" {
				t.Errorf("hpaV1ToV2 modified its input (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("v1 -> v2 (-want +got):\n%s", diff)
			}
			for _, k := range []string{
				"autoscaling.alpha.kubernetes.io/metrics",
				"autoscaling.alpha.kubernetes.io/current-metrics",
				"autoscaling.alpha.kubernetes.io/conditions",
				"autoscaling.alpha.kubernetes.io/behavior",
				"autoscaling.alpha.kubernetes.io/scale-up-tolerance",
				"autoscaling.alpha.kubernetes.io/scale-down-tolerance",
			} {
				if v, ok := got.Annotations[k]; ok {
					t.Errorf("v2 still has annotation %s=%q", k, v)
				}
			}
		})
	}
}

func TestHPAConvertNil(t *testing.T) {
	if got, err := hpaV1ToV2(nil); err == nil || got != nil {
		t.Errorf("hpaV1ToV2(nil) = %v, %v; want nil and an error", got, err)
	}
	if got, err := hpaV2ToV1(nil); err == nil || got != nil {
		t.Errorf("hpaV2ToV1(nil) = %v, %v; want nil and an error", got, err)
	}
}
