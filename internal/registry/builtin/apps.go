package builtin

import (
	"fmt"
	"reflect"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/registry"
)

// appsResources returns apps/v1: deployments, replicasets, statefulsets,
// daemonsets and controllerrevisions.
func appsResources() []*registry.Resource {
	gv := appsv1.SchemeGroupVersion
	return []*registry.Resource{
		{
			GVR: gv.WithResource("deployments"), Kind: "Deployment", ListKind: "DeploymentList",
			Singular: "deployment", ShortNames: []string{"deploy"}, Categories: []string{"all"},
			Namespaced: true, Status: true,
			Scale: &registry.ScaleAccessor{
				Get: func(obj runtime.Object) (int32, int32, string) {
					d := obj.(*appsv1.Deployment)
					return replicasOrOne(d.Spec.Replicas), d.Status.Replicas, scaleSelector(d.Spec.Selector)
				},
				SetReplicas: func(obj runtime.Object, n int32) { obj.(*appsv1.Deployment).Spec.Replicas = ptr.To(n) },
			},
			Strategy: deploymentStrategy(),
		},
		{
			GVR: gv.WithResource("replicasets"), Kind: "ReplicaSet", ListKind: "ReplicaSetList",
			Singular: "replicaset", ShortNames: []string{"rs"}, Categories: []string{"all"},
			Namespaced: true, Status: true,
			Scale: &registry.ScaleAccessor{
				Get: func(obj runtime.Object) (int32, int32, string) {
					rs := obj.(*appsv1.ReplicaSet)
					return replicasOrOne(rs.Spec.Replicas), rs.Status.Replicas, scaleSelector(rs.Spec.Selector)
				},
				SetReplicas: func(obj runtime.Object, n int32) { obj.(*appsv1.ReplicaSet).Spec.Replicas = ptr.To(n) },
			},
			Strategy: replicaSetStrategy(),
		},
		{
			GVR: gv.WithResource("statefulsets"), Kind: "StatefulSet", ListKind: "StatefulSetList",
			Singular: "statefulset", ShortNames: []string{"sts"}, Categories: []string{"all"},
			Namespaced: true, Status: true,
			Scale: &registry.ScaleAccessor{
				Get: func(obj runtime.Object) (int32, int32, string) {
					s := obj.(*appsv1.StatefulSet)
					return replicasOrOne(s.Spec.Replicas), s.Status.Replicas, scaleSelector(s.Spec.Selector)
				},
				SetReplicas: func(obj runtime.Object, n int32) { obj.(*appsv1.StatefulSet).Spec.Replicas = ptr.To(n) },
			},
			Strategy: statefulSetStrategy(),
		},
		{
			GVR: gv.WithResource("daemonsets"), Kind: "DaemonSet", ListKind: "DaemonSetList",
			Singular: "daemonset", ShortNames: []string{"ds"}, Categories: []string{"all"},
			Namespaced: true, Status: true,
			Strategy: daemonSetStrategy(),
		},
		{
			GVR: gv.WithResource("controllerrevisions"), Kind: "ControllerRevision", ListKind: "ControllerRevisionList",
			Singular: "controllerrevision", Namespaced: true,
			Strategy: controllerRevisionStrategy(),
		},
	}
}

// --- Deployment -----------------------------------------------------------

func deploymentStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*appsv1.Deployment, *appsv1.DeploymentList]{
		// As upstream: a status write keeps the labels.
		PrepareForStatusUpdate: func(o, old *appsv1.Deployment) { o.Labels = old.Labels },
		New:                    func() *appsv1.Deployment { return &appsv1.Deployment{} },
		NewList:                func() *appsv1.DeploymentList { return &appsv1.DeploymentList{} },
		PrepareForCreate: func(d *appsv1.Deployment) {
			d.Status = appsv1.DeploymentStatus{}
		},
		Default: defaultDeployment,
		Validate: func(d *appsv1.Deployment) field.ErrorList {
			return validateDeploymentSpec(&d.Spec, field.NewPath("spec"))
		},
		ValidateUpdate: func(d, old *appsv1.Deployment) field.ErrorList {
			allErrs := validateDeploymentSpec(&d.Spec, field.NewPath("spec"))
			return append(allErrs, validateImmutable(d.Spec.Selector, old.Spec.Selector, field.NewPath("spec", "selector"))...)
		},
		ValidateStatusUpdate: func(d, _ *appsv1.Deployment) field.ErrorList {
			return validateDeploymentStatus(&d.Status, field.NewPath("status"))
		},
		Table: &registry.TypedTable[*appsv1.Deployment]{
			Columns: append([]metav1.TableColumnDefinition{
				columnName(),
				columnString("Ready", "Number of the pod with ready state", 0),
				columnString("Up-to-date", appsv1.DeploymentStatus{}.SwaggerDoc()["updatedReplicas"], 0),
				columnString("Available", appsv1.DeploymentStatus{}.SwaggerDoc()["availableReplicas"], 0),
				columnAge(),
			}, columnsTemplate(appsv1.DeploymentSpec{}.SwaggerDoc()["selector"])...),
			Row: func(d *appsv1.Deployment) []any {
				names, images := cellsTemplate(&d.Spec.Template.Spec)
				return []any{
					d.Name,
					fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, replicasOrOne(d.Spec.Replicas)),
					int64(d.Status.UpdatedReplicas),
					int64(d.Status.AvailableReplicas),
					cellAge(&d.ObjectMeta),
					names, images, deploymentSelectorCell(d.Spec.Selector),
				}
			},
		},
	})
}

// defaultDeployment applies apps/v1 SetDefaults_Deployment.
func defaultDeployment(d *appsv1.Deployment) {
	if d.Spec.Replicas == nil {
		d.Spec.Replicas = ptr.To[int32](1)
	}
	st := &d.Spec.Strategy
	if st.Type == "" {
		st.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if st.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if st.RollingUpdate == nil {
			st.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		if st.RollingUpdate.MaxUnavailable == nil {
			v := intstr.FromString("25%")
			st.RollingUpdate.MaxUnavailable = &v
		}
		if st.RollingUpdate.MaxSurge == nil {
			v := intstr.FromString("25%")
			st.RollingUpdate.MaxSurge = &v
		}
	}
	if d.Spec.RevisionHistoryLimit == nil {
		d.Spec.RevisionHistoryLimit = ptr.To[int32](10)
	}
	if d.Spec.ProgressDeadlineSeconds == nil {
		d.Spec.ProgressDeadlineSeconds = ptr.To[int32](600)
	}
	defaultPodSpec(&d.Spec.Template.Spec)
}

func validateDeploymentSpec(spec *appsv1.DeploymentSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateNonNegative32(spec.Replicas, fldPath.Child("replicas"))...)
	allErrs = append(allErrs, validateWorkloadSelector(spec.Selector, "deployment", fldPath.Child("selector"))...)
	allErrs = append(allErrs, validateWorkloadTemplate(&spec.Template, spec.Selector, "ReplicaSet", fldPath.Child("template"))...)
	allErrs = append(allErrs, validateDeploymentStrategy(&spec.Strategy, fldPath.Child("strategy"))...)
	allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	allErrs = append(allErrs, validateNonNegative32(spec.RevisionHistoryLimit, fldPath.Child("revisionHistoryLimit"))...)
	if spec.ProgressDeadlineSeconds != nil {
		allErrs = append(allErrs, validateNonNegative32(spec.ProgressDeadlineSeconds, fldPath.Child("progressDeadlineSeconds"))...)
		if *spec.ProgressDeadlineSeconds <= spec.MinReadySeconds {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("progressDeadlineSeconds"), *spec.ProgressDeadlineSeconds, "must be greater than minReadySeconds"))
		}
	}
	return allErrs
}

func validateDeploymentStrategy(st *appsv1.DeploymentStrategy, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch st.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if st.RollingUpdate != nil {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if st.RollingUpdate == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("rollingUpdate"), "this should be defaulted and never be nil"))
			break
		}
		allErrs = append(allErrs, validateRollingUpdate(st.RollingUpdate.MaxUnavailable, st.RollingUpdate.MaxSurge, fldPath.Child("rollingUpdate"))...)
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("type"), st.Type, []appsv1.DeploymentStrategyType{appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType}))
	}
	return allErrs
}

