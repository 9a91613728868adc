package storage

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// TestTTL checks that objects of a store with a TTL carry a shared lease,
// that an update renews it, and that etcd's deletion at expiry reaches
// watchers and the cache.
func TestTTL(t *testing.T) {
	s, client := newTestStore(t, nil, func(c *Config) { c.TTL = time.Second })
	ctx := context.Background()
	leaseOf := func(key string) clientv3.LeaseID {
		t.Helper()
		resp, err := client.Get(ctx, s.EtcdKey(key))
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("reading %s from etcd: %v, %d keys", key, err, len(resp.Kvs))
		}
		return clientv3.LeaseID(resp.Kvs[0].Lease)
	}

	mustCreate(t, s, pod("ns", "a", nil, ""))
	b := mustCreate(t, s, pod("ns", "b", nil, ""))
	if la, lb := leaseOf("ns/a"), leaseOf("ns/b"); la == 0 || la != lb {
		t.Fatalf("leases %x and %x: want one shared, non-zero lease", la, lb)
	}

	// An update attaches a lease that outlives the TTL from now.
	s.leases.mu.Lock()
	s.leases.expires = time.Now() // the current lease would not do
	s.leases.mu.Unlock()
	old := leaseOf("ns/a")
	if _, err := s.GuaranteedUpdate(ctx, "ns/a", false, func(cur runtime.Object) (runtime.Object, error) {
		p := cur.(*corev1.Pod).DeepCopy()
		p.Labels = map[string]string{"updated": "yes"}
		return p, nil
	}); err != nil {
		t.Fatalf("updating: %v", err)
	}
	if l := leaseOf("ns/a"); l == 0 || l == old {
		t.Errorf("after an update the lease is %x, want a fresh one (was %x)", l, old)
	}

	w, err := s.Watch(ctx, "ns/", WatchOptions{ResourceVersion: b.ResourceVersion})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()
	deleted := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for len(deleted) < 2 {
		select {
		case ev := <-w.ResultChan():
			if ev.Type == watch.Deleted {
				deleted[ev.Object.(*corev1.Pod).Name] = true
			}
		case <-deadline:
			t.Fatalf("expired objects not deleted within 30s (deleted: %v)", deleted)
		}
	}
	if obj, err := s.Get(ctx, "ns/a"); err == nil {
		t.Errorf("Get after expiry = %v, want not found", obj)
	}
}

// TestNoTTL checks that a store without a TTL writes no lease.
func TestNoTTL(t *testing.T) {
	s, client := newTestStore(t, nil, nil)
	mustCreate(t, s, pod("ns", "a", nil, ""))
	resp, err := client.Get(context.Background(), s.EtcdKey("ns/a"))
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease != 0 {
		t.Fatalf("reading ns/a: %v, %+v: want one key without a lease", err, resp.Kvs)
	}
}
