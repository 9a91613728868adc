package admission

import (
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// Namespace labels that select Pod Security Standards, and the audit
// annotations PodSecurity records.
const (
	PSSEnforceLabel        = "pod-security.kubernetes.io/enforce"
	PSSEnforceVersionLabel = "pod-security.kubernetes.io/enforce-version"
	PSSWarnLabel           = "pod-security.kubernetes.io/warn"
	PSSWarnVersionLabel    = "pod-security.kubernetes.io/warn-version"
	PSSAuditLabel          = "pod-security.kubernetes.io/audit"
	PSSAuditVersionLabel   = "pod-security.kubernetes.io/audit-version"

	PSSEnforcePolicyAnnotation   = "pod-security.kubernetes.io/enforce-policy"
	PSSAuditViolationsAnnotation = "pod-security.kubernetes.io/audit-violations"
	PSSExemptAnnotation          = "pod-security.kubernetes.io/exempt"
)

// PodSecurityConfig is PodSecurity's configuration, upstream's
// PodSecurityConfiguration: the zero value enforces nothing for
// unlabelled namespaces and exempts nothing (upstream's defaults: in
// particular kube-system is not exempt).
type PodSecurityConfig struct {
	// Defaults apply to a mode whose namespace label is absent; "" means
	// privileged.
	DefaultEnforce, DefaultWarn, DefaultAudit Level
	// Exempt usernames, namespaces and runtime class names are not checked.
	ExemptUsernames      []string
	ExemptNamespaces     []string
	ExemptRuntimeClasses []string
}

// PodSecurity enforces the Pod Security Standards selected by namespace
// labels, as upstream's PodSecurity plugin:
//   - pods (CREATE, and UPDATE that changes an image, a container or the
//     ephemeral containers): the enforce level refuses with 403
//     `violates PodSecurity "restricted:latest": reason (detail), …`; the
//     warn level adds `would violate PodSecurity …` to r.Warnings; the
//     audit level adds PSSAuditViolationsAnnotation to r.AuditAnnotations;
//   - workloads with pod templates (replicationcontrollers, podtemplates,
//     deployments, replicasets, statefulsets, daemonsets, jobs,
//     cronjobs): enforce and warn violations become warnings only;
//   - namespaces: invalid level or version labels are refused (422), and
//     tightening the enforce level warns about existing pods that violate it.
//
// Every version label is evaluated with the latest checks (a pinned
// version is shown in messages but older check variants are not kept).
type PodSecurity struct {
	cfg    PodSecurityConfig
	lister corelisters.NamespaceLister // may be nil
	client kubernetes.Interface
}

var _ Validator = (*PodSecurity)(nil)

// NewPodSecurity returns the plugin. Namespaces come from lister (nil:
// none) with a live lookup through client when the cache misses; client
// also lists a namespace's pods when its enforce level is tightened.
func NewPodSecurity(cfg PodSecurityConfig, lister corelisters.NamespaceLister, client kubernetes.Interface) *PodSecurity {
	return &PodSecurity{cfg: cfg, lister: lister, client: client}
}

// Name implements Plugin.
func (*PodSecurity) Name() string { return "PodSecurity" }

// policyLevel is one mode's level and version label.
type policyLevel struct {
	Level   Level
	Version string // "latest" or "v1.N"
}

func (p policyLevel) String() string { return string(p.Level) + ":" + p.Version }

// nsPolicy is a namespace's three modes.
type nsPolicy struct {
	Enforce, Warn, Audit policyLevel
}

// validVersion accepts "latest" and "v1.<minor>".
func validVersion(v string) bool {
	if v == "latest" {
		return true
	}
	minor, ok := strings.CutPrefix(v, "v1.")
	if !ok || minor == "" || (len(minor) > 1 && minor[0] == '0') {
		return false
	}
	for _, c := range minor {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parsePolicy reads a namespace's labels. Invalid values evaluate as
// restricted:latest (as upstream: fail closed) and are returned as errors.
func (p *PodSecurity) parsePolicy(labels map[string]string) (nsPolicy, field.ErrorList) {
	var errs field.ErrorList
	path := field.NewPath("metadata", "labels")
	mode := func(levelKey, versionKey string, def Level) policyLevel {
		if def == "" {
			def = LevelPrivileged
		}
		out := policyLevel{Level: def, Version: "latest"}
		if v, ok := labels[levelKey]; ok {
			switch Level(v) {
			case LevelPrivileged, LevelBaseline, LevelRestricted:
				out.Level = Level(v)
			default:
				out.Level = LevelRestricted
				errs = append(errs, field.NotSupported(path.Key(levelKey), v, []string{"privileged", "baseline", "restricted"}))
			}
		}
		if v, ok := labels[versionKey]; ok {
			if validVersion(v) {
				out.Version = v
			} else {
				errs = append(errs, field.Invalid(path.Key(versionKey), v, `must be "latest" or "v1.x"`))
			}
		}
		return out
	}
	return nsPolicy{
		Enforce: mode(PSSEnforceLabel, PSSEnforceVersionLabel, p.cfg.DefaultEnforce),
		Warn:    mode(PSSWarnLabel, PSSWarnVersionLabel, p.cfg.DefaultWarn),
		Audit:   mode(PSSAuditLabel, PSSAuditVersionLabel, p.cfg.DefaultAudit),
	}, errs
}

// Validate implements Validator.
func (p *PodSecurity) Validate(ctx context.Context, r *Request) error {
	if r.Operation != Create && r.Operation != Update {
		return nil
	}
	switch {
	case r.is("", "namespaces", ""):
		return p.namespace(ctx, r)
	case r.Resource.Group == "" && r.Resource.Resource == "pods" && (r.Subresource == "" || r.Subresource == "ephemeralcontainers"):
		return p.pod(ctx, r)
	}
	if r.Subresource != "" {
		return nil
	}
	meta, spec, ok := podTemplateOf(r.Object)
	if !ok {
		return nil
	}
	if r.Operation == Update {
		if oldMeta, oldSpec, ok := podTemplateOf(r.OldObject); ok &&
			equality.Semantic.DeepEqual(oldSpec, spec) && equality.Semantic.DeepEqual(oldMeta.Annotations, meta.Annotations) {
			return nil
		}
	}
	return p.template(ctx, r, meta, spec)
}

// exempt reports (and records for audit, as upstream) whether the
// request or the pod spec is exempt.
func (p *PodSecurity) exempt(r *Request, spec *corev1.PodSpec) bool {
	switch {
	case slices.Contains(p.cfg.ExemptNamespaces, r.Namespace):
		r.AddAuditAnnotation(PSSExemptAnnotation, "namespace")
	case slices.Contains(p.cfg.ExemptUsernames, r.User.Name):
		r.AddAuditAnnotation(PSSExemptAnnotation, "user")
	case spec != nil && spec.RuntimeClassName != nil && slices.Contains(p.cfg.ExemptRuntimeClasses, *spec.RuntimeClassName):
		r.AddAuditAnnotation(PSSExemptAnnotation, "runtimeClass")
	default:
		return false
	}
	return true
}

func (p *PodSecurity) exemptSpec(spec *corev1.PodSpec) bool {
	return spec.RuntimeClassName != nil && slices.Contains(p.cfg.ExemptRuntimeClasses, *spec.RuntimeClassName)
}

// policyOf reads the namespace's policy (cache first, then live).
func (p *PodSecurity) policyOf(ctx context.Context, ns string) (nsPolicy, error) {
	var labels map[string]string
	found := false
	if p.lister != nil {
		if n, err := p.lister.Get(ns); err == nil {
			labels, found = n.Labels, true
		}
	}
	if !found {
		n, err := p.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return nsPolicy{}, fmt.Errorf("reading namespace %s: %w", ns, err)
		}
		labels = n.Labels
	}
	pol, _ := p.parsePolicy(labels)
	return pol, nil
}

func (p *PodSecurity) pod(ctx context.Context, r *Request) error {
	pod, ok := r.Object.(*corev1.Pod)
	if !ok || p.exempt(r, &pod.Spec) {
		return nil
	}
	if r.Operation == Update {
		old, ok := r.OldObject.(*corev1.Pod)
		if ok && !significantPodUpdate(pod, old) {
			return nil
		}
	}
	pol, err := p.policyOf(ctx, r.Namespace)
	if err != nil {
		return err
	}
	enforce := CheckPod(pol.Enforce.Level, &pod.ObjectMeta, &pod.Spec)
	if pol.Warn.Level != LevelPrivileged && (pol.Warn != pol.Enforce || len(enforce) == 0) {
		if v := CheckPod(pol.Warn.Level, &pod.ObjectMeta, &pod.Spec); len(v) > 0 {
			r.AddWarning(fmt.Sprintf("would violate PodSecurity %q: %s", pol.Warn, joinViolations(v)))
		}
	}
	if pol.Audit.Level != LevelPrivileged {
		if v := CheckPod(pol.Audit.Level, &pod.ObjectMeta, &pod.Spec); len(v) > 0 {
			r.AddAuditAnnotation(PSSAuditViolationsAnnotation, fmt.Sprintf("would violate PodSecurity %q: %s", pol.Audit, joinViolations(v)))
		}
	}
	if pol.Enforce.Level != LevelPrivileged {
		r.AddAuditAnnotation(PSSEnforcePolicyAnnotation, pol.Enforce.String())
	}
	if len(enforce) > 0 {
		return forbidden(r, fmt.Errorf("violates PodSecurity %q: %s", pol.Enforce, joinViolations(enforce)))
	}
	return nil
}

func (p *PodSecurity) template(ctx context.Context, r *Request, meta *metav1.ObjectMeta, spec *corev1.PodSpec) error {
	if p.exempt(r, spec) {
		return nil
	}
	pol, err := p.policyOf(ctx, r.Namespace)
	if err != nil {
		return err
	}
	seen := map[policyLevel]bool{}
	for _, lvl := range []policyLevel{pol.Enforce, pol.Warn} {
		if lvl.Level == LevelPrivileged || seen[lvl] {
			continue
		}
		seen[lvl] = true
		if v := CheckPod(lvl.Level, meta, spec); len(v) > 0 {
			r.AddWarning(fmt.Sprintf("would violate PodSecurity %q: %s", lvl, joinViolations(v)))
		}
	}
	if pol.Audit.Level != LevelPrivileged {
		if v := CheckPod(pol.Audit.Level, meta, spec); len(v) > 0 {
			r.AddAuditAnnotation(PSSAuditViolationsAnnotation, fmt.Sprintf("would violate PodSecurity %q: %s", pol.Audit, joinViolations(v)))
		}
	}
	return nil
}

// namespace refuses invalid labels and warns when a tightened enforce
// level makes existing pods violate it.
func (p *PodSecurity) namespace(ctx context.Context, r *Request) error {
	ns, ok := r.Object.(*corev1.Namespace)
	if !ok {
		return nil
	}
	pol, errs := p.parsePolicy(ns.Labels)
	if len(errs) > 0 {
		return apierrors.NewInvalid(schema.GroupKind{Kind: "Namespace"}, ns.Name, errs)
	}
	old, ok := r.OldObject.(*corev1.Namespace)
	if r.Operation != Update || !ok || slices.Contains(p.cfg.ExemptNamespaces, ns.Name) {
		return nil
	}
	oldPol, _ := p.parsePolicy(old.Labels)
	if pol.Enforce == oldPol.Enforce || pol.Enforce.Level == LevelPrivileged {
		return nil
	}
	pods, err := p.client.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{})
	if err != nil {
		r.AddWarning(fmt.Sprintf("failed to list pods while checking new PodSecurity enforce level: %v", err))
		return nil
	}
	var lines []string
	for i := range pods.Items {
		pod := &pods.Items[i]
		if p.exemptSpec(&pod.Spec) {
			continue
		}
		v := CheckPod(pol.Enforce.Level, &pod.ObjectMeta, &pod.Spec)
		if len(v) == 0 {
			continue
		}
		reasons := make([]string, len(v))
		for j, x := range v {
			reasons[j] = x.Reason
		}
		lines = append(lines, fmt.Sprintf("%s: %s", pod.Name, strings.Join(reasons, ", ")))
	}
	if len(lines) > 0 {
		slices.Sort(lines)
		r.AddWarning(fmt.Sprintf("existing pods in namespace %q violate the new PodSecurity enforce level %q", ns.Name, pol.Enforce))
		for _, l := range lines {
			r.AddWarning(l)
		}
	}
	return nil
}

func joinViolations(vs []Violation) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, ", ")
}

