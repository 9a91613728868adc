package disruption

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

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

// summary is the part of a PDB status the test compares.
type summary struct {
	Expected, Desired, Healthy, Allowed int32
	Condition                           string
	Disrupted                           []string
}

func summarize(pdb *policyv1.PodDisruptionBudget) summary {
	s := summary{Expected: pdb.Status.ExpectedPods, Desired: pdb.Status.DesiredHealthy, Healthy: pdb.Status.CurrentHealthy, Allowed: pdb.Status.DisruptionsAllowed}
	for _, c := range pdb.Status.Conditions {
		if c.Type == policyv1.DisruptionAllowedCondition {
			s.Condition = string(c.Status) + "/" + c.Reason
		}
	}
	for name := range pdb.Status.DisruptedPods {
		s.Disrupted = append(s.Disrupted, name)
	}
	if pdb.Status.ObservedGeneration != pdb.Generation {
		s.Condition += " (stale)"
	}
	return s
}

func TestPodDisruptionBudgetStatus(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	clock := &fakeClock{now: time.Now()}
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := NewForConfig(controller.Deps{Client: client, Informers: factory, Recorder: record.NewFakeRecorder(1000), Now: clock.Now}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	factory.StartWithContext(ctx)
	go func() { _ = c.Run(ctx, 1) }()

	ns := "pdb"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lbls := map[string]string{"app": "web"}
	three := int32(3)
	rs, err := client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &three,
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
	pods := client.CoreV1().Pods(ns)
	setReady := func(name string, ready corev1.ConditionStatus) {
		t.Helper()
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
		if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		_, err := pods.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: new(true),
			}}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		setReady(name, corev1.ConditionTrue)
	}
	min2, half := intstr.FromInt32(2), intstr.FromString("50%")
	pdbs := client.PolicyV1().PodDisruptionBudgets(ns)
	for name, spec := range map[string]policyv1.PodDisruptionBudgetSpec{
		"min":  {MinAvailable: &min2, Selector: &metav1.LabelSelector{MatchLabels: lbls}},
		"half": {MaxUnavailable: &half, Selector: &metav1.LabelSelector{MatchLabels: lbls}},
	} {
		if _, err := pdbs.Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(what, name string, want summary) {
		t.Helper()
		var last summary
		poll(t, 20*time.Second, what, func() error {
			pdb, err := pdbs.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			last = summarize(pdb)
			if d := cmp.Diff(want, last); d != "" {
				return fmt.Errorf("status of %s (-want +got):\n%s", name, d)
			}
			return nil
		})
	}
	wait("3 ready pods", "min", summary{Expected: 3, Desired: 2, Healthy: 3, Allowed: 1, Condition: "True/SufficientPods"})
	// maxUnavailable 50% of the ReplicaSet's 3 rounds up to 2.
	wait("3 ready pods", "half", summary{Expected: 3, Desired: 1, Healthy: 3, Allowed: 2, Condition: "True/SufficientPods"})

	setReady("web-1", corev1.ConditionFalse)
	wait("one unready pod", "min", summary{Expected: 3, Desired: 2, Healthy: 2, Allowed: 0, Condition: "False/InsufficientPods"})
	wait("one unready pod", "half", summary{Expected: 3, Desired: 1, Healthy: 2, Allowed: 1, Condition: "True/SufficientPods"})

	// An eviction's disruptedPods entry keeps web-0 out of the healthy
	// count until it expires two minutes later.
	pdb, err := pdbs.Get(ctx, "half", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pdb.Status.DisruptedPods = map[string]metav1.Time{"web-0": {Time: clock.Now()}}
	pdb.Status.DisruptionsAllowed = 0
	if _, err := pdbs.UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("a disrupted pod", "half", summary{Expected: 3, Desired: 1, Healthy: 1, Allowed: 0, Condition: "False/InsufficientPods", Disrupted: []string{"web-0"}})
	clock.Step(DeletionTimeout + time.Second)
	setReady("web-1", corev1.ConditionTrue) // any pod change resyncs the PDB
	wait("the entry expired", "half", summary{Expected: 3, Desired: 1, Healthy: 3, Allowed: 2, Condition: "True/SufficientPods"})
}
