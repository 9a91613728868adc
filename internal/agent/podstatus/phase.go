package podstatus

import (
	v1 "k8s.io/api/core/v1"
)

// shouldRestart says whether a container of pod that exited with code is
// started again.
func shouldRestart(pod *v1.Pod, c *v1.Container, init bool, code int32) bool {
	policy := pod.Spec.RestartPolicy
	if c.RestartPolicy != nil {
		switch *c.RestartPolicy {
		case v1.ContainerRestartPolicyAlways:
			return true
		case v1.ContainerRestartPolicyOnFailure:
			return code != 0
		case v1.ContainerRestartPolicyNever:
			return false
		}
	}
	if init && policy == v1.RestartPolicyAlways {
		policy = v1.RestartPolicyOnFailure // init containers run to completion
	}
	switch policy {
	case v1.RestartPolicyNever:
		return false
	case v1.RestartPolicyOnFailure:
		return code != 0
	default:
		return true
	}
}

// phase is the pod phase from its container statuses. terminal says the
// pod's containers will not run again; initialized says an app container
// has run.
func phase(pod *v1.Pod, initStatuses, statuses []v1.ContainerStatus, terminal, initialized bool) v1.PodPhase {
	pendingInit, pendingSidecars, failedInitFinal := 0, 0, 0
	unknown, running, waiting, stopped, stoppedFinal, succeeded := 0, 0, 0, 0, 0, 0

	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		st := findStatus(initStatuses, c.Name)
		if restartable(c) {
			// Sidecars count with the app containers, but an exited
			// one does not count at all.
			switch {
			case st == nil:
				unknown++
			case st.State.Running != nil:
				if st.Started == nil || !*st.Started {
					pendingSidecars++
				}
				running++
			case st.State.Terminated != nil:
			case st.State.Waiting != nil && st.LastTerminationState.Terminated != nil:
			case st.State.Waiting != nil:
				pendingSidecars++
				waiting++
			default:
				pendingSidecars++
				unknown++
			}
			continue
		}
		var code *int32
		switch {
		case st == nil:
			pendingInit++
		case st.State.Running != nil:
			pendingInit++
		case st.State.Terminated != nil:
			code = &st.State.Terminated.ExitCode
		case st.State.Waiting != nil && st.LastTerminationState.Terminated != nil:
			code = &st.LastTerminationState.Terminated.ExitCode
		default:
			pendingInit++
		}
		if code != nil && *code != 0 && !shouldRestart(pod, c, true, *code) {
			failedInitFinal++
		}
	}

	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		st := findStatus(statuses, c.Name)
		var code *int32
		switch {
		case st == nil:
			unknown++
		case st.State.Running != nil:
			running++
		case st.State.Terminated != nil:
			code = &st.State.Terminated.ExitCode
		case st.State.Waiting != nil && st.LastTerminationState.Terminated != nil:
			code = &st.LastTerminationState.Terminated.ExitCode
		case st.State.Waiting != nil:
			waiting++
		default:
			unknown++
		}
		if code != nil {
			stopped++
			if *code == 0 {
				succeeded++
			}
			if !shouldRestart(pod, c, false, *code) {
				stoppedFinal++
			}
		}
	}

	if failedInitFinal > 0 {
		return v1.PodFailed
	}
	switch {
	case pendingInit > 0 || (pendingSidecars > 0 && !initialized):
		return v1.PodPending
	case waiting > 0:
		return v1.PodPending
	case running > 0 && unknown == 0:
		return v1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if terminal || stopped == stoppedFinal {
			if stopped == succeeded {
				return v1.PodSucceeded
			}
			return v1.PodFailed
		}
		return v1.PodRunning // some are restarting
	default:
		return v1.PodPending
	}
}
