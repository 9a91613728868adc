package daemonset

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/history"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// start runs a fresh API server and the controller for the rest of the test.
func start(t *testing.T) (context.Context, kubernetes.Interface) {
	t.Helper()
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	factory := informers.NewSharedInformerFactory(client, 0)
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rec := record.NewFakeRecorder(100)
	go func() {
		for range rec.Events {
		}
	}()
	c := New(controller.Deps{Client: client, Informers: factory, Recorder: rec, Logger: logger})
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
	return ctx, client
}

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// poll calls cond until it returns nil or 30 s pass, then fails with its
// last error.
func poll(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		<-tick.C
	}
}

// addNode creates a Ready node.
func addNode(ctx context.Context, t *testing.T, client kubernetes.Interface, name string, labels map[string]string, taints ...corev1.Taint) {
	t.Helper()
	node, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: taints},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("marking node %s ready: %v", name, err)
	}
}

func newDaemonSet(ns, name string) *appsv1.DaemonSet {
	labels := map[string]string{"app": name}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "agent:1"}}},
			},
		},
	}
}

// podsByNode lists the live pods of ns by target node.
func podsByNode(ctx context.Context, client kubernetes.Interface, ns string) (map[string][]corev1.Pod, error) {
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string][]corev1.Pod{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out[targetNode(&p)] = append(out[targetNode(&p)], p)
		}
	}
	return out, nil
}

func nodeNames(m map[string][]corev1.Pod) []string {
	var out []string
	for n, pods := range m {
		for range pods {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// expectNodes polls until ns has exactly one pod on each of nodes.
func expectNodes(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string, nodes ...string) {
	t.Helper()
	poll(t, fmt.Sprintf("pods on %v", nodes), func() error {
		m, err := podsByNode(ctx, client, ns)
		if err != nil {
			return err
		}
		if got := nodeNames(m); !slices.Equal(got, nodes) {
			return fmt.Errorf("pods on %v", got)
		}
		return nil
	})
}

// updateDaemonSet applies mutate to the latest version of a DaemonSet.
func updateDaemonSet(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string, mutate func(*appsv1.DaemonSet)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := client.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(d)
		_, err = client.AppsV1().DaemonSets(ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("updating daemonset %s: %v", name, err)
	}
}

func markReady(ctx context.Context, client kubernetes.Interface, pod corev1.Pod) error {
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	_, err := client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, &pod, metav1.UpdateOptions{})
	return err
}

func TestPlacement(t *testing.T) {
	ctx, client := start(t)
	worker := map[string]string{"role": "worker"}
	addNode(ctx, t, client, "n1", worker)
	addNode(ctx, t, client, "n2", worker)
	addNode(ctx, t, client, "n3", nil)
	addNode(ctx, t, client, "n4", worker, corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule})
	ns := "place"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ds := newDaemonSet(ns, "agent")
	ds.Spec.Template.Spec.NodeSelector = worker
	if _, err := client.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// One pod per matching, tolerated node.
	expectNodes(ctx, t, client, ns, "n1", "n2")
	m, err := podsByNode(ctx, client, ns)
	if err != nil {
		t.Fatal(err)
	}
	pod := m["n1"][0]
	if pod.Spec.NodeName != "" {
		t.Errorf("pod is bound to %q; the scheduler should bind it", pod.Spec.NodeName)
	}
	wantAffinity := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}}}},
	}}}
	if diff := cmp.Diff(wantAffinity, pod.Spec.Affinity); diff != "" {
		t.Errorf("pod affinity (-want +got):\n%s", diff)
	}
	var tolerated []string
	for _, tol := range pod.Spec.Tolerations {
		tolerated = append(tolerated, tol.Key+":"+string(tol.Effect))
	}
	wantTolerated := []string{
		"node.kubernetes.io/not-ready:NoExecute", "node.kubernetes.io/unreachable:NoExecute",
		"node.kubernetes.io/disk-pressure:NoSchedule", "node.kubernetes.io/memory-pressure:NoSchedule",
		"node.kubernetes.io/pid-pressure:NoSchedule", "node.kubernetes.io/unschedulable:NoSchedule",
	}
	if diff := cmp.Diff(wantTolerated, tolerated); diff != "" {
		t.Errorf("pod tolerations (-want +got):\n%s", diff)
	}
	if pod.Labels[history.HashLabel] == "" {
		t.Errorf("pod has no %s label", history.HashLabel)
	}

	for _, p := range append(m["n1"], m["n2"]...) {
		if err := markReady(ctx, client, p); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, "status", func() error {
		d, err := client.AppsV1().DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return err
		}
		want := appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, NumberReady: 2, NumberAvailable: 2, UpdatedNumberScheduled: 2, ObservedGeneration: d.Generation, CollisionCount: d.Status.CollisionCount}
		if diff := cmp.Diff(want, d.Status); diff != "" {
			return fmt.Errorf("status (-want +got):\n%s", diff)
		}
		return nil
	})

	// A new matching node gets a pod.
	addNode(ctx, t, client, "n5", worker)
	expectNodes(ctx, t, client, ns, "n1", "n2", "n5")

	// A node that stops matching loses its pod.
	n1, err := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n1.Labels = nil
	if _, err := client.CoreV1().Nodes().Update(ctx, n1, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectNodes(ctx, t, client, ns, "n2", "n5")

	// A NoExecute taint the pod does not tolerate evicts it; tolerating
	// it brings the pod back.
	n2, err := client.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n2.Spec.Taints = []corev1.Taint{{Key: "evict", Effect: corev1.TaintEffectNoExecute}}
	if _, err := client.CoreV1().Nodes().Update(ctx, n2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectNodes(ctx, t, client, ns, "n5")
	updateDaemonSet(ctx, t, client, ns, "agent", func(d *appsv1.DaemonSet) {
		d.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}, {Key: "evict", Operator: corev1.TolerationOpExists}}
	})
	expectNodes(ctx, t, client, ns, "n2", "n4", "n5")

	// A failed pod is replaced.
	m, err = podsByNode(ctx, client, ns)
	if err != nil {
		t.Fatal(err)
	}
	failed := m["n4"][0]
	failed.Status.Phase = corev1.PodFailed
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, &failed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "failed pod replaced", func() error {
		m, err := podsByNode(ctx, client, ns)
		if err != nil {
			return err
		}
		if len(m["n4"]) != 1 || m["n4"][0].UID == failed.UID {
			return fmt.Errorf("pods on n4: %d", len(m["n4"]))
		}
		return nil
	})

	// A deleted node's pod goes.
	if err := client.CoreV1().Nodes().Delete(ctx, "n5", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expectNodes(ctx, t, client, ns, "n2", "n4")
}

