package builtin

import (
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/registry"
)

// otherResources returns the smaller groups: coordination.k8s.io leases,
// scheduling.k8s.io priorityclasses, storage.k8s.io storageclasses,
// autoscaling/v2 (and v1, hpav1.go) horizontalpodautoscalers and policy/v1
// poddisruptionbudgets. (certificates and events.k8s.io are in
// other_certificates.go and other_events.go.)
func otherResources() []*registry.Resource {
	return []*registry.Resource{
		{
			GVR: autoscalingv2.SchemeGroupVersion.WithResource("horizontalpodautoscalers"), Kind: "HorizontalPodAutoscaler",
			ListKind: "HorizontalPodAutoscalerList", Singular: "horizontalpodautoscaler", ShortNames: []string{"hpa"},
			Categories: []string{"all"}, Namespaced: true, Status: true,
			Strategy: hpaStrategy(),
		},
		hpaV1Resource(),
		{
			GVR: coordinationv1.SchemeGroupVersion.WithResource("leases"), Kind: "Lease", ListKind: "LeaseList",
			Singular: "lease", Namespaced: true,
			Strategy: leaseStrategy(),
		},
		{
			GVR: policyv1.SchemeGroupVersion.WithResource("poddisruptionbudgets"), Kind: "PodDisruptionBudget",
			ListKind: "PodDisruptionBudgetList", Singular: "poddisruptionbudget", ShortNames: []string{"pdb"},
			Namespaced: true, Status: true,
			Strategy: pdbStrategy(),
		},
		{
			GVR: schedulingv1.SchemeGroupVersion.WithResource("priorityclasses"), Kind: "PriorityClass",
			ListKind: "PriorityClassList", Singular: "priorityclass", ShortNames: []string{"pc"},
			Strategy: priorityClassStrategy(),
		},
		{
			GVR: storagev1.SchemeGroupVersion.WithResource("storageclasses"), Kind: "StorageClass",
			ListKind: "StorageClassList", Singular: "storageclass", ShortNames: []string{"sc"},
			Strategy: storageClassStrategy(),
		},
	}
}

// --- Lease ----------------------------------------------------------------

func leaseStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*coordinationv1.Lease, *coordinationv1.LeaseList]{
		New:     func() *coordinationv1.Lease { return &coordinationv1.Lease{} },
		NewList: func() *coordinationv1.LeaseList { return &coordinationv1.LeaseList{} },
		Validate: func(l *coordinationv1.Lease) field.ErrorList {
			var allErrs field.ErrorList
			fldPath := field.NewPath("spec")
			if l.Spec.LeaseDurationSeconds != nil && *l.Spec.LeaseDurationSeconds <= 0 {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("leaseDurationSeconds"), *l.Spec.LeaseDurationSeconds, "must be greater than 0"))
			}
			allErrs = append(allErrs, validateNonNegative32(l.Spec.LeaseTransitions, fldPath.Child("leaseTransitions"))...)
			return allErrs
		},
		Table: &registry.TypedTable[*coordinationv1.Lease]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Holder", coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"], 0),
				columnAge(),
			},
			Row: func(l *coordinationv1.Lease) []any {
				return []any{l.Name, ptr.Deref(l.Spec.HolderIdentity, ""), cellAge(&l.ObjectMeta)}
			},
		},
	})
}

// --- PriorityClass --------------------------------------------------------

// Upstream's limits on priority values and its built-in classes.
const (
	highestUserDefinablePriority = int32(1000000000)
	systemPriorityClassPrefix    = "system-"
)

// systemPriorityClasses are the classes whose names may use the reserved
// "system-" prefix, with their fixed values.
func systemPriorityClasses() map[string]int32 {
	return map[string]int32{
		"system-cluster-critical": 2000000000,
		"system-node-critical":    2000001000,
	}
}

func priorityClassStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*schedulingv1.PriorityClass, *schedulingv1.PriorityClassList]{
		New:     func() *schedulingv1.PriorityClass { return &schedulingv1.PriorityClass{} },
		NewList: func() *schedulingv1.PriorityClassList { return &schedulingv1.PriorityClassList{} },
		Default: func(pc *schedulingv1.PriorityClass) {
			if pc.PreemptionPolicy == nil {
				pc.PreemptionPolicy = ptr.To(corev1.PreemptLowerPriority)
			}
		},
		Validate: validatePriorityClass,
		ValidateUpdate: func(pc, old *schedulingv1.PriorityClass) field.ErrorList {
			allErrs := validatePriorityClass(pc)
			if pc.Value != old.Value {
				allErrs = append(allErrs, field.Forbidden(field.NewPath("value"), "may not be changed in an update."))
			}
			allErrs = append(allErrs, validateImmutable(pc.PreemptionPolicy, old.PreemptionPolicy, field.NewPath("preemptionPolicy"))...)
			return allErrs
		},
		Table: &registry.TypedTable[*schedulingv1.PriorityClass]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnInt("Value", schedulingv1.PriorityClass{}.SwaggerDoc()["value"], 0),
				{Name: "Global-Default", Type: "boolean", Description: schedulingv1.PriorityClass{}.SwaggerDoc()["globalDefault"]},
				columnAge(),
				columnString("PreemptionPolicy", schedulingv1.PriorityClass{}.SwaggerDoc()["preemptionPolicy"], 0),
			},
			Row: func(pc *schedulingv1.PriorityClass) []any {
				var policy string
				if pc.PreemptionPolicy != nil {
					policy = string(*pc.PreemptionPolicy)
				}
				return []any{pc.Name, int64(pc.Value), pc.GlobalDefault, cellAge(&pc.ObjectMeta), policy}
			},
		},
	})
}

func validatePriorityClass(pc *schedulingv1.PriorityClass) field.ErrorList {
	var allErrs field.ErrorList
	if v, ok := systemPriorityClasses()[pc.Name]; ok {
		if pc.Value != v {
			allErrs = append(allErrs, field.Invalid(field.NewPath("value"), pc.Value,
				fmt.Sprintf("value of system priority class %q must be %d", pc.Name, v)))
		}
	} else {
		if strings.HasPrefix(pc.Name, systemPriorityClassPrefix) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("metadata", "name"),
				"priority class names with '"+systemPriorityClassPrefix+"' prefix are reserved for system use only"))
		}
		if pc.Value > highestUserDefinablePriority {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("value"),
				fmt.Sprintf("maximum allowed value of a user defined priority is %v", highestUserDefinablePriority)))
		}
	}
	if pc.PreemptionPolicy != nil {
		switch *pc.PreemptionPolicy {
		case corev1.PreemptLowerPriority, corev1.PreemptNever:
		default:
			allErrs = append(allErrs, field.NotSupported(field.NewPath("preemptionPolicy"), *pc.PreemptionPolicy,
				[]corev1.PreemptionPolicy{corev1.PreemptLowerPriority, corev1.PreemptNever}))
		}
	}
	return allErrs
}

// --- StorageClass ---------------------------------------------------------

