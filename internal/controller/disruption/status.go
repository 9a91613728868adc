package disruption

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// DeletionTimeout is how long an entry of status.disruptedPods is kept
// when its pod was not deleted after the eviction.
const DeletionTimeout = 2 * time.Minute

// scaleFunc returns the identity and desired replicas of the controller
// ref points to; found is false when no known controller matches it.
type scaleFunc func(ref *metav1.OwnerReference, namespace string) (uid types.UID, replicas int32, found bool, err error)

// expected is the result of counting expected pods.
type expected struct {
	count, desiredHealthy int32
	// unmanaged names the pods without a controller (ignored).
	unmanaged []string
}

// errNoControllers is wrapped when a pod's controller is unknown.
type noControllersError struct{ pod string }

func (e noControllersError) Error() string {
	return fmt.Sprintf("found no controllers for pod %q", e.pod)
}

// expectedScale sums the scales of the pods' controllers, each counted
// once.
func expectedScale(pods []*corev1.Pod, scaleOf scaleFunc) (int32, []string, error) {
	seen := map[types.UID]int32{}
	var unmanaged []string
	for _, pod := range pods {
		ref := metav1.GetControllerOf(pod)
		if ref == nil {
			unmanaged = append(unmanaged, pod.Name)
			continue
		}
		if _, ok := seen[ref.UID]; ok {
			continue
		}
		uid, n, found, err := scaleOf(ref, pod.Namespace)
		if err != nil {
			return 0, nil, err
		}
		if !found {
			return 0, nil, noControllersError{pod.Name}
		}
		// Keyed by the controller that owns the scale: two ReplicaSets
		// of one Deployment count the Deployment once.
		seen[uid] = n
	}
	var total int32
	for _, n := range seen {
		total += n
	}
	return total, unmanaged, nil
}

// expectedPods computes expectedPods and desiredHealthy as upstream.
func expectedPods(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, scaleOf scaleFunc) (expected, error) {
	var out expected
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		n, unmanaged, err := expectedScale(pods, scaleOf)
		if err != nil {
			return out, err
		}
		maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(n), true)
		if err != nil {
			return out, fmt.Errorf("scaling maxUnavailable: %w", err)
		}
		out = expected{count: n, desiredHealthy: max(0, n-int32(maxUnavailable)), unmanaged: unmanaged}
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
		out = expected{count: int32(len(pods)), desiredHealthy: pdb.Spec.MinAvailable.IntVal}
	case pdb.Spec.MinAvailable != nil:
		n, unmanaged, err := expectedScale(pods, scaleOf)
		if err != nil {
			return out, err
		}
		minAvailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(n), true)
		if err != nil {
			return out, fmt.Errorf("scaling minAvailable: %w", err)
		}
		out = expected{count: n, desiredHealthy: int32(minAvailable), unmanaged: unmanaged}
	}
	return out, nil
}

// disruptedPods keeps the entries of pods that still exist, are not being
// deleted and whose eviction is less than DeletionTimeout old. It returns
// the expired entries' pods and when the next entry expires (zero: none).
func disruptedPods(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, now time.Time) (kept map[string]metav1.Time, expired []*corev1.Pod, recheck time.Time) {
	kept = map[string]metav1.Time{}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		at, ok := pdb.Status.DisruptedPods[pod.Name]
		if !ok {
			continue
		}
		deadline := at.Add(DeletionTimeout)
		if deadline.Before(now) {
			expired = append(expired, pod)
			continue
		}
		if recheck.IsZero() || deadline.Before(recheck) {
			recheck = deadline
		}
		kept[pod.Name] = at
	}
	if len(kept) == 0 {
		kept = nil
	}
	return kept, expired, recheck
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// currentHealthy counts Ready pods not being deleted nor about to be.
func currentHealthy(pods []*corev1.Pod, disrupted map[string]metav1.Time, now time.Time) int32 {
	var n int32
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if at, ok := disrupted[pod.Name]; ok && at.Add(DeletionTimeout).After(now) {
			continue
		}
		if podReady(pod) {
			n++
		}
	}
	return n
}

// setStatus fills the status fields and the DisruptionAllowed condition.
func setStatus(pdb *policyv1.PodDisruptionBudget, healthy int32, exp expected, disrupted map[string]metav1.Time, now time.Time) {
	allowed := healthy - exp.desiredHealthy
	if exp.count <= 0 || allowed <= 0 {
		allowed = 0
	}
	pdb.Status.CurrentHealthy = healthy
	pdb.Status.DesiredHealthy = exp.desiredHealthy
	pdb.Status.ExpectedPods = exp.count
	pdb.Status.DisruptionsAllowed = allowed
	pdb.Status.DisruptedPods = disrupted
	pdb.Status.ObservedGeneration = pdb.Generation
	cond := metav1.Condition{
		Type:               policyv1.DisruptionAllowedCondition,
		Status:             metav1.ConditionFalse,
		Reason:             policyv1.InsufficientPodsReason,
		ObservedGeneration: pdb.Generation,
		LastTransitionTime: metav1.Time{Time: now},
	}
	if allowed > 0 {
		cond.Status, cond.Reason = metav1.ConditionTrue, policyv1.SufficientPodsReason
	}
	meta.SetStatusCondition(&pdb.Status.Conditions, cond)
}

// setFailSafe makes the PDB allow no disruption because its status could
// not be computed.
func setFailSafe(pdb *policyv1.PodDisruptionBudget, err error, now time.Time) {
	pdb.Status.DisruptionsAllowed = 0
	pdb.Status.ObservedGeneration = pdb.Generation
	meta.SetStatusCondition(&pdb.Status.Conditions, metav1.Condition{
		Type:               policyv1.DisruptionAllowedCondition,
		Status:             metav1.ConditionFalse,
		Reason:             policyv1.SyncFailedReason,
		Message:            err.Error(),
		ObservedGeneration: pdb.Generation,
		LastTransitionTime: metav1.Time{Time: now},
	})
}
