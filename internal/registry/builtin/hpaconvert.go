package builtin

import (
	"encoding/json"
	"errors"
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Annotations that carry the autoscaling/v2 fields autoscaling/v1 has no
// room for. The keys and their JSON formats are the ones Kubernetes uses,
// so objects written by either server read back the same way.
const (
	// hpaMetricsAnnotation holds the spec metrics other than the CPU
	// utilization target, as JSON of []autoscalingv1.MetricSpec.
	hpaMetricsAnnotation = "autoscaling.alpha.kubernetes.io/metrics"
	// hpaCurrentMetricsAnnotation holds status.currentMetrics, as JSON of
	// []autoscalingv1.MetricStatus.
	hpaCurrentMetricsAnnotation = "autoscaling.alpha.kubernetes.io/current-metrics"
	// hpaConditionsAnnotation holds status.conditions, as JSON of
	// []autoscalingv1.HorizontalPodAutoscalerCondition.
	hpaConditionsAnnotation = "autoscaling.alpha.kubernetes.io/conditions"
	// hpaBehaviorAnnotation holds spec.behavior, as JSON of hpaBehaviorJSON.
	hpaBehaviorAnnotation = "autoscaling.alpha.kubernetes.io/behavior"
	// The tolerance annotations are only written by autoscaling/v2beta2.
	// They are never read here, but are dropped like the others.
	hpaScaleUpToleranceAnnotation   = "autoscaling.alpha.kubernetes.io/scale-up-tolerance"
	hpaScaleDownToleranceAnnotation = "autoscaling.alpha.kubernetes.io/scale-down-tolerance"

	// hpaV1DefaultCPUUtilization is the CPU target a v1 HPA gets when it
	// names no metric at all.
	hpaV1DefaultCPUUtilization int32 = 80
)

// hpaRoundTripAnnotations lists every annotation the conversions own.
var hpaRoundTripAnnotations = []string{
	hpaMetricsAnnotation,
	hpaCurrentMetricsAnnotation,
	hpaConditionsAnnotation,
	hpaBehaviorAnnotation,
	hpaScaleUpToleranceAnnotation,
	hpaScaleDownToleranceAnnotation,
}

// hpaBehaviorJSON is the shape of the behavior annotation. Kubernetes
// encodes its internal type, which has no JSON tags, so the keys are the Go
// field names ("ScaleUp", "StabilizationWindowSeconds", ...) and unset
// fields appear as null. Decoding matches keys case-insensitively, so the
// camelCase v2 form is accepted too.
type hpaBehaviorJSON struct {
	ScaleUp   *hpaScalingRulesJSON
	ScaleDown *hpaScalingRulesJSON
}

type hpaScalingRulesJSON struct {
	StabilizationWindowSeconds *int32
	SelectPolicy               *autoscalingv2.ScalingPolicySelect
	Policies                   []hpaScalingPolicyJSON
	Tolerance                  *resource.Quantity
}

type hpaScalingPolicyJSON struct {
	Type          autoscalingv2.HPAScalingPolicyType
	Value         int32
	PeriodSeconds int32
}

// hpaV1ToV2 converts an autoscaling/v1 HPA to autoscaling/v2. It does not modify in.
//
// Fields stored in the round-trip annotations are restored and the
// annotations removed; an annotation that does not decode is ignored, as
// Kubernetes does. A v1 HPA with no metric at all gets the 80% CPU target.
func hpaV1ToV2(in *autoscalingv1.HorizontalPodAutoscaler) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	if in == nil {
		return nil, errors.New("convert HorizontalPodAutoscaler to autoscaling/v2: nil object")
	}
	in = in.DeepCopy()
	out := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta: metav1.TypeMeta{
			APIVersion: autoscalingv2.SchemeGroupVersion.String(),
			Kind:       "HorizontalPodAutoscaler",
		},
		ObjectMeta: in.ObjectMeta,
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference(in.Spec.ScaleTargetRef),
			MinReplicas:    in.Spec.MinReplicas,
			MaxReplicas:    in.Spec.MaxReplicas,
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{
			ObservedGeneration: in.Status.ObservedGeneration,
			LastScaleTime:      in.Status.LastScaleTime,
			CurrentReplicas:    in.Status.CurrentReplicas,
			DesiredReplicas:    in.Status.DesiredReplicas,
		},
	}
	annotations := in.Annotations

	// Metrics from the annotation come first, the CPU target last.
	var metrics []autoscalingv2.MetricSpec
	if enc, ok := annotations[hpaMetricsAnnotation]; ok {
		var specs []autoscalingv1.MetricSpec
		if err := json.Unmarshal([]byte(enc), &specs); err == nil {
			metrics = make([]autoscalingv2.MetricSpec, 0, len(specs)+1)
			for _, s := range specs {
				metrics = append(metrics, hpaMetricSpecToV2(s))
			}
		}
	}
	if in.Spec.TargetCPUUtilizationPercentage != nil {
		metrics = append(metrics, hpaCPUUtilizationMetric(*in.Spec.TargetCPUUtilizationPercentage))
	}
	if len(metrics) == 0 {
		metrics = []autoscalingv2.MetricSpec{hpaCPUUtilizationMetric(hpaV1DefaultCPUUtilization)}
	}
	out.Spec.Metrics = metrics

	if enc, ok := annotations[hpaBehaviorAnnotation]; ok {
		var b hpaBehaviorJSON
		if err := json.Unmarshal([]byte(enc), &b); err == nil && (b.ScaleUp != nil || b.ScaleDown != nil) {
			out.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleUp:   hpaScalingRulesToV2(b.ScaleUp),
				ScaleDown: hpaScalingRulesToV2(b.ScaleDown),
			}
		}
	}

	if in.Status.CurrentCPUUtilizationPercentage != nil {
		out.Status.CurrentMetrics = []autoscalingv2.MetricStatus{hpaCPUUtilizationStatus(*in.Status.CurrentCPUUtilizationPercentage)}
	}
	// The annotation, when readable, has the full list and wins.
	if enc, ok := annotations[hpaCurrentMetricsAnnotation]; ok {
		var statuses []autoscalingv1.MetricStatus
		if err := json.Unmarshal([]byte(enc), &statuses); err == nil {
			out.Status.CurrentMetrics = make([]autoscalingv2.MetricStatus, 0, len(statuses))
			for _, s := range statuses {
				out.Status.CurrentMetrics = append(out.Status.CurrentMetrics, hpaMetricStatusToV2(s))
			}
		}
	}

	if enc, ok := annotations[hpaConditionsAnnotation]; ok {
		var conds []autoscalingv1.HorizontalPodAutoscalerCondition
		if err := json.Unmarshal([]byte(enc), &conds); err == nil {
			out.Status.Conditions = make([]autoscalingv2.HorizontalPodAutoscalerCondition, 0, len(conds))
			for _, c := range conds {
				out.Status.Conditions = append(out.Status.Conditions, autoscalingv2.HorizontalPodAutoscalerCondition{
					Type:               autoscalingv2.HorizontalPodAutoscalerConditionType(c.Type),
					Status:             c.Status,
					LastTransitionTime: c.LastTransitionTime,
					Reason:             c.Reason,
					Message:            c.Message,
					ObservedGeneration: c.ObservedGeneration,
				})
			}
		}
	}

	out.Annotations = hpaDropRoundTripAnnotations(out.Annotations)
	return out, nil
}

