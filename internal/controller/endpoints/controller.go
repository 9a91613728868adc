package endpoints

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// Name is the controller's name in logs, the work queue and events.
const Name = "endpoint-controller"

// leaderAnnotation marks Endpoints objects used as leader-election locks;
// they have no Service and are never cleaned up.
const leaderAnnotation = "control-plane.alpha.kubernetes.io/leader"

// Warning event reasons, recorded on the Endpoints object as upstream does.
const (
	ReasonFailedToCreateEndpoint = "FailedToCreateEndpoint"
	ReasonFailedToUpdateEndpoint = "FailedToUpdateEndpoint"
)

// Controller keeps one Endpoints object per selector Service. See the
// package documentation. Run it once.
type Controller struct {
	client    kubernetes.Interface
	services  corelisters.ServiceLister
	pods      corelisters.PodLister
	endpoints corelisters.EndpointsLister
	synced    []cache.InformerSynced
	recorder  record.EventRecorder
	log       *slog.Logger
	loop      *reconcile.Loop
	triggers  *TriggerTimes
}

// New returns an Endpoints controller and registers its informers
// (services, pods, endpoints) on deps.Informers; start the factory after
// calling it, then call Run.
func New(deps controller.Deps) *Controller {
	log := deps.Log()
	rec := deps.Events()
	svcInf := deps.Informers.Core().V1().Services()
	podInf := deps.Informers.Core().V1().Pods()
	epInf := deps.Informers.Core().V1().Endpoints()
	c := &Controller{
		client:    deps.Client,
		services:  svcInf.Lister(),
		pods:      podInf.Lister(),
		endpoints: epInf.Lister(),
		synced:    []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced, epInf.Informer().HasSynced},
		recorder:  rec,
		log:       log,
		triggers:  NewTriggerTimes(),
	}
	c.loop = reconcile.New(Name, c.sync, log)
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{svcInf.Informer(), c.loop.Handler()},
		{podInf.Informer(), c.loop.HandlerFor(ServiceKeysForPod(svcInf.Informer().GetIndexer()))},
		// Only deletions: a deleted Endpoints object of a selector Service
		// is recreated, while Endpoints written by users for services
		// that do not exist (yet) are left alone until the next start.
		{epInf.Informer(), cache.ResourceEventHandlerFuncs{DeleteFunc: c.loop.EnqueueObject}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			log.Info("cannot add event handler", "err", err)
		}
	}
	return c
}

// Run waits for the caches, queues every existing Endpoints object once
// (so that those left behind by deleted services go), runs workers
// workers, and blocks until ctx is done. It returns nil on cancellation.
func (c *Controller) Run(ctx context.Context, workers int) error {
	go func() {
		if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
			return
		}
		eps, err := c.endpoints.List(labels.Everything())
		if err != nil {
			return
		}
		for _, ep := range eps {
			if _, ok := ep.Annotations[leaderAnnotation]; ok {
				continue
			}
			c.loop.EnqueueObject(ep)
		}
	}()
	return c.loop.Run(ctx, workers, c.synced...)
}

