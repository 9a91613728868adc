package podstatus

import (
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// Waiting reasons and condition reasons the computation produces itself;
// the sync engine supplies the others through Observed.Waiting.
const (
	ReasonContainerCreating = "ContainerCreating"
	ReasonPodInitializing   = "PodInitializing"
	// ReasonContainerStatusUnknown marks a container that was running and
	// can no longer be found in the runtime.
	ReasonContainerStatusUnknown = "ContainerStatusUnknown"

	reasonPodCompleted             = "PodCompleted"
	reasonPodFailed                = "PodFailed"
	reasonContainersNotReady       = "ContainersNotReady"
	reasonContainersNotInitialized = "ContainersNotInitialized"
	reasonReadinessGatesNotReady   = "ReadinessGatesNotReady"
)

// ContainerIDPrefix is prepended to runtime container IDs in pod status.
const ContainerIDPrefix = "containerd://"

// Computer computes pod status; it has no state, so its zero value is
// ready and safe for concurrent use. It exists so the sync engine can take
// the computation through an interface.
type Computer struct{}

// Compute is the package function Compute.
func (Computer) Compute(pod *v1.Pod, obs Observed, probes Probes, now time.Time) v1.PodStatus {
	return Compute(pod, obs, probes, now)
}

// Compute returns the status the API should show for pod given what the
// runtime shows of it (obs), the probe results and the current time. It
// reads pod.Status as the previous status and never modifies pod or obs;
// the result shares no memory with either.
//
// It is pure and deterministic: computing again with the returned status
// as pod.Status and the same obs yields a DeepEqual status, also after a
// round trip through the API (times are whole seconds, in time.Local), so
// a writer can skip writes of unchanged status.
//
// A nil probes means every running container is started and ready.
func Compute(pod *v1.Pod, obs Observed, probes Probes, now time.Time) v1.PodStatus {
	if probes == nil {
		probes = allReady{}
	}
	old := &pod.Status
	hasInit := len(pod.Spec.InitContainers) > 0
	var s v1.PodStatus

	s.InitContainerStatuses = containerStatuses(pod, obs, probes, pod.Spec.InitContainers, old.InitContainerStatuses, hasInit, true)
	s.ContainerStatuses = containerStatuses(pod, obs, probes, pod.Spec.Containers, old.ContainerStatuses, hasInit, false)
	sortByName(s.ContainerStatuses)
	if len(pod.Spec.EphemeralContainers) > 0 {
		eph := make([]v1.Container, len(pod.Spec.EphemeralContainers))
		for i := range pod.Spec.EphemeralContainers {
			eph[i] = v1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
		}
		s.EphemeralContainerStatuses = containerStatuses(pod, obs, probes, eph, old.EphemeralContainerStatuses, hasInit, false)
		sortByName(s.EphemeralContainerStatuses)
	}

	// Phase, then its reason and message.
	all := append(slices.Clone(s.InitContainerStatuses), s.ContainerStatuses...)
	terminal := isTerminal(obs.Phase) || (pod.DeletionTimestamp != nil && !sandboxReady(obs.Sandbox) && !anyRunning(all))
	s.Phase = phase(pod, s.InitContainerStatuses, s.ContainerStatuses, terminal, anyRegularStarted(s.ContainerStatuses))
	if terminal && !isTerminal(s.Phase) && pod.DeletionTimestamp != nil {
		// A deleted pod whose containers are all gone ends Failed.
		s.Phase = v1.PodFailed
	}
	if obs.Phase != "" {
		s.Phase = obs.Phase
		s.Reason, s.Message = obs.Reason, obs.Message
	}
	if isTerminal(old.Phase) && s.Phase != old.Phase {
		s.Phase = old.Phase // a terminal phase is final
	}
	if s.Phase == old.Phase && s.Reason == "" && s.Message == "" {
		s.Reason, s.Message = old.Reason, old.Message
	}

	// Addresses and times.
	if obs.NodeIP != "" {
		s.HostIP = obs.NodeIP
		s.HostIPs = []v1.HostIP{{IP: obs.NodeIP}}
	} else {
		s.HostIP = old.HostIP
		s.HostIPs = slices.Clone(old.HostIPs)
	}
	switch {
	case pod.Spec.HostNetwork && obs.NodeIP != "":
		s.PodIP = obs.NodeIP
		s.PodIPs = []v1.PodIP{{IP: obs.NodeIP}}
	case !pod.Spec.HostNetwork && obs.Sandbox != nil && obs.Sandbox.IP != "":
		s.PodIP = obs.Sandbox.IP
		s.PodIPs = []v1.PodIP{{IP: obs.Sandbox.IP}}
		for _, ip := range obs.Sandbox.AdditionalIPs {
			if ip != "" && ip != obs.Sandbox.IP {
				s.PodIPs = append(s.PodIPs, v1.PodIP{IP: ip})
			}
		}
	default:
		// No address now (no sandbox, or a stopped one): a pod keeps
		// the IPs it had.
		s.PodIP = old.PodIP
		s.PodIPs = slices.Clone(old.PodIPs)
	}
	if old.StartTime != nil {
		s.StartTime = old.StartTime.DeepCopy()
	} else {
		t := apiTime(now)
		s.StartTime = &t
	}
	s.QOSClass = old.QOSClass
	if s.QOSClass == "" {
		s.QOSClass = QOSClass(pod)
	}
	if pod.Generation > 0 {
		s.ObservedGeneration = pod.Generation
	} else {
		s.ObservedGeneration = old.ObservedGeneration
	}

	s.Conditions = conditions(pod, obs, s, now)
	mergeForeign(&s, old)
	return s
}

// mergeForeign sets in s what others than the agent own in a pod's status,
// as api has it: the conditions the agent does not compute (placed before
// the agent's own), the nominated node and the resource claim statuses.
func mergeForeign(s *v1.PodStatus, api *v1.PodStatus) {
	conds := make([]v1.PodCondition, 0, len(api.Conditions)+len(s.Conditions))
	for i := range api.Conditions {
		if !kubeletOwned(api.Conditions[i].Type) {
			conds = append(conds, *api.Conditions[i].DeepCopy())
		}
	}
	for i := range s.Conditions {
		if kubeletOwned(s.Conditions[i].Type) {
			conds = append(conds, s.Conditions[i])
		}
	}
	if len(conds) == 0 {
		conds = nil
	}
	s.Conditions = conds
	s.NominatedNodeName = api.NominatedNodeName
	s.Resize = api.Resize //nolint:staticcheck // deprecated, but whatever the API holds stays
	s.ResourceClaimStatuses = nil
	for i := range api.ResourceClaimStatuses {
		s.ResourceClaimStatuses = append(s.ResourceClaimStatuses, *api.ResourceClaimStatuses[i].DeepCopy())
	}
	s.ExtendedResourceClaimStatus = api.ExtendedResourceClaimStatus.DeepCopy()
	s.NodeAllocatableResourceClaimStatuses = nil
	for i := range api.NodeAllocatableResourceClaimStatuses {
		s.NodeAllocatableResourceClaimStatuses = append(s.NodeAllocatableResourceClaimStatuses, *api.NodeAllocatableResourceClaimStatuses[i].DeepCopy())
	}
}

type allReady struct{}

func (allReady) Ready(string) bool   { return true }
func (allReady) Started(string) bool { return true }

func isTerminal(p v1.PodPhase) bool { return p == v1.PodSucceeded || p == v1.PodFailed }

func sandboxReady(sb *cri.Sandbox) bool { return sb != nil && sb.State == cri.SandboxReady }

// apiTime is t as the API gives it back: whole seconds in time.Local; the
// zero time stays zero.
func apiTime(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(time.Unix(t.Unix(), 0))
}

func restartable(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

// containerStatuses computes the statuses of containers (the init
// containers when init), in the order of containers.
func containerStatuses(pod *v1.Pod, obs Observed, probes Probes, containers []v1.Container, old []v1.ContainerStatus, hasInit, init bool) []v1.ContainerStatus {
	if len(containers) == 0 {
		return nil
	}
	out := make([]v1.ContainerStatus, 0, len(containers))
	for i := range containers {
		c := &containers[i]
		var prev *v1.ContainerStatus
		for j := range old {
			if old[j].Name == c.Name {
				prev = &old[j]
				break
			}
		}
		out = append(out, containerStatus(pod, obs, probes, c, prev, hasInit, init))
	}
	return out
}

func containerStatus(pod *v1.Pod, obs Observed, probes Probes, c *v1.Container, prev *v1.ContainerStatus, hasInit, init bool) v1.ContainerStatus {
	defaultWaiting := ReasonContainerCreating
	if hasInit {
		defaultWaiting = ReasonPodInitializing
	}
	waiting, haveWaiting := obs.Waiting[c.Name]
	regularInit := init && !restartable(c)
	list := obs.Containers[c.Name]

	var st v1.ContainerStatus
	if len(list) == 0 {
		// Nothing in the runtime (yet, or any more).
		if prev != nil && prev.State.Terminated != nil {
			st = *prev.DeepCopy()
		} else {
			st = v1.ContainerStatus{State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: defaultWaiting}}}
			if prev != nil {
				st.RestartCount = prev.RestartCount
				st.LastTerminationState = *prev.LastTerminationState.DeepCopy()
				if prev.State.Running != nil && st.LastTerminationState.Terminated == nil {
					// It ran and vanished: it ended in a way we cannot
					// know.
					st.LastTerminationState.Terminated = &v1.ContainerStateTerminated{
						Reason:   ReasonContainerStatusUnknown,
						Message:  "The container could not be located when the pod was deleted.  The container used to be Running",
						ExitCode: 137,
					}
					if pod.DeletionTimestamp == nil {
						st.RestartCount++
					}
				}
			}
		}
	} else {
		cur := &list[0]
		st.ContainerID = ContainerIDPrefix + cur.ID
		st.ImageID = cur.ImageRef
		st.RestartCount = int32(cur.Attempt)
		st.State = runtimeState(cur, waitingFor(obs, c.Name, defaultWaiting))
		switch {
		case len(list) > 1:
			st.LastTerminationState = runtimeState(&list[1], v1.ContainerStateWaiting{})
		case prev != nil && prev.ContainerID == st.ContainerID && prev.LastTerminationState.Terminated != nil:
			// The previous container is gone from the runtime; what
			// the API knew of it stays.
			st.LastTerminationState = *prev.LastTerminationState.DeepCopy()
		}
	}
	st.Name = c.Name
	st.Image = c.Image
	if regularInit && len(list) == 0 && st.State.Waiting != nil && anyAppContainerCreated(pod, obs) {
		// The init container is gone from the runtime, but app
		// containers exist, so it completed.
		st.State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
			Reason:  "Completed",
			Message: "Unable to get init container status from container runtime and pod has been initialized, treat it as exited normally",
		}}
		haveWaiting = false
	}

	// The sync's word on why it is not running applies to a container
	// that is not running and will be started again.
	if haveWaiting && st.State.Running == nil &&
		!(regularInit && st.State.Terminated != nil && st.State.Terminated.ExitCode == 0) {
		if st.State.Terminated != nil {
			st.LastTerminationState = v1.ContainerState{Terminated: st.State.Terminated}
		}
		st.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: waiting.Reason, Message: waiting.Message}}
	}

	id := strings.TrimPrefix(st.ContainerID, ContainerIDPrefix)
	running := st.State.Running != nil
	started := running && probes.Started(id)
	st.Started = &started
	if regularInit {
		st.Ready = st.State.Terminated != nil && st.State.Terminated.ExitCode == 0
	} else {
		st.Ready = started && probes.Ready(id)
	}
	st.VolumeMounts = volumeMounts(c)
	return st
}

