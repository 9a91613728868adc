package volumes

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// cacheSyncTimeout bounds how long a call waits for a new informer's first
// list; the informer keeps trying, and a later call waits again.
const cacheSyncTimeout = 30 * time.Second

// kind is a resource the object cache serves.
type kind int

const (
	kindConfigMap kind = iota
	kindSecret
	kindService
)

func (k kind) String() string {
	switch k {
	case kindConfigMap:
		return "configmap"
	case kindSecret:
		return "secret"
	default:
		return "service"
	}
}

// objectCache serves config maps, secrets and services from informers
// started lazily: one per (namespace, kind), the first time a pod of that
// namespace needs that kind, running until the cache's context ends. A
// node's pods use few namespaces, so this costs a watch per namespace and
// kind in use, and a sync reads memory only.
//
// TODO(issue 5): informers of namespaces no pod uses any more are never
// stopped.
type objectCache struct {
	client kubernetes.Interface
	// ctx bounds every informer.
	ctx context.Context

	mu sync.Mutex
	// informers is guarded by mu.
	informers map[nsKind]cache.SharedIndexInformer
	// factories is guarded by mu: one per namespace.
	factories map[string]informers.SharedInformerFactory
}

type nsKind struct {
	ns   string
	kind kind
}

func newObjectCache(ctx context.Context, client kubernetes.Interface) *objectCache {
	return &objectCache{
		client:    client,
		ctx:       ctx,
		informers: map[nsKind]cache.SharedIndexInformer{},
		factories: map[string]informers.SharedInformerFactory{},
	}
}

// informer returns the synced informer of kind k in namespace ns, starting
// it if needed; it waits for its first list at most until ctx ends.
func (c *objectCache) informer(ctx context.Context, ns string, k kind) (cache.SharedIndexInformer, error) {
	key := nsKind{ns, k}
	c.mu.Lock()
	inf, ok := c.informers[key]
	if !ok {
		f, ok := c.factories[ns]
		if !ok {
			f = informers.NewSharedInformerFactoryWithOptions(c.client, 0, informers.WithNamespace(ns))
			c.factories[ns] = f
		}
		switch k {
		case kindConfigMap:
			inf = f.Core().V1().ConfigMaps().Informer()
		case kindSecret:
			inf = f.Core().V1().Secrets().Informer()
		default:
			inf = f.Core().V1().Services().Informer()
		}
		c.informers[key] = inf
		f.Start(c.ctx.Done())
	}
	c.mu.Unlock()
	if inf.HasSynced() {
		return inf, nil
	}
	// Poll HasSynced rather than block in WaitForCacheSync so that both
	// the caller's and the cache's contexts are honoured.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.NewTimer(cacheSyncTimeout)
	defer timeout.Stop()
	for !inf.HasSynced() {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the %s cache of namespace %q: %w", k, ns, ctx.Err())
		case <-timeout.C:
			return nil, fmt.Errorf("the %s cache of namespace %q is not filled after %v (is the API server reachable?)", k, ns, cacheSyncTimeout)
		case <-c.ctx.Done():
			return nil, fmt.Errorf("waiting for the %s cache of namespace %q: volume manager stopped", k, ns)
		case <-tick.C:
		}
	}
	return inf, nil
}

// errNotFound is the error of a missing object, named as in the brief of
// CreateContainerConfigError messages: `configmap "x" not found`. It wraps
// an API NotFound error so apierrors.IsNotFound holds.
func errNotFound(k kind, name string) error {
	gr := v1.Resource("configmaps")
	switch k {
	case kindSecret:
		gr = v1.Resource("secrets")
	case kindService:
		gr = v1.Resource("services")
	}
	return &notFoundError{kind: k, name: name, api: apierrors.NewNotFound(gr, name)}
}

type notFoundError struct {
	kind kind
	name string
	api  error
}

func (e *notFoundError) Error() string         { return fmt.Sprintf("%s %q not found", e.kind, e.name) }
func (e *notFoundError) Unwrap() error         { return e.api }
func (e *notFoundError) Status() metav1.Status { return e.api.(apierrors.APIStatus).Status() }

func (c *objectCache) get(ctx context.Context, ns, name string, k kind) (any, error) {
	inf, err := c.informer(ctx, ns, k)
	if err != nil {
		return nil, err
	}
	obj, ok, err := inf.GetStore().GetByKey(ns + "/" + name)
	if err != nil {
		return nil, fmt.Errorf("reading %s %q from the cache: %w", k, name, err)
	}
	if !ok {
		return nil, errNotFound(k, name)
	}
	return obj, nil
}

// configMap returns the config map ns/name; it must not be modified.
func (c *objectCache) configMap(ctx context.Context, ns, name string) (*v1.ConfigMap, error) {
	obj, err := c.get(ctx, ns, name, kindConfigMap)
	if err != nil {
		return nil, err
	}
	return obj.(*v1.ConfigMap), nil
}

// secret returns the secret ns/name; it must not be modified.
func (c *objectCache) secret(ctx context.Context, ns, name string) (*v1.Secret, error) {
	obj, err := c.get(ctx, ns, name, kindSecret)
	if err != nil {
		return nil, err
	}
	return obj.(*v1.Secret), nil
}

// services lists the services of ns; they must not be modified.
func (c *objectCache) services(ctx context.Context, ns string) ([]*v1.Service, error) {
	inf, err := c.informer(ctx, ns, kindService)
	if err != nil {
		return nil, err
	}
	var out []*v1.Service
	err = cache.ListAll(inf.GetStore(), labels.Everything(), func(o any) {
		out = append(out, o.(*v1.Service))
	})
	return out, err
}
