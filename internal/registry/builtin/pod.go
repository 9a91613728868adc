package builtin

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/registry"
)

func podResource() *registry.Resource {
	return &registry.Resource{
		GVR:        schema.GroupVersionResource{Version: "v1", Resource: "pods"},
		Kind:       "Pod",
		ListKind:   "PodList",
		Singular:   "pod",
		ShortNames: []string{"po"},
		Categories: []string{"all"},
		Namespaced: true,
		Status:     true,
		EphemeralContainers: func(obj, old runtime.Object) field.ErrorList {
			return validateEphemeralContainersUpdate(obj.(*corev1.Pod), old.(*corev1.Pod))
		},
		Strategy: registry.Define(registry.Typed[*corev1.Pod, *corev1.PodList]{
			New:                  func() *corev1.Pod { return &corev1.Pod{} },
			NewList:              func() *corev1.PodList { return &corev1.PodList{} },
			PrepareForCreate:     preparePodForCreate,
			Default:              defaultPod,
			Validate:             validatePodCreate,
			ValidateUpdate:       validatePodUpdate,
			ValidateStatusUpdate: validatePodStatusUpdate,
			// As upstream: pods/status may change labels and annotations
			// but not owner references (old kubelets corrupted them).
			PrepareForStatusUpdate: func(p, old *corev1.Pod) { p.OwnerReferences = old.OwnerReferences },
			Fields: map[string]func(*corev1.Pod) string{
				"spec.nodeName":            func(p *corev1.Pod) string { return p.Spec.NodeName },
				"spec.restartPolicy":       func(p *corev1.Pod) string { return string(p.Spec.RestartPolicy) },
				"spec.schedulerName":       func(p *corev1.Pod) string { return p.Spec.SchedulerName },
				"spec.serviceAccountName":  func(p *corev1.Pod) string { return p.Spec.ServiceAccountName },
				"spec.hostNetwork":         func(p *corev1.Pod) string { return strconv.FormatBool(p.Spec.HostNetwork) },
				"status.phase":             func(p *corev1.Pod) string { return string(p.Status.Phase) },
				"status.podIP":             podIP,
				"status.nominatedNodeName": func(p *corev1.Pod) string { return p.Status.NominatedNodeName },
			},
			Table:            podTable(),
			GracefulDeletion: podGracefulDeletion,
		}),
	}
}

func podIP(p *corev1.Pod) string {
	if len(p.Status.PodIPs) > 0 {
		return p.Status.PodIPs[0].IP
	}
	return p.Status.PodIP
}

// preparePodForCreate resets the status a client sent: a new pod is
// Pending with its QoS class computed.
func preparePodForCreate(p *corev1.Pod) {
	p.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: podQOSClass(&p.Spec)}
}

// validatePodCreate validates a new pod: its spec, and no ephemeral
// containers (those are added only through pods/ephemeralcontainers).
func validatePodCreate(p *corev1.Pod) field.ErrorList {
	errs := validatePodSpec(&p.Spec, field.NewPath("spec"))
	if len(p.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "ephemeralContainers"), "cannot be set on create"))
	}
	return errs
}

func defaultPod(p *corev1.Pod) {
	defaultPodSpec(&p.Spec)
	if p.Spec.EnableServiceLinks == nil {
		p.Spec.EnableServiceLinks = ptr.To(corev1.DefaultEnableServiceLinks)
	}
	for i := range p.Spec.InitContainers {
		defaultRequestsFromLimits(&p.Spec.InitContainers[i].Resources)
	}
	for i := range p.Spec.Containers {
		defaultRequestsFromLimits(&p.Spec.Containers[i].Resources)
	}
	// With host networking every container port is also a host port.
	if p.Spec.HostNetwork {
		for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for i := range cs {
				for j := range cs[i].Ports {
					if cs[i].Ports[j].HostPort == 0 {
						cs[i].Ports[j].HostPort = cs[i].Ports[j].ContainerPort
					}
				}
			}
		}
	}
	if p.Status.QOSClass == "" {
		p.Status.QOSClass = podQOSClass(&p.Spec)
	}
}

