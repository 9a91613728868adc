package deployment

import (
	"context"
	"fmt"
	"math"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// scaleAndRecord scales rs to n (a no-op when it already has n) and
// records ScalingReplicaSet. It returns whether rs was scaled and the
// updated replica set (rs itself when nothing was written).
func (c *Controller) scaleAndRecord(ctx context.Context, rs *appsv1.ReplicaSet, n int32, d *appsv1.Deployment) (bool, *appsv1.ReplicaSet, error) {
	if replicas(rs) == n {
		return false, rs, nil
	}
	op := "down"
	if replicas(rs) < n {
		op = "up"
	}
	return c.scaleReplicaSet(ctx, rs, n, d, op)
}

// scaleReplicaSet writes spec.replicas = n and the replica annotations of
// rs when either differs, recording ScalingReplicaSet when the size
// changed. The update carries rs's resourceVersion, so a stale cache copy
// fails with a conflict instead of overwriting a newer scale.
func (c *Controller) scaleReplicaSet(ctx context.Context, rs *appsv1.ReplicaSet, n int32, d *appsv1.Deployment, op string) (bool, *appsv1.ReplicaSet, error) {
	sizeChanged := replicas(rs) != n
	desired, maxR := desiredReplicas(d), desiredReplicas(d)+maxSurge(d)
	if !sizeChanged && !replicasAnnotationsNeedUpdate(rs, desired, maxR) {
		return false, rs, nil
	}
	from := replicas(rs)
	cp := rs.DeepCopy()
	cp.Spec.Replicas = &n
	setReplicasAnnotations(cp, desired, maxR)
	updated, err := c.client.AppsV1().ReplicaSets(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
	if err != nil {
		return false, rs, fmt.Errorf("scaling replica set %s/%s to %d: %w", rs.Namespace, rs.Name, n, err)
	}
	if sizeChanged {
		c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", op, rs.Name, from, n)
		c.log.Debug("scaled replica set", "deployment", d.Namespace+"/"+d.Name, "replicaSet", rs.Name, "from", from, "to", n)
	}
	return sizeChanged, updated, nil
}

// findActiveOrLatest returns the only active replica set, or, with none
// active, the new one or else the newest old one; nil when several are
// active.
func findActiveOrLatest(newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	if newRS == nil && len(oldRSs) == 0 {
		return nil
	}
	old := append([]*appsv1.ReplicaSet(nil), oldRSs...)
	sort.Sort(sort.Reverse(byCreationTimestamp(old)))
	all := activeReplicaSets(append(old, newRS))
	switch len(all) {
	case 0:
		if newRS != nil {
			return newRS
		}
		return old[0]
	case 1:
		return all[0]
	}
	return nil
}

// isSaturated reports whether rs has all of spec.replicas, desired and
// available.
func isSaturated(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	if rs == nil {
		return false
	}
	desired, ok := intAnnotation(rs, DesiredReplicasAnnotation)
	n := desiredReplicas(d)
	return ok && replicas(rs) == n && desired == n && rs.Status.AvailableReplicas == n
}

// isScalingEvent reports whether spec.replicas changed since the active
// replica sets were last scaled (their desired-replicas annotation).
func isScalingEvent(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet) bool {
	for _, rs := range activeReplicaSets(allRSs) {
		if desired, ok := intAnnotation(rs, DesiredReplicasAnnotation); ok && desired != desiredReplicas(d) {
			return true
		}
	}
	return false
}

// scale brings the replica sets to spec.replicas without progressing a
// rollout: a single active replica set takes everything; a saturated new
// one makes the old ones go to zero; otherwise, for RollingUpdate, the
// difference is spread over the active replica sets in proportion to
// their size (leftovers to the largest), as upstream's proportional
// scaling does.
func (c *Controller) scale(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) error {
	if rs := findActiveOrLatest(newRS, oldRSs); rs != nil {
		if replicas(rs) == desiredReplicas(d) {
			return nil
		}
		_, _, err := c.scaleAndRecord(ctx, rs, desiredReplicas(d), d)
		return err
	}
	if isSaturated(d, newRS) {
		for _, old := range activeReplicaSets(oldRSs) {
			if _, _, err := c.scaleAndRecord(ctx, old, 0, d); err != nil {
				return err
			}
		}
		return nil
	}
	if !isRollingUpdate(d) {
		return nil
	}
	sizes, op := proportionalSizes(d, activeReplicaSets(append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)))
	for _, s := range sizes {
		if _, _, err := c.scaleReplicaSet(ctx, s.rs, s.n, d, op); err != nil {
			return err
		}
	}
	return nil
}

// sized is a replica set and the size it should get.
type sized struct {
	rs *appsv1.ReplicaSet
	n  int32
}

// proportionalSizes spreads spec.replicas + maxSurge - (current total)
// over the active replica sets: each gets its share of its max-replicas
// annotation scaled to the new total, rounded, and what rounding leaves
// goes to the first (largest) one. It also returns "up" or "down".
func proportionalSizes(d *appsv1.Deployment, active []*appsv1.ReplicaSet) ([]sized, string) {
	active = append([]*appsv1.ReplicaSet(nil), active...)
	allowed := int32(0)
	if desiredReplicas(d) > 0 {
		allowed = desiredReplicas(d) + maxSurge(d)
	}
	toAdd := allowed - specReplicas(active)
	op := ""
	switch {
	case toAdd > 0:
		sort.Sort(bySizeNewer(active))
		op = "up"
	case toAdd < 0:
		sort.Sort(bySizeOlder(active))
		op = "down"
	}
	out := make([]sized, len(active))
	added := int32(0)
	for i, rs := range active {
		out[i] = sized{rs: rs, n: replicas(rs)}
		if toAdd != 0 {
			p := proportion(rs, d, toAdd, added)
			out[i].n += p
			added += p
		}
	}
	if len(out) > 0 && toAdd != 0 {
		out[0].n = max(out[0].n+toAdd-added, 0)
	}
	return out, op
}

// proportion is how many replicas rs gains (or loses, negative) out of
// toAdd, given that added were already handed out.
func proportion(rs *appsv1.ReplicaSet, d *appsv1.Deployment, toAdd, added int32) int32 {
	if rs == nil || replicas(rs) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	frac := fraction(rs, d)
	left := toAdd - added
	if toAdd > 0 {
		return min(frac, left)
	}
	return max(frac, left)
}

// fraction is rs's share of the new total minus its current size.
func fraction(rs *appsv1.ReplicaSet, d *appsv1.Deployment) int32 {
	if desiredReplicas(d) == 0 {
		return -replicas(rs)
	}
	total := desiredReplicas(d) + maxSurge(d)
	annotated, ok := intAnnotation(rs, MaxReplicasAnnotation)
	if !ok || annotated == 0 {
		annotated = d.Status.Replicas
	}
	if annotated == 0 {
		return 0
	}
	size := float64(replicas(rs)) * float64(total) / float64(annotated)
	return int32(math.Round(size)) - replicas(rs)
}

// cleanupDeployment deletes the oldest old replica sets beyond
// revisionHistoryLimit, lowest revision first, skipping any that still
// have replicas, have not observed their latest spec, or are being
// deleted.
func (c *Controller) cleanupDeployment(ctx context.Context, oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment) error {
	if !hasRevisionHistoryLimit(d) {
		return nil
	}
	var alive []*appsv1.ReplicaSet
	for _, rs := range oldRSs {
		if rs != nil && rs.DeletionTimestamp == nil {
			alive = append(alive, rs)
		}
	}
	diff := len(alive) - int(*d.Spec.RevisionHistoryLimit)
	if diff <= 0 {
		return nil
	}
	sort.Sort(byRevision(alive))
	for _, rs := range alive[:diff] {
		if rs.Status.Replicas != 0 || replicas(rs) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		uid := rs.UID
		err := c.client.AppsV1().ReplicaSets(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &uid},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("deleting old replica set %s/%s: %w", rs.Namespace, rs.Name, err)
		}
		c.log.Debug("deleted old replica set", "deployment", d.Namespace+"/"+d.Name, "replicaSet", rs.Name)
	}
	return nil
}
