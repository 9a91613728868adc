package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/nodelifecycle"
	"github.com/skiff-dev/skiff/internal/controllermanager"
	"github.com/skiff-dev/skiff/internal/scheduler"
	"github.com/skiff-dev/skiff/internal/server"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// controlPlane starts a server that runs the scheduler and every
// controller, as skiff server does (without leader election): on the
// server's shared informers.
func controlPlane(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg := testserver.Start(t, testserver.Options{Components: []server.Component{
		{Name: "scheduler", Run: func(ctx context.Context, env server.Env) error {
			return scheduler.Run(ctx, scheduler.Config{RestConfig: env.Config, Logger: env.Logger, NewInformers: env.Informers.Scope})
		}},
		{Name: "controller-manager", Run: func(ctx context.Context, env server.Env) error {
			return controllermanager.Run(ctx, controllermanager.Config{RestConfig: env.Config, Logger: env.Logger, NewInformers: env.Informers.Scope})
		}},
	}})
	return testserver.Client(t, cfg)
}

// addNode registers a Ready node with room for a few pods.
func addNode(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	ctx := context.Background()
	room := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	// A node is created with its status, as a node agent registers it
	// (node status is kept on create).
	_, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Capacity: room, Allocatable: room,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), Reason: "KubeletReady"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
}

// actAsNodes plays the kubelet for the test: bound pods become Running and
// Ready, and pods being deleted go at once. It runs until ctx is done.
func actAsNodes(ctx context.Context, cs kubernetes.Interface, ns string) {
	for ctx.Err() == nil {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range pods.Items {
				p := &pods.Items[i]
				switch {
				case p.DeletionTimestamp != nil:
					_ = cs.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
				case p.Spec.NodeName != "" && p.Status.Phase != corev1.PodRunning:
					p.Status.Phase = corev1.PodRunning
					p.Status.PodIP = fmt.Sprintf("10.42.0.%d", i+10)
					p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
					_, _ = cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestDeploymentEndToEnd runs a Deployment through the whole control plane:
// the deployment and replica set controllers create pods, the scheduler
// binds them to nodes, they become available, and a foreground deletion
// removes the replica set and the pods before the Deployment itself.
func TestDeploymentEndToEnd(t *testing.T) {
	t.Parallel()
	cs := controlPlane(t)
	ctx := testContext(t, 2*time.Minute)
	ns := newNamespace(t, cs)
	addNode(t, cs, "node-a")
	addNode(t, cs, "node-b")
	nodeCtx, stopNodes := context.WithCancel(ctx)
	defer stopNodes()
	go actAsNodes(nodeCtx, cs, ns)

	replicas := int32(3)
	labels := map[string]string{"app": "web"}
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: "skiff-test/testserver:1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating deployment: %v", err)
	}

	eventually(t, time.Minute, "deployment available", func() error {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas != replicas || d.Status.ObservedGeneration != d.Generation {
			return fmt.Errorf("status %+v", d.Status)
		}
		return nil
	})
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" {
			t.Errorf("pod %s is not bound", p.Name)
		}
		perNode[p.Spec.NodeName]++
	}
	if len(pods.Items) != int(replicas) || len(perNode) != 2 {
		t.Errorf("pods per node %v, want %d pods spread over both nodes", perNode, replicas)
	}

	fg := metav1.DeletePropagationForeground
	if err := cs.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
		t.Fatalf("deleting deployment: %v", err)
	}
	eventually(t, time.Minute, "deployment, replica set and pods gone", func() error {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err == nil {
			// While it is still there, its dependents must be what keeps it.
			if d.DeletionTimestamp == nil {
				return fmt.Errorf("deployment not being deleted")
			}
			return fmt.Errorf("deployment still there (finalizers %v)", d.Finalizers)
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		rs, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(rs.Items) > 0 || len(pods.Items) > 0 {
			t.Errorf("deployment gone before its dependents: %d replica sets, %d pods left", len(rs.Items), len(pods.Items))
		}
		return nil
	})
}