// Annotations marking the default StorageClass.
const (
	defaultStorageClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaDefaultStorageClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

func storageClassStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*storagev1.StorageClass, *storagev1.StorageClassList]{
		New:     func() *storagev1.StorageClass { return &storagev1.StorageClass{} },
		NewList: func() *storagev1.StorageClassList { return &storagev1.StorageClassList{} },
		Default: func(sc *storagev1.StorageClass) {
			if sc.ReclaimPolicy == nil {
				sc.ReclaimPolicy = ptr.To(corev1.PersistentVolumeReclaimDelete)
			}
			if sc.VolumeBindingMode == nil {
				sc.VolumeBindingMode = ptr.To(storagev1.VolumeBindingImmediate)
			}
		},
		Validate: validateStorageClass,
		ValidateUpdate: func(sc, old *storagev1.StorageClass) field.ErrorList {
			allErrs := validateStorageClass(sc)
			if !equalStringMaps(sc.Parameters, old.Parameters) {
				allErrs = append(allErrs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
			}
			if sc.Provisioner != old.Provisioner {
				allErrs = append(allErrs, field.Forbidden(field.NewPath("provisioner"), "updates to provisioner are forbidden."))
			}
			if ptr.Deref(sc.ReclaimPolicy, "") != ptr.Deref(old.ReclaimPolicy, "") {
				allErrs = append(allErrs, field.Forbidden(field.NewPath("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
			}
			allErrs = append(allErrs, validateImmutable(sc.VolumeBindingMode, old.VolumeBindingMode, field.NewPath("volumeBindingMode"))...)
			return allErrs
		},
		Table: &registry.TypedTable[*storagev1.StorageClass]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Provisioner", storagev1.StorageClass{}.SwaggerDoc()["provisioner"], 0),
				columnString("ReclaimPolicy", storagev1.StorageClass{}.SwaggerDoc()["reclaimPolicy"], 0),
				columnString("VolumeBindingMode", storagev1.StorageClass{}.SwaggerDoc()["volumeBindingMode"], 0),
				columnString("AllowVolumeExpansion", storagev1.StorageClass{}.SwaggerDoc()["allowVolumeExpansion"], 0),
				columnAge(),
			},
			Row: func(sc *storagev1.StorageClass) []any {
				name := sc.Name
				if sc.Annotations[defaultStorageClassAnnotation] == "true" || sc.Annotations[betaDefaultStorageClassAnnotation] == "true" {
					name += " (default)"
				}
				reclaim := string(corev1.PersistentVolumeReclaimDelete)
				if sc.ReclaimPolicy != nil {
					reclaim = string(*sc.ReclaimPolicy)
				}
				binding := string(storagev1.VolumeBindingImmediate)
				if sc.VolumeBindingMode != nil {
					binding = string(*sc.VolumeBindingMode)
				}
				return []any{name, sc.Provisioner, reclaim, binding, ptr.Deref(sc.AllowVolumeExpansion, false), cellAge(&sc.ObjectMeta)}
			},
		},
	})
}

func validateStorageClass(sc *storagev1.StorageClass) field.ErrorList {
	var allErrs field.ErrorList
	if sc.Provisioner == "" {
		allErrs = append(allErrs, field.Required(field.NewPath("provisioner"), ""))
	} else {
		allErrs = append(allErrs, validateQualifiedName(strings.ToLower(sc.Provisioner), field.NewPath("provisioner"))...)
	}
	var size int
	for k, v := range sc.Parameters {
		size += len(k) + len(v)
		if k == "" {
			allErrs = append(allErrs, field.Invalid(field.NewPath("parameters"), sc.Parameters, "parameter names must be non-empty"))
		}
	}
	if size > 256*1024 {
		allErrs = append(allErrs, field.TooLong(field.NewPath("parameters"), "", 256*1024))
	}
	if sc.ReclaimPolicy != nil {
		switch *sc.ReclaimPolicy {
		case corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain:
		default:
			allErrs = append(allErrs, field.NotSupported(field.NewPath("reclaimPolicy"), *sc.ReclaimPolicy,
				[]corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain}))
		}
	}
	if sc.VolumeBindingMode == nil {
		allErrs = append(allErrs, field.Required(field.NewPath("volumeBindingMode"), ""))
	} else {
		switch *sc.VolumeBindingMode {
		case storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer:
		default:
			allErrs = append(allErrs, field.NotSupported(field.NewPath("volumeBindingMode"), *sc.VolumeBindingMode,
				[]storagev1.VolumeBindingMode{storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer}))
		}
	}
	return allErrs
}

func equalStringMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// --- HorizontalPodAutoscaler ----------------------------------------------

func hpaStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*autoscalingv2.HorizontalPodAutoscaler, *autoscalingv2.HorizontalPodAutoscalerList]{
		New:     func() *autoscalingv2.HorizontalPodAutoscaler { return &autoscalingv2.HorizontalPodAutoscaler{} },
		NewList: func() *autoscalingv2.HorizontalPodAutoscalerList { return &autoscalingv2.HorizontalPodAutoscalerList{} },
		PrepareForCreate: func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Status = autoscalingv2.HorizontalPodAutoscalerStatus{}
		},
		Default: defaultHPA,
		Validate: func(h *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
			return validateHPASpec(&h.Spec, field.NewPath("spec"))
		},
		ValidateStatusUpdate: func(h, _ *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
			var allErrs field.ErrorList
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(h.Status.CurrentReplicas), field.NewPath("status", "currentReplicas"))...)
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(h.Status.DesiredReplicas), field.NewPath("status", "desiredReplicas"))...)
			return allErrs
		},
		Table: &registry.TypedTable[*autoscalingv2.HorizontalPodAutoscaler]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Reference", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["scaleTargetRef"], 0),
				columnString("Targets", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["metrics"], 0),
				columnString("MinPods", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["minReplicas"], 0),
				columnString("MaxPods", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["maxReplicas"], 0),
				columnString("Replicas", autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"], 0),
				columnAge(),
			},
			Row: func(h *autoscalingv2.HorizontalPodAutoscaler) []any {
				minPods := "<unset>"
				if h.Spec.MinReplicas != nil {
					minPods = fmt.Sprint(*h.Spec.MinReplicas)
				}
				ref := h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name
				return []any{h.Name, ref, hpaTargetsCell(h), minPods, int64(h.Spec.MaxReplicas), int64(h.Status.CurrentReplicas), cellAge(&h.ObjectMeta)}
			},
		},
	})
}

