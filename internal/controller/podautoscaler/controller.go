package podautoscaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// Upstream's defaults (kube-controller-manager flags).
const (
	// DefaultSyncPeriod is --horizontal-pod-autoscaler-sync-period.
	DefaultSyncPeriod = 15 * time.Second
	// DefaultDownscaleStabilization is
	// --horizontal-pod-autoscaler-downscale-stabilization, the scale-down
	// window of HPAs whose behavior does not set one.
	DefaultDownscaleStabilization = 5 * time.Minute
)

// Mapper resolves a scale target's kind to its resource.
type Mapper interface {
	RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error)
}

// resettable is the optional ability of a Mapper to forget its cached
// discovery (after a kind was not found).
type resettable interface{ Reset() }

// Controller is the HorizontalPodAutoscaler controller. Set the exported
// fields after New and before Run; they must not change afterwards.
type Controller struct {
	// Scales reads and writes the targets' /scale. Required.
	Scales scale.ScalesGetter
	// Mapper resolves scaleTargetRef kinds. Required.
	Mapper Mapper
	// Metrics reports pod usage. Required.
	Metrics MetricsSource
	// SyncPeriod is how often each HPA is reconciled (DefaultSyncPeriod).
	SyncPeriod time.Duration
	// DownscaleStabilization is the default scale-down window.
	DownscaleStabilization time.Duration
	// Tolerance is the relative distance from the target within which
	// nothing is scaled (DefaultTolerance).
	Tolerance float64

	client   autoscalingClient
	hpas     autoscalinglisters.HorizontalPodAutoscalerLister
	pods     corelisters.PodLister
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time
	loop     *reconcile.Loop

	mu sync.Mutex
	// histories holds each HPA's recommendations and scale events, by
	// key; guarded by mu. A worker owns its key, so the history of one
	// HPA is used by one worker at a time.
	histories map[string]*history
}

type autoscalingClient interface {
	UpdateStatus(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler) error
}

type statusWriter struct{ deps controller.Deps }

func (w statusWriter) UpdateStatus(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler) error {
	_, err := w.deps.Client.AutoscalingV2().HorizontalPodAutoscalers(hpa.Namespace).UpdateStatus(ctx, hpa, metav1.UpdateOptions{})
	return err
}

// New returns the controller with the HPA and pod informers registered on
// deps.Informers. Scales, Mapper and Metrics must be set before Run (see
// NewForConfig).
func New(deps controller.Deps) *Controller {
	logger := deps.Log()
	hpaInformer := deps.Informers.Autoscaling().V2().HorizontalPodAutoscalers()
	podInformer := deps.Informers.Core().V1().Pods()
	c := &Controller{
		SyncPeriod:             DefaultSyncPeriod,
		DownscaleStabilization: DefaultDownscaleStabilization,
		Tolerance:              DefaultTolerance,
		client:                 statusWriter{deps},
		hpas:                   hpaInformer.Lister(),
		pods:                   podInformer.Lister(),
		synced:                 []cache.InformerSynced{hpaInformer.Informer().HasSynced, podInformer.Informer().HasSynced},
		recorder:               deps.Recorder,
		log:                    logger,
		now:                    deps.Clock(),
		histories:              map[string]*history{},
	}
	c.loop = reconcile.New("horizontalpodautoscaler", c.sync, logger)
	// Only spec changes matter: status updates by this controller would
	// otherwise re-trigger it; the periodic requeue does the rest.
	hpaInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.loop.EnqueueObject,
		UpdateFunc: func(old, obj any) {
			o, n := old.(*autoscalingv2.HorizontalPodAutoscaler), obj.(*autoscalingv2.HorizontalPodAutoscaler)
			if !equality.Semantic.DeepEqual(o.Spec, n.Spec) {
				c.loop.EnqueueObject(obj)
			}
		},
		DeleteFunc: c.loop.EnqueueObject,
	})
	return c
}

// NewForConfig returns New(deps) with a scale client and a discovery
// RESTMapper built from cfg and a MetricsSource reading metrics.k8s.io.
func NewForConfig(deps controller.Deps, cfg *rest.Config) (*Controller, error) {
	c := New(deps)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(deps.Client.Discovery()))
	scales, err := scale.NewForConfig(rest.CopyConfig(cfg), mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(deps.Client.Discovery()))
	if err != nil {
		return nil, fmt.Errorf("building scale client: %w", err)
	}
	metrics, err := NewMetricsClient(rest.CopyConfig(cfg))
	if err != nil {
		return nil, err
	}
	c.Scales, c.Mapper, c.Metrics = scales, mapper, metrics
	return c, nil
}

// Run reconciles HPAs until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if c.Scales == nil || c.Mapper == nil || c.Metrics == nil {
		return errors.New("podautoscaler: Scales, Mapper and Metrics are required")
	}
	return c.loop.Run(ctx, workers, c.synced...)
}

