package storage

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// leases hands out etcd leases for objects that expire (Config.TTL), as
// upstream's event TTL does: one lease is shared by all the writes of a
// short window, so a burst of events costs one lease grant, not one each.
// An object written at t is deleted by etcd between t+ttl and
// t+ttl+reuse. Safe for concurrent use.
type leases struct {
	client *clientv3.Client
	ttl    time.Duration
	// reuse is how long a granted lease serves new writes.
	reuse time.Duration

	mu      sync.Mutex
	id      clientv3.LeaseID // 0: none yet
	expires time.Time        // when the current lease runs out
}

// maxLeaseReuse caps leases.reuse: upstream reuses a lease for 5% of the
// TTL, at most a minute.
const maxLeaseReuse = time.Minute

func newLeases(client *clientv3.Client, ttl time.Duration) *leases {
	return &leases{client: client, ttl: ttl, reuse: min(ttl/20, maxLeaseReuse)}
}

// get returns a lease that outlives ttl from now, granting a new one when
// the current lease would not.
func (l *leases) get(ctx context.Context) (clientv3.LeaseID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.id != 0 && !l.expires.Before(now.Add(l.ttl)) {
		return l.id, nil
	}
	life := l.ttl + l.reuse
	secs := int64((life + time.Second - 1) / time.Second)
	resp, err := l.client.Grant(ctx, secs)
	if err != nil {
		return 0, fmt.Errorf("granting a %ds lease: %w", secs, err)
	}
	// etcd may raise a short TTL to its minimum; the lease then lives
	// longer, which only delays the expiry.
	l.id = clientv3.LeaseID(resp.ID)
	l.expires = now.Add(time.Duration(resp.TTL) * time.Second)
	return l.id, nil
}

// putOptions returns the options of a Put of an object of this store:
// with a lease when the store's objects expire.
func (s *Store) putOptions(ctx context.Context, key string) ([]clientv3.OpOption, error) {
	if s.leases == nil {
		return nil, nil
	}
	id, err := s.leases.get(ctx)
	if err != nil {
		return nil, s.etcdError(ctx, "writing", key, err)
	}
	return []clientv3.OpOption{clientv3.WithLease(id)}, nil
}