// renewLease keeps node's Lease in kube-node-lease fresh until ctx is done,
// as a node agent does.
func renewLease(ctx context.Context, t *testing.T, cs kubernetes.Interface, node string) {
	leases := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	holder, seconds := node, int32(40)
	for ctx.Err() == nil {
		now := metav1.NewMicroTime(time.Now())
		l, err := leases.Get(ctx, node, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: node},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, RenewTime: &now},
			}, metav1.CreateOptions{})
		case err == nil:
			l.Spec.RenewTime = &now
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		}
		if err != nil && ctx.Err() == nil {
			t.Logf("renewing the lease of %s: %v", node, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// TestDeadNodePodsReplacedElsewhere: when a node stops renewing its Lease,
// the node lifecycle controller marks it unreachable and evicts its pods,
// the replica set replaces them, and the scheduler puts the replacements
// on the node that is still alive.
func TestDeadNodePodsReplacedElsewhere(t *testing.T) {
	t.Parallel()
	cfg := testserver.Start(t, testserver.Options{Components: []server.Component{
		{Name: "scheduler", Run: func(ctx context.Context, env server.Env) error {
			return scheduler.Run(ctx, scheduler.Config{RestConfig: env.Config, Logger: env.Logger})
		}},
		{Name: "controller-manager", Run: func(ctx context.Context, env server.Env) error {
			return controllermanager.Run(ctx, controllermanager.Config{RestConfig: env.Config, Logger: env.Logger, Controllers: []string{"*", "-nodelifecycle"}})
		}},
		{Name: "node-lifecycle", Run: func(ctx context.Context, env server.Env) error {
			cfg, log := env.Config, env.Logger
			// The node lifecycle controller with a grace period short
			// enough for a test (40 s by default).
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			factory := informers.NewSharedInformerFactory(client, 0)
			c := nodelifecycle.New(controller.Deps{Client: client, Informers: factory, Logger: log})
			c.GracePeriod = 2 * time.Second
			factory.StartWithContext(ctx)
			return c.Run(ctx, 1)
		}},
	}})
	cs := testserver.Client(t, cfg)
	ctx := testContext(t, 2*time.Minute)
	ns := newNamespace(t, cs)
	nodeCtx, stopNodes := context.WithCancel(ctx)
	defer stopNodes()
	go actAsNodes(nodeCtx, cs, ns)

	addNode(t, cs, "doomed")
	doomedCtx, stopDoomed := context.WithCancel(nodeCtx)
	go renewLease(doomedCtx, t, cs, "doomed")

	replicas := int32(2)
	labels := map[string]string{"app": "survivor"}
	zero := int64(0)
	_, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "survivor"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "c", Image: "skiff-test/busybox:1.35"}},
					// Leave an unreachable node at once rather than after
					// the default 300 s.
					Tolerations: []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &zero}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating replica set: %v", err)
	}
	podsOn := func(node string) (int, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=survivor"})
		if err != nil {
			return 0, err
		}
		n := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName == node && p.DeletionTimestamp == nil {
				n++
			}
		}
		return n, nil
	}
	eventually(t, time.Minute, "both pods running on node doomed", func() error {
		if n, err := podsOn("doomed"); err != nil || n != 2 {
			return fmt.Errorf("%d pods on doomed (%v)", n, err)
		}
		return nil
	})

	addNode(t, cs, "alive")
	go renewLease(nodeCtx, t, cs, "alive")
	stopDoomed() // the doomed node's agent dies

	eventually(t, time.Minute, "pods replaced on node alive", func() error {
		node, err := cs.CoreV1().Nodes().Get(ctx, "doomed", metav1.GetOptions{})
		if err != nil {
			return err
		}
		tainted := false
		for _, taint := range node.Spec.Taints {
			tainted = tainted || (taint.Key == corev1.TaintNodeUnreachable && taint.Effect == corev1.TaintEffectNoExecute)
		}
		if !tainted {
			return fmt.Errorf("node doomed has no unreachable NoExecute taint yet: %v", node.Spec.Taints)
		}
		onDoomed, err := podsOn("doomed")
		if err != nil {
			return err
		}
		onAlive, err := podsOn("alive")
		if err != nil {
			return err
		}
		if onDoomed != 0 || onAlive != 2 {
			return fmt.Errorf("%d pods on doomed, %d on alive", onDoomed, onAlive)
		}
		return nil
	})
}