// hpaV2ToV1 converts an autoscaling/v2 HPA to autoscaling/v1. It does not modify in.
//
// The first CPU average-utilization metric becomes
// targetCPUUtilizationPercentage; the other metrics, the current metrics,
// the conditions and the behavior go to the round-trip annotations. Any
// round-trip annotations already on in are replaced.
func hpaV2ToV1(in *autoscalingv2.HorizontalPodAutoscaler) (*autoscalingv1.HorizontalPodAutoscaler, error) {
	if in == nil {
		return nil, errors.New("convert HorizontalPodAutoscaler to autoscaling/v1: nil object")
	}
	in = in.DeepCopy()
	out := &autoscalingv1.HorizontalPodAutoscaler{
		TypeMeta: metav1.TypeMeta{
			APIVersion: autoscalingv1.SchemeGroupVersion.String(),
			Kind:       "HorizontalPodAutoscaler",
		},
		ObjectMeta: in.ObjectMeta,
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference(in.Spec.ScaleTargetRef),
			MinReplicas:    in.Spec.MinReplicas,
			MaxReplicas:    in.Spec.MaxReplicas,
		},
		Status: autoscalingv1.HorizontalPodAutoscalerStatus{
			ObservedGeneration: in.Status.ObservedGeneration,
			LastScaleTime:      in.Status.LastScaleTime,
			CurrentReplicas:    in.Status.CurrentReplicas,
			DesiredReplicas:    in.Status.DesiredReplicas,
		},
	}
	annotations := hpaDropRoundTripAnnotations(out.Annotations)
	set := func(key string, v any) error {
		enc, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("convert HorizontalPodAutoscaler %s/%s to autoscaling/v1: encode annotation %s: %w", in.Namespace, in.Name, key, err)
		}
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[key] = string(enc)
		return nil
	}

	// Every CPU utilization metric is left out of the annotation; only the
	// first one survives, as the v1 field.
	var others []autoscalingv1.MetricSpec
	for _, m := range in.Spec.Metrics {
		if hpaIsCPUUtilizationMetric(m) {
			if out.Spec.TargetCPUUtilizationPercentage == nil {
				out.Spec.TargetCPUUtilizationPercentage = ptr.To(*m.Resource.Target.AverageUtilization)
			}
			continue
		}
		others = append(others, hpaMetricSpecToV1(m))
	}
	if len(others) > 0 {
		if err := set(hpaMetricsAnnotation, others); err != nil {
			return nil, err
		}
	}

	// The last CPU utilization status is the v1 field. The annotation keeps
	// the whole list (with raw values), unless the v1 field alone says it all.
	for _, m := range in.Status.CurrentMetrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil &&
			m.Resource.Name == corev1.ResourceCPU && m.Resource.Current.AverageUtilization != nil {
			out.Status.CurrentCPUUtilizationPercentage = ptr.To(*m.Resource.Current.AverageUtilization)
		}
	}
	if len(in.Status.CurrentMetrics) > 0 && !hpaOnlyCPUUtilizationStatus(in.Status.CurrentMetrics) {
		statuses := make([]autoscalingv1.MetricStatus, 0, len(in.Status.CurrentMetrics))
		for _, m := range in.Status.CurrentMetrics {
			statuses = append(statuses, hpaMetricStatusToV1(m))
		}
		if err := set(hpaCurrentMetricsAnnotation, statuses); err != nil {
			return nil, err
		}
	}

	if b := in.Spec.Behavior; b != nil {
		enc := hpaBehaviorJSON{
			ScaleUp:   hpaScalingRulesToJSON(b.ScaleUp),
			ScaleDown: hpaScalingRulesToJSON(b.ScaleDown),
		}
		if err := set(hpaBehaviorAnnotation, enc); err != nil {
			return nil, err
		}
	}

	if len(in.Status.Conditions) > 0 {
		conds := make([]autoscalingv1.HorizontalPodAutoscalerCondition, 0, len(in.Status.Conditions))
		for _, c := range in.Status.Conditions {
			conds = append(conds, autoscalingv1.HorizontalPodAutoscalerCondition{
				Type:               autoscalingv1.HorizontalPodAutoscalerConditionType(c.Type),
				Status:             c.Status,
				LastTransitionTime: c.LastTransitionTime,
				Reason:             c.Reason,
				Message:            c.Message,
				ObservedGeneration: c.ObservedGeneration,
			})
		}
		if err := set(hpaConditionsAnnotation, conds); err != nil {
			return nil, err
		}
	}

	out.Annotations = annotations
	return out, nil
}

