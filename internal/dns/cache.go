package dns

import (
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/labels"
)

var everything = labels.Everything()

// maxCacheTTL caps how long a forwarded answer is reused.
const maxCacheTTL = 30 * time.Second

// answerCache keeps forwarded answers for their TTL (at most maxCacheTTL),
// holding at most max entries: when full, expired entries go first, then
// an arbitrary half.
type answerCache struct {
	mu      sync.Mutex
	max     int
	entries map[mdns.Question]cached
}

type cached struct {
	msg     *mdns.Msg
	expires time.Time
}

func newAnswerCache(max int) *answerCache {
	return &answerCache{max: max, entries: map[mdns.Question]cached{}}
}

// get returns a copy of the cached answer to q, or nil.
func (c *answerCache) get(q mdns.Question) *mdns.Msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[q]
	if !ok {
		return nil
	}
	if time.Now().After(e.expires) {
		delete(c.entries, q)
		return nil
	}
	return e.msg.Copy()
}

// put caches m as the answer to q for the smallest TTL in it; failures and
// answers without records are not cached.
func (c *answerCache) put(q mdns.Question, m *mdns.Msg) {
	if m.Rcode != mdns.RcodeSuccess || len(m.Answer) == 0 || m.Truncated {
		return
	}
	ttl := maxCacheTTL
	for _, rr := range m.Answer {
		if d := time.Duration(rr.Header().Ttl) * time.Second; d < ttl {
			ttl = d
		}
	}
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		now := time.Now()
		for k, e := range c.entries {
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max/2 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[q] = cached{msg: m.Copy(), expires: time.Now().Add(ttl)}
}
