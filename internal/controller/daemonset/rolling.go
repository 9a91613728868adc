package daemonset

import (
	"context"
	"errors"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-dev/skiff/internal/controller/history"
)

// limits returns the RollingUpdate's maxSurge and maxUnavailable resolved
// against desired nodes (percentages round up); if both are zero,
// maxUnavailable is 1.
func limits(ds *appsv1.DaemonSet, desired int) (maxSurge, maxUnavailable int) {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	maxUnavailable = 1
	if ru != nil {
		if ru.MaxSurge != nil {
			maxSurge, _ = intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, desired, true)
		}
		if ru.MaxUnavailable != nil {
			maxUnavailable, _ = intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, desired, true)
		}
	}
	if maxSurge == 0 && maxUnavailable == 0 {
		maxUnavailable = 1
	}
	return maxSurge, maxUnavailable
}

// rollingSurge reports whether ds updates by surging (maxSurge > 0).
func rollingSurge(ds *appsv1.DaemonSet) bool {
	if ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
		return false
	}
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.MaxSurge == nil {
		return false
	}
	v, _ := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, 100, true)
	return v > 0
}

// split returns the updated and the old pod of a node (the oldest of each).
func splitPods(pods []*corev1.Pod, hash string) (updated, old *corev1.Pod) {
	for _, p := range pods {
		if p.Labels[history.HashLabel] == hash {
			if updated == nil {
				updated = p
			}
		} else if old == nil {
			old = p
		}
	}
	return updated, old
}

// rollingUpdate replaces outdated pods within the strategy's limits, as
// upstream does. With maxSurge 0 it deletes old pods (unavailable ones at
// once, available ones while fewer than maxUnavailable nodes lack an
// available pod); manage recreates them. With maxSurge > 0 it creates an
// updated pod next to an old one (at once when the old one is unavailable,
// else up to maxSurge nodes at a time) and deletes the old one when the
// new one is available.
func (c *Controller) rollingUpdate(ctx context.Context, key string, ds *appsv1.DaemonSet, hash string, states []*nodeState) error {
	now := c.now()
	desired := 0
	for _, st := range states {
		if st.shouldRun {
			desired++
		}
	}
	maxSurge, maxUnavailable := limits(ds, desired)
	var errs []error
	if maxSurge == 0 {
		unavailable := 0
		var candidates []*corev1.Pod
		for _, st := range states {
			if !st.shouldRun {
				continue
			}
			updated, old := splitPods(st.pods, hash)
			switch {
			case updated == nil && old == nil:
				unavailable++
			case old == nil:
				if ok, _ := available(updated, ds.Spec.MinReadySeconds, now); !ok {
					unavailable++
				}
			default:
				if ok, _ := available(old, ds.Spec.MinReadySeconds, now); !ok {
					unavailable++
					errs = append(errs, c.deletePod(ctx, key, ds, old))
					continue
				}
				candidates = append(candidates, old)
			}
		}
		for _, p := range candidates {
			if unavailable >= maxUnavailable {
				break
			}
			unavailable++
			errs = append(errs, c.deletePod(ctx, key, ds, p))
		}
		return errors.Join(errs...)
	}

	surging := 0
	var immediate, candidates []string
	for _, st := range states {
		if !st.shouldRun {
			continue
		}
		updated, old := splitPods(st.pods, hash)
		switch {
		case old == nil:
		case updated == nil:
			if ok, _ := available(old, ds.Spec.MinReadySeconds, now); !ok {
				immediate = append(immediate, st.node.Name)
			} else {
				candidates = append(candidates, st.node.Name)
			}
		default:
			if ok, _ := available(updated, ds.Spec.MinReadySeconds, now); ok {
				errs = append(errs, c.deletePod(ctx, key, ds, old))
			} else {
				surging++
			}
		}
	}
	for _, node := range immediate {
		errs = append(errs, c.createPod(ctx, key, ds, node, hash))
	}
	for _, node := range candidates {
		if surging >= maxSurge {
			break
		}
		surging++
		errs = append(errs, c.createPod(ctx, key, ds, node, hash))
	}
	return errors.Join(errs...)
}

// readySince returns when p became Ready and whether it is Ready now.
func readySince(p *corev1.Pod) (time.Time, bool) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time, c.Status == corev1.ConditionTrue
		}
	}
	return time.Time{}, false
}

// available reports whether p has been Ready for minReadySeconds at now;
// if it is Ready but not yet available, wait is how long until it is.
func available(p *corev1.Pod, minReadySeconds int32, now time.Time) (ok bool, wait time.Duration) {
	since, ready := readySince(p)
	if !ready || p.DeletionTimestamp != nil {
		return false, 0
	}
	if minReadySeconds <= 0 {
		return true, 0
	}
	at := since.Add(time.Duration(minReadySeconds) * time.Second)
	if !now.Before(at) {
		return true, 0
	}
	return false, at.Sub(now)
}

// computeStatus derives ds's status from the nodes and their pods at the
// start of the sync. wait is how long until a Ready pod becomes available.
func computeStatus(ds *appsv1.DaemonSet, hash string, states []*nodeState, now time.Time) (st appsv1.DaemonSetStatus, wait time.Duration) {
	st.ObservedGeneration = ds.Generation
	for _, n := range states {
		if !n.shouldRun {
			if len(n.pods) > 0 {
				st.NumberMisscheduled++
			}
			continue
		}
		st.DesiredNumberScheduled++
		if len(n.pods) == 0 {
			continue
		}
		st.CurrentNumberScheduled++
		updated, old := splitPods(n.pods, hash)
		pod := old
		if updated != nil {
			st.UpdatedNumberScheduled++
			// While surging, the node counts as ready through the new pod
			// once it is, and through the old one until then.
			if _, ready := readySince(updated); ready || old == nil {
				pod = updated
			}
		}
		if _, ready := readySince(pod); ready {
			st.NumberReady++
		}
		ok, d := available(pod, ds.Spec.MinReadySeconds, now)
		if ok {
			st.NumberAvailable++
		} else if d > 0 && (wait == 0 || d < wait) {
			wait = d
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	return st, wait
}
