package apiserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	policyv1beta1 "k8s.io/api/policy/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/disruption"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// TestKubectlDrain runs stock kubectl drain (oldest and newest) against a
// real server with the disruption controller. No agent runs: a fake
// kubelet, authenticated as the node, reports the node's pods Running and
// Ready and finishes their graceful deletion as a kubelet does once the
// containers have stopped (a delete with grace period 0). A PDB with
// minAvailable equal to the replicas blocks the drain (429, retried until
// --timeout); without it the drain evicts every pod.
func TestKubectlDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs kubectl")
	}
	path, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	var bins []string
	for _, v := range []string{"1.27", "1.33"} {
		if p := filepath.Join(filepath.Dir(path), "kubectl."+v); reviewFileExists(p) {
			bins = append(bins, p)
		}
	}
	if len(bins) == 0 {
		bins = []string{path}
	}
	srv := testserver.StartServer(t, testserver.Options{})
	admin := testserver.Client(t, srv.Admin)
	ctx := t.Context()
	factory := informers.NewSharedInformerFactory(admin, 0)
	pdbc, err := disruption.NewForConfig(controller.Deps{Client: admin, Informers: factory, Recorder: record.NewFakeRecorder(1000)}, srv.Admin)
	if err != nil {
		t.Fatal(err)
	}
	factory.StartWithContext(ctx)
	go func() { _ = pdbc.Run(ctx, 1) }()
	kubeconfig := reviewKubeconfig(t, srv.Admin)

	for i, bin := range bins {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			node, ns := fmt.Sprintf("n%d", i), fmt.Sprintf("drain%d", i)
			if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			kubelet := testserver.Client(t, srv.ConfigFor(t, "system:node:"+node, "system:nodes"))
			kctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); fakeKubelet(kctx, t, kubelet, node) }()
			t.Cleanup(func() { stop(); <-done }) // no t.Log after the test
			if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			lbls := map[string]string{"app": "web"}
			two := int32(2)
			rs, err := admin.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec: appsv1.ReplicaSetSpec{
					Replicas: &two,
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
			// The pods as the replicaset controller and the scheduler
			// would leave them (neither runs here).
			for _, name := range []string{"web-0", "web-1"} {
				_, err := admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls, OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: new(true),
					}}},
					Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
				}, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
			}
			pdbs := admin.PolicyV1().PodDisruptionBudgets(ns)
			minAvailable := intstr.FromInt32(2)
			if _, err := pdbs.Create(ctx, &policyv1.PodDisruptionBudget{
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable, Selector: &metav1.LabelSelector{MatchLabels: lbls}},
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			evictionPoll(t, 30*time.Second, "the budget's status", func() error {
				pdb, err := pdbs.Get(ctx, "web", metav1.GetOptions{})
				if err != nil {
					return err
				}
				if st := pdb.Status; st.ObservedGeneration != pdb.Generation || st.CurrentHealthy != 2 || st.DesiredHealthy != 2 || st.DisruptionsAllowed != 0 {
					return fmt.Errorf("status %+v", st)
				}
				return nil
			})

			drain := []string{"drain", node, "--ignore-daemonsets", "--delete-emptydir-data"}
			out, err := runKubectl(t, bin, kubeconfig, append(drain, "--timeout=4s")...)
			if err == nil || !strings.Contains(out, "Cannot evict pod as it would violate the pod's disruption budget.") {
				t.Fatalf("drain under a budget: err %v, want failure citing the budget:\n%s", err, out)
			}
			for _, name := range []string{"web-0", "web-1"} {
				pod, err := admin.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil || pod.DeletionTimestamp != nil {
					t.Fatalf("pod %s after the blocked drain: %v, deletion %v", name, err, pod.GetDeletionTimestamp())
				}
			}
			n, err := admin.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			if err != nil || !n.Spec.Unschedulable {
				t.Fatalf("node after drain: %v, unschedulable %v", err, n.Spec.Unschedulable)
			}

			if err := pdbs.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			out, err = runKubectl(t, bin, kubeconfig, append(drain, "--timeout=60s")...)
			if err != nil {
				t.Fatalf("drain: %v\n%s", err, out)
			}
			for _, want := range []string{"pod/web-0 evicted", "pod/web-1 evicted", "node/" + node + " drained"} {
				if !strings.Contains(out, want) {
					t.Errorf("drain output lacks %q:\n%s", want, out)
				}
			}
			pods, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil || len(pods.Items) != 0 {
				t.Errorf("pods after drain: %v, %d left", err, len(pods.Items))
			}
		})
	}
}

func runKubectl(t *testing.T, bin, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig, "--cache-dir", t.TempDir()}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out.String())
	return out.String(), err
}

