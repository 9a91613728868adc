package ingress

import (
	"context"
	"fmt"
	"reflect"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
)

// enqueue queues an ingress for a status check.
func (c *Controller) enqueue(obj any) {
	if c.status == nil {
		return
	}
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	c.queue.Add(key)
}

// enqueueAll queues every cached ingress (the classes changed).
func (c *Controller) enqueueAll() {
	if c.status == nil {
		return
	}
	all, _ := c.ingresses.List(labels.Everything())
	for _, ing := range all {
		c.enqueue(ing)
	}
}

// statusLoop works the status queue until it is shut down.
func (c *Controller) statusLoop(ctx context.Context) {
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		if err := c.syncStatus(ctx, key); err != nil && ctx.Err() == nil {
			c.log.Debug("writing ingress status failed, will retry", "ingress", key, "err", err)
			c.queue.AddRateLimited(key)
		} else {
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

// syncStatus makes status.loadBalancer.ingress of the ingress key equal
// to the configured addresses when the ingress is ours. Level-triggered
// and idempotent: an ingress already right is not written. Ingresses that
// are not (or no longer) ours are left alone.
func (c *Controller) syncStatus(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ing, err := c.ingresses.Ingresses(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting ingress %s: %w", key, err)
	}
	classes, _ := c.classes.List(labels.Everything())
	if !owns(ing, classes, c.cfg.ClassName) {
		return nil
	}
	if reflect.DeepEqual(ing.Status.LoadBalancer.Ingress, c.status) {
		return nil
	}
	ing = ing.DeepCopy()
	ing.Status.LoadBalancer.Ingress = append([]networkingv1.IngressLoadBalancerIngress(nil), c.status...)
	if _, err := c.cfg.Client.NetworkingV1().Ingresses(ns).UpdateStatus(ctx, ing, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("updating status of ingress %s: %w", key, err)
	}
	c.log.Debug("ingress status written", "ingress", key)
	return nil
}