func anyAppContainerCreated(pod *v1.Pod, obs Observed) bool {
	for i := range pod.Spec.Containers {
		if len(obs.Containers[pod.Spec.Containers[i].Name]) > 0 {
			return true
		}
	}
	return false
}

// waitingFor is the waiting state of a created container.
func waitingFor(obs Observed, name, defaultReason string) v1.ContainerStateWaiting {
	if w, ok := obs.Waiting[name]; ok {
		return v1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
	}
	return v1.ContainerStateWaiting{Reason: defaultReason}
}

// runtimeState converts a runtime container's state; created is the
// state of a created container.
func runtimeState(c *cri.Container, created v1.ContainerStateWaiting) v1.ContainerState {
	switch c.State {
	case cri.ContainerRunning:
		return v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: apiTime(c.StartedAt)}}
	case cri.ContainerExited:
		reason := c.Reason
		if reason == "" {
			reason = "Error"
			if c.ExitCode == 0 {
				reason = "Completed"
			}
		}
		return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
			ExitCode:    c.ExitCode,
			Reason:      reason,
			Message:     c.Message,
			StartedAt:   apiTime(c.StartedAt),
			FinishedAt:  apiTime(c.FinishedAt),
			ContainerID: ContainerIDPrefix + c.ID,
		}}
	case cri.ContainerCreated:
		return v1.ContainerState{Waiting: &created}
	default:
		return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
			ExitCode:    137,
			Reason:      ReasonContainerStatusUnknown,
			Message:     "The container could not be located when the pod was terminated",
			ContainerID: ContainerIDPrefix + c.ID,
		}}
	}
}

