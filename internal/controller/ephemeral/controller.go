package ephemeral

import (
	"context"
	"errors"
	"fmt"
	"time"

	ephemeralvol "k8s.io/component-helpers/storage/ephemeral"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// Name is the controller's name in logs and the work queue.
const Name = "ephemeral-volume"

// Controller creates the claims of pods' ephemeral volumes. Run it once.
type Controller struct {
	client   kubernetes.Interface
	pods     corelisters.PodLister
	claims   corelisters.PersistentVolumeClaimLister
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	loop     *reconcile.Loop
}

// New returns the controller with its pod and claim informers registered
// on deps.Informers; start the factory, then call Run.
func New(deps controller.Deps) *Controller {
	log := deps.Log()
	rec := deps.Events()
	podInf := deps.Informers.Core().V1().Pods()
	claimInf := deps.Informers.Core().V1().PersistentVolumeClaims()
	c := &Controller{
		client:   deps.Client,
		pods:     podInf.Lister(),
		claims:   claimInf.Lister(),
		synced:   []cache.InformerSynced{podInf.Informer().HasSynced, claimInf.Informer().HasSynced},
		recorder: rec,
	}
	c.loop = reconcile.New(Name, c.sync, log)
	if _, err := podInf.Informer().AddEventHandler(c.loop.HandlerFor(podKeys)); err != nil {
		log.Info("cannot add event handler", "err", err)
	}
	// A deleted claim of a live pod is made again.
	if _, err := claimInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.loop.HandlerFor(ownerKeys).OnDelete,
	}); err != nil {
		log.Info("cannot add event handler", "err", err)
	}
	return c
}

// Run waits for the caches and runs workers until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced...)
}

// podKeys: the pod, when it has an ephemeral volume.
func podKeys(obj any) []string {
	pod, ok := obj.(*corev1.Pod)
	if !ok || !hasEphemeral(pod) {
		return nil
	}
	return []string{pod.Namespace + "/" + pod.Name}
}

// ownerKeys: the pod owning the claim.
func ownerKeys(obj any) []string {
	claim, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return nil
	}
	if ref := metav1.GetControllerOf(claim); ref != nil && ref.Kind == "Pod" && ref.APIVersion == "v1" {
		return []string{claim.Namespace + "/" + ref.Name}
	}
	return nil
}

func hasEphemeral(pod *corev1.Pod) bool {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Ephemeral != nil {
			return true
		}
	}
	return false
}

func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting pod %s: %w", key, err)
	}
	if pod.DeletionTimestamp != nil {
		return 0, nil
	}
	var errs []error
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		if vol.Ephemeral == nil || vol.Ephemeral.VolumeClaimTemplate == nil {
			continue
		}
		errs = append(errs, c.ensureClaim(ctx, pod, vol))
	}
	return 0, errors.Join(errs...)
}

// ensureClaim creates vol's claim unless it exists.
func (c *Controller) ensureClaim(ctx context.Context, pod *corev1.Pod, vol *corev1.Volume) error {
	name := ephemeralvol.VolumeClaimName(pod, vol)
	if claim, err := c.claims.PersistentVolumeClaims(pod.Namespace).Get(name); err == nil {
		if err := ephemeralvol.VolumeIsForPod(pod, claim); err != nil {
			c.recorder.Event(pod, corev1.EventTypeWarning, "FailedBinding", err.Error())
		}
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("getting claim %s/%s: %w", pod.Namespace, name, err)
	}
	tmpl := vol.Ephemeral.VolumeClaimTemplate
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       pod.Namespace,
			Labels:          tmpl.Labels,
			Annotations:     tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(pod, corev1.SchemeGroupVersion.WithKind("Pod"))},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	if _, err := c.client.CoreV1().PersistentVolumeClaims(pod.Namespace).Create(ctx, claim, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		c.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreate", "creating PersistentVolumeClaim %s: %v", name, err)
		return fmt.Errorf("creating claim %s/%s: %w", pod.Namespace, name, err)
	}
	return nil
}
