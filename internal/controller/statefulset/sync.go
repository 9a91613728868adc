package statefulset

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// syncPods makes at most the changes upstream's control loop makes in one
// pass: create missing replicas (and their claims), delete failed ones,
// delete condemned pods, then replace one outdated pod. In OrderedReady
// mode it stops at the first pod it changes or must wait for. It returns
// how long until a pod becomes available, if it is waiting for that.
func (c *Controller) syncPods(ctx context.Context, s *state) (time.Duration, error) {
	monotonic := s.set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
	var requeue time.Duration
	wait := func(p *corev1.Pod) {
		if _, d := available(p, s.set.Spec.MinReadySeconds, s.now); d > 0 && (requeue == 0 || d < requeue) {
			requeue = d
		}
	}

	// The first unhealthy pod, lowest replica first, then condemned.
	var unhealthy *corev1.Pod
	for _, p := range append(append([]*corev1.Pod{}, s.replicas...), s.condemned...) {
		if p != nil && !s.healthy(p) {
			unhealthy = p
			break
		}
	}

	for i, pod := range s.replicas {
		ord := s.start + i
		if pod != nil && finished(pod) && !terminating(pod) {
			if err := c.deletePod(ctx, s.set, pod, "recreate"); err != nil {
				return 0, err
			}
			if monotonic {
				return 0, nil
			}
			continue
		}
		if pod == nil {
			pod = s.newPod(ord)
			if err := c.ensureClaims(ctx, s.set, nil, ord, false); err != nil {
				return 0, err
			}
			done, err := c.createPod(ctx, s.set, pod)
			if err != nil {
				return 0, err
			}
			if monotonic || !done {
				return 0, nil
			}
			continue
		}
		if terminating(pod) {
			if monotonic {
				return 0, nil
			}
			continue
		}
		if !s.healthy(pod) && monotonic {
			wait(pod)
			return requeue, nil
		}
		if err := c.ensureClaims(ctx, s.set, pod, ord, false); err != nil {
			return 0, err
		}
	}

	for _, pod := range s.condemned {
		if terminating(pod) {
			if monotonic {
				return 0, nil
			}
			continue
		}
		if monotonic && unhealthy != nil && unhealthy != pod {
			wait(unhealthy)
			return requeue, nil
		}
		if ord := ordinal(s.set.Name, pod.Name); ord >= 0 {
			if err := c.ensureClaims(ctx, s.set, pod, ord, true); err != nil {
				return 0, err
			}
		}
		if err := c.deletePod(ctx, s.set, pod, "delete"); err != nil {
			return 0, err
		}
		if monotonic {
			return 0, nil
		}
	}

	if s.set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return requeue, nil
	}
	partition := 0
	ru := s.set.Spec.UpdateStrategy.RollingUpdate
	if ru != nil && ru.Partition != nil {
		partition = int(*ru.Partition)
	}
	if ru != nil && ru.MaxUnavailable != nil {
		return requeue, c.updateUnavailable(ctx, s, partition, ru.MaxUnavailable)
	}
	for i := len(s.replicas) - 1; i >= 0 && s.start+i >= partition; i-- {
		pod := s.replicas[i]
		if pod == nil {
			return requeue, nil // just created; wait for the next pass
		}
		if pod.Labels[appsv1.StatefulSetRevisionLabel] != s.updateRev && !terminating(pod) {
			return 0, c.deletePod(ctx, s.set, pod, "update")
		}
		if !s.healthy(pod) {
			wait(pod)
			return requeue, nil
		}
	}
	return requeue, nil
}

