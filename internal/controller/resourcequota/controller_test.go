package resourcequota

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

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

// usedIs compares the quota's status.used with want (quantities by value).
func usedIs(ctx context.Context, client kubernetes.Interface, ns, name string, want map[string]string) error {
	q, err := client.CoreV1().ResourceQuotas(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if len(q.Status.Hard) != len(q.Spec.Hard) {
		return fmt.Errorf("status.hard %v, spec.hard %v", q.Status.Hard, q.Spec.Hard)
	}
	for res, v := range want {
		got, ok := q.Status.Used[corev1.ResourceName(res)]
		if !ok || got.Cmp(resource.MustParse(v)) != 0 {
			return fmt.Errorf("used[%s] = %s (present %v), want %s; used %v", res, got.String(), ok, v, q.Status.Used)
		}
	}
	return nil
}

func pod(name string, cpu, memLimit string, lbls map[string]string) *corev1.Pod {
	c := corev1.Container{Name: "c", Image: "busybox"}
	if cpu != "" {
		c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
	}
	if memLimit != "" {
		c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memLimit)}
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
}

// startController runs the controller (with its metadata client) against
// a fresh test server until the test ends.
func startController(t *testing.T) (context.Context, kubernetes.Interface) {
	t.Helper()
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := t.Context()
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := NewForConfig(controller.Deps{Client: client, Informers: factory}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	factory.StartWithContext(ctx)
	go func() { _ = c.Run(ctx, 2) }()
	return ctx, client
}

func TestQuotaStatus(t *testing.T) {
	ctx, client := startController(t)

	ns := "quota"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hard := corev1.ResourceList{}
	for k, v := range map[string]string{
		"pods": "10", "count/pods": "10", "requests.cpu": "4", "cpu": "4", "limits.memory": "4Gi",
		"configmaps": "5", "count/configmaps": "5", "services": "5", "resourcequotas": "2", "count/deployments.apps": "3",
		"count/roles.rbac.authorization.k8s.io": "3",
	} {
		hard[corev1.ResourceName(k)] = resource.MustParse(v)
	}
	quotas := client.CoreV1().ResourceQuotas(ns)
	// The best-effort pod first: once "all" (which limits requests.cpu)
	// exists, quota admission refuses pods that request no cpu.
	pods := client.CoreV1().Pods(ns)
	if _, err := pods.Create(ctx, pod("be", "", "", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := quotas.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "all"}, Spec: corev1.ResourceQuotaSpec{Hard: hard}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	best := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "besteffort"},
		Spec: corev1.ResourceQuotaSpec{
			Hard:   corev1.ResourceList{corev1.ResourcePods: resource.MustParse("5")},
			Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort},
		},
	}
	if _, err := quotas.Create(ctx, best, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait := func(what, name string, want map[string]string) {
		t.Helper()
		poll(t, 20*time.Second, what, func() error { return usedIs(ctx, client, ns, name, want) })
	}
	wait("a best-effort pod", "all", map[string]string{"pods": "1", "requests.cpu": "0", "cpu": "0", "configmaps": "0", "resourcequotas": "2", "count/deployments.apps": "0"})

	// Roles have no informer here: they are listed at the next sync.
	if _, err := client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "r"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{pod("a", "500m", "256Mi", nil), pod("b", "500m", "256Mi", nil)} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("pods and a configmap", "all", map[string]string{
		"pods": "3", "count/pods": "3", "requests.cpu": "1", "cpu": "1", "limits.memory": "512Mi", "configmaps": "1", "count/configmaps": "1",
		"count/roles.rbac.authorization.k8s.io": "1",
	})
	wait("best-effort pod", "besteffort", map[string]string{"pods": "1"})

	// A finished pod no longer counts as a pod nor for compute, but
	// count/pods counts every stored pod.
	a, err := pods.Get(ctx, "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.Status.Phase = corev1.PodSucceeded
	if _, err := pods.UpdateStatus(ctx, a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("a finished pod", "all", map[string]string{"pods": "2", "count/pods": "3", "requests.cpu": "500m", "limits.memory": "256Mi"})

	// Deletes are followed.
	for _, name := range []string{"a", "b", "be"} {
		if err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.CoreV1().ConfigMaps(ns).Delete(ctx, "cm", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("deletes", "all", map[string]string{"pods": "0", "count/pods": "0", "requests.cpu": "0", "configmaps": "0"})
	wait("deletes", "besteffort", map[string]string{"pods": "0"})
}

func TestPodChanged(t *testing.T) {
	t.Parallel()
	base := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}}}
	tests := []struct {
		name   string
		change func(p *corev1.Pod)
		want   bool
	}{
		{"binding", func(p *corev1.Pod) { p.Spec.NodeName = "n1" }, false},
		{"labels", func(p *corev1.Pod) { p.Labels = map[string]string{"a": "b"} }, false},
		{"same quantity spelt otherwise", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("0.1")
		}, false},
		{"request", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("200m")
		}, true},
		{"limit added", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
		}, true},
		{"priority class", func(p *corev1.Pod) { p.Spec.PriorityClassName = "high" }, true},
		{"active deadline", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To(int64(30)) }, true},
		{"phase", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }, true},
		{"deleted", func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)} }, true},
	}
	for _, tt := range tests {
		n := base.DeepCopy()
		tt.change(n)
		if got := podChanged(base, n); got != tt.want {
			t.Errorf("%s: podChanged = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestCreatesStayWithinQuota creates pods in waves against a quota of two
// while the controller runs. Admission charges each creation into
// status.used; the controller must not recompute on those creations or on
// the charges (its pod cache may not hold the newest pods yet), or it
// hands a charge back and a third pod gets through.
func TestCreatesStayWithinQuota(t *testing.T) {
	ctx, client := startController(t)

	for round := range 8 {
		ns := fmt.Sprintf("waves-%d", round)
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		q := &corev1.ResourceQuota{
			ObjectMeta: metav1.ObjectMeta{Name: "two"},
			Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}},
		}
		if _, err := client.CoreV1().ResourceQuotas(ns).Create(ctx, q, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, 20*time.Second, "the quota's status", func() error { return usedIs(ctx, client, ns, "two", map[string]string{"pods": "0"}) })

		// One pod, then the rest at once while the controller sees the
		// first pod's creation and charge.
		created := 0
		if _, err := client.CoreV1().Pods(ns).Create(ctx, pod("p0", "", "", nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		created++
		results := make(chan error)
		for i := 1; i <= 4; i++ {
			go func() {
				_, err := client.CoreV1().Pods(ns).Create(ctx, pod(fmt.Sprintf("p%d", i), "", "", nil), metav1.CreateOptions{})
				results <- err
			}()
		}
		for range 4 {
			if err := <-results; err == nil {
				created++
			}
		}
		// And one more after the controller had time to react.
		time.Sleep(100 * time.Millisecond)
		if _, err := client.CoreV1().Pods(ns).Create(ctx, pod("late", "", "", nil), metav1.CreateOptions{}); err == nil {
			created++
		}
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if created != 2 || len(list.Items) != 2 {
			t.Fatalf("round %d: %d creations succeeded, %d pods stored, want 2 under a quota of 2 pods", round, created, len(list.Items))
		}
	}
}
