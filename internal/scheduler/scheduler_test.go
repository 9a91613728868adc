package scheduler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/internal/scheduler"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// env is one API server with one scheduler, shared by the subtests of a
// test function; each subtest uses its own namespace and node names.
type env struct {
	client kubernetes.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := testserver.Start(t, testserver.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- scheduler.Run(ctx, scheduler.Config{RestConfig: cfg}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("scheduler Run: %v", err)
		}
	})
	return &env{client: testserver.Client(t, cfg)}
}

func (e *env) namespace(t *testing.T, name string) string {
	t.Helper()
	_, err := e.client.CoreV1().Namespaces().Create(context.Background(), &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return name
}

type nodeOpt func(*v1.Node)

func withLabels(kv ...string) nodeOpt {
	return func(n *v1.Node) {
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func withTaint(key, value string, effect v1.TaintEffect) nodeOpt {
	return func(n *v1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, v1.Taint{Key: key, Value: value, Effect: effect})
	}
}

// addNode registers a node as a node agent would: the object, then its
// status with allocatable resources. It is deleted when the test ends.
func (e *env) addNode(t *testing.T, name, cpu string, opts ...nodeOpt) {
	t.Helper()
	ctx := context.Background()
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1.LabelHostname: name}}}
	for _, o := range opts {
		o(n)
	}
	created, err := e.client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
	res := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse(cpu),
		v1.ResourceMemory: resource.MustParse("4Gi"),
		v1.ResourcePods:   resource.MustParse("110"),
	}
	created.Status.Capacity = res
	created.Status.Allocatable = res
	created.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
	if _, err := e.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating node status %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = e.client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

type podOpt func(*v1.Pod)

func (e *env) addPod(t *testing.T, ns, name, cpu string, opts ...podOpt) {
	t.Helper()
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name: "c", Image: "busybox",
			Resources: v1.ResourceRequirements{Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu)}},
		}}},
	}
	for _, o := range opts {
		o(p)
	}
	if _, err := e.client.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
}

// poll calls f until it returns nil or the deadline passes.
func poll(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("%s: %v", what, err)
		case <-tick.C:
		}
	}
}

func (e *env) waitBound(t *testing.T, ns, name string) string {
	t.Helper()
	var node string
	poll(t, "waiting for "+name+" to be bound", func() error {
		p, err := e.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Spec.NodeName == "" {
			return fmt.Errorf("not bound; conditions %+v", p.Status.Conditions)
		}
		node = p.Spec.NodeName
		return nil
	})
	return node
}

func (e *env) waitUnschedulable(t *testing.T, ns, name, wantMsg string) {
	t.Helper()
	poll(t, "waiting for "+name+" to be unschedulable", func() error {
		p, err := e.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == v1.PodScheduled && c.Status == v1.ConditionFalse && c.Reason == v1.PodReasonUnschedulable {
				if c.Message != wantMsg {
					return fmt.Errorf("message %q, want %q", c.Message, wantMsg)
				}
				return nil
			}
		}
		return fmt.Errorf("no PodScheduled=False condition: %+v (node %q)", p.Status.Conditions, p.Spec.NodeName)
	})
}

func (e *env) waitEvent(t *testing.T, ns, pod, reason, msgPart string) {
	t.Helper()
	poll(t, "waiting for event "+reason, func() error {
		evs, err := e.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Name == pod && ev.Reason == reason && strings.Contains(ev.Message, msgPart) {
				return nil
			}
		}
		return fmt.Errorf("no %s event for %s containing %q among %d events", reason, pod, msgPart, len(evs.Items))
	})
}

