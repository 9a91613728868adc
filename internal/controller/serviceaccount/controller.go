package serviceaccount

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// Name is the controller's name in logs and the work queue.
const Name = "serviceaccount-controller"

// DefaultName is the service account every active namespace gets.
const DefaultName = "default"

// Controller ensures the default ServiceAccount of every active
// namespace. Run it once.
type Controller struct {
	client     kubernetes.Interface
	namespaces corelisters.NamespaceLister
	accounts   corelisters.ServiceAccountLister
	synced     []cache.InformerSynced
	loop       *reconcile.Loop
}

// New returns a service account controller and registers its informers
// (namespaces, serviceaccounts) on deps.Informers; start the factory after
// calling it, then call Run.
func New(deps controller.Deps) *Controller {
	log := deps.Log()
	nsInf := deps.Informers.Core().V1().Namespaces()
	saInf := deps.Informers.Core().V1().ServiceAccounts()
	c := &Controller{
		client:     deps.Client,
		namespaces: nsInf.Lister(),
		accounts:   saInf.Lister(),
		synced:     []cache.InformerSynced{nsInf.Informer().HasSynced, saInf.Informer().HasSynced},
	}
	c.loop = reconcile.New(Name, c.sync, log)
	if _, err := nsInf.Informer().AddEventHandler(c.loop.Handler()); err != nil {
		log.Info("cannot add event handler", "err", err)
	}
	if _, err := saInf.Informer().AddEventHandler(c.loop.HandlerFor(namespaceOfDefault)); err != nil {
		log.Info("cannot add event handler", "err", err)
	}
	return c
}

// namespaceOfDefault maps a default service account to its namespace.
func namespaceOfDefault(obj any) []string {
	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok || sa.Name != DefaultName {
		return nil
	}
	return []string{sa.Namespace}
}

// Run waits for the caches, runs workers workers and blocks until ctx is
// done. It returns nil on cancellation.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced...)
}

// sync creates the default service account of the namespace named key if
// the namespace is active and the account is missing. Idempotent.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, err := c.namespaces.Get(key)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting namespace %s: %w", key, err)
	}
	if ns.DeletionTimestamp != nil || (ns.Status.Phase != "" && ns.Status.Phase != corev1.NamespaceActive) {
		return 0, nil
	}
	_, err = c.accounts.ServiceAccounts(key).Get(DefaultName)
	if err == nil {
		return 0, nil
	}
	if !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("getting service account %s/%s: %w", key, DefaultName, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: key, Name: DefaultName}}
	_, err = c.client.CoreV1().ServiceAccounts(key).Create(ctx, sa, metav1.CreateOptions{})
	switch {
	case err == nil, apierrors.IsAlreadyExists(err), apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return 0, nil
	case apierrors.IsNotFound(err):
		return 0, nil // the namespace is gone
	default:
		return 0, fmt.Errorf("creating service account %s/%s: %w", key, DefaultName, err)
	}
}