// defaultHPA applies autoscaling/v2 SetDefaults_HorizontalPodAutoscaler:
// minReplicas 1, an 80% average CPU utilization target when no metric is
// given, and the default scale-up/down rules when behavior is given.
func defaultHPA(h *autoscalingv2.HorizontalPodAutoscaler) {
	if h.Spec.MinReplicas == nil {
		h.Spec.MinReplicas = ptr.To[int32](1)
	}
	if len(h.Spec.Metrics) == 0 {
		h.Spec.Metrics = []autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{
					Type:               autoscalingv2.UtilizationMetricType,
					AverageUtilization: ptr.To[int32](80),
				},
			},
		}}
	}
	if b := h.Spec.Behavior; b != nil {
		b.ScaleUp = defaultHPAScalingRules(b.ScaleUp, 0, []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		})
		b.ScaleDown = defaultHPAScalingRules(b.ScaleDown, 300, []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		})
	}
}

func defaultHPAScalingRules(r *autoscalingv2.HPAScalingRules, window int32, policies []autoscalingv2.HPAScalingPolicy) *autoscalingv2.HPAScalingRules {
	if r == nil {
		r = &autoscalingv2.HPAScalingRules{}
	}
	if r.StabilizationWindowSeconds == nil {
		r.StabilizationWindowSeconds = ptr.To(window)
	}
	if r.SelectPolicy == nil {
		r.SelectPolicy = ptr.To(autoscalingv2.MaxChangePolicySelect)
	}
	if r.Policies == nil {
		r.Policies = policies
	}
	return r
}

func validateHPASpec(spec *autoscalingv2.HorizontalPodAutoscalerSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	ref := fldPath.Child("scaleTargetRef")
	if spec.ScaleTargetRef.Kind == "" {
		allErrs = append(allErrs, field.Required(ref.Child("kind"), ""))
	}
	if spec.ScaleTargetRef.Name == "" {
		allErrs = append(allErrs, field.Required(ref.Child("name"), ""))
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(spec.ScaleTargetRef.Name) {
			allErrs = append(allErrs, field.Invalid(ref.Child("name"), spec.ScaleTargetRef.Name, msg))
		}
	}
	if spec.MinReplicas != nil && *spec.MinReplicas < 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("minReplicas"), *spec.MinReplicas, "must be greater than or equal to 1"))
	}
	if spec.MaxReplicas < 1 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("maxReplicas"), spec.MaxReplicas, "must be greater than 0"))
	}
	if spec.MinReplicas != nil && spec.MaxReplicas < *spec.MinReplicas {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("maxReplicas"), spec.MaxReplicas, "must be greater than or equal to `minReplicas`"))
	}
	for i, m := range spec.Metrics {
		allErrs = append(allErrs, validateHPAMetric(m, fldPath.Child("metrics").Index(i))...)
	}
	if b := spec.Behavior; b != nil {
		allErrs = append(allErrs, validateHPAScalingRules(b.ScaleUp, fldPath.Child("behavior", "scaleUp"))...)
		allErrs = append(allErrs, validateHPAScalingRules(b.ScaleDown, fldPath.Child("behavior", "scaleDown"))...)
	}
	return allErrs
}

