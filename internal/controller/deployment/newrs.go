package deployment

import (
	"context"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/controller/ownership"
)

// equalStatus compares deployment statuses semantically (times by instant,
// nil and empty slices alike).
func equalStatus(a, b appsv1.DeploymentStatus) bool {
	return apiequality.Semantic.DeepEqual(a, b)
}

// newAndOld splits rsList into the new replica set (nil when there is none
// and create is false) and the old ones, bringing the new one's revision,
// annotations and minReadySeconds and the deployment's revision annotation
// up to date on the way. With create, a missing new replica set is
// created as <name>-<pod-template-hash>.
func (c *Controller) newAndOld(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet, error) {
	oldRSs := findOldReplicaSets(d, rsList)
	newRS, err := c.newReplicaSet(ctx, d, rsList, oldRSs, create)
	if err != nil {
		return nil, nil, err
	}
	return newRS, oldRSs, nil
}

// newReplicaSet returns the replica set whose template is the
// deployment's, see newAndOld.
func (c *Controller) newReplicaSet(ctx context.Context, d *appsv1.Deployment, rsList, oldRSs []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, error) {
	existing := findNewReplicaSet(d, rsList)
	newRevision := strconv.FormatInt(maxRevision(oldRSs)+1, 10)

	if existing != nil {
		rs := existing.DeepCopy()
		annotationsChanged := setNewReplicaSetAnnotations(d, rs, newRevision, true)
		if annotationsChanged || rs.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
			rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
			updated, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, rs, metav1.UpdateOptions{})
			if err != nil {
				return nil, fmt.Errorf("updating new replica set %s/%s: %w", rs.Namespace, rs.Name, err)
			}
			// Later steps of this sync must see the written copy, not the
			// cached one. The deployment's revision follows on the next
			// sync, when the cache has the updated replica set.
			for i := range rsList {
				if rsList[i].UID == updated.UID {
					rsList[i] = updated
				}
			}
			return updated, nil
		}
		revChanged := setDeploymentRevision(d, rs.Annotations[RevisionAnnotation])
		condChanged := false
		if hasProgressDeadline(d) && getCondition(d.Status, appsv1.DeploymentProgressing) == nil {
			setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonFoundNewRS,
				fmt.Sprintf("Found new replica set %q", rs.Name), c.now()))
			condChanged = true
		}
		if revChanged || condChanged {
			if err := c.writeDeployment(ctx, d, revChanged); err != nil {
				return nil, err
			}
		}
		return rs, nil
	}
	if !create {
		return nil, nil
	}

	hash := ComputeHash(&d.Spec.Template, d.Status.CollisionCount)
	template := *d.Spec.Template.DeepCopy()
	template.Labels = withLabel(d.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	selector := d.Spec.Selector.DeepCopy()
	selector.MatchLabels = withLabel(selector.MatchLabels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	zero := int32(0)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			OwnerReferences: []metav1.OwnerReference{ownership.NewControllerRef(d, controllerKind())},
			Labels:          template.Labels,
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        &zero,
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        selector,
			Template:        template,
		},
	}
	n := newRSNewReplicas(d, append(append([]*appsv1.ReplicaSet(nil), oldRSs...), rs), rs)
	rs.Spec.Replicas = &n
	setNewReplicaSetAnnotations(d, rs, newRevision, false)

	created, err := c.client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, rs, metav1.CreateOptions{})
	alreadyExisted := false
	switch {
	case apierrors.IsAlreadyExists(err):
		alreadyExisted = true
		got, getErr := c.rsLister.ReplicaSets(d.Namespace).Get(rs.Name)
		if getErr != nil {
			// Not in the cache yet: try again once it is.
			return nil, fmt.Errorf("replica set %s/%s exists but is not in the cache yet: %w", rs.Namespace, rs.Name, err)
		}
		if ref := metav1.GetControllerOfNoCopy(got); ref != nil && ref.UID == d.UID && equalIgnoreHash(&d.Spec.Template, &got.Spec.Template) {
			created = got
			break
		}
		// Someone else's replica set, or another template with the same
		// hash: bump collisionCount so that the next name differs.
		if d.Status.CollisionCount == nil {
			d.Status.CollisionCount = new(int32)
		}
		*d.Status.CollisionCount++
		if werr := c.writeDeployment(ctx, d, false); werr != nil {
			return nil, werr
		}
		c.log.Info("replica set name collision", "deployment", d.Namespace+"/"+d.Name, "replicaSet", rs.Name, "collisionCount", *d.Status.CollisionCount)
		return nil, fmt.Errorf("creating replica set %s/%s: %w", rs.Namespace, rs.Name, errCollision)
	case err != nil && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		// The namespace is going away; nothing worth reporting.
		return nil, fmt.Errorf("creating replica set %s/%s: %w", rs.Namespace, rs.Name, err)
	case err != nil:
		msg := fmt.Sprintf("Failed to create new replica set %q: %v", rs.Name, err)
		if hasProgressDeadline(d) {
			setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonFailedRSCreate, msg, c.now()))
			_ = c.writeDeployment(ctx, d, false) // best effort; the create error is what matters
		}
		c.recorder.Event(d, corev1.EventTypeWarning, ReasonFailedRSCreate, msg)
		return nil, fmt.Errorf("creating replica set %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	if !alreadyExisted && n > 0 {
		c.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", created.Name, n)
	}
	revChanged := setDeploymentRevision(d, newRevision)
	condChanged := false
	if !alreadyExisted && hasProgressDeadline(d) {
		setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewRSCreated,
			fmt.Sprintf("Created new replica set %q", created.Name), c.now()))
		condChanged = true
	}
	if revChanged || condChanged {
		if err := c.writeDeployment(ctx, d, revChanged); err != nil {
			return nil, err
		}
	}
	return created, nil
}

// withLabel returns a copy of m with key=value added.
func withLabel(m map[string]string, key, value string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out[key] = value
	return out
}