// validateRollingUpdate checks maxUnavailable and maxSurge of a Deployment
// or DaemonSet rolling update.
func validateRollingUpdate(maxUnavailable, maxSurge *intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if maxUnavailable != nil {
		allErrs = append(allErrs, validatePositiveIntOrPercent(*maxUnavailable, fldPath.Child("maxUnavailable"))...)
		allErrs = append(allErrs, validateNotMoreThan100Percent(*maxUnavailable, fldPath.Child("maxUnavailable"))...)
	}
	if maxSurge != nil {
		allErrs = append(allErrs, validatePositiveIntOrPercent(*maxSurge, fldPath.Child("maxSurge"))...)
	}
	if isZeroIntOrPercent(maxUnavailable) && (maxSurge == nil || isZeroIntOrPercent(maxSurge)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("maxUnavailable"), *maxUnavailable, "may not be 0 when `maxSurge` is 0"))
	}
	return allErrs
}

func validateDeploymentStatus(st *appsv1.DeploymentStatus, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(st.ObservedGeneration, fldPath.Child("observedGeneration"))...)
	for _, f := range []struct {
		name string
		v    int32
	}{
		{"replicas", st.Replicas}, {"updatedReplicas", st.UpdatedReplicas}, {"readyReplicas", st.ReadyReplicas},
		{"availableReplicas", st.AvailableReplicas}, {"unavailableReplicas", st.UnavailableReplicas},
	} {
		allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(f.v), fldPath.Child(f.name))...)
	}
	allErrs = append(allErrs, validateNonNegative32(st.CollisionCount, fldPath.Child("collisionCount"))...)
	if st.UpdatedReplicas > st.Replicas {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("updatedReplicas"), st.UpdatedReplicas, "cannot be greater than status.replicas"))
	}
	if st.ReadyReplicas > st.Replicas {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("readyReplicas"), st.ReadyReplicas, "cannot be greater than status.replicas"))
	}
	if st.AvailableReplicas > st.Replicas {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("availableReplicas"), st.AvailableReplicas, "cannot be greater than status.replicas"))
	}
	if st.AvailableReplicas > st.ReadyReplicas {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("availableReplicas"), st.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return allErrs
}

// --- ReplicaSet -----------------------------------------------------------

func replicaSetStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*appsv1.ReplicaSet, *appsv1.ReplicaSetList]{
		// As upstream: a status write keeps the labels.
		PrepareForStatusUpdate: func(o, old *appsv1.ReplicaSet) { o.Labels = old.Labels },
		New:                    func() *appsv1.ReplicaSet { return &appsv1.ReplicaSet{} },
		NewList:                func() *appsv1.ReplicaSetList { return &appsv1.ReplicaSetList{} },
		PrepareForCreate: func(rs *appsv1.ReplicaSet) {
			rs.Status = appsv1.ReplicaSetStatus{}
		},
		Default: func(rs *appsv1.ReplicaSet) {
			if rs.Spec.Replicas == nil {
				rs.Spec.Replicas = ptr.To[int32](1)
			}
			defaultPodSpec(&rs.Spec.Template.Spec)
		},
		Validate: func(rs *appsv1.ReplicaSet) field.ErrorList {
			return validateReplicaSetSpec(&rs.Spec, field.NewPath("spec"))
		},
		ValidateUpdate: func(rs, old *appsv1.ReplicaSet) field.ErrorList {
			allErrs := validateReplicaSetSpec(&rs.Spec, field.NewPath("spec"))
			return append(allErrs, validateImmutable(rs.Spec.Selector, old.Spec.Selector, field.NewPath("spec", "selector"))...)
		},
		ValidateStatusUpdate: func(rs, _ *appsv1.ReplicaSet) field.ErrorList {
			st, fldPath := &rs.Status, field.NewPath("status")
			var allErrs field.ErrorList
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(st.ObservedGeneration, fldPath.Child("observedGeneration"))...)
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(st.Replicas), fldPath.Child("replicas"))...)
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(st.FullyLabeledReplicas), fldPath.Child("fullyLabeledReplicas"))...)
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(st.ReadyReplicas), fldPath.Child("readyReplicas"))...)
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(st.AvailableReplicas), fldPath.Child("availableReplicas"))...)
			if st.ReadyReplicas > st.Replicas {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("readyReplicas"), st.ReadyReplicas, "cannot be greater than status.replicas"))
			}
			if st.AvailableReplicas > st.Replicas {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("availableReplicas"), st.AvailableReplicas, "cannot be greater than status.replicas"))
			}
			return allErrs
		},
		Fields: map[string]func(*appsv1.ReplicaSet) string{
			"status.replicas": func(rs *appsv1.ReplicaSet) string { return fmt.Sprint(rs.Status.Replicas) },
		},
		Table: &registry.TypedTable[*appsv1.ReplicaSet]{
			Columns: append([]metav1.TableColumnDefinition{
				columnName(),
				columnInt("Desired", appsv1.ReplicaSetSpec{}.SwaggerDoc()["replicas"], 0),
				columnInt("Current", appsv1.ReplicaSetStatus{}.SwaggerDoc()["replicas"], 0),
				columnInt("Ready", appsv1.ReplicaSetStatus{}.SwaggerDoc()["readyReplicas"], 0),
				columnAge(),
			}, columnsTemplate(appsv1.ReplicaSetSpec{}.SwaggerDoc()["selector"])...),
			Row: func(rs *appsv1.ReplicaSet) []any {
				names, images := cellsTemplate(&rs.Spec.Template.Spec)
				return []any{
					rs.Name,
					int64(replicasOrOne(rs.Spec.Replicas)),
					int64(rs.Status.Replicas),
					int64(rs.Status.ReadyReplicas),
					cellAge(&rs.ObjectMeta),
					names, images, cellSelector(rs.Spec.Selector),
				}
			},
		},
	})
}