func validateHPAMetric(m autoscalingv2.MetricSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	var target *autoscalingv2.MetricTarget
	targetPath := fldPath
	switch m.Type {
	case autoscalingv2.ResourceMetricSourceType:
		if m.Resource == nil {
			return field.ErrorList{field.Required(fldPath.Child("resource"), "must populate information for the given metric source")}
		}
		if m.Resource.Name == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("resource", "name"), "must specify a resource name"))
		}
		target, targetPath = &m.Resource.Target, fldPath.Child("resource", "target")
	case autoscalingv2.ContainerResourceMetricSourceType:
		if m.ContainerResource == nil {
			return field.ErrorList{field.Required(fldPath.Child("containerResource"), "must populate information for the given metric source")}
		}
		if m.ContainerResource.Container == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("containerResource", "container"), "must specify a container"))
		}
		target, targetPath = &m.ContainerResource.Target, fldPath.Child("containerResource", "target")
	case autoscalingv2.PodsMetricSourceType:
		if m.Pods == nil {
			return field.ErrorList{field.Required(fldPath.Child("pods"), "must populate information for the given metric source")}
		}
		target, targetPath = &m.Pods.Target, fldPath.Child("pods", "target")
	case autoscalingv2.ObjectMetricSourceType:
		if m.Object == nil {
			return field.ErrorList{field.Required(fldPath.Child("object"), "must populate information for the given metric source")}
		}
		target, targetPath = &m.Object.Target, fldPath.Child("object", "target")
	case autoscalingv2.ExternalMetricSourceType:
		if m.External == nil {
			return field.ErrorList{field.Required(fldPath.Child("external"), "must populate information for the given metric source")}
		}
		target, targetPath = &m.External.Target, fldPath.Child("external", "target")
	case "":
		return field.ErrorList{field.Required(fldPath.Child("type"), "must specify a metric source type")}
	default:
		return field.ErrorList{field.NotSupported(fldPath.Child("type"), m.Type, []autoscalingv2.MetricSourceType{
			autoscalingv2.ContainerResourceMetricSourceType, autoscalingv2.ExternalMetricSourceType, autoscalingv2.ObjectMetricSourceType,
			autoscalingv2.PodsMetricSourceType, autoscalingv2.ResourceMetricSourceType,
		})}
	}
	switch target.Type {
	case autoscalingv2.UtilizationMetricType:
		if target.AverageUtilization == nil {
			allErrs = append(allErrs, field.Required(targetPath.Child("averageUtilization"), "must set averageUtilization for Utilization target type"))
		} else if *target.AverageUtilization <= 0 {
			allErrs = append(allErrs, field.Invalid(targetPath.Child("averageUtilization"), *target.AverageUtilization, "must be greater than 0"))
		}
	case autoscalingv2.AverageValueMetricType:
		if target.AverageValue == nil {
			allErrs = append(allErrs, field.Required(targetPath.Child("averageValue"), "must set averageValue for AverageValue target type"))
		} else if target.AverageValue.Sign() != 1 {
			allErrs = append(allErrs, field.Invalid(targetPath.Child("averageValue"), target.AverageValue.String(), "must be positive"))
		}
	case autoscalingv2.ValueMetricType:
		if target.Value == nil {
			allErrs = append(allErrs, field.Required(targetPath.Child("value"), "must set value for Value target type"))
		} else if target.Value.Sign() != 1 {
			allErrs = append(allErrs, field.Invalid(targetPath.Child("value"), target.Value.String(), "must be positive"))
		}
	case "":
		allErrs = append(allErrs, field.Required(targetPath.Child("type"), "must specify a metric target type"))
	default:
		allErrs = append(allErrs, field.NotSupported(targetPath.Child("type"), target.Type, []autoscalingv2.MetricTargetType{
			autoscalingv2.AverageValueMetricType, autoscalingv2.UtilizationMetricType, autoscalingv2.ValueMetricType,
		}))
	}
	return allErrs
}

