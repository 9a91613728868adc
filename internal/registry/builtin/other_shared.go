package builtin

// Pieces shared by the named-group strategies (apps, batch, networking,
// rbac, …): common table columns and cells, and validators that upstream
// applies the same way to several workloads.

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/registry"
)

// columnName is the NAME column every table starts with.
func columnName() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]}
}

// columnAge is the AGE column.
func columnAge() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]}
}

// columnString is a plain string column; priority 1 puts it under -o wide.
func columnString(name, desc string, priority int32) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: "string", Description: desc, Priority: priority}
}

// columnInt is an integer column.
func columnInt(name, desc string, priority int32) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: "integer", Description: desc, Priority: priority}
}

// columnsTemplate are the -o wide CONTAINERS and IMAGES columns of
// workloads, followed by SELECTOR when selectorDesc is not empty.
func columnsTemplate(selectorDesc string) []metav1.TableColumnDefinition {
	cols := []metav1.TableColumnDefinition{
		columnString("Containers", "Names of each container in the template.", 1),
		columnString("Images", "Images referenced by each container in the template.", 1),
	}
	if selectorDesc != "" {
		cols = append(cols, columnString("Selector", selectorDesc, 1))
	}
	return cols
}

// cellsTemplate renders a pod spec's container names and images, comma
// separated, as the CONTAINERS and IMAGES cells.
func cellsTemplate(spec *corev1.PodSpec) (names, images string) {
	n := make([]string, 0, len(spec.Containers))
	im := make([]string, 0, len(spec.Containers))
	for _, c := range spec.Containers {
		n = append(n, c.Name)
		im = append(im, c.Image)
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

// cellSelector renders a label selector as kubectl prints it in the
// SELECTOR column ("<none>" when empty, "<error>" when invalid).
func cellSelector(sel *metav1.LabelSelector) string {
	return metav1.FormatLabelSelector(sel)
}

// cellAge renders the AGE cell.
func cellAge(m *metav1.ObjectMeta) string {
	return registry.HumanAge(m.CreationTimestamp, time.Now())
}

// cellSince renders a timestamp as an age, "<unknown>" when unset.
func cellSince(t *metav1.Time) string {
	if t == nil {
		return "<unknown>"
	}
	return registry.HumanAge(*t, time.Now())
}

// scaleSelector renders a selector for a /scale status.selector: the
// canonical selector string ("" for a nil or empty selector).
func scaleSelector(sel *metav1.LabelSelector) string {
	if sel == nil {
		return ""
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return ""
	}
	return s.String()
}

// replicasOrOne returns *p, or 1 when p is nil (the upstream default).
func replicasOrOne(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// validateNonNegative32 checks that an optional int32 is ≥ 0.
func validateNonNegative32(v *int32, fldPath *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	return apivalidation.ValidateNonnegativeField(int64(*v), fldPath)
}

// validatePositiveIntOrPercent checks an int-or-percent value as upstream
// does for maxSurge, maxUnavailable, minAvailable: a non-negative integer
// or a string of the form "N%".
func validatePositiveIntOrPercent(v intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch v.Type {
	case intstr.String:
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			allErrs = append(allErrs, field.Invalid(fldPath, v, msg))
		}
	case intstr.Int:
		allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(v.IntValue()), fldPath)...)
	default:
		allErrs = append(allErrs, field.Invalid(fldPath, v, "must be an integer or percentage (e.g '5%')"))
	}
	return allErrs
}

// validateNotMoreThan100Percent rejects a percentage above 100%.
func validateNotMoreThan100Percent(v intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	if v.Type != intstr.String {
		return nil
	}
	var pct int
	if _, err := fmt.Sscanf(v.StrVal, "%d%%", &pct); err != nil {
		return nil
	}
	if pct > 100 {
		return field.ErrorList{field.Invalid(fldPath, v, "must not be greater than 100%")}
	}
	return nil
}

// isZeroIntOrPercent reports whether v is 0 or "0%".
func isZeroIntOrPercent(v *intstr.IntOrString) bool {
	if v == nil {
		return false
	}
	if v.Type == intstr.String {
		return v.StrVal == "0%"
	}
	return v.IntVal == 0
}

// validateLabelSelector validates a (non-nil) label selector at fldPath.
func validateLabelSelector(sel *metav1.LabelSelector, fldPath *field.Path) field.ErrorList {
	return metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, fldPath)
}

// validateWorkloadSelector checks a controller's spec.selector: required,
// well formed and not empty (kind names the workload in the message, as
// upstream's "empty selector is invalid for deployment").
func validateWorkloadSelector(sel *metav1.LabelSelector, kind string, fldPath *field.Path) field.ErrorList {
	if sel == nil {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	allErrs := validateLabelSelector(sel, fldPath)
	if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		allErrs = append(allErrs, field.Invalid(fldPath, sel, "empty selector is invalid for "+kind))
	}
	return allErrs
}

// validateWorkloadTemplate validates the pod template of a long-running
// controller (Deployment, ReplicaSet, StatefulSet, DaemonSet): the selector
// must match the template's labels, the template must be a valid pod
// template, restartPolicy must be Always and activeDeadlineSeconds is
// forbidden.
func validateWorkloadTemplate(tmpl *corev1.PodTemplateSpec, sel *metav1.LabelSelector, kind string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateTemplateMatches(tmpl, sel, fldPath)...)
	allErrs = append(allErrs, validatePodTemplateSpec(tmpl, fldPath)...)
	if tmpl.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("spec", "restartPolicy"), tmpl.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if tmpl.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in "+kind+" is not Supported"))
	}
	return allErrs
}

// validateTemplateMatches checks that a (valid, non-empty) selector selects
// the template's labels.
func validateTemplateMatches(tmpl *corev1.PodTemplateSpec, sel *metav1.LabelSelector, fldPath *field.Path) field.ErrorList {
	if sel == nil {
		return nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		return nil
	}
	if !s.Matches(labels.Set(tmpl.Labels)) {
		return field.ErrorList{field.Invalid(fldPath.Child("metadata", "labels"), tmpl.Labels, "`selector` does not match template `labels`")}
	}
	return nil
}

// validateImmutable reports "field is immutable" when new differs from old.
func validateImmutable(newVal, oldVal any, fldPath *field.Path) field.ErrorList {
	return apivalidation.ValidateImmutableField(newVal, oldVal, fldPath)
}

// validateQualifiedName checks a label-key-like value (prefix/name).
func validateQualifiedName(v string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, msg := range validation.IsQualifiedName(v) {
		allErrs = append(allErrs, field.Invalid(fldPath, v, msg))
	}
	return allErrs
}

// boolCell renders an optional bool as upstream's printBoolPtr does.
func boolCell(b *bool) string {
	if b == nil {
		return "<unset>"
	}
	if *b {
		return "True"
	}
	return "False"
}

// orNone returns s, or "<none>" when s is empty.
func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
