package daemonset

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// pending remembers, per DaemonSet key, the pods this controller created
// and deleted that the informer cache does not show yet (upstream's
// "expectations"). While a key has some, the controller does not create or
// delete pods for it, so a stale cache never causes a double creation.
// Entries expire after ttl in case an event was missed. Safe for
// concurrent use.
type pending struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]*writes // guarded by mu
}

type writes struct {
	created map[string]bool      // "ns/name" of created pods
	deleted map[string]types.UID // "ns/name" -> uid of deleted pods
	expires time.Time
}

func newPending(ttl time.Duration) *pending {
	return &pending{ttl: ttl, m: map[string]*writes{}}
}

func (p *pending) entry(key string, now time.Time) *writes {
	w := p.m[key]
	if w == nil {
		w = &writes{created: map[string]bool{}, deleted: map[string]types.UID{}}
		p.m[key] = w
	}
	w.expires = now.Add(p.ttl)
	return w
}

// created records that pod was created for key.
func (p *pending) created(key string, pod *corev1.Pod, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entry(key, now).created[pod.Namespace+"/"+pod.Name] = true
}

// deleted records that pod was deleted for key.
func (p *pending) deleted(key string, pod *corev1.Pod, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entry(key, now).deleted[pod.Namespace+"/"+pod.Name] = pod.UID
}

// satisfied reports whether the cache shows every write recorded for key,
// forgetting those it shows.
func (p *pending) satisfied(key string, pods corelisters.PodLister, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.m[key]
	if w == nil {
		return true
	}
	if now.After(w.expires) {
		delete(p.m, key)
		return true
	}
	for name := range w.created {
		ns, n := split(name)
		if _, err := pods.Pods(ns).Get(n); err == nil {
			delete(w.created, name)
		}
	}
	for name, uid := range w.deleted {
		ns, n := split(name)
		pod, err := pods.Pods(ns).Get(n)
		if err != nil || pod.UID != uid || pod.DeletionTimestamp != nil {
			delete(w.deleted, name)
		}
	}
	if len(w.created) == 0 && len(w.deleted) == 0 {
		delete(p.m, key)
		return true
	}
	return false
}

// forget drops what is recorded for key (the DaemonSet is gone).
func (p *pending) forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, key)
}

func split(key string) (ns, name string) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i], key[i+1:]
		}
	}
	return "", key
}