// volumeMounts is the status of c's volume mounts: what the spec asked,
// read-only mounts not recursively so.
func volumeMounts(c *v1.Container) []v1.VolumeMountStatus {
	if len(c.VolumeMounts) == 0 {
		return nil
	}
	out := make([]v1.VolumeMountStatus, 0, len(c.VolumeMounts))
	for _, m := range c.VolumeMounts {
		vs := v1.VolumeMountStatus{Name: m.Name, MountPath: m.MountPath, ReadOnly: m.ReadOnly}
		if m.ReadOnly {
			rro := v1.RecursiveReadOnlyDisabled
			vs.RecursiveReadOnly = &rro
		}
		out = append(out, vs)
	}
	return out
}

func sortByName(s []v1.ContainerStatus) {
	slices.SortStableFunc(s, func(a, b v1.ContainerStatus) int { return strings.Compare(a.Name, b.Name) })
}

func findStatus(s []v1.ContainerStatus, name string) *v1.ContainerStatus {
	for i := range s {
		if s[i].Name == name {
			return &s[i]
		}
	}
	return nil
}

func anyRunning(s []v1.ContainerStatus) bool {
	for i := range s {
		if s[i].State.Running != nil {
			return true
		}
	}
	return false
}

func anyRegularStarted(s []v1.ContainerStatus) bool {
	for i := range s {
		if s[i].State.Running != nil || s[i].State.Terminated != nil {
			return true
		}
	}
	return false
}
