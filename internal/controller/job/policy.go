package job

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// matchFailurePolicy returns the action of the first rule of policy that
// matches the failed pod p (nil when none does), whether the failure counts
// towards backoffLimit, and, for FailJob, the message of the Job's failure
// condition. As upstream: exit-code rules look at terminated containers
// (init containers too) with a non-zero exit code; condition rules at the
// pod's conditions.
func matchFailurePolicy(policy *batchv1.PodFailurePolicy, p *corev1.Pod) (action *batchv1.PodFailurePolicyAction, counts bool, message string) {
	if policy == nil {
		return nil, true, ""
	}
	for i, rule := range policy.Rules {
		var why string
		switch {
		case rule.OnExitCodes != nil:
			c := matchingContainer(rule.OnExitCodes, p)
			if c == nil {
				continue
			}
			why = fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
				c.Name, p.Namespace, p.Name, c.State.Terminated.ExitCode, rule.Action, i)
		case len(rule.OnPodConditions) > 0:
			cond := matchingCondition(rule.OnPodConditions, p)
			if cond == nil {
				continue
			}
			why = fmt.Sprintf("Pod %s/%s has condition %s matching %s rule at index %d",
				p.Namespace, p.Name, cond.Type, rule.Action, i)
		default:
			continue
		}
		a := rule.Action
		switch a {
		case batchv1.PodFailurePolicyActionIgnore:
			return &a, false, ""
		case batchv1.PodFailurePolicyActionFailJob:
			return &a, true, why
		default: // Count, FailIndex (the caller fails the index)
			return &a, true, ""
		}
	}
	return nil, true, ""
}

func matchingContainer(req *batchv1.PodFailurePolicyOnExitCodesRequirement, p *corev1.Pod) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range list {
			cs := &list[i]
			if cs.State.Terminated == nil || cs.State.Terminated.ExitCode == 0 {
				continue
			}
			if req.ContainerName != nil && *req.ContainerName != cs.Name {
				continue
			}
			in := slices.Contains(req.Values, cs.State.Terminated.ExitCode)
			if (req.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) == in {
				return cs
			}
		}
	}
	return nil
}

func matchingCondition(reqs []batchv1.PodFailurePolicyOnPodConditionsPattern, p *corev1.Pod) *corev1.PodCondition {
	for _, req := range reqs {
		for i := range p.Status.Conditions {
			c := &p.Status.Conditions[i]
			status := req.Status
			if status == "" {
				status = corev1.ConditionTrue
			}
			if c.Type == req.Type && c.Status == status {
				return c
			}
		}
	}
	return nil
}

// matchSuccessPolicy returns the message of the SuccessCriteriaMet
// condition when a rule of an Indexed Job's successPolicy is met by the
// completed indexes, or "" (rules are tried in order): a rule with only
// succeededIndexes needs all of them, one with only succeededCount needs
// that many completed indexes, one with both needs that many among the
// listed indexes.
func matchSuccessPolicy(policy *batchv1.SuccessPolicy, completions int, completed indexSet) string {
	if policy == nil {
		return ""
	}
	for i, rule := range policy.Rules {
		var have, want int
		if rule.SucceededIndexes != nil {
			listed := parseIndexes(*rule.SucceededIndexes, completions)
			for ix := range listed {
				if _, ok := completed[ix]; ok {
					have++
				}
			}
			want = len(listed)
		} else {
			have = len(completed)
		}
		if rule.SucceededCount != nil {
			want = int(*rule.SucceededCount)
		}
		if want > 0 && have >= want {
			return fmt.Sprintf("Matched rules at index %d", i)
		}
	}
	return ""
}
