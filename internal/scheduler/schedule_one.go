package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
	"github.com/skiff-dev/skiff/internal/scheduler/plugins"
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

// bind binds an assumed pod, after its delayed claims (bindVolumes); on
// failure it forgets the assumption and queues the pod again. It runs on
// a bind goroutine and may block there while the claims are bound.
func (s *Scheduler) bind(ctx context.Context, log *slog.Logger, qp queue.QueuedPod, assumed *v1.Pod) {
	if err := s.bindVolumes(ctx, log, assumed); err != nil {
		// A claim annotated with selected-node keeps it: the provisioner
		// may already be at work there, and VolumeBinding sends the pod
		// back to that node (upstream re-selects only once the node is
		// gone, which skiff does not do yet).
		s.cache.ForgetPod(assumed)
		if ctx.Err() != nil {
			return
		}
		log.Info("binding volumes failed", "node", assumed.Spec.NodeName, "err", err)
		s.recorder.Eventf(qp.Pod, v1.EventTypeWarning, reasonFailedScheduling, "running PreBind plugin %q: %v", plugins.VolumeBindingName, err)
		s.queue.Readd(qp)
		return
	}
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

// volumeBindTimeout bounds bindVolumes' wait for the claims to be bound
// (upstream waits up to 10 minutes; a local-path claim is provisioned in
// well under a second, and a pod waiting longer is better retried).
const volumeBindTimeout = 2 * time.Minute

// bindVolumes makes the writes the pod's unbound WaitForFirstConsumer
// claims need on its node (see plugins.VolumeBinding.Bindings) and waits
// until each is bound (spec.volumeName set). Pods without such claims
// return at once. Writing is idempotent: a volume already pre-bound or a
// claim already annotated is left as is.
func (s *Scheduler) bindVolumes(ctx context.Context, log *slog.Logger, assumed *v1.Pod) error {
	if !plugins.HasClaims(assumed) {
		return nil
	}
	node, err := s.nodeLister.Get(assumed.Spec.NodeName)
	if err != nil {
		return fmt.Errorf("getting node %s: %w", assumed.Spec.NodeName, err)
	}
	bindings, err := s.volumes.Bindings(assumed, node)
	if err != nil || len(bindings) == 0 {
		return err
	}
	for _, b := range bindings {
		if b.Volume != nil {
			// Pre-bind, as upstream's binder: claimRef and
			// bound-by-controller, guarded by the cached resourceVersion
			// (a volume taken meanwhile fails with a conflict).
			pv, dirty, err := storagehelpers.GetBindVolumeToClaim(b.Volume, b.Claim)
			if err != nil {
				return fmt.Errorf("pre-binding volume %s: %w", b.Volume.Name, err)
			}
			if !dirty {
				continue
			}
			if _, err := s.client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("pre-binding volume %s to claim %s/%s: %w", pv.Name, b.Claim.Namespace, b.Claim.Name, err)
			}
			log.Debug("volume pre-bound", "volume", pv.Name, "claim", b.Claim.Name)
			continue
		}
		if b.Claim.Annotations[storagehelpers.AnnSelectedNode] == node.Name {
			continue
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{storagehelpers.AnnSelectedNode: node.Name},
		}})
		if err != nil {
			return fmt.Errorf("encoding claim patch: %w", err)
		}
		_, err = s.client.CoreV1().PersistentVolumeClaims(b.Claim.Namespace).Patch(ctx, b.Claim.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil {
			return fmt.Errorf("selecting node %s for claim %s/%s: %w", node.Name, b.Claim.Namespace, b.Claim.Name, err)
		}
		log.Debug("claim node selected", "claim", b.Claim.Name, "node", node.Name)
	}
	return s.waitClaimsBound(ctx, bindings, node.Name)
}

// waitClaimsBound waits, reading the claim cache again on every claim
// event, until every claim of bindings is bound; it fails when one
// cannot be any more (deleted, bound to another volume, its volume taken
// by another claim, its selected-node removed or changed — a provisioner
// asking to reschedule), or ctx ends, or volumeBindTimeout passes.
func (s *Scheduler) waitClaimsBound(ctx context.Context, bindings []plugins.ClaimBinding, node string) error {
	ctx, cancel := context.WithTimeout(ctx, volumeBindTimeout)
	defer cancel()
	// selected[i]: the cache has shown bindings[i]'s claim with our
	// selected-node (before that it may lag behind our patch).
	selected := make([]bool, len(bindings))
	for {
		changed := s.claimsChanged.wait() // before reading: no event is missed
		done, err := s.claimsBound(bindings, node, selected)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the claims to be bound: %w", ctx.Err())
		case <-changed:
		}
	}
}

// claimsBound reports whether every claim of bindings is bound, or why
// one will not be; see waitClaimsBound.
func (s *Scheduler) claimsBound(bindings []plugins.ClaimBinding, node string, selected []bool) (bool, error) {
	all := true
	for i, b := range bindings {
		want := b.Claim
		c, err := s.volumeListers.Claims.PersistentVolumeClaims(want.Namespace).Get(want.Name)
		if apierrors.IsNotFound(err) || (err == nil && c.UID != want.UID) {
			return false, fmt.Errorf("claim %s/%s was deleted", want.Namespace, want.Name)
		}
		if err != nil {
			return false, fmt.Errorf("getting claim %s/%s: %w", want.Namespace, want.Name, err)
		}
		if b.Volume != nil {
			if c.Spec.VolumeName != "" && c.Spec.VolumeName != b.Volume.Name {
				return false, fmt.Errorf("claim %s/%s was bound to volume %s, not %s", c.Namespace, c.Name, c.Spec.VolumeName, b.Volume.Name)
			}
			pv, err := s.volumeListers.Volumes.Get(b.Volume.Name)
			if err == nil && pv.Spec.ClaimRef != nil && !storagehelpers.IsVolumeBoundToClaim(pv, c) {
				return false, fmt.Errorf("volume %s was bound to another claim", pv.Name)
			}
		} else if c.Spec.VolumeName == "" {
			switch sel := c.Annotations[storagehelpers.AnnSelectedNode]; {
			case sel == node:
				selected[i] = true
			case selected[i] || sel != "":
				return false, fmt.Errorf("claim %s/%s: selected node %q removed or changed (to %q) before it was provisioned", c.Namespace, c.Name, node, sel)
			}
		}
		if c.Spec.VolumeName == "" {
			all = false
		}
	}
	return all, nil
}

// signal wakes every waiter at the next notify. A waiter takes the
// channel from wait before checking what it waits for, so that a change
// made meanwhile still wakes it. Safe for concurrent use.
type signal struct {
	mu sync.Mutex
	ch chan struct{} // closed by notify; guarded by mu
}

// wait returns a channel closed at the next notify.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// notify wakes the current waiters.
func (s *signal) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
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
	return s.patchStatus(ctx, pod, status)
}
