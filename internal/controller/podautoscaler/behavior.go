package podautoscaler

import (
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// recommendation is one past replica proposal of an HPA.
type recommendation struct {
	at       time.Time
	replicas int32
}

// scaleEvent is one past change of the target's replicas by an HPA.
type scaleEvent struct {
	at     time.Time
	change int32 // always positive; the list says the direction
}

// history is what the controller remembers of one HPA between syncs.
type history struct {
	recommendations []recommendation
	ups, downs      []scaleEvent
}

// rules are an HPA's behavior with upstream's defaults filled in.
type rules struct {
	up, down autoscalingv2.HPAScalingRules
}

func ptr[T any](v T) *T { return &v }

// behaviorRules returns b with upstream's defaults: scale up without a
// window by max(100%, 4 pods) per 15 s; scale down after the window
// defaultDownWindow by up to 100% per 15 s.
func behaviorRules(b *autoscalingv2.HorizontalPodAutoscalerBehavior, defaultDownWindow time.Duration) rules {
	r := rules{
		up: autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr[int32](0),
			SelectPolicy:               ptr(autoscalingv2.MaxChangePolicySelect),
			Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
				{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
			},
		},
		down: autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr(int32(defaultDownWindow / time.Second)),
			SelectPolicy:               ptr(autoscalingv2.MaxChangePolicySelect),
			Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
			},
		},
	}
	if b == nil {
		return r
	}
	merge := func(dst *autoscalingv2.HPAScalingRules, src *autoscalingv2.HPAScalingRules) {
		if src == nil {
			return
		}
		if src.StabilizationWindowSeconds != nil {
			dst.StabilizationWindowSeconds = src.StabilizationWindowSeconds
		}
		if src.SelectPolicy != nil {
			dst.SelectPolicy = src.SelectPolicy
		}
		if len(src.Policies) > 0 {
			dst.Policies = src.Policies
		}
	}
	merge(&r.up, b.ScaleUp)
	merge(&r.down, b.ScaleDown)
	return r
}

// stabilize applies the stabilization windows to desired and records it
// as a recommendation made at now. The result never goes below the lowest
// recommendation of the scale-up window nor above the highest of the
// scale-down window, and moves from current only in their direction.
func (h *history) stabilize(r rules, now time.Time, current, desired int32) int32 {
	upWindow := time.Duration(*r.up.StabilizationWindowSeconds) * time.Second
	downWindow := time.Duration(*r.down.StabilizationWindowSeconds) * time.Second
	up, down := desired, desired
	upCutoff, downCutoff := now.Add(-upWindow), now.Add(-downWindow)
	obsolete := now.Add(-max(upWindow, downWindow))
	kept := h.recommendations[:0]
	for _, rec := range h.recommendations {
		if rec.at.After(upCutoff) {
			up = min(up, rec.replicas)
		}
		if rec.at.After(downCutoff) {
			down = max(down, rec.replicas)
		}
		if !rec.at.Before(obsolete) {
			kept = append(kept, rec)
		}
	}
	h.recommendations = append(kept, recommendation{at: now, replicas: desired})
	out := current
	if out < up {
		out = up
	}
	if out > down {
		out = down
	}
	return out
}

// changeIn sums the changes of events within the last period seconds.
func changeIn(events []scaleEvent, now time.Time, periodSeconds int32) int32 {
	cutoff := now.Add(-time.Duration(periodSeconds) * time.Second)
	var n int32
	for _, e := range events {
		if e.at.After(cutoff) {
			n += e.change
		}
	}
	return n
}

// upLimit is the most replicas the scale-up policies allow now.
func (h *history) upLimit(r autoscalingv2.HPAScalingRules, now time.Time, current int32) int32 {
	if *r.SelectPolicy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pick, result := func(a, b int32) int32 { return max(a, b) }, int32(math.MinInt32)
	if *r.SelectPolicy == autoscalingv2.MinChangePolicySelect {
		pick, result = func(a, b int32) int32 { return min(a, b) }, math.MaxInt32
	}
	for _, p := range r.Policies {
		start := current - changeIn(h.ups, now, p.PeriodSeconds) + changeIn(h.downs, now, p.PeriodSeconds)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start + p.Value
		case autoscalingv2.PercentScalingPolicy:
			proposed = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		}
		result = pick(result, proposed)
	}
	return result
}

// downLimit is the fewest replicas the scale-down policies allow now.
func (h *history) downLimit(r autoscalingv2.HPAScalingRules, now time.Time, current int32) int32 {
	if *r.SelectPolicy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pick, result := func(a, b int32) int32 { return min(a, b) }, int32(math.MaxInt32)
	if *r.SelectPolicy == autoscalingv2.MinChangePolicySelect {
		pick, result = func(a, b int32) int32 { return max(a, b) }, math.MinInt32
	}
	for _, p := range r.Policies {
		start := current - changeIn(h.ups, now, p.PeriodSeconds) + changeIn(h.downs, now, p.PeriodSeconds)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start - p.Value
		case autoscalingv2.PercentScalingPolicy:
			proposed = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		result = pick(result, proposed)
	}
	return result
}

// limited is the outcome of applying the rate policies and min/max.
type limited struct {
	replicas        int32
	reason, message string
}

// limit applies the policies' rates and min/max replicas to desired.
func (h *history) limit(r rules, now time.Time, current, desired, minReplicas, maxReplicas int32) limited {
	switch {
	case desired > current:
		upLimit := max(h.upLimit(r.up, now, current), current)
		allowed, reason, msg := maxReplicas, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
		if maxReplicas > upLimit {
			allowed, reason, msg = upLimit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
		}
		if desired > allowed {
			return limited{allowed, reason, msg}
		}
	case desired < current:
		downLimit := min(h.downLimit(r.down, now, current), current)
		allowed, reason, msg := minReplicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
		if minReplicas < downLimit {
			allowed, reason, msg = downLimit, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"
		}
		if desired < allowed {
			return limited{allowed, reason, msg}
		}
	}
	return limited{desired, "DesiredWithinRange", "the desired count is within the acceptable range"}
}

// record remembers a change of the target from prev to next at now and
// forgets events older than the longest policy period.
func (h *history) record(r rules, now time.Time, prev, next int32) {
	longest := func(rs autoscalingv2.HPAScalingRules) time.Duration {
		var p int32
		for _, pol := range rs.Policies {
			p = max(p, pol.PeriodSeconds)
		}
		return time.Duration(p) * time.Second
	}
	prune := func(events []scaleEvent, keep time.Duration) []scaleEvent {
		out := events[:0]
		for _, e := range events {
			if e.at.After(now.Add(-keep)) {
				out = append(out, e)
			}
		}
		return out
	}
	keep := max(longest(r.up), longest(r.down))
	h.ups = prune(h.ups, keep)
	h.downs = prune(h.downs, keep)
	switch {
	case next > prev:
		h.ups = append(h.ups, scaleEvent{at: now, change: next - prev})
	case next < prev:
		h.downs = append(h.downs, scaleEvent{at: now, change: prev - next})
	}
}