func TestRollingUpdate(t *testing.T) {
	ctx, client := start(t)
	for _, n := range []string{"a", "b", "c"} {
		addNode(ctx, t, client, n, nil)
	}
	ns := "roll"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ds := newDaemonSet(ns, "agent")
	one := intstr.FromInt32(1)
	ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{
		Type:          appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &one},
	}
	if _, err := client.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectNodes(ctx, t, client, ns, "a", "b", "c")
	readyAll := func() {
		t.Helper()
		m, err := podsByNode(ctx, client, ns)
		if err != nil {
			t.Fatal(err)
		}
		for _, pods := range m {
			for _, p := range pods {
				if _, ok := readySince(&p); !ok {
					if err := markReady(ctx, client, p); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	readyAll()

	updateDaemonSet(ctx, t, client, ns, "agent", func(d *appsv1.DaemonSet) {
		d.Spec.Template.Spec.Containers[0].Image = "agent:2"
	})

	// One node at a time: the next old pod goes only once the new one is ready.
	for updated := 1; updated <= 3; updated++ {
		poll(t, fmt.Sprintf("%d updated", updated), func() error {
			m, err := podsByNode(ctx, client, ns)
			if err != nil {
				return err
			}
			var newPods, oldPods int
			for _, pods := range m {
				for _, p := range pods {
					if p.Spec.Containers[0].Image == "agent:2" {
						newPods++
					} else {
						oldPods++
					}
				}
			}
			if oldPods < 3-updated {
				t.Fatalf("only %d old pods left with %d updated: more than maxUnavailable=1 down", oldPods, updated)
			}
			if newPods != updated || oldPods != 3-updated {
				return fmt.Errorf("%d new, %d old pods", newPods, oldPods)
			}
			d, err := client.AppsV1().DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.Status.UpdatedNumberScheduled != int32(updated) || d.Status.NumberUnavailable != 1 || d.Status.ObservedGeneration != d.Generation {
				return fmt.Errorf("status = %+v", d.Status)
			}
			return nil
		})
		readyAll()
	}
	poll(t, "rolled out", func() error {
		d, err := client.AppsV1().DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.UpdatedNumberScheduled != 3 || d.Status.NumberAvailable != 3 || d.Status.NumberUnavailable != 0 {
			return fmt.Errorf("status = %+v", d.Status)
		}
		return nil
	})
	revs, err := client.AppsV1().ControllerRevisions(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(revs.Items) != 2 {
		t.Fatalf("revisions: %d, %v; want 2", len(revs.Items), err)
	}
}

func TestSurgeUpdate(t *testing.T) {
	ctx, client := start(t)
	addNode(ctx, t, client, "a", nil)
	addNode(ctx, t, client, "b", nil)
	ns := "surge"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ds := newDaemonSet(ns, "agent")
	zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
	ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{
		Type:          appsv1.RollingUpdateDaemonSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &zero, MaxSurge: &one},
	}
	if _, err := client.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectNodes(ctx, t, client, ns, "a", "b")
	readyAll := func() error {
		m, err := podsByNode(ctx, client, ns)
		if err != nil {
			return err
		}
		for _, pods := range m {
			for _, p := range pods {
				if _, ok := readySince(&p); !ok {
					if err := markReady(ctx, client, p); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := readyAll(); err != nil {
		t.Fatal(err)
	}
	poll(t, "available", func() error {
		d, err := client.AppsV1().DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.NumberAvailable != 2 {
			return fmt.Errorf("status = %+v", d.Status)
		}
		return nil
	})
	updateDaemonSet(ctx, t, client, ns, "agent", func(d *appsv1.DaemonSet) {
		d.Spec.Template.Spec.Containers[0].Image = "agent:2"
	})
	// One node at a time gets a new pod next to its old one; the old one
	// goes when the new one is ready; no node is ever without a pod.
	poll(t, "rolled out by surging", func() error {
		m, err := podsByNode(ctx, client, ns)
		if err != nil {
			return err
		}
		surging := 0
		for _, node := range []string{"a", "b"} {
			switch len(m[node]) {
			case 0:
				t.Fatalf("node %s has no pod during a surge update", node)
			case 2:
				surging++
			}
		}
		if surging > 1 {
			t.Fatalf("%d nodes surging, maxSurge is 1", surging)
		}
		if err := readyAll(); err != nil {
			return err
		}
		for _, node := range []string{"a", "b"} {
			if len(m[node]) != 1 || m[node][0].Spec.Containers[0].Image != "agent:2" {
				return fmt.Errorf("node %s has %d pods", node, len(m[node]))
			}
		}
		return nil
	})
}