// hpaDropRoundTripAnnotations deletes the round-trip annotations from m,
// which the caller owns. A map left empty by that becomes nil.
func hpaDropRoundTripAnnotations(m map[string]string) map[string]string {
	found := false
	for _, k := range hpaRoundTripAnnotations {
		if _, ok := m[k]; ok {
			found = true
			delete(m, k)
		}
	}
	if found && len(m) == 0 {
		return nil
	}
	return m
}

// hpaIsCPUUtilizationMetric reports whether m is the metric v1 keeps as
// targetCPUUtilizationPercentage.
func hpaIsCPUUtilizationMetric(m autoscalingv2.MetricSpec) bool {
	return m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil &&
		m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.AverageUtilization != nil
}

// hpaCPUUtilizationMetric is the v2 form of targetCPUUtilizationPercentage.
func hpaCPUUtilizationMetric(percent int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{
				Type:               autoscalingv2.UtilizationMetricType,
				AverageUtilization: ptr.To(percent),
			},
		},
	}
}

// hpaCPUUtilizationStatus is the v2 form of currentCPUUtilizationPercentage.
func hpaCPUUtilizationStatus(percent int32) autoscalingv2.MetricStatus {
	return autoscalingv2.MetricStatus{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricStatus{
			Name:    corev1.ResourceCPU,
			Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr.To(percent)},
		},
	}
}