func validateReplicaSetSpec(spec *appsv1.ReplicaSetSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateNonNegative32(spec.Replicas, fldPath.Child("replicas"))...)
	allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	allErrs = append(allErrs, validateWorkloadSelector(spec.Selector, "deployment", fldPath.Child("selector"))...)
	allErrs = append(allErrs, validateWorkloadTemplate(&spec.Template, spec.Selector, "ReplicaSet", fldPath.Child("template"))...)
	return allErrs
}

// --- StatefulSet ----------------------------------------------------------

func statefulSetStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*appsv1.StatefulSet, *appsv1.StatefulSetList]{
		// As upstream: a status write keeps the labels.
		PrepareForStatusUpdate: func(o, old *appsv1.StatefulSet) { o.Labels = old.Labels },
		New:                    func() *appsv1.StatefulSet { return &appsv1.StatefulSet{} },
		NewList:                func() *appsv1.StatefulSetList { return &appsv1.StatefulSetList{} },
		PrepareForCreate: func(s *appsv1.StatefulSet) {
			s.Status = appsv1.StatefulSetStatus{}
		},
		Default: defaultStatefulSet,
		Validate: func(s *appsv1.StatefulSet) field.ErrorList {
			return validateStatefulSetSpec(&s.Spec, field.NewPath("spec"))
		},
		ValidateUpdate: func(s, old *appsv1.StatefulSet) field.ErrorList {
			allErrs := validateStatefulSetSpec(&s.Spec, field.NewPath("spec"))
			// Only these fields may change; compare copies without them.
			a, b := s.Spec.DeepCopy(), old.Spec.DeepCopy()
			for _, sp := range []*appsv1.StatefulSetSpec{a, b} {
				sp.Replicas = nil
				sp.Ordinals = nil
				sp.Template = corev1.PodTemplateSpec{}
				sp.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{}
				sp.PersistentVolumeClaimRetentionPolicy = nil
				sp.MinReadySeconds = 0
				sp.RevisionHistoryLimit = nil
			}
			if !apiequality.Semantic.DeepEqual(a, b) {
				allErrs = append(allErrs, field.Forbidden(field.NewPath("spec"), "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
			}
			return allErrs
		},
		ValidateStatusUpdate: func(s, _ *appsv1.StatefulSet) field.ErrorList {
			st, fldPath := &s.Status, field.NewPath("status")
			var allErrs field.ErrorList
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(st.ObservedGeneration, fldPath.Child("observedGeneration"))...)
			for _, f := range []struct {
				name string
				v    int32
			}{
				{"replicas", st.Replicas}, {"readyReplicas", st.ReadyReplicas}, {"currentReplicas", st.CurrentReplicas},
				{"updatedReplicas", st.UpdatedReplicas}, {"availableReplicas", st.AvailableReplicas},
			} {
				allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(f.v), fldPath.Child(f.name))...)
			}
			allErrs = append(allErrs, validateNonNegative32(st.CollisionCount, fldPath.Child("collisionCount"))...)
			return allErrs
		},
		Table: &registry.TypedTable[*appsv1.StatefulSet]{
			Columns: append([]metav1.TableColumnDefinition{
				columnName(),
				columnString("Ready", "Number of the pod with ready state", 0),
				columnAge(),
			}, columnsTemplate("")...),
			Row: func(s *appsv1.StatefulSet) []any {
				names, images := cellsTemplate(&s.Spec.Template.Spec)
				return []any{
					s.Name,
					fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, replicasOrOne(s.Spec.Replicas)),
					cellAge(&s.ObjectMeta),
					names, images,
				}
			},
		},
	})
}

