package deployment

import (
	"context"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// rolloutRolling progresses a RollingUpdate rollout by one step: scale the
// new replica set up within maxSurge, or else scale old ones down within
// maxUnavailable; once complete, clean up old replica sets. It always ends
// by writing the rollout status.
func (c *Controller) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (time.Duration, error) {
	newRS, oldRSs, err := c.newAndOld(ctx, d, rsList, true)
	if err != nil {
		return 0, err
	}
	allRSs := append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)

	scaledUp, err := c.reconcileNewReplicaSet(ctx, allRSs, newRS, d)
	if err != nil {
		return 0, err
	}
	if scaledUp {
		return c.syncRolloutStatus(ctx, allRSs, newRS, d)
	}
	scaledDown, err := c.reconcileOldReplicaSets(ctx, allRSs, activeReplicaSets(oldRSs), newRS, d)
	if err != nil {
		return 0, err
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, allRSs, newRS, d)
	}
	if deploymentComplete(d, &d.Status) {
		if err := c.cleanupDeployment(ctx, oldRSs, d); err != nil {
			return 0, err
		}
	}
	return c.syncRolloutStatus(ctx, allRSs, newRS, d)
}

// reconcileNewReplicaSet scales the new replica set toward spec.replicas
// as far as maxSurge allows (down at once when it has more).
func (c *Controller) reconcileNewReplicaSet(ctx context.Context, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (bool, error) {
	want := desiredReplicas(d)
	switch {
	case replicas(newRS) == want:
		return false, nil
	case replicas(newRS) > want:
		scaled, _, err := c.scaleAndRecord(ctx, newRS, want, d)
		return scaled, err
	}
	scaled, _, err := c.scaleAndRecord(ctx, newRS, newRSNewReplicas(d, allRSs, newRS), d)
	return scaled, err
}

// reconcileOldReplicaSets scales old replica sets down as far as
// maxUnavailable allows: first their unavailable replicas (which cost no
// availability), then available ones while the total available stays at
// least spec.replicas - maxUnavailable.
func (c *Controller) reconcileOldReplicaSets(ctx context.Context, allRSs, oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (bool, error) {
	if specReplicas(oldRSs) == 0 {
		return false, nil
	}
	minAvailable := desiredReplicas(d) - maxUnavailable(d)
	newUnavailable := replicas(newRS) - cappedAvailable([]*appsv1.ReplicaSet{newRS})
	maxScaledDown := specReplicas(allRSs) - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return false, nil
	}
	oldRSs, cleaned, err := c.cleanupUnhealthyReplicas(ctx, oldRSs, d, maxScaledDown)
	if err != nil {
		return false, err
	}
	allRSs = append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	scaled, err := c.scaleDownOldForRollingUpdate(ctx, allRSs, oldRSs, d)
	if err != nil {
		return false, err
	}
	return cleaned+scaled > 0, nil
}

// cleanupUnhealthyReplicas removes up to maxCleanup unavailable replicas
// from the old replica sets, oldest first, and returns the replica sets as
// updated.
func (c *Controller) cleanupUnhealthyReplicas(ctx context.Context, oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment, maxCleanup int32) ([]*appsv1.ReplicaSet, int32, error) {
	oldRSs = append([]*appsv1.ReplicaSet(nil), oldRSs...)
	sort.Sort(byCreationTimestamp(oldRSs))
	var total int32
	for i, rs := range oldRSs {
		if total >= maxCleanup {
			break
		}
		avail := cappedAvailable([]*appsv1.ReplicaSet{rs})
		if replicas(rs) == 0 || replicas(rs) == avail {
			continue
		}
		down := min(maxCleanup-total, replicas(rs)-avail)
		if down <= 0 {
			continue
		}
		_, updated, err := c.scaleAndRecord(ctx, rs, replicas(rs)-down, d)
		if err != nil {
			return nil, total, err
		}
		total += down
		oldRSs[i] = updated
	}
	return oldRSs, total, nil
}

// scaleDownOldForRollingUpdate scales old replica sets down, oldest first,
// by as many as are available beyond spec.replicas - maxUnavailable.
func (c *Controller) scaleDownOldForRollingUpdate(ctx context.Context, allRSs, oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment) (int32, error) {
	minAvailable := desiredReplicas(d) - maxUnavailable(d)
	available := cappedAvailable(allRSs)
	if available <= minAvailable {
		return 0, nil
	}
	oldRSs = append([]*appsv1.ReplicaSet(nil), oldRSs...)
	sort.Sort(byCreationTimestamp(oldRSs))
	budget := available - minAvailable
	var total int32
	for _, rs := range oldRSs {
		if total >= budget {
			break
		}
		if replicas(rs) == 0 {
			continue
		}
		down := min(replicas(rs), budget-total)
		if _, _, err := c.scaleAndRecord(ctx, rs, replicas(rs)-down, d); err != nil {
			return total, err
		}
		total += down
	}
	return total, nil
}

// rolloutRecreate progresses a Recreate rollout: scale every old replica
// set to zero, wait until none of their pods is left (or running), then
// create or scale up the new replica set.
func (c *Controller) rolloutRecreate(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, pods map[types.UID][]*corev1.Pod) (time.Duration, error) {
	newRS, oldRSs, err := c.newAndOld(ctx, d, rsList, false)
	if err != nil {
		return 0, err
	}
	allRSs := append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)

	scaledDown := false
	for _, rs := range activeReplicaSets(oldRSs) {
		scaled, _, err := c.scaleAndRecord(ctx, rs, 0, d)
		if err != nil {
			return 0, err
		}
		scaledDown = scaledDown || scaled
	}
	if scaledDown || oldPodsRunning(newRS, oldRSs, pods) {
		return c.syncRolloutStatus(ctx, allRSs, newRS, d)
	}
	if newRS == nil {
		if newRS, oldRSs, err = c.newAndOld(ctx, d, rsList, true); err != nil {
			return 0, err
		}
		allRSs = append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	}
	if _, _, err := c.scaleAndRecord(ctx, newRS, desiredReplicas(d), d); err != nil {
		return 0, err
	}
	if deploymentComplete(d, &d.Status) {
		if err := c.cleanupDeployment(ctx, oldRSs, d); err != nil {
			return 0, err
		}
	}
	return c.syncRolloutStatus(ctx, allRSs, newRS, d)
}

// oldPodsRunning reports whether any old replica set still reports pods,
// or any pod of an old replica set has not terminated (Succeeded or
// Failed).
func oldPodsRunning(newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet, pods map[types.UID][]*corev1.Pod) bool {
	if actualReplicas(oldRSs) > 0 {
		return true
	}
	for uid, list := range pods {
		if newRS != nil && newRS.UID == uid {
			continue
		}
		for _, p := range list {
			if p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
				return true
			}
		}
	}
	return false
}

// cappedAvailable sums the replica sets' available replicas, counting at
// most spec.replicas for each. Rollout decisions use it instead of the raw
// status: a replica set just scaled down still reports the pods it is
// deleting as available until its controller syncs again, and counting
// them would let a second scale-down take availability below the floor
// (upstream has that window; the cap closes it and changes nothing once
// the status has caught up).
func cappedAvailable(rss []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += min(rs.Status.AvailableReplicas, replicas(rs))
		}
	}
	return n
}
