package podautoscaler

import (
	"errors"
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Upstream's defaults for the replica calculation.
const (
	// DefaultTolerance is the relative distance from the target within
	// which no scaling happens.
	DefaultTolerance = 0.1
	// cpuInitializationPeriod is how long after a pod's start its CPU
	// samples are distrusted unless it is ready and sampled since.
	cpuInitializationPeriod = 5 * time.Minute
	// initialReadinessDelay is how long after start a pod that turned
	// unready is taken as never having been ready.
	initialReadinessDelay = 30 * time.Second
)

// calc is one replica computation for one resource metric of one HPA.
// It is pure: everything it needs is in its fields.
type calc struct {
	resource corev1.ResourceName
	current  int32
	// down and up tolerances: ratios within [1-down, 1+up] keep the
	// current count.
	tolerance tolerances
	now       time.Time
	pods      []*corev1.Pod
	metrics   map[string]PodMetric
}

// result is what a metric proposes.
type result struct {
	replicas int32
	// utilization is the average utilization in percent of the requests
	// of the ready pods with metrics (Utilization targets only).
	utilization int32
	// average is the average usage in milli-units of those pods.
	averageMilli int64
}

// errNoMetrics and errNoPods are the upstream failures.
var (
	errNoPods = errors.New("no pods returned by selector while calculating replica count")
)

// podGroups splits pods as upstream does: ignored (being deleted or
// failed), unready (pending, or for CPU not yet trustworthy) and missing
// (no sample); the rest keep their sample in ready.
func (c calc) podGroups() (ready map[string]int64, unready, missing map[string]bool, ignored map[string]bool) {
	ready = map[string]int64{}
	unready, missing, ignored = map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, pod := range c.pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed {
			ignored[pod.Name] = true
			continue
		}
		if pod.Status.Phase == corev1.PodPending {
			unready[pod.Name] = true
			continue
		}
		m, ok := c.metrics[pod.Name]
		var q, has = m.Usage[c.resource]
		if !ok || !has {
			missing[pod.Name] = true
			continue
		}
		if c.resource == corev1.ResourceCPU && c.cpuUnready(pod, m) {
			unready[pod.Name] = true
			continue
		}
		ready[pod.Name] = q.MilliValue()
	}
	return ready, unready, missing, ignored
}

// cpuUnready reports whether a pod's CPU sample must not be trusted.
func (c calc) cpuUnready(pod *corev1.Pod, m PodMetric) bool {
	var cond *corev1.PodCondition
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			cond = &pod.Status.Conditions[i]
		}
	}
	if cond == nil || pod.Status.StartTime == nil {
		return true
	}
	start := pod.Status.StartTime.Time
	if start.Add(cpuInitializationPeriod).After(c.now) {
		return cond.Status == corev1.ConditionFalse || m.Timestamp.Before(cond.LastTransitionTime.Add(m.Window))
	}
	return cond.Status == corev1.ConditionFalse && start.Add(initialReadinessDelay).After(cond.LastTransitionTime.Time)
}

// requests sums each pod's container requests for the resource, in
// milli-units; a container without a request is an error, as upstream.
func (c calc) requests() (map[string]int64, error) {
	out := map[string]int64{}
	for _, pod := range c.pods {
		var sum int64
		for _, ctr := range pod.Spec.Containers {
			q, ok := ctr.Resources.Requests[c.resource]
			if !ok {
				return nil, fmt.Errorf("missing request for %s in container %s of Pod %s", c.resource, ctr.Name, pod.Name)
			}
			sum += q.MilliValue()
		}
		out[pod.Name] = sum
	}
	return out, nil
}

// utilizationRatio is upstream's GetResourceUtilizationRatio: usage of the
// pods in metrics over their requests, relative to target percent.
func utilizationRatio(metrics, requests map[string]int64, target int32) (ratio float64, utilization int32, avg int64, err error) {
	var usage, req int64
	n := 0
	for pod, v := range metrics {
		r, ok := requests[pod]
		if !ok {
			continue
		}
		usage += v
		req += r
		n++
	}
	if req == 0 {
		return 0, 0, 0, errors.New("no metrics returned matched known pods")
	}
	utilization = int32(usage * 100 / req)
	return float64(utilization) / float64(target), utilization, usage / int64(n), nil
}