// significantPodUpdate reports whether an update can change the pod's
// security posture (upstream: containers added or removed, an image or a
// container's seccomp annotation changed, ephemeral containers added or
// changed); other pod updates are not re-evaluated.
func significantPodUpdate(pod, old *corev1.Pod) bool {
	if len(pod.Spec.Containers) != len(old.Spec.Containers) || len(pod.Spec.InitContainers) != len(old.Spec.InitContainers) {
		return true
	}
	changed := func(c, o *corev1.Container) bool {
		key := corev1.SeccompContainerAnnotationKeyPrefix + c.Name
		return c.Image != o.Image || pod.Annotations[key] != old.Annotations[key]
	}
	for i := range pod.Spec.Containers {
		if changed(&pod.Spec.Containers[i], &old.Spec.Containers[i]) {
			return true
		}
	}
	for i := range pod.Spec.InitContainers {
		if changed(&pod.Spec.InitContainers[i], &old.Spec.InitContainers[i]) {
			return true
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		e := &pod.Spec.EphemeralContainers[i]
		j := slices.IndexFunc(old.Spec.EphemeralContainers, func(o corev1.EphemeralContainer) bool { return o.Name == e.Name })
		if j < 0 {
			return true
		}
		if changed((*corev1.Container)(&e.EphemeralContainerCommon), (*corev1.Container)(&old.Spec.EphemeralContainers[j].EphemeralContainerCommon)) {
			return true
		}
	}
	return false
}

// podTemplateOf returns the pod template of a workload object.
func podTemplateOf(obj any) (*metav1.ObjectMeta, *corev1.PodSpec, bool) {
	var t *corev1.PodTemplateSpec
	switch o := obj.(type) {
	case *corev1.ReplicationController:
		t = o.Spec.Template
	case *corev1.PodTemplate:
		t = &o.Template
	case *appsv1.Deployment:
		t = &o.Spec.Template
	case *appsv1.ReplicaSet:
		t = &o.Spec.Template
	case *appsv1.StatefulSet:
		t = &o.Spec.Template
	case *appsv1.DaemonSet:
		t = &o.Spec.Template
	case *batchv1.Job:
		t = &o.Spec.Template
	case *batchv1.CronJob:
		t = &o.Spec.JobTemplate.Spec.Template
	}
	if t == nil {
		return nil, nil, false
	}
	return &t.ObjectMeta, &t.Spec, true
}
