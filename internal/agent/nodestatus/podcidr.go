package nodestatus

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// PodCIDR waits until the node has spec.podCIDR (the nodeipam controller
// assigns it once the node is registered) and returns it. It lists and
// watches only this node; it returns ctx's error when ctx is done first.
// Safe to call concurrently with Run and before the node exists.
func (r *Reporter) PodCIDR(ctx context.Context) (string, error) {
	nodes := r.cfg.Client.CoreV1().Nodes()
	sel := fields.OneTermEqualSelector("metadata.name", r.cfg.NodeName).String()
	b := newBackoff(100*time.Millisecond, 5*time.Second)
	for {
		cidr, err := func() (string, error) {
			list, err := nodes.List(ctx, metav1.ListOptions{FieldSelector: sel})
			if err != nil {
				return "", fmt.Errorf("listing node %s: %w", r.cfg.NodeName, err)
			}
			for i := range list.Items {
				if c := list.Items[i].Spec.PodCIDR; c != "" {
					return c, nil
				}
			}
			w, err := nodes.Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: list.ResourceVersion})
			if err != nil {
				return "", fmt.Errorf("watching node %s: %w", r.cfg.NodeName, err)
			}
			defer w.Stop()
			for ev := range w.ResultChan() {
				if ev.Type != watch.Added && ev.Type != watch.Modified {
					continue
				}
				if n, ok := ev.Object.(*corev1.Node); ok && n.Spec.PodCIDR != "" {
					return n.Spec.PodCIDR, nil
				}
			}
			return "", nil // the watch ended: list again
		}()
		if cidr != "" {
			return cidr, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if err != nil {
			r.log.Debug("waiting for the pod CIDR", "err", err)
		}
		if err := b.wait(ctx); err != nil {
			return "", err
		}
	}
}
