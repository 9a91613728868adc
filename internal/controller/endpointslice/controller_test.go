package endpointslice

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

func start(t *testing.T) (kubernetes.Interface, *Controller) {
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
	for _, n := range []struct{ name, zone string }{{"node-a", "zone-a"}, {"node-b", ""}} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name}}
		if n.zone != "" {
			node.Labels = map[string]string{corev1.LabelTopologyZone: n.zone}
		}
		if _, err := client.CoreV1().Nodes().Create(t.Context(), node, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating node: %v", err)
		}
	}
	return client, c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
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
	if _, err := client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return name
}

// runPod creates a pod on node and sets its status as the node would.
func runPod(t *testing.T, client kubernetes.Interface, ns, name, node, ip string, ready bool, labels map[string]string, ports map[string]int32, mutate ...func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "img"}}},
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
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: cond, LastTransitionTime: metav1.Now()}},
	}
	pod, err = client.CoreV1().Pods(ns).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("updating status of pod %s: %v", name, err)
	}
	return pod
}

func listSlices(t *testing.T, client kubernetes.Interface, ns, svc string) ([]discovery.EndpointSlice, error) {
	list, err := client.DiscoveryV1().EndpointSlices(ns).List(t.Context(), metav1.ListOptions{LabelSelector: discovery.LabelServiceName + "=" + svc})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// ep is the comparable part of an endpoint.
type ep struct {
	Pod, IP, Node, Zone, Hostname string
	Ready, Serving, Terminating   bool
	Ports                         string
}

func endpointsOf(slices []discovery.EndpointSlice) []ep {
	var out []ep
	for _, s := range slices {
		for _, e := range s.Endpoints {
			x := ep{Pod: e.TargetRef.Name, IP: e.Addresses[0], Ports: portsKey(s.Ports)}
			if e.NodeName != nil {
				x.Node = *e.NodeName
			}
			if e.Zone != nil {
				x.Zone = *e.Zone
			}
			if e.Hostname != nil {
				x.Hostname = *e.Hostname
			}
			x.Ready, x.Serving, x.Terminating = *e.Conditions.Ready, *e.Conditions.Serving, *e.Conditions.Terminating
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out
}

func endpointsMatch(t *testing.T, client kubernetes.Interface, ns, svc string, want []ep) func() error {
	return func() error {
		ss, err := listSlices(t, client, ns, svc)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, endpointsOf(ss)); diff != "" {
			return fmt.Errorf("endpoints mismatch (-want +got):\n%s", diff)
		}
		return nil
	}
}

func service(ns, name string, selector map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"team": "a"}},
		Spec:       corev1.ServiceSpec{Selector: selector, Ports: ports}, // the API server allocates the cluster IP
	}
}