// utilization computes the proposal for a target average utilization
// (percent of requests).
func (c calc) utilization(target int32) (result, error) {
	if len(c.metrics) == 0 {
		return result{}, fmt.Errorf("unable to get metrics for resource %s: no metrics returned from resource metrics API", c.resource)
	}
	if len(c.pods) == 0 {
		return result{}, errNoPods
	}
	ready, unready, missing, _ := c.podGroups()
	requests, err := c.requests()
	if err != nil {
		return result{}, err
	}
	if len(ready) == 0 && len(unready) == 0 && len(missing) == 0 {
		return result{}, errNoPods
	}
	ratio, util, avg, err := utilizationRatio(ready, requests, target)
	if err != nil && len(ready) > 0 {
		return result{}, err
	}
	if len(ready) == 0 {
		// Every pod is unready or unsampled: nothing to base a decision on.
		return result{}, fmt.Errorf("did not receive metrics for targeted pods (pods might be unready)")
	}
	res := result{replicas: c.current, utilization: util, averageMilli: avg}
	rebalanceUnready := len(unready) > 0 && ratio > 1.0
	if !rebalanceUnready && len(missing) == 0 {
		if c.tolerance.within(ratio) {
			return res, nil
		}
		res.replicas = int32(math.Ceil(ratio * float64(len(ready))))
		return res, nil
	}
	if len(missing) > 0 {
		fallback := int64(max(100, target))
		for pod := range missing {
			switch {
			case ratio < 1.0: // scale down: the missing use their request (or the target above 100%)
				ready[pod] = requests[pod] * fallback / 100
			case ratio > 1.0: // scale up: they use nothing
				ready[pod] = 0
			}
		}
	}
	if rebalanceUnready {
		for pod := range unready {
			ready[pod] = 0
		}
	}
	newRatio, _, _, err := utilizationRatio(ready, requests, target)
	if err != nil {
		return result{}, err
	}
	if c.tolerance.within(newRatio) || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		return res, nil
	}
	n := int32(math.Ceil(newRatio * float64(len(ready))))
	if (newRatio < 1.0 && n > c.current) || (newRatio > 1.0 && n < c.current) {
		return res, nil
	}
	res.replicas = n
	return res, nil
}

// averageValue computes the proposal for a target average usage per pod
// (targetMilli in milli-units).
func (c calc) averageValue(targetMilli int64) (result, error) {
	if len(c.metrics) == 0 {
		return result{}, fmt.Errorf("unable to get metrics for resource %s: no metrics returned from resource metrics API", c.resource)
	}
	if len(c.pods) == 0 {
		return result{}, errNoPods
	}
	if targetMilli <= 0 {
		return result{}, fmt.Errorf("invalid target average value for resource %s", c.resource)
	}
	ready, unready, missing, _ := c.podGroups()
	if len(ready) == 0 {
		return result{}, fmt.Errorf("did not receive metrics for targeted pods (pods might be unready)")
	}
	ratioOf := func(m map[string]int64) (float64, int64) {
		var sum int64
		for _, v := range m {
			sum += v
		}
		avg := sum / int64(len(m))
		return float64(sum) / float64(len(m)) / float64(targetMilli), avg
	}
	ratio, avg := ratioOf(ready)
	res := result{replicas: c.current, averageMilli: avg}
	rebalanceUnready := len(unready) > 0 && ratio > 1.0
	if !rebalanceUnready && len(missing) == 0 {
		if c.tolerance.within(ratio) {
			return res, nil
		}
		res.replicas = int32(math.Ceil(ratio * float64(len(ready))))
		return res, nil
	}
	for pod := range missing {
		switch {
		case ratio < 1.0:
			ready[pod] = targetMilli
		case ratio > 1.0:
			ready[pod] = 0
		}
	}
	if rebalanceUnready {
		for pod := range unready {
			ready[pod] = 0
		}
	}
	newRatio, _ := ratioOf(ready)
	if c.tolerance.within(newRatio) || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		return res, nil
	}
	n := int32(math.Ceil(newRatio * float64(len(ready))))
	if (newRatio < 1.0 && n > c.current) || (newRatio > 1.0 && n < c.current) {
		return res, nil
	}
	res.replicas = n
	return res, nil
}

// tolerances are the relative distances from the target, below and above,
// within which nothing is scaled.
type tolerances struct{ down, up float64 }

func (t tolerances) within(ratio float64) bool {
	return 1.0-t.down <= ratio && ratio <= 1.0+t.up
}