// updateUnavailable is the rolling update with maxUnavailable: while fewer
// than maxUnavailable replicas are unhealthy, it deletes outdated pods from
// the highest ordinal down to the partition to make up the difference.
func (c *Controller) updateUnavailable(ctx context.Context, s *state, partition int, maxUnavailable *intstr.IntOrString) error {
	limit, err := intstr.GetScaledValueFromIntOrPercent(maxUnavailable, len(s.replicas), true)
	if err != nil || limit < 1 {
		limit = 1
	}
	unavailable := 0
	for _, p := range s.replicas {
		if !s.healthy(p) {
			unavailable++
		}
	}
	var victims []*corev1.Pod
	for i := len(s.replicas) - 1; i >= 0 && s.start+i >= partition && unavailable+len(victims) < limit; i-- {
		pod := s.replicas[i]
		if pod != nil && pod.Labels[appsv1.StatefulSetRevisionLabel] != s.updateRev && !terminating(pod) {
			victims = append(victims, pod)
		}
	}
	var errs []error
	for _, pod := range victims {
		errs = append(errs, c.deletePod(ctx, s.set, pod, "update"))
	}
	return errors.Join(errs...)
}

// createPod creates pod; done is false when it already exists (the cache
// is behind) and the caller should wait for it.
func (c *Controller) createPod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod) (done bool, err error) {
	_, err = c.client.CoreV1().Pods(set.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		return false, nil
	case err != nil:
		c.event(set, corev1.EventTypeWarning, "FailedCreate", "create Pod %s in StatefulSet %s failed error: %v", pod.Name, set.Name, err)
		return false, fmt.Errorf("creating pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.event(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Pod %s in StatefulSet %s successful", pod.Name, set.Name)
	return true, nil
}

// deletePod deletes pod (that exact pod: the uid is a precondition); a pod
// already gone is not an error.
func (c *Controller) deletePod(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod, why string) error {
	if why == "recreate" {
		reason, what := "RecreatingFailedPod", "failed"
		if pod.Status.Phase == corev1.PodSucceeded {
			reason, what = "RecreatingTerminatedPod", "terminated"
		}
		c.event(set, corev1.EventTypeWarning, reason, "StatefulSet %s/%s is recreating %s Pod %s", set.Namespace, set.Name, what, pod.Name)
	}
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return nil
	case err != nil:
		c.event(set, corev1.EventTypeWarning, "FailedDelete", "delete Pod %s in StatefulSet %s failed error: %v", pod.Name, set.Name, err)
		return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.event(set, corev1.EventTypeNormal, "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful", pod.Name, set.Name)
	return nil
}

// ensureClaims creates the missing claims of ordinal ord and gives every
// claim the owner references the retention policy asks for. pod is nil
// before the pod exists; condemned is true when it is being scaled away.
func (c *Controller) ensureClaims(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod, ord int, condemned bool) error {
	for i := range set.Spec.VolumeClaimTemplates {
		want := newClaim(set, &set.Spec.VolumeClaimTemplates[i], ord)
		existing, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(want.Name)
		if apierrors.IsNotFound(err) {
			if condemned {
				continue
			}
			claimOwnerRefs(want, set, pod, false)
			_, err := c.client.CoreV1().PersistentVolumeClaims(set.Namespace).Create(ctx, want, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				c.event(set, corev1.EventTypeWarning, "FailedCreate", "create Claim %s for Pod %s in StatefulSet %s failed error: %v", want.Name, podName(set, ord), set.Name, err)
				return fmt.Errorf("creating claim %s/%s: %w", want.Namespace, want.Name, err)
			}
			if err == nil {
				c.event(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Claim %s Pod %s in StatefulSet %s success", want.Name, podName(set, ord), set.Name)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("getting claim %s/%s: %w", want.Namespace, want.Name, err)
		}
		claim := existing.DeepCopy()
		if !claimOwnerRefs(claim, set, pod, condemned) {
			continue
		}
		if _, err := c.client.CoreV1().PersistentVolumeClaims(set.Namespace).Update(ctx, claim, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("updating owner references of claim %s/%s: %w", claim.Namespace, claim.Name, err)
		}
	}
	return nil
}

// event records an event on set, if there is a recorder.
func (c *Controller) event(set *appsv1.StatefulSet, typ, reason, format string, args ...any) {
	if c.recorder != nil {
		c.recorder.Eventf(set, typ, reason, format, args...)
	}
}