func TestEndpointSlices(t *testing.T) {
	client, ctrl := start(t)
	web := map[string]string{"app": "web"}
	httpPort := corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("web")}

	t.Run("conditions, named ports, zones, relabel, scale to zero, deletion", func(t *testing.T) {
		ns := namespace(t, client, "basic")
		svc, err := client.CoreV1().Services(ns).Create(t.Context(), service(ns, "svc", web, httpPort), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating service: %v", err)
		}
		runPod(t, client, ns, "a", "node-a", "10.1.0.1", true, web, map[string]int32{"web": 8080})
		runPod(t, client, ns, "b", "node-b", "10.1.0.2", false, web, map[string]int32{"web": 8080})
		runPod(t, client, ns, "c", "node-a", "10.1.0.3", true, web, map[string]int32{"web": 8081})
		runPod(t, client, ns, "d", "node-a", "10.1.0.4", true, web, nil)
		runPod(t, client, ns, "e", "node-a", "10.1.0.5", true, web, map[string]int32{"web": 8080}, func(p *corev1.Pod) {
			p.Finalizers = []string{"test/hold"}
		})
		// e terminates: it stays (with its finalizer) as terminating.
		if err := client.CoreV1().Pods(ns).Delete(t.Context(), "e", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting e: %v", err)
		}
		p8080, p8081, none := "http/8080/TCP/", "http/8081/TCP/", ""
		eventually(t, endpointsMatch(t, client, ns, "svc", []ep{
			{Pod: "a", IP: "10.1.0.1", Node: "node-a", Zone: "zone-a", Ready: true, Serving: true, Ports: p8080},
			{Pod: "b", IP: "10.1.0.2", Node: "node-b", Ports: p8080},
			{Pod: "c", IP: "10.1.0.3", Node: "node-a", Zone: "zone-a", Ready: true, Serving: true, Ports: p8081},
			{Pod: "d", IP: "10.1.0.4", Node: "node-a", Zone: "zone-a", Ready: true, Serving: true, Ports: none},
			{Pod: "e", IP: "10.1.0.5", Node: "node-a", Zone: "zone-a", Serving: true, Terminating: true, Ports: p8080},
		}))
		ss, err := listSlices(t, client, ns, "svc")
		if err != nil {
			t.Fatalf("listing slices: %v", err)
		}
		for _, s := range ss {
			wantLabels := map[string]string{"team": "a", discovery.LabelServiceName: "svc", discovery.LabelManagedBy: ManagedBy}
			if diff := cmp.Diff(wantLabels, s.Labels); diff != "" {
				t.Errorf("slice %s labels mismatch (-want +got):\n%s", s.Name, diff)
			}
			if s.AddressType != discovery.AddressTypeIPv4 || s.GenerateName != "svc-" || !ownedBy(&s, svc) {
				t.Errorf("slice %s: addressType %s generateName %q owners %v", s.Name, s.AddressType, s.GenerateName, s.OwnerReferences)
			}
		}

		relabeled, err := client.CoreV1().Pods(ns).Get(t.Context(), "a", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting a: %v", err)
		}
		relabeled.Labels = map[string]string{"app": "other"}
		if _, err := client.CoreV1().Pods(ns).Update(t.Context(), relabeled, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("relabeling a: %v", err)
		}
		eventually(t, endpointsMatch(t, client, ns, "svc", []ep{
			{Pod: "b", IP: "10.1.0.2", Node: "node-b", Ports: p8080},
			{Pod: "c", IP: "10.1.0.3", Node: "node-a", Zone: "zone-a", Ready: true, Serving: true, Ports: p8081},
			{Pod: "d", IP: "10.1.0.4", Node: "node-a", Zone: "zone-a", Ready: true, Serving: true, Ports: none},
			{Pod: "e", IP: "10.1.0.5", Node: "node-a", Zone: "zone-a", Serving: true, Terminating: true, Ports: p8080},
		}))

		// Scale to zero: one empty slice stays.
		for _, p := range []string{"b", "c", "d"} {
			if err := client.CoreV1().Pods(ns).Delete(t.Context(), p, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
				t.Fatalf("deleting %s: %v", p, err)
			}
		}
		held, err := client.CoreV1().Pods(ns).Get(t.Context(), "e", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting e: %v", err)
		}
		held.Finalizers = nil
		if _, err := client.CoreV1().Pods(ns).Update(t.Context(), held, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("releasing e: %v", err)
		}
		if err := client.CoreV1().Pods(ns).Delete(t.Context(), "e", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatalf("deleting e now: %v", err)
		}
		eventually(t, func() error {
			ss, err := listSlices(t, client, ns, "svc")
			if err != nil {
				return err
			}
			if len(ss) != 1 || len(ss[0].Endpoints) != 0 {
				return fmt.Errorf("got %d slices with endpoints %v, want one empty", len(ss), endpointsOf(ss))
			}
			return nil
		})

		if err := client.CoreV1().Services(ns).Delete(t.Context(), "svc", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting service: %v", err)
		}
		eventually(t, func() error {
			ss, err := listSlices(t, client, ns, "svc")
			if err != nil || len(ss) != 0 {
				return fmt.Errorf("%d slices left (err %v)", len(ss), err)
			}
			return nil
		})
	})

	t.Run("headless service gets hostnames and the headless label", func(t *testing.T) {
		ns := namespace(t, client, "headless")
		svc := service(ns, "db", web)
		svc.Spec.ClusterIP = corev1.ClusterIPNone
		if _, err := client.CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating service: %v", err)
		}
		runPod(t, client, ns, "db-0", "node-b", "10.2.0.1", true, web, nil, func(p *corev1.Pod) {
			p.Spec.Hostname, p.Spec.Subdomain = "db-0", "db"
		})
		eventually(t, endpointsMatch(t, client, ns, "db", []ep{
			{Pod: "db-0", IP: "10.2.0.1", Node: "node-b", Hostname: "db-0", Ready: true, Serving: true},
		}))
		ss, err := listSlices(t, client, ns, "db")
		if err != nil || len(ss) != 1 {
			t.Fatalf("got %d slices (err %v), want 1", len(ss), err)
		}
		if _, ok := ss[0].Labels[corev1.IsHeadlessService]; !ok {
			t.Errorf("labels %v lack %s", ss[0].Labels, corev1.IsHeadlessService)
		}
	})

	t.Run("250 pods spread over 3 slices", func(t *testing.T) {
		ns := namespace(t, client, "many")
		if _, err := client.CoreV1().Services(ns).Create(t.Context(), service(ns, "big", web, corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}), metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating service: %v", err)
		}
		for i := range 250 {
			runPod(t, client, ns, fmt.Sprintf("p%03d", i), "node-b", fmt.Sprintf("10.3.%d.%d", i/200, i%200+1), true, web, nil)
		}
		eventually(t, func() error {
			ss, err := listSlices(t, client, ns, "big")
			if err != nil {
				return err
			}
			var sizes []int
			total := 0
			for _, s := range ss {
				sizes = append(sizes, len(s.Endpoints))
				total += len(s.Endpoints)
			}
			slices.Sort(sizes)
			if total != 250 || len(ss) != 3 || sizes[2] > DefaultMaxEndpointsPerSlice {
				return fmt.Errorf("slice sizes %v, want 3 slices with 250 endpoints", sizes)
			}
			return nil
		})

		// Converged: once the cache holds what the server holds, a sync
		// writes nothing.
		ss, err := listSlices(t, client, ns, "big")
		if err != nil {
			t.Fatalf("listing slices: %v", err)
		}
		rvs := map[string]string{}
		for _, s := range ss {
			rvs[s.Name] = s.ResourceVersion
			if _, err := time.Parse(time.RFC3339Nano, s.Annotations[corev1.EndpointsLastChangeTriggerTime]); err != nil {
				t.Errorf("slice %s trigger time annotation: %v", s.Name, err)
			}
		}
		eventually(t, func() error {
			for name, rv := range rvs {
				cached, err := ctrl.slices.EndpointSlices(ns).Get(name)
				if err != nil || cached.ResourceVersion != rv {
					return fmt.Errorf("cache not caught up on %s (err %v)", name, err)
				}
			}
			return nil
		})
		if _, err := ctrl.sync(t.Context(), ns+"/big"); err != nil {
			t.Fatalf("sync: %v", err)
		}
		after, err := listSlices(t, client, ns, "big")
		if err != nil {
			t.Fatalf("listing slices: %v", err)
		}
		got := map[string]string{}
		for _, s := range after {
			got[s.Name] = s.ResourceVersion
		}
		if diff := cmp.Diff(rvs, got); diff != "" {
			t.Errorf("a sync without changes wrote slices (-before +after):\n%s", diff)
		}
	})
}