// defaultStatefulSet applies apps/v1 SetDefaults_StatefulSet (and the PVC
// defaults of its volume claim templates).
func defaultStatefulSet(s *appsv1.StatefulSet) {
	if s.Spec.PodManagementPolicy == "" {
		s.Spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	us := &s.Spec.UpdateStrategy
	if us.Type == "" {
		us.Type = appsv1.RollingUpdateStatefulSetStrategyType
		if us.RollingUpdate == nil {
			us.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
	}
	if us.Type == appsv1.RollingUpdateStatefulSetStrategyType && us.RollingUpdate != nil && us.RollingUpdate.Partition == nil {
		us.RollingUpdate.Partition = ptr.To[int32](0)
	}
	if s.Spec.PersistentVolumeClaimRetentionPolicy == nil {
		s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	if s.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted == "" {
		s.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if s.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled == "" {
		s.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if s.Spec.Replicas == nil {
		s.Spec.Replicas = ptr.To[int32](1)
	}
	if s.Spec.RevisionHistoryLimit == nil {
		s.Spec.RevisionHistoryLimit = ptr.To[int32](10)
	}
	for i := range s.Spec.VolumeClaimTemplates {
		pvc := &s.Spec.VolumeClaimTemplates[i]
		if pvc.Spec.VolumeMode == nil {
			pvc.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
		}
		if pvc.Status.Phase == "" {
			pvc.Status.Phase = corev1.ClaimPending
		}
	}
	defaultPodSpec(&s.Spec.Template.Spec)
}

// withClaimVolumes returns tmpl as the StatefulSet controller makes its
// pods: with a volume per claim template the template does not already
// define, so that volume mounts naming a claim template validate (the
// appended volumes come last: the indices of the template's own stay).
func withClaimVolumes(tmpl *corev1.PodTemplateSpec, claims []corev1.PersistentVolumeClaim) *corev1.PodTemplateSpec {
	if len(claims) == 0 {
		return tmpl
	}
	out := tmpl.DeepCopy()
	have := map[string]bool{}
	for _, v := range out.Spec.Volumes {
		have[v.Name] = true
	}
	for _, c := range claims {
		if c.Name == "" || have[c.Name] {
			continue
		}
		have[c.Name] = true
		out.Spec.Volumes = append(out.Spec.Volumes, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name},
		}})
	}
	return out
}

func validateStatefulSetSpec(spec *appsv1.StatefulSetSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch spec.PodManagementPolicy {
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	case "":
		allErrs = append(allErrs, field.Required(fldPath.Child("podManagementPolicy"), ""))
	default:
		allErrs = append(allErrs, field.Invalid(fldPath.Child("podManagementPolicy"), spec.PodManagementPolicy,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)))
	}
	us := spec.UpdateStrategy
	switch us.Type {
	case "":
		allErrs = append(allErrs, field.Required(fldPath.Child("updateStrategy"), ""))
	case appsv1.OnDeleteStatefulSetStrategyType:
		if us.RollingUpdate != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("updateStrategy", "rollingUpdate"), us.RollingUpdate,
				fmt.Sprintf("only allowed for updateStrategy '%s'", appsv1.RollingUpdateStatefulSetStrategyType)))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if us.RollingUpdate != nil {
			allErrs = append(allErrs, validateNonNegative32(us.RollingUpdate.Partition, fldPath.Child("updateStrategy", "rollingUpdate", "partition"))...)
			if us.RollingUpdate.MaxUnavailable != nil {
				p := fldPath.Child("updateStrategy", "rollingUpdate", "maxUnavailable")
				allErrs = append(allErrs, validatePositiveIntOrPercent(*us.RollingUpdate.MaxUnavailable, p)...)
				allErrs = append(allErrs, validateNotMoreThan100Percent(*us.RollingUpdate.MaxUnavailable, p)...)
				if isZeroIntOrPercent(us.RollingUpdate.MaxUnavailable) {
					allErrs = append(allErrs, field.Invalid(p, *us.RollingUpdate.MaxUnavailable, "must be greater than 0"))
				}
			}
		}
	default:
		allErrs = append(allErrs, field.Invalid(fldPath.Child("updateStrategy"), us,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)))
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		valid := []appsv1.PersistentVolumeClaimRetentionPolicyType{appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
		pp := fldPath.Child("persistentVolumeClaimRetentionPolicy")
		if p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType && p.WhenDeleted != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
			allErrs = append(allErrs, field.NotSupported(pp.Child("whenDeleted"), p.WhenDeleted, valid))
		}
		if p.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType && p.WhenScaled != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
			allErrs = append(allErrs, field.NotSupported(pp.Child("whenScaled"), p.WhenScaled, valid))
		}
	}
	if spec.Ordinals != nil {
		allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(spec.Ordinals.Start), fldPath.Child("ordinals", "start"))...)
	}
	allErrs = append(allErrs, validateNonNegative32(spec.Replicas, fldPath.Child("replicas"))...)
	allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	allErrs = append(allErrs, validateNonNegative32(spec.RevisionHistoryLimit, fldPath.Child("revisionHistoryLimit"))...)
	allErrs = append(allErrs, validateWorkloadSelector(spec.Selector, "statefulset", fldPath.Child("selector"))...)
	allErrs = append(allErrs, validateWorkloadTemplate(withClaimVolumes(&spec.Template, spec.VolumeClaimTemplates), spec.Selector, "StatefulSet", fldPath.Child("template"))...)
	for i, pvc := range spec.VolumeClaimTemplates {
		p := fldPath.Child("volumeClaimTemplates").Index(i)
		for _, msg := range registry.NameIsDNSSubdomain(pvc.Name, false) {
			allErrs = append(allErrs, field.Invalid(p.Child("metadata", "name"), pvc.Name, msg))
		}
		if len(pvc.Spec.AccessModes) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("spec", "accessModes"), "at least 1 access mode is required"))
		}
	}
	return allErrs
}

