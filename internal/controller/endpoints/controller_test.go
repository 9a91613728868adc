package endpoints

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// env is a real API server with the controller running against it.
type env struct {
	client kubernetes.Interface
	ctrl   *Controller
}

func start(t *testing.T) env {
	t.Helper()
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	factory := informers.NewSharedInformerFactory(client, 0)
	ctx, cancel := context.WithCancel(context.Background())
	c := New(controller.Deps{
		Client: client, Informers: factory, Recorder: record.NewFakeRecorder(100),
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	factory.StartWithContext(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 2) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	})
	return env{client: client, ctrl: c}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// eventually polls f until it returns nil or the deadline passes, then
// fails with f's last error.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met before deadline: %v", err)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("test ended: %v", err)
		}
	}
}

func namespace(t *testing.T, client kubernetes.Interface, name string) string {
	t.Helper()
	_, err := client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return name
}

// runPod creates a pod with the given labels and named container ports,
// then sets its status as a node would: Running with ip, Ready as given.
func runPod(t *testing.T, client kubernetes.Interface, ns, name, ip string, ready bool, labels map[string]string, ports map[string]int32, mutate ...func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c", Image: "img"}}},
	}
	for n, p := range ports {
		pod.Spec.Containers[0].Ports = append(pod.Spec.Containers[0].Ports, corev1.ContainerPort{Name: n, ContainerPort: p})
	}
	for _, m := range mutate {
		m(pod)
	}
	pod, err := client.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	setStatus(t, client, pod, ip, ready)
	got, err := client.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting pod %s: %v", name, err)
	}
	return got
}

func setStatus(t *testing.T, client kubernetes.Interface, pod *corev1.Pod, ip string, ready bool) {
	t.Helper()
	pod = pod.DeepCopy()
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	now := metav1.Now()
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, HostIP: "192.168.0.1",
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: cond, LastTransitionTime: now}},
	}
	if _, err := client.CoreV1().Pods(pod.Namespace).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating status of pod %s: %v", pod.Name, err)
	}
}

func endpointsMatch(t *testing.T, client kubernetes.Interface, ns, name string, want []corev1.EndpointSubset) func() error {
	return func() error {
		ep, err := client.CoreV1().Endpoints(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if diff := cmp.Diff(normalize(want), normalize(ep.Subsets)); diff != "" {
			return fmt.Errorf("subsets mismatch (-want +got):\n%s", diff)
		}
		return nil
	}
}

// normalize drops the difference between nil and empty slices.
func normalize(ss []corev1.EndpointSubset) []corev1.EndpointSubset {
	if len(ss) == 0 {
		return nil
	}
	out := make([]corev1.EndpointSubset, len(ss))
	for i, s := range ss {
		if len(s.Addresses) == 0 {
			s.Addresses = nil
		}
		if len(s.NotReadyAddresses) == 0 {
			s.NotReadyAddresses = nil
		}
		if len(s.Ports) == 0 {
			s.Ports = nil
		}
		out[i] = s
	}
	return out
}

func service(ns, name string, selector map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"team": "a"}},
		Spec:       corev1.ServiceSpec{Selector: selector, Ports: ports}, // the API server allocates the cluster IP
	}
}