// hpaOnlyCPUUtilizationStatus reports whether ms is exactly what v1's
// currentCPUUtilizationPercentage converts back to, so that no annotation
// is needed to restore it.
func hpaOnlyCPUUtilizationStatus(ms []autoscalingv2.MetricStatus) bool {
	if len(ms) != 1 {
		return false
	}
	m := ms[0]
	return m.Type == autoscalingv2.ResourceMetricSourceType &&
		m.Object == nil && m.Pods == nil && m.ContainerResource == nil && m.External == nil &&
		m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
		m.Resource.Current.AverageUtilization != nil &&
		m.Resource.Current.Value == nil && m.Resource.Current.AverageValue == nil
}

// hpaMetricSpecToV1 converts one v2 metric to the v1 annotation form.
func hpaMetricSpecToV1(m autoscalingv2.MetricSpec) autoscalingv1.MetricSpec {
	out := autoscalingv1.MetricSpec{Type: autoscalingv1.MetricSourceType(m.Type)}
	if s := m.Object; s != nil {
		out.Object = &autoscalingv1.ObjectMetricSource{
			Target:       autoscalingv1.CrossVersionObjectReference(s.DescribedObject),
			MetricName:   s.Metric.Name,
			TargetValue:  hpaQuantityValue(s.Target.Value),
			Selector:     s.Metric.Selector,
			AverageValue: s.Target.AverageValue,
		}
	}
	if s := m.Pods; s != nil {
		out.Pods = &autoscalingv1.PodsMetricSource{
			MetricName:         s.Metric.Name,
			TargetAverageValue: hpaQuantityValue(s.Target.AverageValue),
			Selector:           s.Metric.Selector,
		}
	}
	if s := m.Resource; s != nil {
		out.Resource = &autoscalingv1.ResourceMetricSource{
			Name:                     s.Name,
			TargetAverageUtilization: s.Target.AverageUtilization,
			TargetAverageValue:       s.Target.AverageValue,
		}
	}
	if s := m.ContainerResource; s != nil {
		out.ContainerResource = &autoscalingv1.ContainerResourceMetricSource{
			Name:                     s.Name,
			TargetAverageUtilization: s.Target.AverageUtilization,
			TargetAverageValue:       s.Target.AverageValue,
			Container:                s.Container,
		}
	}
	if s := m.External; s != nil {
		out.External = &autoscalingv1.ExternalMetricSource{
			MetricName:         s.Metric.Name,
			MetricSelector:     s.Metric.Selector,
			TargetValue:        s.Target.Value,
			TargetAverageValue: s.Target.AverageValue,
		}
	}
	return out
}