func (c *Controller) historyFor(key string) *history {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.histories[key]
	if !ok {
		h = &history{}
		c.histories[key] = h
	}
	return h
}

// sync reconciles one HPA and asks to be called again after SyncPeriod.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cached, err := c.hpas.HorizontalPodAutoscalers(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.histories, key)
		c.mu.Unlock()
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	hpa := cached.DeepCopy()
	scaleErr := c.reconcile(ctx, key, hpa)
	if !equality.Semantic.DeepEqual(cached.Status, hpa.Status) {
		if err := c.client.UpdateStatus(ctx, hpa); err != nil {
			return 0, fmt.Errorf("updating status of HPA %s: %w", key, err)
		}
	}
	if scaleErr != nil {
		c.log.Info("autoscaling failed", "hpa", key, "err", scaleErr)
	}
	return c.SyncPeriod, nil
}

// reconcile computes and applies the HPA's replica count and fills
// hpa.Status (hpa is a copy). The error says why it could not scale; the
// status already says so too.
func (c *Controller) reconcile(ctx context.Context, key string, hpa *autoscalingv2.HorizontalPodAutoscaler) error {
	now := c.now()
	ref := hpa.Spec.ScaleTargetRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return c.failGetScale(hpa, now, fmt.Errorf("invalid API version in scale target reference: %w", err))
	}
	mapping, err := c.Mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, gv.Version)
	if err != nil {
		if r, ok := c.Mapper.(resettable); ok {
			r.Reset()
		}
		return c.failGetScale(hpa, now, fmt.Errorf("unable to determine resource for scale target reference: %w", err))
	}
	gr := mapping.Resource.GroupResource()
	sc, err := c.Scales.Scales(hpa.Namespace).Get(ctx, gr, ref.Name, metav1.GetOptions{})
	if err != nil {
		return c.failGetScale(hpa, now, fmt.Errorf("failed to query scale subresource for %s/%s: %w", ref.Kind, ref.Name, err))
	}
	setCondition(hpa, now, autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededGetScale", "the HPA controller was able to get the target's current scale")

	h := c.historyFor(key)
	current := sc.Spec.Replicas
	if len(h.recommendations) == 0 {
		h.recommendations = append(h.recommendations, recommendation{at: now, replicas: current})
	}
	minReplicas := int32(1)
	if hpa.Spec.MinReplicas != nil {
		minReplicas = *hpa.Spec.MinReplicas
	}
	r := behaviorRules(hpa.Spec.Behavior, c.DownscaleStabilization)

	var (
		desired  int32
		reason   string
		statuses []autoscalingv2.MetricStatus
	)
	switch {
	case current == 0 && minReplicas != 0:
		desired = 0
		setCondition(hpa, now, autoscalingv2.ScalingActive, corev1.ConditionFalse, "ScalingDisabled", "scaling is disabled since the replica count of the target is zero")
	case current > hpa.Spec.MaxReplicas:
		desired, reason = hpa.Spec.MaxReplicas, "Current number of replicas above Spec.MaxReplicas"
	case current < minReplicas:
		desired, reason = minReplicas, "Current number of replicas below Spec.MinReplicas"
	default:
		proposal, metric, sts, err := c.computeReplicas(ctx, hpa, now, sc.Status.Selector, current)
		statuses = sts
		if err != nil {
			c.event(hpa, corev1.EventTypeWarning, "FailedComputeMetricsReplicas", err.Error())
			c.setStatus(hpa, current, hpa.Status.DesiredReplicas, statuses, false, now)
			return err
		}
		switch {
		case proposal > current:
			reason = fmt.Sprintf("%s above target", metric)
		case proposal < current:
			reason = "All metrics below target"
		}
		stabilized := h.stabilize(r, now, current, proposal)
		switch {
		case stabilized == proposal:
			setCondition(hpa, now, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale", "recommended size matches current size")
		case proposal >= current:
			setCondition(hpa, now, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation")
		default:
			setCondition(hpa, now, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation")
		}
		l := h.limit(r, now, current, stabilized, minReplicas, hpa.Spec.MaxReplicas)
		status := corev1.ConditionFalse
		if l.replicas != stabilized {
			status = corev1.ConditionTrue
		}
		setCondition(hpa, now, autoscalingv2.ScalingLimited, status, l.reason, l.message)
		desired = l.replicas
	}

	rescale := desired != current && !(current == 0 && minReplicas != 0)
	if rescale {
		next := sc.DeepCopy()
		next.Spec.Replicas = desired
		if _, err := c.Scales.Scales(hpa.Namespace).Update(ctx, gr, next, metav1.UpdateOptions{}); err != nil {
			c.event(hpa, corev1.EventTypeWarning, "FailedRescale", fmt.Sprintf("New size: %d; reason: %s; error: %v", desired, reason, err))
			setCondition(hpa, now, autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedUpdateScale", fmt.Sprintf("the HPA controller was unable to update the target scale: %v", err))
			c.setStatus(hpa, current, hpa.Status.DesiredReplicas, statuses, false, now)
			return fmt.Errorf("updating scale of %s/%s: %w", ref.Kind, ref.Name, err)
		}
		setCondition(hpa, now, autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededRescale", fmt.Sprintf("the HPA controller was able to update the target scale to %d", desired))
		c.event(hpa, corev1.EventTypeNormal, "SuccessfulRescale", fmt.Sprintf("New size: %d; reason: %s", desired, reason))
		h.record(r, now, current, desired)
		c.log.Info("rescaled", "hpa", key, "from", current, "to", desired, "reason", reason)
	}
	c.setStatus(hpa, current, desired, statuses, rescale, now)
	return nil
}

func (c *Controller) failGetScale(hpa *autoscalingv2.HorizontalPodAutoscaler, now time.Time, err error) error {
	c.event(hpa, corev1.EventTypeWarning, "FailedGetScale", err.Error())
	setCondition(hpa, now, autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedGetScale", fmt.Sprintf("the HPA controller was unable to get the target's current scale: %v", err))
	c.setStatus(hpa, hpa.Status.CurrentReplicas, hpa.Status.DesiredReplicas, nil, false, now)
	return err
}

func (c *Controller) event(hpa *autoscalingv2.HorizontalPodAutoscaler, typ, reason, msg string) {
	if c.recorder != nil {
		c.recorder.Event(hpa, typ, reason, msg)
	}
}

// setStatus writes the replica counts and metrics; lastScaleTime moves
// only on a rescale.
func (c *Controller) setStatus(hpa *autoscalingv2.HorizontalPodAutoscaler, current, desired int32, metrics []autoscalingv2.MetricStatus, rescaled bool, now time.Time) {
	hpa.Status.CurrentReplicas = current
	hpa.Status.DesiredReplicas = desired
	hpa.Status.CurrentMetrics = metrics
	hpa.Status.ObservedGeneration = ptr(hpa.Generation)
	if rescaled {
		hpa.Status.LastScaleTime = &metav1.Time{Time: now}
	}
}

// metricSpecs returns the HPA's metrics, or upstream's default of 80% CPU.
func metricSpecs(hpa *autoscalingv2.HorizontalPodAutoscaler) []autoscalingv2.MetricSpec {
	if len(hpa.Spec.Metrics) > 0 {
		return hpa.Spec.Metrics
	}
	return []autoscalingv2.MetricSpec{{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr[int32](80)},
		},
	}}
}

// computeReplicas returns the largest proposal of the HPA's metrics, the
// name of the metric that made it, and the metrics' statuses. It sets
// ScalingActive and records the metric events.
func (c *Controller) computeReplicas(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, now time.Time, selectorText string, current int32) (int32, string, []autoscalingv2.MetricStatus, error) {
	if selectorText == "" {
		c.event(hpa, corev1.EventTypeWarning, "SelectorRequired", "selector is required")
		setCondition(hpa, now, autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", "the HPA target's scale is missing a selector")
		return 0, "", nil, errors.New("selector is required")
	}
	selector, err := labels.Parse(selectorText)
	if err != nil {
		msg := fmt.Sprintf("couldn't convert selector into a corresponding internal selector object: %v", err)
		c.event(hpa, corev1.EventTypeWarning, "InvalidSelector", msg)
		setCondition(hpa, now, autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", msg)
		return 0, "", nil, errors.New(msg)
	}
	specs := metricSpecs(hpa)
	var (
		replicas               int32
		metric                 string
		statuses               = make([]autoscalingv2.MetricStatus, len(specs))
		invalid                int
		firstErr               error
		firstReason, firstText string
	)
	var podMetrics map[string]PodMetric
	var metricsErr error
	fetched := false
	for i, spec := range specs {
		proposal, name, status, reason, err := func() (int32, string, autoscalingv2.MetricStatus, string, error) {
			if spec.Type != autoscalingv2.ResourceMetricSourceType || spec.Resource == nil {
				return 0, "", autoscalingv2.MetricStatus{}, "InvalidMetricSourceType", fmt.Errorf("unsupported metric source type %q", spec.Type)
			}
			res := spec.Resource
			if !fetched {
				podMetrics, metricsErr = c.Metrics.PodMetrics(ctx, hpa.Namespace, selector)
				fetched = true
			}
			if metricsErr != nil {
				return 0, "", autoscalingv2.MetricStatus{}, "FailedGetResourceMetric", fmt.Errorf("failed to get %s utilization: unable to get metrics for resource %s: %w", res.Name, res.Name, metricsErr)
			}
			pods, err := c.pods.Pods(hpa.Namespace).List(selector)
			if err != nil {
				return 0, "", autoscalingv2.MetricStatus{}, "FailedGetResourceMetric", fmt.Errorf("failed to get %s utilization: %w", res.Name, err)
			}
			k := calc{resource: res.Name, current: current, tolerance: c.tolerances(hpa), now: now, pods: pods, metrics: podMetrics}
			switch {
			case res.Target.Type == autoscalingv2.UtilizationMetricType && res.Target.AverageUtilization != nil:
				out, err := k.utilization(*res.Target.AverageUtilization)
				if err != nil {
					return 0, "", autoscalingv2.MetricStatus{}, "FailedGetResourceMetric", fmt.Errorf("failed to get %s utilization: %w", res.Name, err)
				}
				return out.replicas, fmt.Sprintf("%s resource utilization (percentage of request)", res.Name), autoscalingv2.MetricStatus{
					Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricStatus{Name: res.Name, Current: autoscalingv2.MetricValueStatus{
						AverageValue:       resource.NewMilliQuantity(out.averageMilli, resource.DecimalSI),
						AverageUtilization: ptr(out.utilization),
					}},
				}, "", nil
			case res.Target.Type == autoscalingv2.AverageValueMetricType && res.Target.AverageValue != nil:
				out, err := k.averageValue(res.Target.AverageValue.MilliValue())
				if err != nil {
					return 0, "", autoscalingv2.MetricStatus{}, "FailedGetResourceMetric", fmt.Errorf("failed to get %s usage: %w", res.Name, err)
				}
				return out.replicas, fmt.Sprintf("%s resource", res.Name), autoscalingv2.MetricStatus{
					Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricStatus{Name: res.Name, Current: autoscalingv2.MetricValueStatus{
						AverageValue: resource.NewMilliQuantity(out.averageMilli, resource.DecimalSI),
					}},
				}, "", nil
			default:
				return 0, "", autoscalingv2.MetricStatus{}, "FailedGetResourceMetric", fmt.Errorf("invalid resource metric source: neither an average utilization target nor an average value target was set")
			}
		}()
		if err != nil {
			c.event(hpa, corev1.EventTypeWarning, reason, err.Error())
			if invalid == 0 {
				firstErr, firstReason = err, reason
				firstText = fmt.Sprintf("the HPA was unable to compute the replica count: %v", err)
			}
			invalid++
			continue
		}
		statuses[i] = status
		if replicas == 0 || proposal > replicas {
			replicas, metric = proposal, name
		}
	}
	if invalid >= len(specs) || (invalid > 0 && replicas < current) {
		setCondition(hpa, now, autoscalingv2.ScalingActive, corev1.ConditionFalse, firstReason, firstText)
		return 0, "", nil, fmt.Errorf("invalid metrics (%d invalid out of %d), first error is: %w", invalid, len(specs), firstErr)
	}
	var kept []autoscalingv2.MetricStatus
	for _, s := range statuses {
		if s.Type != "" {
			kept = append(kept, s)
		}
	}
	setCondition(hpa, now, autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound", fmt.Sprintf("the HPA was able to successfully calculate a replica count from %s", metric))
	return replicas, metric, kept, nil
}

// tolerances returns the HPA's behavior tolerances (HPAConfigurableTolerance),
// c.Tolerance where it sets none.
func (c *Controller) tolerances(hpa *autoscalingv2.HorizontalPodAutoscaler) tolerances {
	t := tolerances{down: c.Tolerance, up: c.Tolerance}
	if b := hpa.Spec.Behavior; b != nil {
		if b.ScaleDown != nil && b.ScaleDown.Tolerance != nil {
			t.down = b.ScaleDown.Tolerance.AsApproximateFloat64()
		}
		if b.ScaleUp != nil && b.ScaleUp.Tolerance != nil {
			t.up = b.ScaleUp.Tolerance.AsApproximateFloat64()
		}
	}
	return t
}

// setCondition sets a condition, moving its transition time only when its
// status changes.
func setCondition(hpa *autoscalingv2.HorizontalPodAutoscaler, now time.Time, typ autoscalingv2.HorizontalPodAutoscalerConditionType, status corev1.ConditionStatus, reason, message string) {
	for i := range hpa.Status.Conditions {
		cond := &hpa.Status.Conditions[i]
		if cond.Type != typ {
			continue
		}
		if cond.Status != status {
			cond.LastTransitionTime = metav1.Time{Time: now}
		}
		cond.Status, cond.Reason, cond.Message = status, reason, message
		return
	}
	hpa.Status.Conditions = append(hpa.Status.Conditions, autoscalingv2.HorizontalPodAutoscalerCondition{
		Type: typ, Status: status, Reason: reason, Message: message, LastTransitionTime: metav1.Time{Time: now},
	})
}