// fakeKubelet plays node's kubelet until ctx ends, level-based like a
// kubelet's sync loop: every 50ms it reports the node's pods Running and
// Ready, and deletes those being deleted with grace period 0 (their
// containers "stopped" at once). A write refused (say, before the node
// authorizer has seen the pod bound) is retried on the next round.
func fakeKubelet(ctx context.Context, t *testing.T, c kubernetes.Interface, node string) {
	sel := fields.OneTermEqualSelector("spec.nodeName", node).String()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
		pods, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			continue
		}
		for i := range pods.Items {
			pod := &pods.Items[i]
			var err error
			switch {
			case pod.DeletionTimestamp != nil:
				err = c.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
					GracePeriodSeconds: new(int64(0)), Preconditions: &metav1.Preconditions{UID: &pod.UID},
				})
			case pod.Status.Phase == "" || pod.Status.Phase == corev1.PodPending:
				p := pod.DeepCopy()
				p.Status.Phase = corev1.PodRunning
				now := metav1.Now()
				p.Status.Conditions = []corev1.PodCondition{
					{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
					{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				}
				_, err = c.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			}
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && !errors.Is(err, context.Canceled) {
				t.Logf("fake kubelet: pod %s/%s (will retry): %v", pod.Namespace, pod.Name, err)
			}
		}
	}
}

// evictionPoll calls f until it succeeds, failing the test with f's last error
// after timeout.
func evictionPoll(t *testing.T, timeout time.Duration, what string, f func() error) {
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
		case <-time.After(50 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		}
	}
}

// TestEvictionWithDisruptionController evicts through client-go (policy/v1
// and the policy/v1beta1 Eviction older clients send) with the disruption
// controller and a fake kubelet running: the eviction the budget allows
// goes through, the controller drops the pod's disruptedPods entry once
// the pod is gone, and the budget then refuses the next one.
func TestEvictionWithDisruptionController(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	srv := testserver.StartServer(t, testserver.Options{})
	admin := testserver.Client(t, srv.Admin)
	ctx := t.Context()
	factory := informers.NewSharedInformerFactory(admin, 0)
	pdbc, err := disruption.NewForConfig(controller.Deps{Client: admin, Informers: factory, Recorder: record.NewFakeRecorder(1000)}, srv.Admin)
	if err != nil {
		t.Fatal(err)
	}
	factory.StartWithContext(ctx)
	go func() { _ = pdbc.Run(ctx, 1) }()
	const node, ns = "n", "evict"
	if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fakeKubelet(kctx, t, testserver.Client(t, srv.ConfigFor(t, "system:node:"+node, "system:nodes")), node)
	}()
	t.Cleanup(func() { stop(); <-done })
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lbls := map[string]string{"app": "web"}
	for _, name := range []string{"web-0", "web-1"} {
		if _, err := admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pdbs := admin.PolicyV1().PodDisruptionBudgets(ns)
	one := intstr.FromInt32(1)
	if _, err := pdbs.Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: lbls}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	budget := func(healthy, allowed int32) func() error {
		return func() error {
			pdb, err := pdbs.Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if st := pdb.Status; st.ObservedGeneration != pdb.Generation || st.CurrentHealthy != healthy || st.DisruptionsAllowed != allowed || len(st.DisruptedPods) != 0 {
				return fmt.Errorf("status %+v", st)
			}
			return nil
		}
	}
	evictionPoll(t, 30*time.Second, "two healthy pods, one disruption allowed", budget(2, 1))

	if err := admin.PolicyV1().Evictions(ns).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: ns}}); err != nil {
		t.Fatalf("evicting web-0: %v", err)
	}
	evictionPoll(t, 30*time.Second, "web-0 gone", func() error {
		_, err := admin.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("web-0: %v", err)
	})
	evictionPoll(t, 30*time.Second, "the disruptedPods entry dropped", budget(1, 0))

	err = admin.CoreV1().Pods(ns).EvictV1beta1(ctx, &policyv1beta1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: ns}})
	if !apierrors.IsTooManyRequests(err) || !strings.Contains(err.Error(), "Cannot evict pod as it would violate the pod's disruption budget.") {
		t.Fatalf("evicting web-1 (policy/v1beta1): %v, want 429 citing the budget", err)
	}
	// The node authorizer lets a node evict its own pods only.
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: ns}}
	own := testserver.Client(t, srv.ConfigFor(t, "system:node:"+node, "system:nodes"))
	if err := own.PolicyV1().Evictions(ns).Evict(ctx, ev); !apierrors.IsTooManyRequests(err) {
		t.Errorf("node %s evicting its pod web-1: %v, want 429", node, err)
	}
	other := testserver.Client(t, srv.ConfigFor(t, "system:node:other", "system:nodes"))
	if err := other.PolicyV1().Evictions(ns).Evict(ctx, ev); !apierrors.IsForbidden(err) {
		t.Errorf("node other evicting web-1: %v, want 403", err)
	}
}
