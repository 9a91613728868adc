package pvcprotection

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"k8s.io/component-helpers/storage/ephemeral"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// The finalizers, as upstream names them (the admission plugin
// StorageObjectInUseProtection adds them).
const (
	PVCFinalizer = "kubernetes.io/pvc-protection"
	PVFinalizer  = "kubernetes.io/pv-protection"
)

// PVCController is the pvc-protection controller.
type PVCController struct {
	client kubernetes.Interface
	claims corelisters.PersistentVolumeClaimLister
	pods   corelisters.PodLister
	synced []cache.InformerSynced
	log    *slog.Logger
	loop   *reconcile.Loop
}

// NewPVC returns the pvc-protection controller with its claim and pod
// informers registered on deps.Informers.
func NewPVC(deps controller.Deps) *PVCController {
	log := deps.Log()
	claimInf := deps.Informers.Core().V1().PersistentVolumeClaims()
	podInf := deps.Informers.Core().V1().Pods()
	c := &PVCController{
		client: deps.Client,
		claims: claimInf.Lister(),
		pods:   podInf.Lister(),
		synced: []cache.InformerSynced{claimInf.Informer().HasSynced, podInf.Informer().HasSynced},
		log:    log,
	}
	c.loop = reconcile.New("pvc-protection", c.sync, log)
	if _, err := claimInf.Informer().AddEventHandler(c.loop.HandlerFor(c.claimKeys)); err != nil {
		log.Info("cannot add event handler", "err", err)
	}
	if _, err := podInf.Informer().AddEventHandler(c.loop.HandlerFor(c.podClaimKeys)); err != nil {
		log.Info("cannot add event handler", "err", err)
	}
	return c
}

// Run waits for the caches and runs workers until ctx is done.
func (c *PVCController) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced...)
}

// claimKeys: the claim, when it waits for its finalizer's removal.
func (c *PVCController) claimKeys(obj any) []string {
	claim, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok || !waiting(&claim.ObjectMeta, PVCFinalizer) {
		return nil
	}
	return []string{claim.Namespace + "/" + claim.Name}
}

// podClaimKeys: the claims the pod names that wait for their finalizer's
// removal (the pod's termination or deletion may free them).
func (c *PVCController) podClaimKeys(obj any) []string {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	var keys []string
	for _, name := range claimNames(pod) {
		claim, err := c.claims.PersistentVolumeClaims(pod.Namespace).Get(name)
		if err == nil && waiting(&claim.ObjectMeta, PVCFinalizer) {
			keys = append(keys, pod.Namespace+"/"+name)
		}
	}
	return keys
}

func (c *PVCController) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	claim, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting claim %s: %w", key, err)
	}
	if !waiting(&claim.ObjectMeta, PVCFinalizer) {
		return 0, nil
	}
	cached, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return 0, fmt.Errorf("listing pods of %s: %w", ns, err)
	}
	for _, pod := range cached {
		if uses(pod, claim) {
			c.log.Debug("claim in use", "claim", key, "pod", pod.Name)
			return 0, nil // the pod's termination or deletion re-triggers
		}
	}
	// The cache may not have a pod just created yet: ask the API server.
	live, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("listing pods of %s: %w", ns, err)
	}
	for i := range live.Items {
		if uses(&live.Items[i], claim) {
			c.log.Debug("claim in use", "claim", key, "pod", live.Items[i].Name)
			return 0, nil // the pod reaches the cache and re-triggers
		}
	}
	upd := claim.DeepCopy()
	upd.Finalizers = without(upd.Finalizers, PVCFinalizer)
	if _, err := c.client.CoreV1().PersistentVolumeClaims(ns).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("removing the finalizer of claim %s: %w", key, err)
	}
	c.log.Info("removed the protection finalizer", "claim", key)
	return 0, nil
}

// claimNames lists the claims pod's volumes name (generic ephemeral
// volumes by their claim's name, <pod>-<volume>).
func claimNames(pod *corev1.Pod) []string {
	var names []string
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil:
			names = append(names, v.PersistentVolumeClaim.ClaimName)
		case v.Ephemeral != nil:
			names = append(names, ephemeral.VolumeClaimName(pod, &v))
		}
	}
	return names
}

// uses reports whether pod, unless terminated, uses claim.
func uses(pod *corev1.Pod, claim *corev1.PersistentVolumeClaim) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil:
			if v.PersistentVolumeClaim.ClaimName == claim.Name {
				return true
			}
		case v.Ephemeral != nil:
			// A claim of that name the pod does not control is not its
			// ephemeral volume (the kubelet refuses to use it).
			if ephemeral.VolumeClaimName(pod, &v) == claim.Name {
				if ephemeral.VolumeIsForPod(pod, claim) == nil {
					return true
				}
			}
		}
	}
	return false
}

// PVController is the pv-protection controller.
type PVController struct {
	client  kubernetes.Interface
	volumes corelisters.PersistentVolumeLister
	synced  []cache.InformerSynced
	log     *slog.Logger
	loop    *reconcile.Loop
}

// NewPV returns the pv-protection controller with its volume informer
// registered on deps.Informers.
func NewPV(deps controller.Deps) *PVController {
	log := deps.Log()
	pvInf := deps.Informers.Core().V1().PersistentVolumes()
	c := &PVController{
		client:  deps.Client,
		volumes: pvInf.Lister(),
		synced:  []cache.InformerSynced{pvInf.Informer().HasSynced},
		log:     log,
	}
	c.loop = reconcile.New("pv-protection", c.sync, log)
	keys := func(obj any) []string {
		pv, ok := obj.(*corev1.PersistentVolume)
		if !ok || !waiting(&pv.ObjectMeta, PVFinalizer) {
			return nil
		}
		return []string{pv.Name}
	}
	if _, err := pvInf.Informer().AddEventHandler(c.loop.HandlerFor(keys)); err != nil {
		log.Info("cannot add event handler", "err", err)
	}
	return c
}

// Run waits for the cache and runs workers until ctx is done.
func (c *PVController) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced...)
}

func (c *PVController) sync(ctx context.Context, name string) (time.Duration, error) {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting volume %s: %w", name, err)
	}
	if !waiting(&pv.ObjectMeta, PVFinalizer) || pv.Status.Phase == corev1.VolumeBound {
		return 0, nil // a phase change re-triggers
	}
	upd := pv.DeepCopy()
	upd.Finalizers = without(upd.Finalizers, PVFinalizer)
	if _, err := c.client.CoreV1().PersistentVolumes().Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("removing the finalizer of volume %s: %w", name, err)
	}
	c.log.Info("removed the protection finalizer", "volume", name)
	return 0, nil
}

// waiting reports whether the object is being deleted and still has
// finalizer f.
func waiting(m *metav1.ObjectMeta, f string) bool {
	return m.DeletionTimestamp != nil && slices.Contains(m.Finalizers, f)
}

func without(finalizers []string, f string) []string {
	return slices.DeleteFunc(slices.Clone(finalizers), func(s string) bool { return s == f })
}
