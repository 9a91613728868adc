package deployment

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/replicaset"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// neverReadyLabel on a pod template keeps the stand-in node from marking
// its pods ready.
const neverReadyLabel = "test.skiff.dev/never-ready"

// cluster is a real API server with the deployment and replica set
// controllers running, and a stand-in for nodes that marks every new pod
// Running and Ready through pods/status (unless its labels carry
// neverReadyLabel).
type cluster struct {
	cfg    *rest.Config
	client kubernetes.Interface
	// replicaSets is the controllers' own cache of replica sets, for tests
	// that must know the controllers have seen an object.
	rsCache appslisters.ReplicaSetLister
	// offset is added to the real time to make the deployment
	// controller's clock (the replica set controller uses the real one).
	offset atomic.Int64
}

// now is the deployment controller's clock.
func (c *cluster) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// advance moves the deployment controller's clock forward.
func (c *cluster) advance(d time.Duration) { c.offset.Add(int64(d)) }

func startCluster(t *testing.T) *cluster {
	t.Helper()
	cfg := testserver.Start(t, testserver.Options{})
	client := testserver.Client(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())

	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})

	c := &cluster{cfg: cfg, client: client}
	factory := informers.NewSharedInformerFactory(client, 0)
	dc := New(controller.Deps{
		Client: client, Informers: factory, Logger: logger.With("controller", "deployment"),
		Recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "deployment-controller"}),
		Now:      c.now,
	})
	rc := replicaset.New(controller.Deps{
		Client: client, Informers: factory, Logger: logger.With("controller", "replicaset"),
		Recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "replicaset-controller"}),
	})
	c.rsCache = factory.Apps().V1().ReplicaSets().Lister()
	node := informers.NewSharedInformerFactory(client, 0)
	podInf := node.Core().V1().Pods().Informer()
	mark := func(obj any) { markReady(ctx, t, client, obj) }
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: mark, UpdateFunc: func(_, obj any) { mark(obj) },
	}); err != nil {
		t.Fatalf("adding pod handler: %v", err)
	}

	factory.StartWithContext(ctx)
	node.StartWithContext(ctx)
	done := make(chan struct{}, 2)
	go func() { _ = dc.Run(ctx, 2); done <- struct{}{} }()
	go func() { _ = rc.Run(ctx, 2); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		broadcaster.Shutdown()
		factory.Shutdown()
		node.Shutdown()
	})
	return c
}

// markReady plays the node: a pod that is not being deleted becomes
// Running with a Ready condition.
func markReady(ctx context.Context, t *testing.T, client kubernetes.Interface, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.DeletionTimestamp != nil || pod.Labels[neverReadyLabel] != "" || isPodReady(pod) {
		return
	}
	p := pod.DeepCopy()
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.StartTime = &now
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	_, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		t.Logf("marking pod %s/%s ready: %v", p.Namespace, p.Name, err)
	}
}

func isPodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// namespace creates a fresh namespace for one subtest.
func (c *cluster) namespace(t *testing.T, name string) string {
	t.Helper()
	_, err := c.client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}

// newDeployment returns a deployment of n replicas running image.
func newDeployment(name string, n int32, image string) *appsv1.Deployment {
	l := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
			},
		},
	}
}

func rolling(surge, unavailable intstr.IntOrString) appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{
		Type:          appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable},
	}
}

// poll calls cond until it returns nil or the deadline passes, then fails
// with its last error.
func poll(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("test ended: %v", err)
		}
	}
}

// rolloutDone is `kubectl rollout status`'s test for a deployment: nil
// once the rollout is complete, an error saying what it waits for before.
func rolloutDone(d *appsv1.Deployment) error {
	if d.Generation > d.Status.ObservedGeneration {
		return fmt.Errorf("waiting for deployment spec update to be observed (generation %d, observed %d)", d.Generation, d.Status.ObservedGeneration)
	}
	if c := getCondition(d.Status, appsv1.DeploymentProgressing); c != nil && c.Reason == ReasonTimedOut {
		return fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)
	}
	if d.Spec.Replicas != nil && d.Status.UpdatedReplicas < *d.Spec.Replicas {
		return fmt.Errorf("%d out of %d new replicas have been updated", d.Status.UpdatedReplicas, *d.Spec.Replicas)
	}
	if d.Status.Replicas > d.Status.UpdatedReplicas {
		return fmt.Errorf("%d old replicas are pending termination", d.Status.Replicas-d.Status.UpdatedReplicas)
	}
	if d.Status.AvailableReplicas < d.Status.UpdatedReplicas {
		return fmt.Errorf("%d of %d updated replicas are available", d.Status.AvailableReplicas, d.Status.UpdatedReplicas)
	}
	return nil
}

// waitRollout waits until `kubectl rollout status` would return success
// and returns the deployment.
func (c *cluster) waitRollout(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	poll(t, 30*time.Second, func() error {
		var err error
		if d, err = c.client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{}); err != nil {
			return err
		}
		return rolloutDone(d)
	})
	return d
}

// replicaSets lists the replica sets in ns.
func (c *cluster) replicaSets(t *testing.T, ns string) []appsv1.ReplicaSet {
	t.Helper()
	l, err := c.client.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing replica sets: %v", err)
	}
	return l.Items
}

// rsByRevision returns the replica set of ns with revision rev.
func (c *cluster) rsByRevision(t *testing.T, ns, rev string) *appsv1.ReplicaSet {
	t.Helper()
	for _, rs := range c.replicaSets(t, ns) {
		if rs.Annotations[RevisionAnnotation] == rev {
			return &rs
		}
	}
	return nil
}

// podWatch follows the pods of ns and calls check with the live pods (not
// being deleted) after every event, in the order the API server reports
// them. It stops with the test.
func (c *cluster) podWatch(t *testing.T, ns string, check func(live map[string]*corev1.Pod)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := c.client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		t.Fatalf("watching pods: %v", err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		live := map[string]*corev1.Pod{}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			if ev.Type == "DELETED" || p.DeletionTimestamp != nil {
				delete(live, p.Name)
			} else {
				live[p.Name] = p
			}
			check(live)
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-stopped })
}

// events returns the messages of the events about object name in ns.
func (c *cluster) events(t *testing.T, ns, name string) []string {
	t.Helper()
	l, err := c.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing events: %v", err)
	}
	var out []string
	for _, e := range l.Items {
		if e.InvolvedObject.Name == name {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
