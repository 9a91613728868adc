package rootcacert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/cachetrim"
	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// Name is the controller's name in logs and the work queue.
const Name = "root-ca-cert-publisher"

// ConfigMapName and Key are where the CA is published.
const (
	ConfigMapName = "kube-root-ca.crt"
	Key           = "ca.crt"
)

// Controller keeps kube-root-ca.crt in every active namespace. Run it once.
type Controller struct {
	client     kubernetes.Interface
	ca         string
	namespaces corelisters.NamespaceLister
	maps       corelisters.ConfigMapLister
	own        informers.SharedInformerFactory
	synced     []cache.InformerSynced
	loop       *reconcile.Loop
}

// NewForConfig returns the controller publishing the CA that cfg trusts
// for the API server (its CAData or CAFile), and registers the namespace
// informer on deps.Informers.
func NewForConfig(deps controller.Deps, cfg *rest.Config) (*Controller, error) {
	ca := cfg.TLSClientConfig.CAData
	if len(ca) == 0 && cfg.TLSClientConfig.CAFile != "" {
		b, err := os.ReadFile(cfg.TLSClientConfig.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: reading the CA: %w", Name, err)
		}
		ca = b
	}
	if len(bytes.TrimSpace(ca)) == 0 {
		return nil, errors.New(Name + ": the client configuration holds no CA to publish")
	}
	return New(deps, string(ca)), nil
}

// New returns the controller publishing caPEM.
func New(deps controller.Deps, caPEM string) *Controller {
	log := deps.Log()
	own := informers.NewSharedInformerFactoryWithOptions(deps.Client, 0, cachetrim.Option(), informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ConfigMapName).String()
	}))
	nsInf := deps.Informers.Core().V1().Namespaces()
	cmInf := own.Core().V1().ConfigMaps()
	c := &Controller{
		client:     deps.Client,
		ca:         caPEM,
		namespaces: nsInf.Lister(),
		maps:       cmInf.Lister(),
		own:        own,
		synced:     []cache.InformerSynced{nsInf.Informer().HasSynced, cmInf.Informer().HasSynced},
	}
	c.loop = reconcile.New(Name, c.sync, log)
	if _, err := nsInf.Informer().AddEventHandler(c.loop.Handler()); err != nil {
		log.Info("cannot add event handler", "err", err)
	}
	if _, err := cmInf.Informer().AddEventHandler(c.loop.HandlerFor(func(obj any) []string {
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			return []string{cm.Namespace}
		}
		return nil
	})); err != nil {
		log.Info("cannot add event handler", "err", err)
	}
	return c
}

// Run starts its own informer, waits for the caches, runs workers workers
// and blocks until ctx is done. It returns nil on cancellation.
func (c *Controller) Run(ctx context.Context, workers int) error {
	c.own.StartWithContext(ctx)
	defer c.own.Shutdown()
	return c.loop.Run(ctx, workers, c.synced...)
}

// sync makes kube-root-ca.crt in namespace key hold the CA.
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
	cm, err := c.maps.ConfigMaps(key).Get(ConfigMapName)
	switch {
	case apierrors.IsNotFound(err):
		want := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: key, Name: ConfigMapName},
			Data:       map[string]string{Key: c.ca},
		}
		_, err = c.client.CoreV1().ConfigMaps(key).Create(ctx, want, metav1.CreateOptions{})
	case err != nil:
		return 0, fmt.Errorf("getting %s/%s: %w", key, ConfigMapName, err)
	case cm.Data[Key] == c.ca && len(cm.Data) == 1 && len(cm.BinaryData) == 0:
		return 0, nil
	default:
		cm = cm.DeepCopy()
		cm.Data, cm.BinaryData = map[string]string{Key: c.ca}, nil
		_, err = c.client.CoreV1().ConfigMaps(key).Update(ctx, cm, metav1.UpdateOptions{})
	}
	switch {
	case err == nil, apierrors.IsAlreadyExists(err), apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return 0, nil
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return 0, nil // gone, or changed under us: the informer brings the next event
	default:
		return 0, fmt.Errorf("writing %s/%s: %w", key, ConfigMapName, err)
	}
}
