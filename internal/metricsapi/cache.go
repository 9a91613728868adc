package metricsapi

import (
	"context"
	"sync"
	"time"

	"github.com/skiff-dev/skiff/internal/agent/stats"
)

// summaryCache remembers each node's last summary (or failure) for a TTL
// and lets concurrent requests for the same node share one fetch.
//
//	absent --get--> fetching --done--> fresh --TTL--> stale --get--> fetching
type summaryCache struct {
	fetcher SummaryFetcher
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time

	mu      sync.Mutex
	entries map[string]*cacheEntry // guarded by mu; by node name
}

// cacheEntry is one node's fetch. summary, err and at are written once,
// before done is closed, and only read after.
type cacheEntry struct {
	done    chan struct{}
	at      time.Time
	summary *stats.Summary
	err     error
}

// get returns nodeName's summary, fetching it unless a fetch is under way
// or finished less than ttl ago. The fetch itself runs with its own
// timeout and survives ctx, so other waiters still get its result; get
// returns ctx's error if ctx ends first.
func (c *summaryCache) get(ctx context.Context, nodeName string) (*stats.Summary, error) {
	c.mu.Lock()
	e, ok := c.entries[nodeName]
	if !ok || isDone(e.done) && c.now().Sub(e.at) >= c.ttl {
		e = &cacheEntry{done: make(chan struct{})}
		c.entries[nodeName] = e
		go c.fetch(context.WithoutCancel(ctx), nodeName, e)
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.summary, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *summaryCache) fetch(ctx context.Context, nodeName string, e *cacheEntry) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	e.summary, e.err = c.fetcher.Summary(ctx, nodeName)
	e.at = c.now()
	close(e.done)
}

// forget drops the entries of nodes not in keep, so deleted nodes do not
// accumulate.
func (c *summaryCache) forget(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.entries {
		if !keep[name] {
			delete(c.entries, name)
		}
	}
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