// sync converges the Endpoints object named key ("namespace/name") to the
// Service of that name and the pods it selects. It is idempotent and
// writes nothing when the object is already right.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil // not a key we queued; nothing to retry
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.triggers.Forget(key)
		err := c.client.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("deleting endpoints %s: %w", key, err)
		}
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting service %s: %w", key, err)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.Selector == nil {
		// No selector: the Endpoints are the user's to manage.
		return 0, nil
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return 0, fmt.Errorf("listing pods of service %s: %w", key, err)
	}
	triggerTime, commit := c.triggers.Observe(key, svc, pods)

	subsets := DesiredSubsets(svc, pods)
	truncated := truncateSubsets(subsets)
	wantLabels := desiredLabels(svc)

	cur, err := c.endpoints.Endpoints(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("getting endpoints %s: %w", key, err)
	}
	if cur != nil &&
		apiequality.Semantic.DeepEqual(cur.Subsets, subsets) &&
		apiequality.Semantic.DeepEqual(cur.Labels, wantLabels) &&
		(cur.Annotations[corev1.EndpointsOverCapacity] == "truncated") == truncated {
		commit()
		return 0, nil
	}

	var ep *corev1.Endpoints
	if cur != nil {
		ep = cur.DeepCopy()
	} else {
		ep = &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	}
	ep.Subsets = subsets
	ep.Labels = wantLabels
	if ep.Annotations == nil {
		ep.Annotations = map[string]string{}
	}
	if triggerTime.IsZero() {
		delete(ep.Annotations, corev1.EndpointsLastChangeTriggerTime)
	} else {
		ep.Annotations[corev1.EndpointsLastChangeTriggerTime] = triggerTime.UTC().Format(time.RFC3339Nano)
	}
	if truncated {
		ep.Annotations[corev1.EndpointsOverCapacity] = "truncated"
	} else {
		delete(ep.Annotations, corev1.EndpointsOverCapacity)
	}

	if cur == nil {
		_, err = c.client.CoreV1().Endpoints(ns).Create(ctx, ep, metav1.CreateOptions{})
		if err != nil {
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return 0, nil // the namespace is going away with the service
			}
			if !apierrors.IsAlreadyExists(err) {
				c.recorder.Eventf(ep, corev1.EventTypeWarning, ReasonFailedToCreateEndpoint, "Failed to create endpoint for service %v/%v: %v", ns, name, err)
			}
			return 0, fmt.Errorf("creating endpoints %s: %w", key, err)
		}
		commit()
		return 0, nil
	}
	if _, err := c.client.CoreV1().Endpoints(ns).Update(ctx, ep, metav1.UpdateOptions{}); err != nil {
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			c.recorder.Eventf(ep, corev1.EventTypeWarning, ReasonFailedToUpdateEndpoint, "Failed to update endpoint %v/%v: %v", ns, name, err)
		}
		return 0, fmt.Errorf("updating endpoints %s: %w", key, err)
	}
	commit()
	return 0, nil
}

// DesiredSubsets computes the subsets of the Endpoints of svc from the
// pods its selector matches (before truncation): pods with an IP of the
// service's family, not terminal, not terminating unless
// publishNotReadyAddresses; ready ones (or all, with
// publishNotReadyAddresses) in addresses, others in notReadyAddresses; a
// pod lacking a named target port is left out for that port. It is pure.
func DesiredSubsets(svc *corev1.Service, pods []*corev1.Pod) []corev1.EndpointSubset {
	family := ServiceIPFamily(svc)
	tolerate := svc.Spec.PublishNotReadyAddresses
	var members []member
	for _, pod := range pods {
		if !ShouldPodBeInEndpoints(pod, tolerate) {
			continue
		}
		ip := PodIPForFamily(pod, family)
		if ip == "" {
			continue
		}
		addr := corev1.EndpointAddress{
			IP:        ip,
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		}
		if pod.Spec.NodeName != "" {
			nodeName := pod.Spec.NodeName
			addr.NodeName = &nodeName
		}
		if ShouldSetHostname(pod, svc) {
			addr.Hostname = pod.Spec.Hostname
		}
		ready := tolerate || IsPodReady(pod)
		if len(svc.Spec.Ports) == 0 {
			if svc.Spec.ClusterIP == corev1.ClusterIPNone {
				members = append(members, member{addr: addr, ready: ready})
			}
			continue
		}
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			port, err := FindPort(pod, sp)
			if err != nil {
				continue
			}
			proto := sp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			members = append(members, member{
				addr:  addr,
				port:  &corev1.EndpointPort{Name: sp.Name, Port: port, Protocol: proto, AppProtocol: sp.AppProtocol},
				ready: ready,
			})
		}
	}
	return packSubsets(members)
}

// desiredLabels are the service's labels plus service.kubernetes.io/headless
// for services without a cluster IP.
func desiredLabels(svc *corev1.Service) map[string]string {
	l := maps.Clone(svc.Labels)
	if l == nil {
		l = map[string]string{}
	}
	if IsHeadless(svc) {
		l[corev1.IsHeadlessService] = ""
	} else {
		delete(l, corev1.IsHeadlessService)
	}
	return l
}
