package nodestatus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// runLease renews the node's Lease every RenewInterval (10 s by default,
// upstream's renewInterval), retrying failures sooner, until ctx is done.
func (r *Reporter) runLease(ctx context.Context) {
	interval := r.cfg.RenewInterval
	b := newBackoff(200*time.Millisecond, interval)
	var lease *coordinationv1.Lease // as last written; nil: read it first
	for {
		l, err := r.renewLease(ctx, lease)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Info("renewing the node lease failed; retrying", "err", err)
			lease = nil
			if b.wait(ctx) != nil {
				return
			}
			continue
		}
		lease = l
		b.reset()
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// renewLease sets the Lease's renewTime to now, from cached (the Lease as
// last written; nil: read it, or create it when missing). A conflict or a
// missing Lease is retried once from a fresh read. The Lease is owned by
// the node, so that deleting the node deletes it.
func (r *Reporter) renewLease(ctx context.Context, cached *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	leases := r.cfg.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	for attempt := 0; ; attempt++ {
		if cached == nil {
			l, err := leases.Get(ctx, r.cfg.NodeName, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				l, err = leases.Create(ctx, r.desiredLease(nil), metav1.CreateOptions{})
				if err != nil {
					return nil, fmt.Errorf("creating lease %s: %w", r.cfg.NodeName, err)
				}
				return l, nil
			}
			if err != nil {
				return nil, fmt.Errorf("getting lease %s: %w", r.cfg.NodeName, err)
			}
			cached = l
		}
		l, err := leases.Update(ctx, r.desiredLease(cached), metav1.UpdateOptions{})
		if err == nil {
			return l, nil
		}
		if attempt == 0 && (apierrors.IsConflict(err) || apierrors.IsNotFound(err)) {
			cached = nil
			continue
		}
		return nil, fmt.Errorf("renewing lease %s: %w", r.cfg.NodeName, err)
	}
}

// desiredLease returns base (nil: a new Lease) renewed now, held by the
// node, owned by the node as last registered.
func (r *Reporter) desiredLease(base *coordinationv1.Lease) *coordinationv1.Lease {
	var l *coordinationv1.Lease
	if base == nil {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: r.cfg.NodeName, Namespace: corev1.NamespaceNodeLease}}
	} else {
		l = base.DeepCopy()
	}
	l.Spec.HolderIdentity = ptr.To(r.cfg.NodeName)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(r.cfg.LeaseDuration / time.Second))
	l.Spec.RenewTime = &metav1.MicroTime{Time: r.cfg.Now()}
	if uid := r.currentUID(); uid != "" {
		l.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "Node", Name: r.cfg.NodeName, UID: uid,
		}}
	}
	return l
}

// jsonLabelsPatch returns a merge patch setting the labels.
func jsonLabelsPatch(labels map[string]string) ([]byte, error) {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		return nil, fmt.Errorf("encoding a labels patch: %w", err)
	}
	return body, nil
}
