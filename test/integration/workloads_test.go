package integration

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/controllermanager"
	"github.com/skiff-dev/skiff/internal/scheduler"
	"github.com/skiff-dev/skiff/internal/server"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// controlPlane starts a server that runs the scheduler and every
// controller, as skiff server does (without leader election).
func controlPlane(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg := testserver.Start(t, testserver.Options{Components: []server.Component{
		{Name: "scheduler", Run: func(ctx context.Context, cfg *rest.Config, log *slog.Logger) error {
			return scheduler.Run(ctx, scheduler.Config{RestConfig: cfg, Logger: log})
		}},
		{Name: "controller-manager", Run: func(ctx context.Context, cfg *rest.Config, log *slog.Logger) error {
			return controllermanager.Run(ctx, controllermanager.Config{RestConfig: cfg, Logger: log})
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
	n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
	n.Status.Capacity, n.Status.Allocatable = room, room
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), Reason: "KubeletReady"}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("marking node %s ready: %v", name, err)
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