func TestScheduler(t *testing.T) {
	e := newEnv(t)

	t.Run("resources, unschedulable, then placed on a new node", func(t *testing.T) {
		ns := e.namespace(t, "resources")
		e.addNode(t, "res-a", "1")
		e.addNode(t, "res-b", "1")
		e.addPod(t, ns, "p1", "600m")
		e.addPod(t, ns, "p2", "600m")
		n1, n2 := e.waitBound(t, ns, "p1"), e.waitBound(t, ns, "p2")
		if n1 == n2 {
			t.Errorf("p1 and p2 both on %s; want one per node", n1)
		}
		e.addPod(t, ns, "p3", "600m")
		e.waitUnschedulable(t, ns, "p3", "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.")
		e.waitEvent(t, ns, "p3", "FailedScheduling", "0/2 nodes are available: 2 Insufficient cpu.")
		e.addNode(t, "res-c", "1")
		if got := e.waitBound(t, ns, "p3"); got != "res-c" {
			t.Errorf("p3 bound to %s, want res-c", got)
		}
		e.waitEvent(t, ns, "p3", "Scheduled", "Successfully assigned resources/p3 to res-c")
		for _, p := range []string{"p1", "p2", "p3"} {
			_ = e.client.CoreV1().Pods(ns).Delete(context.Background(), p, *metav1.NewDeleteOptions(0))
		}
	})

	t.Run("anti-affinity, and a pod deletion makes room", func(t *testing.T) {
		ns := e.namespace(t, "anti")
		e.addNode(t, "anti-a", "4")
		e.addNode(t, "anti-b", "4")
		anti := func(p *v1.Pod) {
			p.Labels = map[string]string{"app": "web"}
			p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
					TopologyKey:   v1.LabelHostname,
				}},
			}}
		}
		e.addPod(t, ns, "web-1", "100m", anti)
		e.addPod(t, ns, "web-2", "100m", anti)
		n1, n2 := e.waitBound(t, ns, "web-1"), e.waitBound(t, ns, "web-2")
		if n1 == n2 {
			t.Errorf("web-1 and web-2 both on %s", n1)
		}
		e.addPod(t, ns, "web-3", "100m", anti)
		e.waitUnschedulable(t, ns, "web-3", "0/2 nodes are available: 2 node(s) didn't satisfy existing pods anti-affinity rules. "+
			"preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.")
		if err := e.client.CoreV1().Pods(ns).Delete(context.Background(), "web-1", *metav1.NewDeleteOptions(0)); err != nil {
			t.Fatal(err)
		}
		if got := e.waitBound(t, ns, "web-3"); got != n1 {
			t.Errorf("web-3 bound to %s, want %s", got, n1)
		}
		for _, p := range []string{"web-2", "web-3"} {
			_ = e.client.CoreV1().Pods(ns).Delete(context.Background(), p, *metav1.NewDeleteOptions(0))
		}
	})

	t.Run("taints, selectors and scheduler name", func(t *testing.T) {
		ns := e.namespace(t, "taints")
		e.addNode(t, "gpu-1", "4", withTaint("dedicated", "gpu", v1.TaintEffectNoSchedule), withLabels("zone", "a"))
		e.addNode(t, "gpu-2", "4", withTaint("dedicated", "gpu", v1.TaintEffectNoSchedule), withLabels("zone", "b"))
		e.addNode(t, "plain", "4", withLabels("zone", "c"))
		e.addPod(t, ns, "wants-a", "100m", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "a"} })
		e.waitUnschedulable(t, ns, "wants-a",
			"0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 node(s) had untolerated taint {dedicated: gpu}. "+
				"preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
		e.addPod(t, ns, "tolerates", "100m", func(p *v1.Pod) {
			p.Spec.NodeSelector = map[string]string{"zone": "b"}
			p.Spec.Tolerations = []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpExists}}
		})
		if got := e.waitBound(t, ns, "tolerates"); got != "gpu-2" {
			t.Errorf("tolerates bound to %s, want gpu-2", got)
		}
		e.addPod(t, ns, "other-scheduler", "100m", func(p *v1.Pod) { p.Spec.SchedulerName = "someone-else" })
		e.addPod(t, ns, "marker", "100m")
		e.waitBound(t, ns, "marker")
		p, err := e.client.CoreV1().Pods(ns).Get(context.Background(), "other-scheduler", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.NodeName != "" || len(p.Status.Conditions) != 0 {
			t.Errorf("pod of another scheduler was touched: node %q conditions %+v", p.Spec.NodeName, p.Status.Conditions)
		}
	})
}

