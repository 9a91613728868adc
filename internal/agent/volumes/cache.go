package volumes

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	coreinformers "k8s.io/client-go/informers/core/v1"
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

// objectCache serves config maps and secrets from one watch per object,
// and services from one informer per namespace.
//
// Config maps and secrets are read per object, as the node authorizer
// requires (it lets a node read only those its pods reference, and only by
// name): a list and watch of the object's namespace with the field
// selector metadata.name=<name>, started the first time a pod needs the
// object and stopped once no pod that used it remains (release, at the
// pod's teardown). A sync thus reads memory only, and an update reaches a
// mounted volume through the watch, never through polling.
//
// Services are listed namespace-wide (for the service environment
// variables), which nodes may do: one informer per namespace in use.
//
// TODO(issue 5): service informers of namespaces no pod uses any more are
// never stopped.
type objectCache struct {
	client kubernetes.Interface
	// ctx bounds every informer.
	ctx context.Context
	// changed, when not nil, is told the pods using an object that
	// changed (see Config.Changed).
	changed func(types.UID)

	mu sync.Mutex
	// objects is guarded by mu: the watch of each config map and secret
	// some pod uses.
	objects map[objectKey]*objectWatch
	// users is guarded by mu: per pod, the objects it used.
	users map[types.UID]map[objectKey]bool
	// serviceInfs is guarded by mu: one informer per namespace.
	serviceInfs map[string]cache.SharedIndexInformer
}

// objectKey names one config map or secret.
type objectKey struct {
	kind      kind
	namespace string
	name      string
}

// objectWatch is the informer of one object and the pods using it.
type objectWatch struct {
	inf    cache.SharedIndexInformer
	cancel context.CancelFunc
	pods   map[types.UID]bool // guarded by objectCache.mu

	errMu   sync.Mutex
	lastErr error // guarded by errMu: the last list or watch failure
}

func (w *objectWatch) setErr(err error) {
	w.errMu.Lock()
	w.lastErr = err
	w.errMu.Unlock()
}

func (w *objectWatch) err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.lastErr
}

func newObjectCache(ctx context.Context, client kubernetes.Interface, changed func(types.UID)) *objectCache {
	return &objectCache{
		client:      client,
		ctx:         ctx,
		changed:     changed,
		objects:     map[objectKey]*objectWatch{},
		users:       map[types.UID]map[objectKey]bool{},
		serviceInfs: map[string]cache.SharedIndexInformer{},
	}
}

// nameSelector restricts a list or watch to the object named name.
func nameSelector(name string) func(*metav1.ListOptions) {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	return func(o *metav1.ListOptions) { o.FieldSelector = sel }
}

// object returns the synced watch of key, recording that pod uid uses it
// and starting the watch if needed.
func (c *objectCache) object(ctx context.Context, uid types.UID, key objectKey) (*objectWatch, error) {
	c.mu.Lock()
	w, ok := c.objects[key]
	if !ok {
		var inf cache.SharedIndexInformer
		if key.kind == kindSecret {
			inf = coreinformers.NewFilteredSecretInformer(c.client, key.namespace, 0, cache.Indexers{}, nameSelector(key.name))
		} else {
			inf = coreinformers.NewFilteredConfigMapInformer(c.client, key.namespace, 0, cache.Indexers{}, nameSelector(key.name))
		}
		wctx, cancel := context.WithCancel(c.ctx)
		w = &objectWatch{inf: inf, cancel: cancel, pods: map[types.UID]bool{}}
		// Keep the reason the list fails (403 before the node authorizer
		// has seen the pod, say) so that a caller need not wait it out.
		_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
			w.setErr(err)
			cache.DefaultWatchErrorHandler(ctx, r, err)
		})
		if c.changed != nil {
			// A change (also the creation of an optional object that
			// was missing) reaches the volumes of the pods using it; the
			// initial list does not: the pod's setup, which waits for
			// it, reads that state itself.
			_, _ = inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
				AddFunc: func(_ any, initial bool) {
					if !initial {
						c.notify(key)
					}
				},
				UpdateFunc: func(old, obj any) {
					if o, ok1 := old.(metav1.Object); ok1 {
						if n, ok2 := obj.(metav1.Object); ok2 && o.GetResourceVersion() == n.GetResourceVersion() {
							return
						}
					}
					c.notify(key)
				},
				DeleteFunc: func(any) { c.notify(key) },
			})
		}
		c.objects[key] = w
		go inf.RunWithContext(wctx)
	}
	w.pods[uid] = true
	if c.users[uid] == nil {
		c.users[uid] = map[objectKey]bool{}
	}
	c.users[uid][key] = true
	c.mu.Unlock()
	what := fmt.Sprintf("%s %q", key.kind, key.name)
	if err := waitSynced(ctx, c.ctx, w.inf, what, w.err); err != nil {
		return nil, err
	}
	return w, nil
}

