package podautoscaler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type testPod struct {
	name    string
	phase   corev1.PodPhase // Running unless set
	ready   corev1.ConditionStatus
	request string // cpu request; "" means none
	// readySince is how long before t0 the Ready condition last changed
	// (the pod started 10 minutes before t0).
	readySince time.Duration
}

func makePods(in []testPod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range in {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.name}}
		c := corev1.Container{Name: "c"}
		if p.request != "" {
			c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(p.request), corev1.ResourceMemory: resource.MustParse(p.request)}
		}
		pod.Spec.Containers = []corev1.Container{c}
		pod.Status.Phase = corev1.PodRunning
		if p.phase != "" {
			pod.Status.Phase = p.phase
		}
		start := t0.Add(-10 * time.Minute)
		pod.Status.StartTime = &metav1.Time{Time: start}
		since := p.readySince
		if since == 0 {
			since = 10 * time.Minute
		}
		status := p.ready
		if status == "" {
			status = corev1.ConditionTrue
		}
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Time{Time: t0.Add(-since)}}}
		out = append(out, pod)
	}
	return out
}

func usage(res corev1.ResourceName, m map[string]string) map[string]PodMetric {
	out := map[string]PodMetric{}
	for name, v := range m {
		out[name] = PodMetric{Usage: corev1.ResourceList{res: resource.MustParse(v)}, Timestamp: t0, Window: 30 * time.Second}
	}
	return out
}

func TestUtilizationReplicas(t *testing.T) {
	tests := []struct {
		name      string
		resource  corev1.ResourceName
		current   int32
		pods      []testPod
		usage     map[string]string
		target    int32 // percent; 0 means averageValue
		average   string
		tolerance *tolerances // nil: the default 10% both ways
		want      result
		wantError bool
	}{{
		name: "twice the target doubles", resource: corev1.ResourceCPU, current: 2, target: 50,
		pods:  []testPod{{name: "a", request: "100m"}, {name: "b", request: "100m"}},
		usage: map[string]string{"a": "100m", "b": "100m"},
		want:  result{replicas: 4, utilization: 100, averageMilli: 100},
	}, {
		name: "within tolerance keeps the count", resource: corev1.ResourceCPU, current: 2, target: 50,
		pods:  []testPod{{name: "a", request: "100m"}, {name: "b", request: "100m"}},
		usage: map[string]string{"a": "54m", "b": "54m"},
		want:  result{replicas: 2, utilization: 54, averageMilli: 54},
	}, {
		name: "a smaller scale-up tolerance", resource: corev1.ResourceCPU, current: 2, target: 50,
		tolerance: &tolerances{down: 0.1, up: 0.01},
		pods:      []testPod{{name: "a", request: "100m"}, {name: "b", request: "100m"}},
		usage:     map[string]string{"a": "54m", "b": "54m"},
		want:      result{replicas: 3, utilization: 54, averageMilli: 54},
	}, {
		name: "missing metrics count as zero on scale-up", resource: corev1.ResourceCPU, current: 3, target: 50,
		pods:  []testPod{{name: "a", request: "100m"}, {name: "b", request: "100m"}, {name: "c", request: "100m"}},
		usage: map[string]string{"a": "100m", "b": "100m"},
		want:  result{replicas: 4, utilization: 100, averageMilli: 100},
	}, {
		name: "missing metrics count as their request on scale-down", resource: corev1.ResourceCPU, current: 3, target: 50,
		pods:  []testPod{{name: "a", request: "100m"}, {name: "b", request: "100m"}, {name: "c", request: "100m"}},
		usage: map[string]string{"a": "10m", "b": "10m"},
		want:  result{replicas: 3, utilization: 10, averageMilli: 10},
	}, {
		name: "never-ready pods count as zero on scale-up", resource: corev1.ResourceCPU, current: 3, target: 50,
		pods:  []testPod{{name: "a", request: "100m"}, {name: "b", request: "100m"}, {name: "c", request: "100m", ready: corev1.ConditionFalse, readySince: 10*time.Minute - 10*time.Second}},
		usage: map[string]string{"a": "100m", "b": "100m", "c": "500m"},
		want:  result{replicas: 4, utilization: 100, averageMilli: 100},
	}, {
		name: "pending pods are ignored on scale-down", resource: corev1.ResourceCPU, current: 3, target: 50,
		pods:  []testPod{{name: "a", request: "100m"}, {name: "b", request: "100m"}, {name: "c", request: "100m", phase: corev1.PodPending}},
		usage: map[string]string{"a": "10m", "b": "10m"},
		want:  result{replicas: 1, utilization: 10, averageMilli: 10},
	}, {
		name: "failed pods are ignored", resource: corev1.ResourceCPU, current: 2, target: 50,
		pods:  []testPod{{name: "a", request: "100m"}, {name: "b", request: "100m", phase: corev1.PodFailed}},
		usage: map[string]string{"a": "100m", "b": "900m"},
		want:  result{replicas: 2, utilization: 100, averageMilli: 100},
	}, {
		name: "memory ignores readiness", resource: corev1.ResourceMemory, current: 2, target: 50,
		pods:  []testPod{{name: "a", request: "100Mi"}, {name: "b", request: "100Mi", ready: corev1.ConditionFalse}},
		usage: map[string]string{"a": "100Mi", "b": "100Mi"},
		want:  result{replicas: 4, utilization: 100, averageMilli: 100 * 1024 * 1024 * 1000},
	}, {
		name: "a container without a request is an error", resource: corev1.ResourceCPU, current: 1, target: 50,
		pods:      []testPod{{name: "a"}},
		usage:     map[string]string{"a": "100m"},
		wantError: true,
	}, {
		name: "no metrics is an error", resource: corev1.ResourceCPU, current: 1, target: 50,
		pods:      []testPod{{name: "a", request: "100m"}},
		wantError: true,
	}, {
		name: "average value", resource: corev1.ResourceCPU, current: 2, average: "100m",
		pods:  []testPod{{name: "a"}, {name: "b"}},
		usage: map[string]string{"a": "300m", "b": "300m"},
		want:  result{replicas: 6, averageMilli: 300},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tol := tolerances{DefaultTolerance, DefaultTolerance}
			if tc.tolerance != nil {
				tol = *tc.tolerance
			}
			c := calc{resource: tc.resource, current: tc.current, tolerance: tol, now: t0, pods: makePods(tc.pods), metrics: usage(tc.resource, tc.usage)}
			var got result
			var err error
			if tc.target > 0 {
				got, err = c.utilization(tc.target)
			} else {
				q := resource.MustParse(tc.average)
				got, err = c.averageValue(q.MilliValue())
			}
			if tc.wantError {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(result{})); d != "" {
				t.Errorf("result (-want +got):\n%s", d)
			}
		})
	}
}