func TestPreemption(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for name, value := range map[string]int32{"low": 10, "high": 1000} {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value}
		if _, err := e.client.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating priority class: %v", err)
		}
	}
	ns := e.namespace(t, "preempt")
	e.addNode(t, "only", "1")
	e.addPod(t, ns, "low", "800m", func(p *v1.Pod) { p.Spec.PriorityClassName = "low" })
	e.waitBound(t, ns, "low")
	e.addPod(t, ns, "high", "800m", func(p *v1.Pod) { p.Spec.PriorityClassName = "high" })

	// Act as the node: once the victim is terminating, finish deleting it.
	poll(t, "waiting for the victim to be evicted", func() error {
		p, err := e.client.CoreV1().Pods(ns).Get(ctx, "low", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if p.DeletionTimestamp == nil {
			return fmt.Errorf("victim not evicted yet")
		}
		// It was told why first (upstream's DisruptionTarget condition).
		for _, c := range p.Status.Conditions {
			if c.Type == v1.DisruptionTarget && c.Status == v1.ConditionTrue && c.Reason == v1.PodReasonPreemptionByScheduler &&
				c.Message == "default-scheduler: preempting to accommodate a higher priority pod" {
				return nil
			}
		}
		t.Fatalf("evicted victim without the DisruptionTarget condition: %+v", p.Status.Conditions)
		return nil
	})
	// A lower-priority pod arriving now must not take the room freed for high.
	e.addPod(t, ns, "sneaky", "800m", func(p *v1.Pod) { p.Spec.PriorityClassName = "low" })
	e.waitUnschedulable(t, ns, "sneaky", "0/1 nodes are available: 1 Insufficient cpu. "+
		"preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.")
	if err := e.client.CoreV1().Pods(ns).Delete(ctx, "low", *metav1.NewDeleteOptions(0)); err != nil {
		t.Fatalf("finishing the victim's deletion: %v", err)
	}
	if got := e.waitBound(t, ns, "high"); got != "only" {
		t.Errorf("high bound to %s, want only", got)
	}
	p, err := e.client.CoreV1().Pods(ns).Get(ctx, "high", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.NominatedNodeName != "only" {
		t.Errorf("nominatedNodeName = %q, want only", p.Status.NominatedNodeName)
	}
	p, err = e.client.CoreV1().Pods(ns).Get(ctx, "sneaky", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "" {
		t.Errorf("sneaky was bound to %s; it should still wait", p.Spec.NodeName)
	}
}

// TestPreemptionClearsLowerNomination: a pod nominated to a node loses
// the nomination when a pod of higher priority preempts on that node.
func TestPreemptionClearsLowerNomination(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for name, value := range map[string]int32{"low": 10, "mid": 500, "high": 1000} {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value}
		if _, err := e.client.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating priority class: %v", err)
		}
	}
	ns := e.namespace(t, "renominate")
	e.addNode(t, "only", "1")
	e.addPod(t, ns, "low", "800m", func(p *v1.Pod) { p.Spec.PriorityClassName = "low" })
	e.waitBound(t, ns, "low")
	e.addPod(t, ns, "mid", "800m", func(p *v1.Pod) { p.Spec.PriorityClassName = "mid" })
	nominated := func(name, want string) {
		t.Helper()
		poll(t, "waiting for "+name+"'s nomination to be "+want, func() error {
			p, err := e.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Status.NominatedNodeName != want {
				return fmt.Errorf("nominatedNodeName = %q", p.Status.NominatedNodeName)
			}
			return nil
		})
	}
	nominated("mid", "only")
	// low stays terminating (no node finishes its deletion), so high does
	// not fit either and preempts on the same node.
	e.addPod(t, ns, "high", "800m", func(p *v1.Pod) { p.Spec.PriorityClassName = "high" })
	nominated("high", "only")
	nominated("mid", "")
}
