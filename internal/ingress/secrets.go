package ingress

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// tlsSecrets watches the TLS secrets the served ingresses name, one
// object at a time: a list and watch of the secret's namespace with the
// field selector metadata.name=<name>. That is all the node authorizer
// lets a node read (it allows the secrets named in spec.tls of Ingresses,
// by name, and no list of a namespace's secrets). A watch starts when an
// ingress first names the secret and stops when none does any more
// (want). Safe for concurrent use.
type tlsSecrets struct {
	client  kubernetes.Interface
	onEvent cache.ResourceEventHandler

	mu sync.Mutex
	// ctx bounds every watch; nil until start. Guarded by mu.
	ctx context.Context
	// watches is guarded by mu.
	watches map[types.NamespacedName]*secretWatch
}

type secretWatch struct {
	inf    cache.SharedIndexInformer
	cancel context.CancelFunc
}

func newTLSSecrets(client kubernetes.Interface, onEvent cache.ResourceEventHandler) *tlsSecrets {
	return &tlsSecrets{client: client, onEvent: onEvent, watches: map[types.NamespacedName]*secretWatch{}}
}

// start lets watches run until ctx ends; want starts none before.
func (s *tlsSecrets) start(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
}

// tlsSecretNames returns the secrets named in spec.tls of ings.
func tlsSecretNames(ings []*networkingv1.Ingress) map[types.NamespacedName]bool {
	out := map[types.NamespacedName]bool{}
	for _, ing := range ings {
		for _, t := range ing.Spec.TLS {
			if t.SecretName != "" {
				out[types.NamespacedName{Namespace: ing.Namespace, Name: t.SecretName}] = true
			}
		}
	}
	return out
}

// want makes the watched secrets exactly names: it starts the missing
// watches and stops the others. It does nothing before start.
func (s *tlsSecrets) want(names map[types.NamespacedName]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		return
	}
	for n, w := range s.watches {
		if !names[n] {
			w.cancel()
			delete(s.watches, n)
		}
	}
	for n := range names {
		if _, ok := s.watches[n]; ok {
			continue
		}
		sel := fields.OneTermEqualSelector("metadata.name", n.Name).String()
		inf := coreinformers.NewFilteredSecretInformer(s.client, n.Namespace, 0, cache.Indexers{},
			func(o *metav1.ListOptions) { o.FieldSelector = sel })
		if s.onEvent != nil {
			_, _ = inf.AddEventHandler(s.onEvent) // fails only once stopped
		}
		ctx, cancel := context.WithCancel(s.ctx)
		s.watches[n] = &secretWatch{inf: inf, cancel: cancel}
		go inf.RunWithContext(ctx)
	}
}

// get returns the secret namespace/name from its watch; nil when it is
// not watched, not listed yet or does not exist. It must not be modified.
func (s *tlsSecrets) get(namespace, name string) *corev1.Secret {
	s.mu.Lock()
	w := s.watches[types.NamespacedName{Namespace: namespace, Name: name}]
	s.mu.Unlock()
	if w == nil {
		return nil
	}
	obj, ok, err := w.inf.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil
	}
	sec, _ := obj.(*corev1.Secret)
	return sec
}

// uids returns the UIDs of the secrets held (for the certificate cache).
func (s *tlsSecrets) uids() map[types.UID]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[types.UID]bool{}
	for _, w := range s.watches {
		for _, obj := range w.inf.GetStore().List() {
			if sec, ok := obj.(*corev1.Secret); ok {
				out[sec.UID] = true
			}
		}
	}
	return out
}

// waitSynced waits until every watch has listed once, ctx ends or timeout
// passes, whichever is first; a secret that cannot be read (forbidden, say)
// must not hold up serving the rest.
func (s *tlsSecrets) waitSynced(ctx context.Context, timeout time.Duration) {
	s.mu.Lock()
	var synced []cache.InformerSynced
	for _, w := range s.watches {
		synced = append(synced, w.inf.HasSynced)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cache.WaitForCacheSync(ctx.Done(), synced...)
}

// watching returns the number of secrets watched (for tests).
func (s *tlsSecrets) watching() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watches)
}
