package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiff-dev/skiff/internal/controller/ownership"
)

// Event reasons, as upstream records them on the owner.
const (
	reasonSuccessfulCreate = "SuccessfulCreate"
	reasonFailedCreate     = "FailedCreate"
	reasonSuccessfulDelete = "SuccessfulDelete"
	reasonFailedDelete     = "FailedDelete"
)

// manage creates or deletes pods so that owned (the owner's active pods)
// reaches o.replicas, at most burstReplicas at a time. It records what it
// writes in the expectations before returning.
func (c *Controller) manage(ctx context.Context, key string, o *owner, owned []*corev1.Pod) error {
	diff := len(owned) - int(o.replicas)
	switch {
	case diff < 0:
		n := min(-diff, burstReplicas)
		c.log.Debug("too few replicas", "key", key, "need", o.replicas, "have", len(owned), "creating", n)
		return c.createPods(ctx, key, o, n)
	case diff > 0:
		n := min(diff, burstReplicas)
		related := c.relatedPods(o, owned)
		victims := podsToDelete(owned, related, n, c.now())
		c.log.Debug("too many replicas", "key", key, "need", o.replicas, "have", len(owned), "deleting", n)
		return c.deletePods(ctx, key, o, victims)
	}
	return nil
}

// createPods creates n pods in slow-start batches (1, 2, 4, …), stopping
// after the first batch in which a creation failed.
func (c *Controller) createPods(ctx context.Context, key string, o *owner, n int) error {
	pod, err := podFromTemplate(o, c.gvk)
	if err != nil {
		c.recorder.Eventf(o.obj, corev1.EventTypeWarning, reasonFailedCreate, "Error creating: %v", err)
		return err
	}
	_, err = slowStart(n, 1, func() error {
		created, err := c.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod.DeepCopy(), metav1.CreateOptions{})
		if err != nil {
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				// Nothing can be created in a namespace going away; not a failure.
				return nil
			}
			c.recorder.Eventf(o.obj, corev1.EventTypeWarning, reasonFailedCreate, "Error creating: %v", err)
			return fmt.Errorf("creating pod for %s %s: %w", c.gvk.Kind, key, err)
		}
		c.exp.created(key, created.Name)
		c.recorder.Eventf(o.obj, corev1.EventTypeNormal, reasonSuccessfulCreate, "Created pod: %v", created.Name)
		return nil
	})
	return err
}

// slowStart calls fn count times, in batches that start at initial and
// double, running each batch's calls concurrently. It stops after the
// first batch with an error and returns how many calls succeeded and the
// batch's errors.
func slowStart(count, initial int, fn func() error) (int, error) {
	done := 0
	for batch := min(count, initial); batch > 0; batch = min(2*batch, count-done) {
		errs := make([]error, batch)
		var wg sync.WaitGroup
		for i := range batch {
			wg.Go(func() { errs[i] = fn() })
		}
		wg.Wait()
		failed := 0
		for _, err := range errs {
			if err != nil {
				failed++
			}
		}
		done += batch - failed
		if failed > 0 {
			return done, errors.Join(errs...)
		}
	}
	return done, nil
}

// deletePods deletes pods concurrently; pods already gone count as deleted.
func (c *Controller) deletePods(ctx context.Context, key string, o *owner, pods []*corev1.Pod) error {
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, pod := range pods {
		c.exp.deleting(key, pod.UID)
		wg.Go(func() {
			err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{})
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				c.exp.undelete(key, pod.UID)
				c.recorder.Eventf(o.obj, corev1.EventTypeWarning, reasonFailedDelete, "Error deleting: %v", err)
				errs[i] = fmt.Errorf("deleting pod %s/%s of %s %s: %w", pod.Namespace, pod.Name, c.gvk.Kind, key, err)
			default:
				c.recorder.Eventf(o.obj, corev1.EventTypeNormal, reasonSuccessfulDelete, "Deleted pod: %v", pod.Name)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// relatedPods are the pods whose placement counts when choosing which
// pods to delete: the owner's own, plus, when the owner is itself
// controlled (a Deployment's ReplicaSet), the active pods of its siblings.
func (c *Controller) relatedPods(o *owner, owned []*corev1.Pod) []*corev1.Pod {
	ref := metav1.GetControllerOfNoCopy(o.meta)
	if ref == nil {
		return owned
	}
	siblings, err := c.kind.list(o.meta.GetNamespace())
	if err != nil {
		return owned
	}
	uids := map[string]bool{}
	for _, s := range siblings {
		if r := metav1.GetControllerOfNoCopy(s.meta); r != nil && r.UID == ref.UID {
			uids[string(s.meta.GetUID())] = true
		}
	}
	pods, err := c.pods.Pods(o.meta.GetNamespace()).List(labels.Everything())
	if err != nil {
		return owned
	}
	var related []*corev1.Pod
	for _, p := range pods {
		if r := metav1.GetControllerOfNoCopy(p); r != nil && uids[string(r.UID)] && isActive(p) {
			related = append(related, p)
		}
	}
	return related
}

// podFromTemplate is the pod o creates: its template with generateName
// "<owner>-" and a controller reference to o.
func podFromTemplate(o *owner, gvk schema.GroupVersionKind) (*corev1.Pod, error) {
	t := o.template
	if t == nil {
		return nil, errors.New("unable to create pods: no pod template")
	}
	if len(t.Labels) == 0 {
		return nil, errors.New("unable to create pods, no labels")
	}
	prefix := o.meta.GetName() + "-"
	if len(validation.IsDNS1123Subdomain(prefix+"a")) != 0 {
		prefix = o.meta.GetName()
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    prefix,
			Namespace:       o.meta.GetNamespace(),
			Labels:          copyMap(t.Labels),
			Annotations:     copyMap(t.Annotations),
			Finalizers:      append([]string(nil), t.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{ownership.NewControllerRef(o.meta, gvk)},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	return pod, nil
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