func TestEndpoints(t *testing.T) {
	e := start(t)
	client := e.client
	web := map[string]string{"app": "web"}
	httpPort := corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("web")}
	tcp := corev1.ProtocolTCP

	t.Run("ready split, named ports, relabel, scale to zero", func(t *testing.T) {
		ns := namespace(t, client, "split")
		_, err := client.CoreV1().Services(ns).Create(t.Context(), service(ns, "svc", web, httpPort,
			corev1.ServicePort{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9091)}), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating service: %v", err)
		}
		a := runPod(t, client, ns, "a", "10.1.0.1", true, web, map[string]int32{"web": 8080})
		b := runPod(t, client, ns, "b", "10.1.0.2", false, web, map[string]int32{"web": 8080})
		c := runPod(t, client, ns, "c", "10.1.0.3", true, web, map[string]int32{"web": 8081})
		d := runPod(t, client, ns, "d", "10.1.0.4", true, web, nil)
		runPod(t, client, ns, "other", "10.1.0.9", true, map[string]string{"app": "other"}, nil)
		metrics := corev1.EndpointPort{Name: "metrics", Port: 9091, Protocol: tcp}
		http := func(p int32) corev1.EndpointPort { return corev1.EndpointPort{Name: "http", Port: p, Protocol: tcp} }
		eventually(t, endpointsMatch(t, client, ns, "svc", []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr(a, "")}, NotReadyAddresses: []corev1.EndpointAddress{addr(b, "")}, Ports: []corev1.EndpointPort{http(8080), metrics}},
			{Addresses: []corev1.EndpointAddress{addr(c, "")}, Ports: []corev1.EndpointPort{http(8081), metrics}},
			{Addresses: []corev1.EndpointAddress{addr(d, "")}, Ports: []corev1.EndpointPort{metrics}},
		}))

		ep, err := client.CoreV1().Endpoints(ns).Get(t.Context(), "svc", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting endpoints: %v", err)
		}
		if diff := cmp.Diff(map[string]string{"team": "a"}, ep.Labels); diff != "" {
			t.Errorf("labels mismatch (-want +got):\n%s", diff)
		}
		if _, err := time.Parse(time.RFC3339Nano, ep.Annotations[corev1.EndpointsLastChangeTriggerTime]); err != nil {
			t.Errorf("trigger time annotation: %v (annotations %v)", err, ep.Annotations)
		}

		// Nothing changed: a sync writes nothing.
		eventually(t, func() error {
			cached, err := e.ctrl.endpoints.Endpoints(ns).Get("svc")
			if err != nil || cached.ResourceVersion != ep.ResourceVersion {
				return fmt.Errorf("cache not caught up: %v", err)
			}
			return nil
		})
		if _, err := e.ctrl.sync(t.Context(), ns+"/svc"); err != nil {
			t.Fatalf("sync: %v", err)
		}
		again, err := client.CoreV1().Endpoints(ns).Get(t.Context(), "svc", metav1.GetOptions{})
		if err != nil || again.ResourceVersion != ep.ResourceVersion {
			t.Errorf("a sync without changes wrote the endpoints: rv %s -> %s (%v)", ep.ResourceVersion, again.ResourceVersion, err)
		}

		// b becomes ready; a leaves the selector; c and d go.
		setStatus(t, client, b, "10.1.0.2", true)
		relabeled := a.DeepCopy()
		relabeled.Labels = map[string]string{"app": "gone"}
		if _, err := client.CoreV1().Pods(ns).Update(t.Context(), relabeled, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("relabeling a: %v", err)
		}
		for _, p := range []string{"c", "d"} {
			if err := client.CoreV1().Pods(ns).Delete(t.Context(), p, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
				t.Fatalf("deleting %s: %v", p, err)
			}
		}
		eventually(t, endpointsMatch(t, client, ns, "svc", []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr(b, "")}, Ports: []corev1.EndpointPort{http(8080), metrics}},
		}))

		if err := client.CoreV1().Pods(ns).Delete(t.Context(), "b", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatalf("deleting b: %v", err)
		}
		eventually(t, endpointsMatch(t, client, ns, "svc", nil))
	})

	t.Run("headless service gets hostnames and the headless label", func(t *testing.T) {
		ns := namespace(t, client, "headless")
		svc := service(ns, "db", web)
		svc.Spec.ClusterIP = corev1.ClusterIPNone
		if _, err := client.CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating service: %v", err)
		}
		p := runPod(t, client, ns, "db-0", "10.2.0.1", true, web, nil, func(p *corev1.Pod) {
			p.Spec.Hostname, p.Spec.Subdomain = "db-0", "db"
		})
		eventually(t, endpointsMatch(t, client, ns, "db", []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{addr(p, "db-0")}},
		}))
		ep, err := client.CoreV1().Endpoints(ns).Get(t.Context(), "db", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting endpoints: %v", err)
		}
		if diff := cmp.Diff(map[string]string{"team": "a", corev1.IsHeadlessService: ""}, ep.Labels); diff != "" {
			t.Errorf("labels mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("service deletion removes endpoints; deleted endpoints come back; no selector is left alone", func(t *testing.T) {
		ns := namespace(t, client, "lifecycle")
		if _, err := client.CoreV1().Services(ns).Create(t.Context(), service(ns, "svc", web, httpPort), metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating service: %v", err)
		}
		manual := service(ns, "manual", nil, corev1.ServicePort{Name: "http", Port: 80})
		if _, err := client.CoreV1().Services(ns).Create(t.Context(), manual, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating service: %v", err)
		}
		eventually(t, endpointsMatch(t, client, ns, "svc", nil))
		if err := client.CoreV1().Endpoints(ns).Delete(t.Context(), "svc", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting endpoints: %v", err)
		}
		eventually(t, endpointsMatch(t, client, ns, "svc", nil))
		if err := client.CoreV1().Services(ns).Delete(t.Context(), "svc", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting service: %v", err)
		}
		eventually(t, func() error {
			_, err := client.CoreV1().Endpoints(ns).Get(t.Context(), "svc", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("endpoints still there (err %v)", err)
		})
		if _, err := client.CoreV1().Endpoints(ns).Get(t.Context(), "manual", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("endpoints of a service without selector: got err %v, want NotFound", err)
		}
	})
}
