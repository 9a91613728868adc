package servicealloc

import (
	"context"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
)

// Repair makes the reservations agree with services (every stored
// Service): each value a Service holds is reserved for it, and a
// reservation that no Service holds is dropped (a server that stopped
// between reserving and writing leaves one behind). It must run while no
// Service is being written, that is before the API server serves.
func (a *Allocator) Repair(ctx context.Context, services []corev1.Service) error {
	want := map[string]string{} // key -> holder
	for i := range services {
		svc := &services[i]
		c := claimsOf(svc)
		for _, ip := range c.ips {
			want[a.ipPrefix+ip] = holder(svc)
		}
		for _, p := range c.ports {
			want[a.portPrefix+strconv.Itoa(p)] = holder(svc)
		}
	}
	for _, prefix := range []string{a.ipPrefix, a.portPrefix} {
		resp, err := a.client.Get(ctx, prefix, clientv3.WithPrefix())
		if err != nil {
			return fmt.Errorf("repairing service reservations: listing %s: %w", prefix, err)
		}
		for _, kv := range resp.Kvs {
			key := string(kv.Key)
			if h, ok := want[key]; ok && h == string(kv.Value) {
				delete(want, key)
				continue
			}
			if _, err := a.client.Delete(ctx, key); err != nil {
				return fmt.Errorf("repairing service reservations: dropping %s: %w", key, err)
			}
			a.log.Info("dropped a service reservation no service holds", "key", key, "holder", string(kv.Value))
		}
	}
	for key, h := range want {
		if _, err := a.client.Put(ctx, key, h); err != nil {
			return fmt.Errorf("repairing service reservations: restoring %s: %w", key, err)
		}
		a.log.Info("restored a missing service reservation", "key", key, "holder", h)
	}
	return nil
}
