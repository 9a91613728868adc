package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
	"github.com/skiff-dev/skiff/internal/scheduler/queue"
)

// Event reasons, as upstream records them.
const (
	reasonScheduled        = "Scheduled"
	reasonFailedScheduling = "FailedScheduling"
)

// scheduleOne makes one decision for qp and starts its binding. It runs
// on the scheduling goroutine only.
func (s *Scheduler) scheduleOne(ctx context.Context, qp queue.QueuedPod) {
	// The queue may hold an older copy; use the informer's latest.
	pod := qp.Pod
	cur, err := s.podLister.Pods(pod.Namespace).Get(pod.Name)
	switch {
	case err == nil && cur.UID == pod.UID:
		pod = cur
	case err == nil || apierrors.IsNotFound(err):
		// Deleted (or replaced by a namesake) since it was queued.
		s.queue.Done(pod.UID)
		return
	}
	if !s.responsible(pod) || s.cache.IsAssumed(pod.UID) {
		s.queue.Done(pod.UID)
		return
	}
	qp.Pod = pod
	log := s.log.With("pod", pod.Namespace+"/"+pod.Name, "attempt", qp.Attempts)
	s.cache.UpdateSnapshot(s.snap)
	pi := framework.NewPodInfo(pod, s.priority(pod))
	if len(pod.Spec.TopologySpreadConstraints) == 0 {
		pi.DefaultSpreadSelector = s.defaultSpreadSelector(pod)
	}

	snap := s.nominated.adjust(s.snap, pi, s.priority)
	result, err := s.fw.Schedule(ctx, pi, snap)
	if err != nil {
		var fit *framework.FitError
		if errors.As(err, &fit) {
			nominated := s.preempt(ctx, log, pi, snap, fit)
			s.recordFailure(ctx, log, qp, fit, nominated)
			return
		}
		log.Info("scheduling failed", "err", err)
		s.queue.Requeue(qp, nil, true)
		s.recorder.Eventf(pod, v1.EventTypeWarning, reasonFailedScheduling, "%v", err)
		return
	}

	assumed := pod.DeepCopy()
	assumed.Spec.NodeName = result.Node
	if err := s.cache.AssumePod(assumed); err != nil {
		log.Info("assume failed", "err", err)
		s.queue.Requeue(qp, nil, true)
		return
	}
	s.queue.Done(pod.UID)
	log.Debug("pod assumed", "node", result.Node, "evaluated", result.Evaluated, "feasible", result.Feasible)
	s.binds.Go(func() { s.bind(ctx, log, qp, assumed) })
}

// bind binds an assumed pod; on failure it forgets the assumption and
// queues the pod again.
func (s *Scheduler) bind(ctx context.Context, log *slog.Logger, qp queue.QueuedPod, assumed *v1.Pod) {
	binding := &v1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: assumed.Namespace, Name: assumed.Name, UID: assumed.UID},
		Target:     v1.ObjectReference{Kind: "Node", Name: assumed.Spec.NodeName},
	}
	err := s.client.CoreV1().Pods(assumed.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
	if err != nil {
		s.cache.ForgetPod(assumed)
		if ctx.Err() != nil {
			return
		}
		log.Info("binding failed", "node", assumed.Spec.NodeName, "err", err)
		s.recorder.Eventf(qp.Pod, v1.EventTypeWarning, reasonFailedScheduling, "Binding rejected: %v", err)
		s.queue.Readd(qp)
		return
	}
	s.cache.FinishBinding(assumed)
	log.Debug("pod bound", "node", assumed.Spec.NodeName)
	s.recorder.Eventf(qp.Pod, v1.EventTypeNormal, reasonScheduled, "Successfully assigned %s/%s to %s", assumed.Namespace, assumed.Name, assumed.Spec.NodeName)
}

// recordFailure requeues an unschedulable pod and reports why, on the
// pod's PodScheduled condition and in a FailedScheduling event.
func (s *Scheduler) recordFailure(ctx context.Context, log *slog.Logger, qp queue.QueuedPod, fit *framework.FitError, nominated string) {
	var rejectedBy []string
	seen := map[string]bool{}
	for _, st := range fit.Diagnosis.NodeStatuses {
		if p := st.Plugin(); p != "" && !seen[p] {
			seen[p] = true
			rejectedBy = append(rejectedBy, p)
		}
	}
	if nominated != "" {
		// Victims are being evicted: their deletion moves the pod back.
		rejectedBy = nil
	}
	s.queue.Requeue(qp, rejectedBy, false)
	msg := fit.Error()
	log.Debug("pod unschedulable", "reason", msg)
	s.recorder.Event(qp.Pod, v1.EventTypeWarning, reasonFailedScheduling, msg)
	if err := s.patchUnschedulable(ctx, qp.Pod, msg, nominated); err != nil && ctx.Err() == nil {
		log.Info("updating pod status failed", "err", err)
	}
}

// patchUnschedulable sets PodScheduled=False/Unschedulable (and the
// nominated node) unless the pod already says exactly that.
func (s *Scheduler) patchUnschedulable(ctx context.Context, pod *v1.Pod, msg, nominated string) error {
	var cur *v1.PodCondition
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == v1.PodScheduled {
			cur = &pod.Status.Conditions[i]
		}
	}
	if cur != nil && cur.Status == v1.ConditionFalse && cur.Reason == v1.PodReasonUnschedulable && cur.Message == msg &&
		(nominated == "" || pod.Status.NominatedNodeName == nominated) {
		return nil
	}
	cond := map[string]any{
		"type":    v1.PodScheduled,
		"status":  v1.ConditionFalse,
		"reason":  v1.PodReasonUnschedulable,
		"message": msg,
	}
	if cur == nil || cur.Status != v1.ConditionFalse {
		cond["lastTransitionTime"] = metav1.NewTime(s.cfg.Now()).Rfc3339Copy()
	}
	status := map[string]any{"conditions": []any{cond}}
	if nominated != "" {
		status["nominatedNodeName"] = nominated
	}
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