func validateHPAScalingRules(r *autoscalingv2.HPAScalingRules, fldPath *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var allErrs field.ErrorList
	if w := r.StabilizationWindowSeconds; w != nil && (*w < 0 || *w > 3600) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("stabilizationWindowSeconds"), *w, "must be less than or equal to 3600"))
	}
	if sp := r.SelectPolicy; sp != nil {
		switch *sp {
		case autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect, autoscalingv2.DisabledPolicySelect:
		default:
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("selectPolicy"), *sp, []autoscalingv2.ScalingPolicySelect{
				autoscalingv2.DisabledPolicySelect, autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect,
			}))
		}
	}
	for i, p := range r.Policies {
		pp := fldPath.Child("policies").Index(i)
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy, autoscalingv2.PercentScalingPolicy:
		default:
			allErrs = append(allErrs, field.NotSupported(pp.Child("type"), p.Type, []autoscalingv2.HPAScalingPolicyType{
				autoscalingv2.PercentScalingPolicy, autoscalingv2.PodsScalingPolicy,
			}))
		}
		if p.Value <= 0 {
			allErrs = append(allErrs, field.Invalid(pp.Child("value"), p.Value, "must be greater than zero"))
		}
		if p.PeriodSeconds <= 0 || p.PeriodSeconds > 1800 {
			allErrs = append(allErrs, field.Invalid(pp.Child("periodSeconds"), p.PeriodSeconds, "must be greater than zero and less than or equal to 1800"))
		}
	}
	return allErrs
}

// hpaTargetsCell renders the TARGETS column: per metric "current/target"
// (resource metrics prefixed "cpu: "), the current value taken from the
// status metric at the same index, at most two then "+ N more...".
func hpaTargetsCell(h *autoscalingv2.HorizontalPodAutoscaler) string {
	specs, statuses := h.Spec.Metrics, h.Status.CurrentMetrics
	if len(specs) == 0 {
		return "<none>"
	}
	const shown = 2
	var out []string
	for i, m := range specs {
		if i == shown {
			break
		}
		var st *autoscalingv2.MetricStatus
		if i < len(statuses) {
			st = &statuses[i]
		}
		out = append(out, hpaMetricCell(m, st))
	}
	s := strings.Join(out, ", ")
	if len(specs) > shown {
		s += fmt.Sprintf(" + %d more...", len(specs)-shown)
	}
	return s
}

// hpaMetricCell renders one metric; st is the status metric at the same
// index, or nil.
func hpaMetricCell(m autoscalingv2.MetricSpec, st *autoscalingv2.MetricStatus) string {
	unknown := "<unknown>"
	switch m.Type {
	case autoscalingv2.ExternalMetricSourceType, autoscalingv2.ObjectMetricSourceType:
		var target autoscalingv2.MetricTarget
		var cur *autoscalingv2.MetricValueStatus
		if m.Type == autoscalingv2.ExternalMetricSourceType && m.External != nil {
			target = m.External.Target
			if st != nil && st.External != nil {
				cur = &st.External.Current
			}
		} else if m.Object != nil {
			target = m.Object.Target
			if st != nil && st.Object != nil {
				cur = &st.Object.Current
			}
		}
		if target.AverageValue != nil {
			now := unknown
			if cur != nil && cur.AverageValue != nil {
				now = cur.AverageValue.String()
			}
			return now + "/" + target.AverageValue.String() + " (avg)"
		}
		now := unknown
		if cur != nil && cur.Value != nil {
			now = cur.Value.String()
		}
		return now + "/" + quantityString(target.Value)
	case autoscalingv2.PodsMetricSourceType:
		if m.Pods == nil {
			return "<unknown type>"
		}
		now := unknown
		if st != nil && st.Pods != nil && st.Pods.Current.AverageValue != nil {
			now = st.Pods.Current.AverageValue.String()
		}
		return now + "/" + quantityString(m.Pods.Target.AverageValue)
	case autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType:
		var name string
		var target autoscalingv2.MetricTarget
		var cur *autoscalingv2.MetricValueStatus
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil {
			name, target = string(m.Resource.Name), m.Resource.Target
			if st != nil && st.Resource != nil {
				cur = &st.Resource.Current
			}
		} else if m.ContainerResource != nil {
			name, target = string(m.ContainerResource.Name), m.ContainerResource.Target
			if st != nil && st.ContainerResource != nil {
				cur = &st.ContainerResource.Current
			}
		}
		if target.AverageValue != nil {
			now := unknown
			if cur != nil && cur.AverageValue != nil {
				now = cur.AverageValue.String()
			}
			return name + ": " + now + "/" + target.AverageValue.String()
		}
		now, want := unknown, "<auto>"
		if cur != nil && cur.AverageUtilization != nil {
			now = fmt.Sprintf("%d%%", *cur.AverageUtilization)
		}
		if target.AverageUtilization != nil {
			want = fmt.Sprintf("%d%%", *target.AverageUtilization)
		}
		return name + ": " + now + "/" + want
	}
	return "<unknown type>"
}