// hpaMetricSpecToV2 converts one metric from the v1 annotation form. The
// target type follows from which value is set.
func hpaMetricSpecToV2(m autoscalingv1.MetricSpec) autoscalingv2.MetricSpec {
	out := autoscalingv2.MetricSpec{Type: autoscalingv2.MetricSourceType(m.Type)}
	if s := m.Object; s != nil {
		target := autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType}
		if s.AverageValue != nil {
			target.Type = autoscalingv2.AverageValueMetricType
			target.AverageValue = s.AverageValue
		}
		target.Value = hpaPlaceholderValue(s.TargetValue, s.AverageValue)
		out.Object = &autoscalingv2.ObjectMetricSource{
			DescribedObject: autoscalingv2.CrossVersionObjectReference(s.Target),
			Metric:          autoscalingv2.MetricIdentifier{Name: s.MetricName, Selector: s.Selector},
			Target:          target,
		}
	}
	if s := m.Pods; s != nil {
		out.Pods = &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: s.MetricName, Selector: s.Selector},
			Target: autoscalingv2.MetricTarget{
				Type:         autoscalingv2.AverageValueMetricType,
				AverageValue: ptr.To(s.TargetAverageValue),
			},
		}
	}
	if s := m.Resource; s != nil {
		out.Resource = &autoscalingv2.ResourceMetricSource{
			Name:   s.Name,
			Target: hpaResourceTarget(s.TargetAverageUtilization, s.TargetAverageValue),
		}
	}
	if s := m.ContainerResource; s != nil {
		out.ContainerResource = &autoscalingv2.ContainerResourceMetricSource{
			Name:      s.Name,
			Container: s.Container,
			Target:    hpaResourceTarget(s.TargetAverageUtilization, s.TargetAverageValue),
		}
	}
	if s := m.External; s != nil {
		target := autoscalingv2.MetricTarget{
			Type:         autoscalingv2.AverageValueMetricType,
			Value:        s.TargetValue,
			AverageValue: s.TargetAverageValue,
		}
		if s.TargetValue != nil {
			target.Type = autoscalingv2.ValueMetricType
		}
		out.External = &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: s.MetricName, Selector: s.MetricSelector},
			Target: target,
		}
	}
	return out
}

// hpaResourceTarget is the v2 target of a (container) resource metric:
// utilization when a percentage is given, otherwise an average value.
func hpaResourceTarget(utilization *int32, averageValue *resource.Quantity) autoscalingv2.MetricTarget {
	t := autoscalingv2.MetricTarget{
		Type:               autoscalingv2.AverageValueMetricType,
		AverageValue:       averageValue,
		AverageUtilization: utilization,
	}
	if utilization != nil {
		t.Type = autoscalingv2.UtilizationMetricType
	}
	return t
}

// hpaMetricStatusToV1 converts one v2 current metric to the v1 annotation form.
func hpaMetricStatusToV1(m autoscalingv2.MetricStatus) autoscalingv1.MetricStatus {
	out := autoscalingv1.MetricStatus{Type: autoscalingv1.MetricSourceType(m.Type)}
	if s := m.Object; s != nil {
		out.Object = &autoscalingv1.ObjectMetricStatus{
			Target:       autoscalingv1.CrossVersionObjectReference(s.DescribedObject),
			MetricName:   s.Metric.Name,
			CurrentValue: hpaQuantityValue(s.Current.Value),
			Selector:     s.Metric.Selector,
			AverageValue: s.Current.AverageValue,
		}
	}
	if s := m.Pods; s != nil {
		out.Pods = &autoscalingv1.PodsMetricStatus{
			MetricName:          s.Metric.Name,
			CurrentAverageValue: hpaQuantityValue(s.Current.AverageValue),
			Selector:            s.Metric.Selector,
		}
	}
	if s := m.Resource; s != nil {
		out.Resource = &autoscalingv1.ResourceMetricStatus{
			Name:                      s.Name,
			CurrentAverageUtilization: s.Current.AverageUtilization,
			CurrentAverageValue:       hpaQuantityValue(s.Current.AverageValue),
		}
	}
	if s := m.ContainerResource; s != nil {
		out.ContainerResource = &autoscalingv1.ContainerResourceMetricStatus{
			Name:                      s.Name,
			CurrentAverageUtilization: s.Current.AverageUtilization,
			CurrentAverageValue:       hpaQuantityValue(s.Current.AverageValue),
			Container:                 s.Container,
		}
	}
	if s := m.External; s != nil {
		out.External = &autoscalingv1.ExternalMetricStatus{
			MetricName:          s.Metric.Name,
			MetricSelector:      s.Metric.Selector,
			CurrentValue:        hpaQuantityValue(s.Current.Value),
			CurrentAverageValue: s.Current.AverageValue,
		}
	}
	return out
}