// --- DaemonSet ------------------------------------------------------------

func daemonSetStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*appsv1.DaemonSet, *appsv1.DaemonSetList]{
		// As upstream: a status write keeps the labels.
		PrepareForStatusUpdate: func(o, old *appsv1.DaemonSet) { o.Labels = old.Labels },
		New:                    func() *appsv1.DaemonSet { return &appsv1.DaemonSet{} },
		NewList:                func() *appsv1.DaemonSetList { return &appsv1.DaemonSetList{} },
		PrepareForCreate: func(ds *appsv1.DaemonSet) {
			ds.Status = appsv1.DaemonSetStatus{}
		},
		Default: defaultDaemonSet,
		Validate: func(ds *appsv1.DaemonSet) field.ErrorList {
			return validateDaemonSetSpec(&ds.Spec, field.NewPath("spec"))
		},
		ValidateUpdate: func(ds, old *appsv1.DaemonSet) field.ErrorList {
			allErrs := validateDaemonSetSpec(&ds.Spec, field.NewPath("spec"))
			return append(allErrs, validateImmutable(ds.Spec.Selector, old.Spec.Selector, field.NewPath("spec", "selector"))...)
		},
		ValidateStatusUpdate: func(ds, _ *appsv1.DaemonSet) field.ErrorList {
			st, fldPath := &ds.Status, field.NewPath("status")
			var allErrs field.ErrorList
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(st.ObservedGeneration, fldPath.Child("observedGeneration"))...)
			for _, f := range []struct {
				name string
				v    int32
			}{
				{"currentNumberScheduled", st.CurrentNumberScheduled}, {"numberMisscheduled", st.NumberMisscheduled},
				{"desiredNumberScheduled", st.DesiredNumberScheduled}, {"numberReady", st.NumberReady},
				{"updatedNumberScheduled", st.UpdatedNumberScheduled}, {"numberAvailable", st.NumberAvailable},
				{"numberUnavailable", st.NumberUnavailable},
			} {
				allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(f.v), fldPath.Child(f.name))...)
			}
			allErrs = append(allErrs, validateNonNegative32(st.CollisionCount, fldPath.Child("collisionCount"))...)
			return allErrs
		},
		Table: &registry.TypedTable[*appsv1.DaemonSet]{
			Columns: append([]metav1.TableColumnDefinition{
				columnName(),
				columnInt("Desired", appsv1.DaemonSetStatus{}.SwaggerDoc()["desiredNumberScheduled"], 0),
				columnInt("Current", appsv1.DaemonSetStatus{}.SwaggerDoc()["currentNumberScheduled"], 0),
				columnInt("Ready", appsv1.DaemonSetStatus{}.SwaggerDoc()["numberReady"], 0),
				columnInt("Up-to-date", appsv1.DaemonSetStatus{}.SwaggerDoc()["updatedNumberScheduled"], 0),
				columnInt("Available", appsv1.DaemonSetStatus{}.SwaggerDoc()["numberAvailable"], 0),
				columnString("Node Selector", corev1.PodSpec{}.SwaggerDoc()["nodeSelector"], 0),
				columnAge(),
			}, columnsTemplate(appsv1.DaemonSetSpec{}.SwaggerDoc()["selector"])...),
			Row: func(ds *appsv1.DaemonSet) []any {
				names, images := cellsTemplate(&ds.Spec.Template.Spec)
				return []any{
					ds.Name,
					int64(ds.Status.DesiredNumberScheduled),
					int64(ds.Status.CurrentNumberScheduled),
					int64(ds.Status.NumberReady),
					int64(ds.Status.UpdatedNumberScheduled),
					int64(ds.Status.NumberAvailable),
					labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector),
					cellAge(&ds.ObjectMeta),
					names, images, cellSelector(ds.Spec.Selector),
				}
			},
		},
	})
}