func TestBehavior(t *testing.T) {
	pods := autoscalingv2.PodsScalingPolicy
	tests := []struct {
		name             string
		behavior         *autoscalingv2.HorizontalPodAutoscalerBehavior
		history          history
		current, desired int32
		min, max         int32
		want             limited
		wantStabilized   int32
	}{{
		name: "default scale-up rate is max(4 pods, 100%) per 15s", current: 2, desired: 20, min: 1, max: 50,
		wantStabilized: 20, want: limited{6, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"},
	}, {
		name: "max replicas", current: 2, desired: 20, min: 1, max: 5,
		wantStabilized: 20, want: limited{5, "TooManyReplicas", "the desired replica count is more than the maximum replica count"},
	}, {
		name: "min replicas", current: 4, desired: 1, min: 2, max: 5,
		wantStabilized: 1, want: limited{2, "TooFewReplicas", "the desired replica count is less than the minimum replica count"},
	}, {
		name: "within range", current: 4, desired: 5, min: 1, max: 10,
		wantStabilized: 5, want: limited{5, "DesiredWithinRange", "the desired count is within the acceptable range"},
	}, {
		name: "scale-down window holds the highest recent recommendation", current: 5, desired: 2, min: 1, max: 10,
		history:        history{recommendations: []recommendation{{at: t0.Add(-100 * time.Second), replicas: 5}}},
		wantStabilized: 5, want: limited{5, "DesiredWithinRange", "the desired count is within the acceptable range"},
	}, {
		name: "recommendations older than the window are forgotten", current: 5, desired: 2, min: 1, max: 10,
		history:        history{recommendations: []recommendation{{at: t0.Add(-400 * time.Second), replicas: 5}}},
		wantStabilized: 2, want: limited{2, "DesiredWithinRange", "the desired count is within the acceptable range"},
	}, {
		name: "pods policy counts recent scale-downs", current: 4, desired: 1, min: 1, max: 10,
		behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr[int32](0),
			Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: pods, Value: 2, PeriodSeconds: 60}},
		}},
		history:        history{downs: []scaleEvent{{at: t0.Add(-30 * time.Second), change: 1}}},
		wantStabilized: 1, want: limited{3, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"},
	}, {
		name: "disabled scale-up", current: 3, desired: 6, min: 1, max: 10,
		behavior:       &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr(autoscalingv2.DisabledPolicySelect)}},
		wantStabilized: 6, want: limited{3, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"},
	}, {
		name: "scale-up window holds the lowest recent recommendation", current: 2, desired: 8, min: 1, max: 10,
		behavior:       &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr[int32](60)}},
		history:        history{recommendations: []recommendation{{at: t0.Add(-30 * time.Second), replicas: 3}}},
		wantStabilized: 3, want: limited{3, "DesiredWithinRange", "the desired count is within the acceptable range"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := behaviorRules(tc.behavior, DefaultDownscaleStabilization)
			h := tc.history
			stabilized := h.stabilize(r, t0, tc.current, tc.desired)
			if stabilized != tc.wantStabilized {
				t.Errorf("stabilized = %d, want %d", stabilized, tc.wantStabilized)
			}
			got := h.limit(r, t0, tc.current, stabilized, tc.min, tc.max)
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(limited{})); d != "" {
				t.Errorf("limit (-want +got):\n%s", d)
			}
		})
	}
}
