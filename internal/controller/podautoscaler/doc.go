// Package podautoscaler is the HorizontalPodAutoscaler controller
// (autoscaling/v2).
//
// Responsibility: every SyncPeriod (15 s) per HPA, read the target's
// /scale subresource, compute a replica count from the pods' CPU and
// memory usage (Resource metrics, target types Utilization and
// AverageValue) with upstream's algorithm (tolerance 0.1, conservative
// handling of unready pods and pods without metrics), apply min/max
// replicas and spec.behavior (stabilization windows, scaling policies,
// selectPolicy), and write the new spec.replicas through /scale.
//
// Reads: horizontalpodautoscalers and pods (shared informers); the target's
// /scale (scale client, resources resolved through discovery); pod usage
// from a MetricsSource (metrics.k8s.io/v1beta1 PodMetrics in production).
//
// Writes: the target's /scale spec.replicas; horizontalpodautoscalers/status
// (currentReplicas, desiredReplicas, currentMetrics, lastScaleTime,
// observedGeneration, conditions AbleToScale, ScalingActive,
// ScalingLimited with upstream's reasons); events SuccessfulRescale,
// FailedRescale, FailedGetScale, FailedGetResourceMetric,
// FailedComputeMetricsReplicas, SelectorRequired, InvalidSelector.
//
// Never: it never writes pods or the target's spec other than through
// /scale, and never mutates objects read from the informer caches.
//
// Recommendations (for the stabilization windows) and recent scale events
// (for the policies' periods) are kept in memory per HPA, as upstream; a
// restart forgets them, so the first scale-down after a restart waits a
// full window.
//
// # Usage
//
//	hpa, err := podautoscaler.NewForConfig(deps, restConfig) // or New(deps) and set Scales, Mapper, Metrics
//	deps.Informers.StartWithContext(ctx)
//	go hpa.Run(ctx, 5) // blocks until ctx is done
package podautoscaler