// quantityString renders an optional quantity ("<unset>" for nil).
func quantityString(q *resource.Quantity) string {
	if q == nil {
		return "<unset>"
	}
	return q.String()
}

// --- PodDisruptionBudget --------------------------------------------------

func pdbStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*policyv1.PodDisruptionBudget, *policyv1.PodDisruptionBudgetList]{
		New:     func() *policyv1.PodDisruptionBudget { return &policyv1.PodDisruptionBudget{} },
		NewList: func() *policyv1.PodDisruptionBudgetList { return &policyv1.PodDisruptionBudgetList{} },
		PrepareForCreate: func(p *policyv1.PodDisruptionBudget) {
			p.Status = policyv1.PodDisruptionBudgetStatus{}
		},
		Validate: func(p *policyv1.PodDisruptionBudget) field.ErrorList {
			return validatePDBSpec(&p.Spec, field.NewPath("spec"))
		},
		ValidateStatusUpdate: func(p, _ *policyv1.PodDisruptionBudget) field.ErrorList {
			st, fldPath := &p.Status, field.NewPath("status")
			var allErrs field.ErrorList
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(st.DisruptionsAllowed), fldPath.Child("disruptionsAllowed"))...)
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(st.CurrentHealthy), fldPath.Child("currentHealthy"))...)
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(st.DesiredHealthy), fldPath.Child("desiredHealthy"))...)
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(st.ExpectedPods), fldPath.Child("expectedPods"))...)
			return allErrs
		},
		Table: &registry.TypedTable[*policyv1.PodDisruptionBudget]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Min Available", "The minimum number of pods that must be available.", 0),
				columnString("Max Unavailable", "The maximum number of pods that may be unavailable.", 0),
				columnInt("Allowed Disruptions", "Calculated number of pods that may be disrupted at this time.", 0),
				columnAge(),
			},
			Row: func(p *policyv1.PodDisruptionBudget) []any {
				minAvailable, maxUnavailable := "N/A", "N/A"
				if p.Spec.MinAvailable != nil {
					minAvailable = p.Spec.MinAvailable.String()
				}
				if p.Spec.MaxUnavailable != nil {
					maxUnavailable = p.Spec.MaxUnavailable.String()
				}
				return []any{p.Name, minAvailable, maxUnavailable, int64(p.Status.DisruptionsAllowed), cellAge(&p.ObjectMeta)}
			},
		},
	})
}

func validatePDBSpec(spec *policyv1.PodDisruptionBudgetSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if spec.MinAvailable != nil && spec.MaxUnavailable != nil {
		allErrs = append(allErrs, field.Invalid(fldPath, spec, "minAvailable and maxUnavailable cannot be both set"))
	}
	if spec.MinAvailable != nil {
		allErrs = append(allErrs, validatePositiveIntOrPercent(*spec.MinAvailable, fldPath.Child("minAvailable"))...)
		allErrs = append(allErrs, validateNotMoreThan100Percent(*spec.MinAvailable, fldPath.Child("minAvailable"))...)
	}
	if spec.MaxUnavailable != nil {
		allErrs = append(allErrs, validatePositiveIntOrPercent(*spec.MaxUnavailable, fldPath.Child("maxUnavailable"))...)
		allErrs = append(allErrs, validateNotMoreThan100Percent(*spec.MaxUnavailable, fldPath.Child("maxUnavailable"))...)
	}
	if spec.Selector != nil {
		allErrs = append(allErrs, validateLabelSelector(spec.Selector, fldPath.Child("selector"))...)
	}
	if p := spec.UnhealthyPodEvictionPolicy; p != nil {
		switch *p {
		case policyv1.IfHealthyBudget, policyv1.AlwaysAllow:
		default:
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("unhealthyPodEvictionPolicy"), *p,
				[]policyv1.UnhealthyPodEvictionPolicyType{policyv1.AlwaysAllow, policyv1.IfHealthyBudget}))
		}
	}
	return allErrs
}