// defaultDaemonSet applies apps/v1 SetDefaults_DaemonSet.
func defaultDaemonSet(ds *appsv1.DaemonSet) {
	us := &ds.Spec.UpdateStrategy
	if us.Type == "" {
		us.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if us.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if us.RollingUpdate == nil {
			us.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		if us.RollingUpdate.MaxUnavailable == nil {
			v := intstr.FromInt32(1)
			us.RollingUpdate.MaxUnavailable = &v
		}
		if us.RollingUpdate.MaxSurge == nil {
			v := intstr.FromInt32(0)
			us.RollingUpdate.MaxSurge = &v
		}
	}
	if ds.Spec.RevisionHistoryLimit == nil {
		ds.Spec.RevisionHistoryLimit = ptr.To[int32](10)
	}
	defaultPodSpec(&ds.Spec.Template.Spec)
}

func validateDaemonSetSpec(spec *appsv1.DaemonSetSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateWorkloadSelector(spec.Selector, "daemonset", fldPath.Child("selector"))...)
	allErrs = append(allErrs, validateWorkloadTemplate(&spec.Template, spec.Selector, "DaemonSet", fldPath.Child("template"))...)
	allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	allErrs = append(allErrs, validateNonNegative32(spec.RevisionHistoryLimit, fldPath.Child("revisionHistoryLimit"))...)
	us := spec.UpdateStrategy
	switch us.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if us.RollingUpdate == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("updateStrategy", "rollingUpdate"), ""))
			break
		}
		allErrs = append(allErrs, validateDaemonSetRollingUpdate(us.RollingUpdate, fldPath.Child("updateStrategy", "rollingUpdate"))...)
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("updateStrategy", "type"), us.Type,
			[]appsv1.DaemonSetUpdateStrategyType{appsv1.OnDeleteDaemonSetStrategyType, appsv1.RollingUpdateDaemonSetStrategyType}))
	}
	return allErrs
}

