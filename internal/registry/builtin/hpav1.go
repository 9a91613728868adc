package builtin

import (
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/registry"
)

// hpaV1Resource is autoscaling/v1 horizontalpodautoscalers: a view of the
// autoscaling/v2 ones (the stored version), as upstream serves both.
// kubectl before 1.31 creates HPAs ("kubectl autoscale") through v1.
func hpaV1Resource() *registry.Resource {
	return &registry.Resource{
		GVR: autoscalingv1.SchemeGroupVersion.WithResource("horizontalpodautoscalers"), Kind: "HorizontalPodAutoscaler",
		ListKind: "HorizontalPodAutoscalerList", Singular: "horizontalpodautoscaler", ShortNames: []string{"hpa"},
		Categories: []string{"all"}, Namespaced: true, Status: true,
		Strategy: hpaV1Strategy(),
		StoredAs: &registry.StoredAs{
			GVR:        autoscalingv2.SchemeGroupVersion.WithResource("horizontalpodautoscalers"),
			ToStored:   hpaToStored,
			FromStored: hpaFromStored,
		},
	}
}

// hpaToStored converts a v1 HPA to v2 and applies v2's defaults (upstream
// applies them when it reads the stored object back).
func hpaToStored(obj runtime.Object) (runtime.Object, error) {
	h, ok := obj.(*autoscalingv1.HorizontalPodAutoscaler)
	if !ok {
		return nil, fmt.Errorf("converting %T: not an autoscaling/v1 HorizontalPodAutoscaler", obj)
	}
	out, err := hpaV1ToV2(h)
	if err != nil {
		return nil, err
	}
	defaultHPA(out)
	return out, nil
}

func hpaFromStored(obj runtime.Object) (runtime.Object, error) {
	h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return nil, fmt.Errorf("converting %T: not an autoscaling/v2 HorizontalPodAutoscaler", obj)
	}
	return hpaV2ToV1(h)
}

// keepAnnotations sets the keys of h's annotations to old's (absent when
// old is nil or lacks them).
func keepAnnotations(h, old *autoscalingv1.HorizontalPodAutoscaler, keys ...string) {
	for _, k := range keys {
		v, ok := "", false
		if old != nil {
			v, ok = old.Annotations[k]
		}
		switch {
		case ok:
			if h.Annotations == nil {
				h.Annotations = map[string]string{}
			}
			h.Annotations[k] = v
		default:
			delete(h.Annotations, k)
		}
	}
}

// hpaV1Strategy validates a v1 HPA as its v2 form, the one stored, so both
// versions accept the same objects; errors name the v2 fields, as
// upstream's (which validates its internal form) do.
func hpaV1Strategy() registry.Strategy {
	return registry.Define(registry.Typed[*autoscalingv1.HorizontalPodAutoscaler, *autoscalingv1.HorizontalPodAutoscalerList]{
		New:     func() *autoscalingv1.HorizontalPodAutoscaler { return &autoscalingv1.HorizontalPodAutoscaler{} },
		NewList: func() *autoscalingv1.HorizontalPodAutoscalerList { return &autoscalingv1.HorizontalPodAutoscalerList{} },
		PrepareForCreate: func(h *autoscalingv1.HorizontalPodAutoscaler) {
			h.Status = autoscalingv1.HorizontalPodAutoscalerStatus{}
			keepAnnotations(h, nil, hpaCurrentMetricsAnnotation, hpaConditionsAnnotation)
		},
		// The annotations carry v2 fields: a main update may not change
		// the status ones, a status update not the spec ones.
		PrepareForUpdate: func(h, old *autoscalingv1.HorizontalPodAutoscaler) {
			keepAnnotations(h, old, hpaCurrentMetricsAnnotation, hpaConditionsAnnotation)
		},
		PrepareForStatusUpdate: func(h, old *autoscalingv1.HorizontalPodAutoscaler) {
			keepAnnotations(h, old, hpaMetricsAnnotation, hpaBehaviorAnnotation)
		},
		Default: func(h *autoscalingv1.HorizontalPodAutoscaler) {
			if h.Spec.MinReplicas == nil {
				h.Spec.MinReplicas = ptr.To[int32](1)
			}
		},
		Validate: func(h *autoscalingv1.HorizontalPodAutoscaler) field.ErrorList {
			stored, err := hpaToStored(h)
			if err != nil {
				return field.ErrorList{field.Invalid(field.NewPath("metadata", "annotations"), "", err.Error())}
			}
			return validateHPASpec(&stored.(*autoscalingv2.HorizontalPodAutoscaler).Spec, field.NewPath("spec"))
		},
		ValidateStatusUpdate: func(h, _ *autoscalingv1.HorizontalPodAutoscaler) field.ErrorList {
			var allErrs field.ErrorList
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(h.Status.CurrentReplicas), field.NewPath("status", "currentReplicas"))...)
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(h.Status.DesiredReplicas), field.NewPath("status", "desiredReplicas"))...)
			return allErrs
		},
		Table: &registry.TypedTable[*autoscalingv1.HorizontalPodAutoscaler]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Reference", autoscalingv1.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["scaleTargetRef"], 0),
				columnString("Targets", autoscalingv1.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["targetCPUUtilizationPercentage"], 0),
				columnString("MinPods", autoscalingv1.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["minReplicas"], 0),
				columnString("MaxPods", autoscalingv1.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["maxReplicas"], 0),
				columnString("Replicas", autoscalingv1.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"], 0),
				columnAge(),
			},
			Row: func(h *autoscalingv1.HorizontalPodAutoscaler) []any {
				minPods := "<unset>"
				if h.Spec.MinReplicas != nil {
					minPods = fmt.Sprint(*h.Spec.MinReplicas)
				}
				targets := "<unknown>"
				if v2, err := hpaV1ToV2(h); err == nil {
					targets = hpaTargetsCell(v2)
				}
				ref := h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name
				return []any{h.Name, ref, targets, minPods, int64(h.Spec.MaxReplicas), int64(h.Status.CurrentReplicas), cellAge(&h.ObjectMeta)}
			},
		},
	})
}

// AddConversions registers in scheme the conversions between versions of
// one resource skiff serves (autoscaling/v1 and v2
// HorizontalPodAutoscalers), which a scheme built from client-go's lacks:
// the field manager converts managed fields recorded through one version
// when an object is written through the other.
func AddConversions(scheme *runtime.Scheme) error {
	if err := scheme.AddConversionFunc((*autoscalingv1.HorizontalPodAutoscaler)(nil), (*autoscalingv2.HorizontalPodAutoscaler)(nil),
		func(a, b any, _ conversion.Scope) error {
			out, err := hpaV1ToV2(a.(*autoscalingv1.HorizontalPodAutoscaler))
			if err != nil {
				return err
			}
			*b.(*autoscalingv2.HorizontalPodAutoscaler) = *out
			return nil
		}); err != nil {
		return fmt.Errorf("registering HorizontalPodAutoscaler conversions: %w", err)
	}
	if err := scheme.AddConversionFunc((*autoscalingv2.HorizontalPodAutoscaler)(nil), (*autoscalingv1.HorizontalPodAutoscaler)(nil),
		func(a, b any, _ conversion.Scope) error {
			out, err := hpaV2ToV1(a.(*autoscalingv2.HorizontalPodAutoscaler))
			if err != nil {
				return err
			}
			*b.(*autoscalingv1.HorizontalPodAutoscaler) = *out
			return nil
		}); err != nil {
		return fmt.Errorf("registering HorizontalPodAutoscaler conversions: %w", err)
	}
	return nil
}