// podQOSClass computes Guaranteed, Burstable or BestEffort from the
// containers' (and init containers') requests and limits of cpu and memory.
func podQOSClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	requests := map[corev1.ResourceName]bool{}
	limits := map[corev1.ResourceName]bool{}
	zeroQuantity := true
	guaranteed := true
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range all {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := c.Resources.Requests[name]; ok && !q.IsZero() {
				requests[name] = true
				zeroQuantity = false
			}
			if q, ok := c.Resources.Limits[name]; ok && !q.IsZero() {
				limits[name] = true
				zeroQuantity = false
			}
		}
		cpuL, okC := c.Resources.Limits[corev1.ResourceCPU]
		memL, okM := c.Resources.Limits[corev1.ResourceMemory]
		if !okC || !okM || cpuL.IsZero() || memL.IsZero() {
			guaranteed = false
			continue
		}
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, ok := c.Resources.Requests[name]
			lim := c.Resources.Limits[name]
			if ok && req.Cmp(lim) != 0 {
				guaranteed = false
			}
		}
	}
	if zeroQuantity {
		return corev1.PodQOSBestEffort
	}
	if guaranteed && len(limits) == 2 {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

const podUpdateForbiddenMsg = "pod updates may not change fields other than `spec.containers[*].image`," +
	"`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations)," +
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"

// validatePodUpdate allows changing only container images, an
// activeDeadlineSeconds that is being set or shortened, added
// tolerations and removed scheduling gates; everything else in the spec is
// immutable, as upstream.
func validatePodUpdate(p, old *corev1.Pod) field.ErrorList {
	specPath := field.NewPath("spec")
	errs := validatePodSpec(&p.Spec, specPath)

	if len(p.Spec.Containers) != len(old.Spec.Containers) || len(p.Spec.InitContainers) != len(old.Spec.InitContainers) {
		return append(errs, field.Forbidden(specPath, podUpdateForbiddenMsg))
	}
	if a := p.Spec.ActiveDeadlineSeconds; old.Spec.ActiveDeadlineSeconds != nil {
		if a == nil {
			errs = append(errs, field.Invalid(specPath.Child("activeDeadlineSeconds"), a, "must not update from a positive integer to nil value"))
		} else if *a > *old.Spec.ActiveDeadlineSeconds {
			errs = append(errs, field.Invalid(specPath.Child("activeDeadlineSeconds"), *a, "must be less than or equal to previous value"))
		}
	}
	if !tolerationsOnlyAdded(p.Spec.Tolerations, old.Spec.Tolerations) {
		errs = append(errs, field.Forbidden(specPath.Child("tolerations"), "existing toleration can not be modified except its tolerationSeconds"))
	}

	// Compare the rest of the spec with the mutable fields masked.
	mutated := p.Spec.DeepCopy()
	for i := range mutated.Containers {
		mutated.Containers[i].Image = old.Spec.Containers[i].Image
	}
	for i := range mutated.InitContainers {
		mutated.InitContainers[i].Image = old.Spec.InitContainers[i].Image
	}
	mutated.ActiveDeadlineSeconds = old.Spec.ActiveDeadlineSeconds
	mutated.Tolerations = old.Spec.Tolerations
	if len(mutated.SchedulingGates) <= len(old.Spec.SchedulingGates) {
		mutated.SchedulingGates = old.Spec.SchedulingGates
	}
	if old.Spec.TerminationGracePeriodSeconds != nil && *old.Spec.TerminationGracePeriodSeconds < 0 &&
		mutated.TerminationGracePeriodSeconds != nil && *mutated.TerminationGracePeriodSeconds == 1 {
		mutated.TerminationGracePeriodSeconds = old.Spec.TerminationGracePeriodSeconds
	}
	if !equality.Semantic.DeepEqual(mutated, &old.Spec) {
		errs = append(errs, field.Forbidden(specPath, podUpdateForbiddenMsg+"\n"+podSpecChangedFields(mutated, &old.Spec)))
	}
	return errs
}

// podSpecChangedFields names the top-level spec fields that differ, for
// the Forbidden message (upstream prints a full diff).
func podSpecChangedFields(a, b *corev1.PodSpec) string {
	var changed []string
	ca, cb := *a, *b
	check := func(name string, x, y any) {
		if !equality.Semantic.DeepEqual(x, y) {
			changed = append(changed, name)
		}
	}
	check("containers", ca.Containers, cb.Containers)
	check("initContainers", ca.InitContainers, cb.InitContainers)
	check("volumes", ca.Volumes, cb.Volumes)
	check("restartPolicy", ca.RestartPolicy, cb.RestartPolicy)
	check("nodeName", ca.NodeName, cb.NodeName)
	check("nodeSelector", ca.NodeSelector, cb.NodeSelector)
	check("serviceAccountName", ca.ServiceAccountName, cb.ServiceAccountName)
	check("affinity", ca.Affinity, cb.Affinity)
	check("hostNetwork", ca.HostNetwork, cb.HostNetwork)
	check("securityContext", ca.SecurityContext, cb.SecurityContext)
	check("terminationGracePeriodSeconds", ca.TerminationGracePeriodSeconds, cb.TerminationGracePeriodSeconds)
	if len(changed) == 0 {
		return "changed: spec"
	}
	return "changed: spec." + strings.Join(changed, ", spec.")
}

// tolerationsOnlyAdded reports whether every old toleration is still in
// now (tolerationSeconds of NoExecute ones may shrink).
func tolerationsOnlyAdded(now, old []corev1.Toleration) bool {
	for _, o := range old {
		found := false
		for _, n := range now {
			if n.Key == o.Key && n.Operator == o.Operator && n.Value == o.Value && n.Effect == o.Effect {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func isPodPhaseTerminal(p corev1.PodPhase) bool {
	return p == corev1.PodSucceeded || p == corev1.PodFailed
}

func validatePodStatusUpdate(p, old *corev1.Pod) field.ErrorList {
	var errs field.ErrorList
	st := field.NewPath("status")
	switch p.Status.Phase {
	case "", corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown:
	default:
		errs = append(errs, field.NotSupported(st.Child("phase"), p.Status.Phase,
			[]corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown}))
	}
	if isPodPhaseTerminal(old.Status.Phase) && p.Status.Phase != old.Status.Phase {
		errs = append(errs, field.Forbidden(st.Child("phase"), fmt.Sprintf("cannot transition from terminal phase %q to %q", old.Status.Phase, p.Status.Phase)))
	}
	if n := p.Status.NominatedNodeName; n != "" {
		for _, msg := range validation.IsDNS1123Subdomain(n) {
			errs = append(errs, field.Invalid(st.Child("nominatedNodeName"), n, msg))
		}
	}
	for i, ip := range p.Status.PodIPs {
		errs = append(errs, validation.IsValidIP(st.Child("podIPs").Index(i).Child("ip"), ip.IP)...)
	}
	for i, ip := range p.Status.HostIPs {
		errs = append(errs, validation.IsValidIP(st.Child("hostIPs").Index(i).Child("ip"), ip.IP)...)
	}
	if len(p.Status.PodIPs) > 0 && p.Status.PodIP != "" && p.Status.PodIPs[0].IP != p.Status.PodIP {
		errs = append(errs, field.Invalid(st.Child("podIPs").Index(0).Child("ip"), p.Status.PodIPs[0].IP, "must match status.podIP"))
	}
	return errs
}

// podGracefulDeletion: unscheduled or finished pods go at once; others
// get the requested grace period or spec.terminationGracePeriodSeconds.
func podGracefulDeletion(p *corev1.Pod, requested *int64) (int64, bool) {
	if p.Spec.NodeName == "" || isPodPhaseTerminal(p.Status.Phase) {
		return 0, false
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if p.Spec.TerminationGracePeriodSeconds != nil {
		grace = *p.Spec.TerminationGracePeriodSeconds
	}
	if requested != nil {
		grace = *requested
	}
	if grace < 0 {
		grace = 1
	}
	return grace, true
}

func podTable() *registry.TypedTable[*corev1.Pod] {
	return &registry.TypedTable[*corev1.Pod]{
		Columns: []metav1.TableColumnDefinition{
			columnName(),
			{Name: "Ready", Type: "string", Description: "The aggregate readiness state of this pod for accepting traffic."},
			{Name: "Status", Type: "string", Description: "The aggregate status of the containers in this pod."},
			{Name: "Restarts", Type: "string", Description: "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."},
			columnAge(),
			{Name: "IP", Type: "string", Priority: 1, Description: corev1.PodStatus{}.SwaggerDoc()["podIP"]},
			{Name: "Node", Type: "string", Priority: 1, Description: corev1.PodSpec{}.SwaggerDoc()["nodeName"]},
			{Name: "Nominated Node", Type: "string", Priority: 1, Description: corev1.PodStatus{}.SwaggerDoc()["nominatedNodeName"]},
			{Name: "Readiness Gates", Type: "string", Priority: 1, Description: corev1.PodSpec{}.SwaggerDoc()["readinessGates"]},
		},
		Row: func(p *corev1.Pod) []any { return podRow(p, time.Now()) },
	}
}

func isRestartableInit(c *corev1.Container) bool {
	return c != nil && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func podConditionTrue(st *corev1.PodStatus, t corev1.PodConditionType) bool {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podRow renders a pod's row the way upstream's printer does: READY counts
// ready containers, STATUS is the most telling reason (Init:N/M,
// ContainerCreating, CrashLoopBackOff, Completed, Terminating, …) and
// RESTARTS includes how long ago the last restart was.
func podRow(p *corev1.Pod, now time.Time) []any {
	restarts, sidecarRestarts := 0, 0
	total := len(p.Spec.Containers)
	ready := 0
	var lastRestart, lastSidecarRestart metav1.Time

	reason := string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			reason = corev1.PodReasonSchedulingGated
		}
	}

	inits := map[string]*corev1.Container{}
	for i := range p.Spec.InitContainers {
		inits[p.Spec.InitContainers[i].Name] = &p.Spec.InitContainers[i]
		if isRestartableInit(&p.Spec.InitContainers[i]) {
			total++
		}
	}

	initializing := false
	for i, cs := range p.Status.InitContainerStatuses {
		restarts += int(cs.RestartCount)
		if t := cs.LastTerminationState.Terminated; t != nil && lastRestart.Before(&t.FinishedAt) {
			lastRestart = t.FinishedAt
		}
		sidecar := isRestartableInit(inits[cs.Name])
		if sidecar {
			sidecarRestarts += int(cs.RestartCount)
			if t := cs.LastTerminationState.Terminated; t != nil && lastSidecarRestart.Before(&t.FinishedAt) {
				lastSidecarRestart = t.FinishedAt
			}
		}
		switch {
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			continue
		case sidecar && cs.Started != nil && *cs.Started:
			if cs.Ready {
				ready++
			}
			continue
		case cs.State.Terminated != nil:
			t := cs.State.Terminated
			switch {
			case t.Reason != "":
				reason = "Init:" + t.Reason
			case t.Signal != 0:
				reason = fmt.Sprintf("Init:Signal:%d", t.Signal)
			default:
				reason = fmt.Sprintf("Init:ExitCode:%d", t.ExitCode)
			}
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + cs.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers))
		}
		initializing = true
		break
	}

	if !initializing || podConditionTrue(&p.Status, corev1.PodInitialized) {
		restarts = sidecarRestarts
		lastRestart = lastSidecarRestart
		hasRunning := false
		for i := len(p.Status.ContainerStatuses) - 1; i >= 0; i-- {
			cs := p.Status.ContainerStatuses[i]
			restarts += int(cs.RestartCount)
			if t := cs.LastTerminationState.Terminated; t != nil && lastRestart.Before(&t.FinishedAt) {
				lastRestart = t.FinishedAt
			}
			switch {
			case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
				reason = cs.State.Waiting.Reason
			case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
				reason = cs.State.Terminated.Reason
			case cs.State.Terminated != nil:
				if cs.State.Terminated.Signal != 0 {
					reason = fmt.Sprintf("Signal:%d", cs.State.Terminated.Signal)
				} else {
					reason = fmt.Sprintf("ExitCode:%d", cs.State.Terminated.ExitCode)
				}
			case cs.Ready && cs.State.Running != nil:
				hasRunning = true
				ready++
			}
		}
		if reason == "Completed" && hasRunning {
			if podConditionTrue(&p.Status, corev1.PodReady) {
				reason = "Running"
			} else {
				reason = "NotReady"
			}
		}
	}

	if p.DeletionTimestamp != nil && p.Status.Reason == "NodeLost" {
		reason = "Unknown"
	} else if p.DeletionTimestamp != nil && !isPodPhaseTerminal(p.Status.Phase) {
		reason = "Terminating"
	}

	restartsStr := strconv.Itoa(restarts)
	if restarts != 0 && !lastRestart.IsZero() {
		restartsStr = fmt.Sprintf("%d (%s ago)", restarts, registry.HumanAge(lastRestart, now))
	}

	ip := orNone(podIP(p))
	gates := "<none>"
	if len(p.Spec.ReadinessGates) > 0 {
		trueCount := 0
		for _, g := range p.Spec.ReadinessGates {
			if podConditionTrue(&p.Status, g.ConditionType) {
				trueCount++
			}
		}
		gates = fmt.Sprintf("%d/%d", trueCount, len(p.Spec.ReadinessGates))
	}
	return []any{
		p.Name,
		fmt.Sprintf("%d/%d", ready, total),
		reason,
		restartsStr,
		registry.HumanAge(p.CreationTimestamp, now),
		ip,
		orNone(p.Spec.NodeName),
		orNone(p.Status.NominatedNodeName),
		gates,
	}
}
