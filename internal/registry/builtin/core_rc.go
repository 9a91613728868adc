package builtin

import (
	"maps"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/registry"
)

func replicationControllerResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("replicationcontrollers"),
		Kind:       "ReplicationController",
		ListKind:   "ReplicationControllerList",
		Singular:   "replicationcontroller",
		ShortNames: []string{"rc"},
		Categories: []string{"all"},
		Namespaced: true,
		Status:     true,
		Scale: &registry.ScaleAccessor{
			Get: func(obj runtime.Object) (int32, int32, string) {
				rc := obj.(*corev1.ReplicationController)
				return replicasOrOne(rc.Spec.Replicas), rc.Status.Replicas, labels.SelectorFromSet(rc.Spec.Selector).String()
			},
			SetReplicas: func(obj runtime.Object, replicas int32) {
				obj.(*corev1.ReplicationController).Spec.Replicas = ptr.To(replicas)
			},
		},
		Strategy: registry.Define(registry.Typed[*corev1.ReplicationController, *corev1.ReplicationControllerList]{
			New:     func() *corev1.ReplicationController { return &corev1.ReplicationController{} },
			NewList: func() *corev1.ReplicationControllerList { return &corev1.ReplicationControllerList{} },
			PrepareForCreate: func(rc *corev1.ReplicationController) {
				rc.Status = corev1.ReplicationControllerStatus{}
			},
			Default:              defaultReplicationController,
			Validate:             validateReplicationController,
			ValidateStatusUpdate: validateReplicationControllerStatus,
			Fields: map[string]func(*corev1.ReplicationController) string{
				"status.replicas": func(rc *corev1.ReplicationController) string { return strconv.Itoa(int(rc.Status.Replicas)) },
			},
			Table: &registry.TypedTable[*corev1.ReplicationController]{
				Columns: append([]metav1.TableColumnDefinition{
					columnName(),
					columnInt("Desired", corev1.ReplicationControllerSpec{}.SwaggerDoc()["replicas"], 0),
					columnInt("Current", corev1.ReplicationControllerStatus{}.SwaggerDoc()["replicas"], 0),
					columnInt("Ready", corev1.ReplicationControllerStatus{}.SwaggerDoc()["readyReplicas"], 0),
					columnAge(),
				}, columnsTemplate(corev1.ReplicationControllerSpec{}.SwaggerDoc()["selector"])...),
				Row: func(rc *corev1.ReplicationController) []any {
					names, images := "", ""
					if rc.Spec.Template != nil {
						names, images = cellsTemplate(&rc.Spec.Template.Spec)
					}
					return []any{rc.Name, int64(replicasOrOne(rc.Spec.Replicas)), int64(rc.Status.Replicas),
						int64(rc.Status.ReadyReplicas), cellAge(&rc.ObjectMeta), names, images, formatLabelMap(rc.Spec.Selector)}
				},
			},
		}),
	}
}

// defaultReplicationController: an empty selector and empty labels are
// taken from the template's labels; replicas default to 1.
func defaultReplicationController(rc *corev1.ReplicationController) {
	if t := rc.Spec.Template; t != nil && len(t.Labels) > 0 {
		if len(rc.Spec.Selector) == 0 {
			rc.Spec.Selector = maps.Clone(t.Labels)
		}
		if len(rc.Labels) == 0 {
			rc.Labels = maps.Clone(t.Labels)
		}
	}
	if rc.Spec.Replicas == nil {
		rc.Spec.Replicas = ptr.To(int32(1))
	}
	if rc.Spec.Template != nil {
		defaultPodSpec(&rc.Spec.Template.Spec)
	}
}

func validateReplicationController(rc *corev1.ReplicationController) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if rc.Spec.Replicas != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*rc.Spec.Replicas), spec.Child("replicas"))...)
	}
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(rc.Spec.MinReadySeconds), spec.Child("minReadySeconds"))...)
	if len(rc.Spec.Selector) == 0 {
		errs = append(errs, field.Required(spec.Child("selector"), ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabels(rc.Spec.Selector, spec.Child("selector"))...)
	}
	tp := spec.Child("template")
	if rc.Spec.Template == nil {
		return append(errs, field.Required(tp, ""))
	}
	t := rc.Spec.Template
	if len(rc.Spec.Selector) > 0 && !labels.SelectorFromSet(rc.Spec.Selector).Matches(labels.Set(t.Labels)) {
		errs = append(errs, field.Invalid(tp.Child("metadata", "labels"), t.Labels, "`selector` does not match template `labels`"))
	}
	errs = append(errs, validatePodTemplateSpec(t, tp)...)
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(tp.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Invalid(tp.Child("spec", "activeDeadlineSeconds"), t.Spec.ActiveDeadlineSeconds, "must not be specified"))
	}
	return errs
}

func validateReplicationControllerStatus(rc, _ *corev1.ReplicationController) field.ErrorList {
	var errs field.ErrorList
	st := field.NewPath("status")
	s := rc.Status
	errs = append(errs, validateNonNegativeInt32(s.Replicas, st.Child("replicas"))...)
	errs = append(errs, validateNonNegativeInt32(s.FullyLabeledReplicas, st.Child("fullyLabeledReplicas"))...)
	errs = append(errs, validateNonNegativeInt32(s.ReadyReplicas, st.Child("readyReplicas"))...)
	errs = append(errs, validateNonNegativeInt32(s.AvailableReplicas, st.Child("availableReplicas"))...)
	errs = append(errs, apivalidation.ValidateNonnegativeField(s.ObservedGeneration, st.Child("observedGeneration"))...)
	if s.FullyLabeledReplicas > s.Replicas {
		errs = append(errs, field.Invalid(st.Child("fullyLabeledReplicas"), s.FullyLabeledReplicas, "cannot be greater than status.replicas"))
	}
	if s.ReadyReplicas > s.Replicas {
		errs = append(errs, field.Invalid(st.Child("readyReplicas"), s.ReadyReplicas, "cannot be greater than status.replicas"))
	}
	if s.AvailableReplicas > s.Replicas {
		errs = append(errs, field.Invalid(st.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than status.replicas"))
	}
	if s.AvailableReplicas > s.ReadyReplicas {
		errs = append(errs, field.Invalid(st.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return errs
}
