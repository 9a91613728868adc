package podautoscaler

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeMetrics serves metrics.k8s.io/v1beta1 PodMetrics lists from a map
// of pod name to CPU usage, for pods of any namespace with those labels.
type fakeMetrics struct {
	mu   sync.Mutex
	pods map[string]fakePod // guarded by mu
}

type fakePod struct {
	namespace string
	labels    map[string]string
	cpu       string
}

func (f *fakeMetrics) set(ns, name string, lbls map[string]string, cpu string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pods[name] = fakePod{ns, lbls, cpu}
}

func (f *fakeMetrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// /apis/metrics.k8s.io/v1beta1/namespaces/<ns>/pods
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 6 || parts[0] != "apis" || parts[1] != "metrics.k8s.io" || parts[3] != "namespaces" || parts[5] != "pods" {
		http.NotFound(w, r)
		return
	}
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	list := metricsv1beta1.PodMetricsList{TypeMeta: metav1.TypeMeta{APIVersion: "metrics.k8s.io/v1beta1", Kind: "PodMetricsList"}}
	for name, p := range f.pods {
		if p.namespace != parts[4] || !sel.Matches(labels.Set(p.labels)) {
			continue
		}
		list.Items = append(list.Items, metricsv1beta1.PodMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.namespace, Labels: p.labels},
			Timestamp:  metav1.Now(),
			Window:     metav1.Duration{Duration: 30 * time.Second},
			Containers: []metricsv1beta1.ContainerMetrics{{Name: "c", Usage: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(p.cpu)}}},
		})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// poll calls f until it returns nil, failing with its last error at the
// deadline.
func poll(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		}
	}
}

func readyPod(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, name string, lbls map[string]string, started time.Time) {
	t.Helper()
	pod, err := client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "busybox",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.StartTime = &metav1.Time{Time: started}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Time{Time: started}}}
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating status of pod %s: %v", name, err)
	}
}

func TestScalesDeploymentOnCPU(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	metrics := &fakeMetrics{pods: map[string]fakePod{}}
	srv := httptest.NewServer(metrics)
	defer srv.Close()
	source, err := NewMetricsClient(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}

	clock := &fakeClock{now: time.Now()}
	rec := record.NewFakeRecorder(100)
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := NewForConfig(controller.Deps{Client: client, Informers: factory, Recorder: rec, Now: clock.Now}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Metrics = source
	c.SyncPeriod = 100 * time.Millisecond
	factory.StartWithContext(ctx)
	go func() { _ = c.Run(ctx, 2) }()

	ns := "hpa"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lbls := map[string]string{"app": "web"}
	_, err = client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbls},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	started := clock.Now().Add(-10 * time.Minute)
	for _, name := range []string{"web-a", "web-b"} {
		readyPod(t, ctx, client, ns, name, lbls, started)
		metrics.set(ns, name, lbls, "100m") // 100% of the request: 200% of the 50% target
	}
	_, err = client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr[int32](1),
			MaxReplicas:    10,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{
					Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr[int32](50),
				}},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	waitReplicas := func(want int32) {
		t.Helper()
		poll(t, 20*time.Second, fmt.Sprintf("deployment at %d replicas", want), func() error {
			d, err := client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if *d.Spec.Replicas != want {
				return fmt.Errorf("spec.replicas = %d", *d.Spec.Replicas)
			}
			return nil
		})
	}
	condition := func(hpa *autoscalingv2.HorizontalPodAutoscaler, typ autoscalingv2.HorizontalPodAutoscalerConditionType) string {
		for _, c := range hpa.Status.Conditions {
			if c.Type == typ {
				return string(c.Status) + "/" + c.Reason
			}
		}
		return ""
	}

	waitReplicas(4)
	wantEvent := "Normal SuccessfulRescale New size: 4; reason: cpu resource utilization (percentage of request) above target"
	poll(t, 10*time.Second, "event", func() error {
		select {
		case e := <-rec.Events:
			if e == wantEvent {
				return nil
			}
			return fmt.Errorf("got event %q", e)
		default:
			return fmt.Errorf("no event %q yet", wantEvent)
		}
	})
	poll(t, 10*time.Second, "status after scale-up", func() error {
		hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if hpa.Status.DesiredReplicas != 4 || hpa.Status.LastScaleTime == nil || condition(hpa, autoscalingv2.ScalingActive) != "True/ValidMetricFound" {
			return fmt.Errorf("status %+v", hpa.Status)
		}
		if len(hpa.Status.CurrentMetrics) != 1 || *hpa.Status.CurrentMetrics[0].Resource.Current.AverageUtilization != 100 {
			return fmt.Errorf("currentMetrics %+v", hpa.Status.CurrentMetrics)
		}
		return nil
	})

	// Load drops to 10% of the request: the recommendation is 1 replica,
	// held at 4 by the scale-down stabilization window.
	for _, name := range []string{"web-c", "web-d"} {
		readyPod(t, ctx, client, ns, name, lbls, started)
	}
	for _, name := range []string{"web-a", "web-b", "web-c", "web-d"} {
		metrics.set(ns, name, lbls, "10m")
	}
	poll(t, 10*time.Second, "stabilized scale-down", func() error {
		hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := condition(hpa, autoscalingv2.AbleToScale); got != "True/ScaleDownStabilized" {
			return fmt.Errorf("AbleToScale %s", got)
		}
		return nil
	})
	waitReplicas(4)

	clock.Step(DefaultDownscaleStabilization + time.Second)
	waitReplicas(1)
	poll(t, 10*time.Second, "status after scale-down", func() error {
		hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if hpa.Status.DesiredReplicas != 1 {
			return fmt.Errorf("desiredReplicas %d", hpa.Status.DesiredReplicas)
		}
		return nil
	})
}

func TestMetricsAPIMissing(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := NewForConfig(controller.Deps{Client: client, Informers: factory, Recorder: record.NewFakeRecorder(100)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SyncPeriod = 100 * time.Millisecond
	factory.StartWithContext(ctx)
	go func() { _ = c.Run(ctx, 1) }()

	lbls := map[string]string{"app": "rs"}
	_, err = client.AppsV1().ReplicaSets("default").Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "rs"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbls},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.AutoscalingV2().HorizontalPodAutoscalers("default").Create(ctx, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "rs"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs"},
			MaxReplicas:    3,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 20*time.Second, "ScalingActive=False", func() error {
		hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "rs", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range hpa.Status.Conditions {
			if c.Type == autoscalingv2.ScalingActive && c.Status == corev1.ConditionFalse && c.Reason == "FailedGetResourceMetric" {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", hpa.Status.Conditions)
	})
}