// validateDaemonSetRollingUpdate checks a DaemonSet rolling update: int or
// percent values of at most 100%, and exactly one of maxUnavailable and
// maxSurge non-zero (a node runs at most one extra pod).
func validateDaemonSetRollingUpdate(ru *appsv1.RollingUpdateDaemonSet, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, f := range []struct {
		name string
		v    *intstr.IntOrString
	}{{"maxUnavailable", ru.MaxUnavailable}, {"maxSurge", ru.MaxSurge}} {
		if f.v != nil {
			allErrs = append(allErrs, validatePositiveIntOrPercent(*f.v, fldPath.Child(f.name))...)
			allErrs = append(allErrs, validateNotMoreThan100Percent(*f.v, fldPath.Child(f.name))...)
		}
	}
	hasUnavailable := ru.MaxUnavailable != nil && !isZeroIntOrPercent(ru.MaxUnavailable)
	hasSurge := ru.MaxSurge != nil && !isZeroIntOrPercent(ru.MaxSurge)
	switch {
	case hasUnavailable && hasSurge:
		allErrs = append(allErrs, field.Invalid(fldPath.Child("maxSurge"), ru.MaxSurge, "may not be set when maxUnavailable is non-zero"))
	case !hasUnavailable && !hasSurge:
		allErrs = append(allErrs, field.Required(fldPath.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
	}
	return allErrs
}

// --- ControllerRevision ---------------------------------------------------

func controllerRevisionStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*appsv1.ControllerRevision, *appsv1.ControllerRevisionList]{
		New:     func() *appsv1.ControllerRevision { return &appsv1.ControllerRevision{} },
		NewList: func() *appsv1.ControllerRevisionList { return &appsv1.ControllerRevisionList{} },
		Validate: func(cr *appsv1.ControllerRevision) field.ErrorList {
			return apivalidation.ValidateNonnegativeField(cr.Revision, field.NewPath("revision"))
		},
		ValidateUpdate: func(cr, old *appsv1.ControllerRevision) field.ErrorList {
			allErrs := apivalidation.ValidateNonnegativeField(cr.Revision, field.NewPath("revision"))
			if !reflect.DeepEqual(cr.Data.Raw, old.Data.Raw) {
				allErrs = append(allErrs, field.Invalid(field.NewPath("data"), "<data>", "field is immutable"))
			}
			return allErrs
		},
		Table: &registry.TypedTable[*appsv1.ControllerRevision]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Controller", "Controller of the object", 0),
				columnString("Revision", appsv1.ControllerRevision{}.SwaggerDoc()["revision"], 0),
				columnAge(),
			},
			Row: func(cr *appsv1.ControllerRevision) []any {
				controller := "<none>"
				if ref := metav1.GetControllerOf(cr); ref != nil {
					gv, err := schema.ParseGroupVersion(ref.APIVersion)
					if err == nil {
						gk := gv.WithKind(ref.Kind).GroupKind()
						controller = lowerGroupKind(gk) + "/" + ref.Name
					}
				}
				return []any{cr.Name, controller, cr.Revision, cellAge(&cr.ObjectMeta)}
			},
		},
	})
}

// lowerGroupKind renders "statefulset.apps" for apps/StatefulSet.
func lowerGroupKind(gk schema.GroupKind) string {
	s := gk.Kind
	if gk.Group != "" {
		s += "." + gk.Group
	}
	return strings.ToLower(s)
}

// deploymentSelectorCell renders a Deployment's SELECTOR cell: the
// canonical selector string ("" when empty, "<invalid>" when malformed).
func deploymentSelectorCell(sel *metav1.LabelSelector) string {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return "<invalid>"
	}
	return s.String()
}
