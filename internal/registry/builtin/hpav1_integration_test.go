package builtin_test

import (
	"context"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/testserver"
)

// TestHPAv1 drives autoscaling/v1 horizontalpodautoscalers through a real
// API server: both versions read and write the same objects, fields v1
// has no room for survive a v1 update, and v1 lists and watches see
// writes made through v2.
func TestHPAv1(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	v1, v2 := cs.AutoscalingV1().HorizontalPodAutoscalers("default"), cs.AutoscalingV2().HorizontalPodAutoscalers("default")

	w, err := v1.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch through v1: %v", err)
	}
	defer w.Stop()

	// Created through v1, as kubectl autoscale before 1.31 does.
	created, err := v1.Create(ctx, &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef:                 autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MaxReplicas:                    5,
			TargetCPUUtilizationPercentage: ptr.To[int32](50),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create through v1: %v", err)
	}
	if created.Spec.MinReplicas == nil || *created.Spec.MinReplicas != 1 || *created.Spec.TargetCPUUtilizationPercentage != 50 {
		t.Errorf("created through v1: %+v", created.Spec)
	}
	got, err := v2.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get through v2: %v", err)
	}
	if len(got.Spec.Metrics) != 1 || got.Spec.Metrics[0].Resource == nil || got.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU ||
		*got.Spec.Metrics[0].Resource.Target.AverageUtilization != 50 {
		t.Fatalf("read through v2: %+v", got.Spec.Metrics)
	}
	if got.ResourceVersion != created.ResourceVersion {
		t.Errorf("resourceVersion %s through v2, %s through v1", got.ResourceVersion, created.ResourceVersion)
	}

	// v2 adds a memory target; a v1 update of maxReplicas keeps it.
	mem := resource.MustParse("100Mi")
	got.Spec.Metrics = append(got.Spec.Metrics, autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &mem}},
	})
	if _, err := v2.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update through v2: %v", err)
	}
	old, err := v1.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get through v1: %v", err)
	}
	if old.Annotations["autoscaling.alpha.kubernetes.io/metrics"] == "" {
		t.Errorf("v1 object lacks the metrics annotation: %v", old.Annotations)
	}
	old.Spec.MaxReplicas = 7
	if _, err := v1.Update(ctx, old, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update through v1: %v", err)
	}
	got, err = v2.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.MaxReplicas != 7 || len(got.Spec.Metrics) != 2 {
		t.Errorf("after the v1 update, v2 reads maxReplicas %d, metrics %+v", got.Spec.MaxReplicas, got.Spec.Metrics)
	}
	if _, ok := got.Annotations["autoscaling.alpha.kubernetes.io/metrics"]; ok {
		t.Errorf("the v2 object keeps the conversion annotation: %v", got.Annotations)
	}

	// Through v1, a status write cannot change the spec, nor an update
	// the status, by the annotations that carry v2 fields.
	cur, err := v1.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Annotations["autoscaling.alpha.kubernetes.io/metrics"] = "[]"
	cur.Status.DesiredReplicas = 3
	if _, err := v1.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("status update through v1: %v", err)
	}
	cur, err = v1.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Annotations["autoscaling.alpha.kubernetes.io/conditions"] = `[{"type":"AbleToScale","status":"True"}]`
	if _, err := v1.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update through v1: %v", err)
	}
	got, err = v2.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Metrics) != 2 || got.Status.DesiredReplicas != 3 || len(got.Status.Conditions) != 0 {
		t.Errorf("after v1 writes through annotations: metrics %+v, desired %d, conditions %+v", got.Spec.Metrics, got.Status.DesiredReplicas, got.Status.Conditions)
	}

	// Validation applies to v1 writes too.
	_, err = v1.Create(ctx, &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
		},
	}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Errorf("v1 create without maxReplicas: %v, want 422", err)
	}

	list, err := v1.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list through v1: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].Spec.MaxReplicas != 7 || list.Items[0].APIVersion != "" && list.Items[0].APIVersion != "autoscaling/v1" {
		t.Errorf("list through v1: %+v", list.Items)
	}
	var events []watch.EventType
	timeout := time.After(10 * time.Second)
	for len(events) < 3 {
		select {
		case ev := <-w.ResultChan():
			if _, ok := ev.Object.(*autoscalingv1.HorizontalPodAutoscaler); !ok {
				t.Fatalf("watch event %s: %T", ev.Type, ev.Object)
			}
			events = append(events, ev.Type)
		case <-timeout:
			t.Fatalf("watch through v1 saw %v", events)
		}
	}
	if events[0] != watch.Added || events[1] != watch.Modified || events[2] != watch.Modified {
		t.Errorf("watch through v1: %v", events)
	}
	if err := v1.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete through v1: %v", err)
	}
	if _, err := v2.Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get through v2 after the v1 delete: %v", err)
	}
}