// hpaMetricStatusToV2 converts one current metric from the v1 annotation form.
func hpaMetricStatusToV2(m autoscalingv1.MetricStatus) autoscalingv2.MetricStatus {
	out := autoscalingv2.MetricStatus{Type: autoscalingv2.MetricSourceType(m.Type)}
	if s := m.Object; s != nil {
		out.Object = &autoscalingv2.ObjectMetricStatus{
			DescribedObject: autoscalingv2.CrossVersionObjectReference(s.Target),
			Metric:          autoscalingv2.MetricIdentifier{Name: s.MetricName, Selector: s.Selector},
			Current: autoscalingv2.MetricValueStatus{
				Value:        hpaPlaceholderValue(s.CurrentValue, s.AverageValue),
				AverageValue: s.AverageValue,
			},
		}
	}
	if s := m.Pods; s != nil {
		out.Pods = &autoscalingv2.PodsMetricStatus{
			Metric:  autoscalingv2.MetricIdentifier{Name: s.MetricName, Selector: s.Selector},
			Current: autoscalingv2.MetricValueStatus{AverageValue: ptr.To(s.CurrentAverageValue)},
		}
	}
	if s := m.Resource; s != nil {
		out.Resource = &autoscalingv2.ResourceMetricStatus{
			Name: s.Name,
			Current: autoscalingv2.MetricValueStatus{
				AverageValue:       ptr.To(s.CurrentAverageValue),
				AverageUtilization: s.CurrentAverageUtilization,
			},
		}
	}
	if s := m.ContainerResource; s != nil {
		out.ContainerResource = &autoscalingv2.ContainerResourceMetricStatus{
			Name:      s.Name,
			Container: s.Container,
			Current: autoscalingv2.MetricValueStatus{
				AverageValue:       ptr.To(s.CurrentAverageValue),
				AverageUtilization: s.CurrentAverageUtilization,
			},
		}
	}
	if s := m.External; s != nil {
		out.External = &autoscalingv2.ExternalMetricStatus{
			Metric: autoscalingv2.MetricIdentifier{Name: s.MetricName, Selector: s.MetricSelector},
			Current: autoscalingv2.MetricValueStatus{
				Value:        hpaPlaceholderValue(s.CurrentValue, s.CurrentAverageValue),
				AverageValue: s.CurrentAverageValue,
			},
		}
	}
	return out
}

// hpaQuantityValue dereferences q, giving zero for nil: the v1 forms have
// required quantities where v2 has optional ones.
func hpaQuantityValue(q *resource.Quantity) resource.Quantity {
	if q == nil {
		return resource.Quantity{}
	}
	return *q
}

// hpaPlaceholderValue maps a required v1 value back to v2's optional one.
// A zero value next to an average value is only the placeholder v1 writes
// for an unset value, so it becomes nil; otherwise the value is kept.
func hpaPlaceholderValue(value resource.Quantity, averageValue *resource.Quantity) *resource.Quantity {
	if averageValue != nil && value.IsZero() {
		return nil
	}
	return ptr.To(value)
}

// hpaScalingRulesToJSON converts v2 scaling rules to the annotation shape.
func hpaScalingRulesToJSON(r *autoscalingv2.HPAScalingRules) *hpaScalingRulesJSON {
	if r == nil {
		return nil
	}
	out := &hpaScalingRulesJSON{
		StabilizationWindowSeconds: r.StabilizationWindowSeconds,
		SelectPolicy:               r.SelectPolicy,
		Tolerance:                  r.Tolerance,
	}
	if r.Policies != nil {
		out.Policies = make([]hpaScalingPolicyJSON, 0, len(r.Policies))
		for _, p := range r.Policies {
			out.Policies = append(out.Policies, hpaScalingPolicyJSON(p))
		}
	}
	return out
}

// hpaScalingRulesToV2 converts scaling rules from the annotation shape.
func hpaScalingRulesToV2(r *hpaScalingRulesJSON) *autoscalingv2.HPAScalingRules {
	if r == nil {
		return nil
	}
	out := &autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: r.StabilizationWindowSeconds,
		SelectPolicy:               r.SelectPolicy,
		Tolerance:                  r.Tolerance,
	}
	if r.Policies != nil {
		out.Policies = make([]autoscalingv2.HPAScalingPolicy, 0, len(r.Policies))
		for _, p := range r.Policies {
			out.Policies = append(out.Policies, autoscalingv2.HPAScalingPolicy(p))
		}
	}
	return out
}