// notify tells changed about every pod using key.
func (c *objectCache) notify(key objectKey) {
	c.mu.Lock()
	var uids []types.UID
	if w := c.objects[key]; w != nil {
		uids = slices.Collect(maps.Keys(w.pods))
	}
	c.mu.Unlock()
	for _, uid := range uids {
		c.changed(uid)
	}
}

// release forgets that pod uid uses any object, and stops the watches no
// pod uses any more. The volume manager calls it at the pod's teardown.
func (c *objectCache) release(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key := range c.users[uid] {
		w := c.objects[key]
		if w == nil {
			continue
		}
		delete(w.pods, uid)
		if len(w.pods) == 0 {
			w.cancel()
			delete(c.objects, key)
		}
	}
	delete(c.users, uid)
}

// watching returns the number of objects watched (for tests).
func (c *objectCache) watching() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.objects)
}

// serviceInformer returns the synced service informer of namespace ns,
// starting it if needed.
func (c *objectCache) serviceInformer(ctx context.Context, ns string) (cache.SharedIndexInformer, error) {
	c.mu.Lock()
	inf, ok := c.serviceInfs[ns]
	if !ok {
		inf = coreinformers.NewServiceInformer(c.client, ns, 0, cache.Indexers{})
		c.serviceInfs[ns] = inf
		go inf.RunWithContext(c.ctx)
	}
	c.mu.Unlock()
	what := fmt.Sprintf("service cache of namespace %q", ns)
	if err := waitSynced(ctx, c.ctx, inf, what, func() error { return nil }); err != nil {
		return nil, err
	}
	return inf, nil
}

// waitSynced waits for inf's first list, at most until ctx or the cache's
// context cactx ends or cacheSyncTimeout passes. Once the list has failed
// (lastErr non-nil) it returns that failure instead of waiting: the
// informer keeps retrying, and a later call waits again.
func waitSynced(ctx, cactx context.Context, inf cache.SharedIndexInformer, what string, lastErr func() error) error {
	if inf.HasSynced() {
		return nil
	}
	// Poll HasSynced rather than block in WaitForCacheSync so that both
	// the caller's and the cache's contexts are honoured.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.NewTimer(cacheSyncTimeout)
	defer timeout.Stop()
	for !inf.HasSynced() {
		if err := lastErr(); err != nil {
			return fmt.Errorf("reading %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-timeout.C:
			return fmt.Errorf("%s is not read after %v (is the API server reachable?)", what, cacheSyncTimeout)
		case <-cactx.Done():
			return fmt.Errorf("waiting for %s: volume manager stopped", what)
		case <-tick.C:
		}
	}
	return nil
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

func (c *objectCache) get(ctx context.Context, uid types.UID, key objectKey) (any, error) {
	w, err := c.object(ctx, uid, key)
	if err != nil {
		return nil, err
	}
	obj, ok, err := w.inf.GetStore().GetByKey(key.namespace + "/" + key.name)
	if err != nil {
		return nil, fmt.Errorf("reading %s %q from the cache: %w", key.kind, key.name, err)
	}
	if !ok {
		return nil, errNotFound(key.kind, key.name)
	}
	return obj, nil
}

// configMap returns the config map ns/name that pod uid uses; it must not
// be modified.
func (c *objectCache) configMap(ctx context.Context, uid types.UID, ns, name string) (*v1.ConfigMap, error) {
	obj, err := c.get(ctx, uid, objectKey{kindConfigMap, ns, name})
	if err != nil {
		return nil, err
	}
	return obj.(*v1.ConfigMap), nil
}

// secret returns the secret ns/name that pod uid uses; it must not be
// modified.
func (c *objectCache) secret(ctx context.Context, uid types.UID, ns, name string) (*v1.Secret, error) {
	obj, err := c.get(ctx, uid, objectKey{kindSecret, ns, name})
	if err != nil {
		return nil, err
	}
	return obj.(*v1.Secret), nil
}

// services lists the services of ns; they must not be modified.
func (c *objectCache) services(ctx context.Context, ns string) ([]*v1.Service, error) {
	inf, err := c.serviceInformer(ctx, ns)
	if err != nil {
		return nil, err
	}
	var out []*v1.Service
	err = cache.ListAll(inf.GetStore(), labels.Everything(), func(o any) {
		out = append(out, o.(*v1.Service))
	})
	return out, err
}
