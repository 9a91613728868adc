package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// Preemption messages, as upstream words them.
const (
	msgNoVictims    = "No preemption victims found for incoming pod"
	msgNotHelpful   = "Preemption is not helpful for scheduling"
	reasonPreempted = "Preempted"
)

// preempt tries to make room for pi, which fits nowhere, by evicting
// lower-priority pods on one node. It returns the node to nominate, or
// "" (then it sets the FitError's post-filter message). It runs on the
// scheduling goroutine; snap is the decision's snapshot.
func (s *Scheduler) preempt(ctx context.Context, log *slog.Logger, pi *framework.PodInfo, snap *framework.Snapshot, fit *framework.FitError) string {
	pod := pi.Pod
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy == v1.PreemptNever {
		return ""
	}
	// Victims already terminating on the nominated node: wait for them
	// rather than evicting more.
	if nn := pod.Status.NominatedNodeName; nn != "" {
		if ni := snap.Get(nn); ni != nil {
			for _, p := range ni.Pods {
				if p.Pod.DeletionTimestamp != nil && p.Priority < pi.Priority {
					return nn
				}
			}
		}
	}
	v := s.fw.SelectVictims(ctx, pi, snap, fit.Diagnosis, s.violatesPDB)
	if v == nil {
		fit.Diagnosis.PostFilterMsg = preemptionFailureMessage(fit)
		return ""
	}
	for _, victim := range v.Pods {
		vp := victim.Pod
		if err := s.markPreempted(ctx, vp, pod.Spec.SchedulerName); err != nil {
			log.Info("marking preempted pod failed", "victim", vp.Namespace+"/"+vp.Name, "err", err)
		}
		err := s.client.CoreV1().Pods(vp.Namespace).Delete(ctx, vp.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &vp.UID},
		})
		if err != nil {
			log.Info("preempting pod failed", "victim", vp.Namespace+"/"+vp.Name, "err", err)
			continue
		}
		s.recorder.Eventf(vp, v1.EventTypeNormal, reasonPreempted, "Preempted by pod %s/%s on node %s", pod.Namespace, pod.Name, v.Node)
	}
	// Pods of lower priority nominated to the same node lose their
	// nomination (as upstream): the room is now this pod's, and they
	// will look for another node.
	for _, p := range s.nominated.lowerOn(v.Node, pi.Priority, s.priority, pod.UID) {
		s.nominated.set(p, "")
		if err := s.clearNomination(ctx, p); err != nil && ctx.Err() == nil {
			log.Info("clearing nomination failed", "pod", p.Namespace+"/"+p.Name, "err", err)
		}
	}
	s.nominated.set(pod, v.Node)
	log.Info("preempting", "node", v.Node, "victims", len(v.Pods), "pdbViolations", v.PDBViolations)
	return v.Node
}

// markPreempted sets the victim's DisruptionTarget condition before it is
// deleted, as upstream's scheduler does, so that its owner (a Job's pod
// failure policy, say) and its user see why it went.
func (s *Scheduler) markPreempted(ctx context.Context, victim *v1.Pod, schedulerName string) error {
	for _, c := range victim.Status.Conditions {
		if c.Type == v1.DisruptionTarget && c.Status == v1.ConditionTrue && c.Reason == v1.PodReasonPreemptionByScheduler {
			return nil
		}
	}
	return s.patchStatus(ctx, victim, map[string]any{"conditions": []any{map[string]any{
		"type":               v1.DisruptionTarget,
		"status":             v1.ConditionTrue,
		"reason":             v1.PodReasonPreemptionByScheduler,
		"message":            schedulerName + ": preempting to accommodate a higher priority pod",
		"lastTransitionTime": metav1.NewTime(s.cfg.Now()).Rfc3339Copy(),
	}}})
}

// patchStatus applies status to pod's status as a strategic merge patch
// (conditions merge by type).
func (s *Scheduler) patchStatus(ctx context.Context, pod *v1.Pod, status map[string]any) error {
	patch, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return fmt.Errorf("encoding status patch: %w", err)
	}
	_, err = s.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("patching status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// clearNomination removes status.nominatedNodeName from pod. The status
// update comes back through the informer and queues the pod again.
func (s *Scheduler) clearNomination(ctx context.Context, pod *v1.Pod) error {
	patch := []byte(`{"status":{"nominatedNodeName":null}}`)
	_, err := s.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("clearing nominatedNodeName of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// preemptionFailureMessage renders "preemption: 0/N nodes are available:
// …." over the nodes' rejection codes.
func preemptionFailureMessage(fit *framework.FitError) string {
	counts := map[string]int{}
	for _, st := range fit.Diagnosis.NodeStatuses {
		if st.Code() == framework.Unschedulable {
			counts[msgNoVictims]++
		} else {
			counts[msgNotHelpful]++
		}
	}
	parts := make([]string, 0, len(counts))
	for m, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, m))
	}
	sort.Strings(parts)
	return fmt.Sprintf("preemption: 0/%d nodes are available: %s.", fit.NumAllNodes, strings.Join(parts, ", "))
}

// violatesPDB reports whether evicting p, after the pods in before,
// breaks a PodDisruptionBudget that selects it: as upstream, each budget
// allows disruptionsAllowed evictions, and the pods in before that it
// selects use them up first.
func (s *Scheduler) violatesPDB(p *framework.PodInfo, before []*framework.PodInfo) bool {
	pdbs, err := s.pdbLister.PodDisruptionBudgets(p.Pod.Namespace).List(labels.Everything())
	if err != nil {
		return false
	}
	for _, pdb := range pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(p.Pod.Labels)) {
			continue
		}
		allowed := pdb.Status.DisruptionsAllowed
		for _, b := range before {
			if b.Pod.Namespace == pdb.Namespace && sel.Matches(labels.Set(b.Pod.Labels)) {
				allowed--
			}
		}
		if allowed <= 0 {
			return true
		}
	}
	return false
}
