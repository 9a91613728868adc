package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

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

type harness struct {
	client kubernetes.Interface
	c      *Controller
	clock  *fakeClock
	rec    *record.FakeRecorder
}

// start runs a server and the controller, driven by a fake clock at a
// whole second (API times have second precision).
func start(t *testing.T) *harness {
	h := newHarness(t)
	h.run(t)
	return h
}

// newHarness runs a server; the controller is not running yet.
func newHarness(t *testing.T) *harness {
	cfg := testserver.Start(t, testserver.Options{})
	return &harness{
		client: kubernetes.NewForConfigOrDie(cfg),
		clock:  &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		rec:    record.NewFakeRecorder(1000),
	}
}

// run starts the controller until the test ends and waits until it has
// taken its start time.
func (h *harness) run(t *testing.T) {
	factory := informers.NewSharedInformerFactory(h.client, 0)
	c := New(controller.Deps{
		Client: h.client, Informers: factory, Recorder: h.rec, Now: h.clock.Now,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	h.c = c
	ctx, cancel := context.WithCancel(context.Background())
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
	eventually(t, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.started.IsZero() {
			return errors.New("controller not started")
		}
		return nil
	})
}

// advance moves the clock and wakes the controller for nodes, as the
// requeues it asked for would in real time.
func (h *harness) advance(d time.Duration, nodes ...string) {
	h.clock.Advance(d)
	for _, n := range nodes {
		h.c.loop.Enqueue(n)
	}
}

// createNode creates a node whose kubelet reported Ready at now and, with
// lease, its Lease renewed at now.
func (h *harness) createNode(t *testing.T, name string, lease bool, taints ...corev1.Taint) {
	t.Helper()
	ctx := t.Context()
	node, err := h.client.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{Taints: taints},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node: %v", err)
	}
	h.postReady(t, node.Name)
	if lease {
		renew := metav1.NewMicroTime(h.clock.Now())
		_, err := h.client.CoordinationV1().Leases(LeaseNamespace).Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &name, RenewTime: &renew},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating lease: %v", err)
		}
	}
}

// postReady writes Ready=True with a heartbeat at now, as a kubelet.
func (h *harness) postReady(t *testing.T, name string) {
	t.Helper()
	now := metav1.NewTime(h.clock.Now())
	err := retryConflict(func() error {
		node, err := h.client.CoreV1().Nodes().Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		node.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: now, LastTransitionTime: now,
		}}
		_, err = h.client.CoreV1().Nodes().UpdateStatus(t.Context(), node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("posting node status: %v", err)
	}
}

func (h *harness) renewLease(t *testing.T, name string) {
	t.Helper()
	err := retryConflict(func() error {
		l, err := h.client.CoordinationV1().Leases(LeaseNamespace).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		renew := metav1.NewMicroTime(h.clock.Now())
		l.Spec.RenewTime = &renew
		_, err = h.client.CoordinationV1().Leases(LeaseNamespace).Update(t.Context(), l, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("renewing lease: %v", err)
	}
}

func retryConflict(f func() error) error {
	for {
		err := f()
		if !apierrors.IsConflict(err) {
			return err
		}
	}
}

func (h *harness) createNamespace(t *testing.T, name string) {
	t.Helper()
	_, err := h.client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
}

// createPod creates a running, ready pod bound to node (unless the
// controller deletes it or writes its status first).
func (h *harness) createPod(t *testing.T, ns, name, node string, tolerations ...corev1.Toleration) {
	t.Helper()
	pod, err := h.client.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:    node,
			Tolerations: tolerations,
			Containers:  []corev1.Container{{Name: "c", Image: "busybox"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	_, err = h.client.CoreV1().Pods(ns).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) { // the controller may be faster
		t.Fatalf("updating pod status: %v", err)
	}
}

// podState is a pod as a test sees it: "gone", "deleting" or "running".
func (h *harness) podState(t *testing.T, ns, name string) (string, *corev1.Pod) {
	t.Helper()
	pod, err := h.client.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "gone", nil
	case err != nil:
		t.Fatalf("getting pod: %v", err)
	case pod.DeletionTimestamp != nil:
		return "deleting", pod
	}
	return "running", pod
}

// wantPods waits until every named pod is in its state.
func (h *harness) wantPods(t *testing.T, ns string, want map[string]string) {
	t.Helper()
	eventually(t, func() error {
		got := map[string]string{}
		for name := range want {
			got[name], _ = h.podState(t, ns, name)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("pods (-want +got):\n%s", diff)
		}
		return nil
	})
}

func readyOf(node *corev1.Node) corev1.NodeCondition {
	if c := findCondition(node.Status.Conditions, corev1.NodeReady); c != nil {
		return *c
	}
	return corev1.NodeCondition{}
}

// taintIDs lists a node's taints as key:effect.
func taintIDs(node *corev1.Node) []string {
	var out []string
	for _, t := range node.Spec.Taints {
		out = append(out, t.Key+":"+string(t.Effect))
	}
	return out
}

func (h *harness) waitNode(t *testing.T, name string, check func(*corev1.Node) error) *corev1.Node {
	t.Helper()
	var node *corev1.Node
	eventually(t, func() error {
		var err error
		node, err = h.client.CoreV1().Nodes().Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		return check(node)
	})
	return node
}

// syncCached waits until the controller's caches hold the node's lease
// renewed at renew, then runs one sync directly and returns its requeue.
func (h *harness) syncCached(t *testing.T, name string, renew time.Time) time.Duration {
	t.Helper()
	eventually(t, func() error {
		l, err := h.c.leases.Leases(LeaseNamespace).Get(name)
		if err != nil {
			return err
		}
		if l.Spec.RenewTime == nil || !l.Spec.RenewTime.Time.Equal(renew) {
			return fmt.Errorf("cached lease renewed at %v, want %v", l.Spec.RenewTime, renew)
		}
		return nil
	})
	after, err := h.c.sync(t.Context(), name)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return after
}

func TestNodeLifecycle(t *testing.T) {
	h := start(t)
	seconds := func(s int64) *int64 { return &s }
	unreachable := func(secs *int64) corev1.Toleration {
		return corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs}
	}

	t.Run("a renewed lease keeps the node ready", func(t *testing.T) {
		h.createNode(t, "alive", true)
		h.advance(30 * time.Second)
		h.renewLease(t, "alive")
		renewed := h.clock.Now()
		h.advance(30 * time.Second)
		// The heartbeat in the Ready condition is 60 s old, the lease 30 s:
		// the lease counts, and the next check is when it turns stale.
		if got, want := h.syncCached(t, "alive", renewed), 10*time.Second; got != want {
			t.Errorf("requeue after %v, want %v", got, want)
		}
		node, err := h.client.CoreV1().Nodes().Get(t.Context(), "alive", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := readyOf(node).Status; got != corev1.ConditionTrue {
			t.Errorf("Ready = %s, want True", got)
		}
		if len(node.Spec.Taints) != 0 {
			t.Errorf("taints = %v, want none", taintIDs(node))
		}
	})

	t.Run("a stale lease makes the node unknown, tainted, and its pods evicted by tolerations", func(t *testing.T) {
		h.createNamespace(t, "lost")
		h.createNode(t, "lost", true)
		h.createPod(t, "lost", "untolerated", "lost", unreachable(seconds(0)))
		h.createPod(t, "lost", "short", "lost", unreachable(seconds(60)))
		h.createPod(t, "lost", "defaulted", "lost")
		h.createPod(t, "lost", "forever", "lost", unreachable(nil))

		h.advance(41*time.Second, "lost")
		tainted := h.clock.Now()
		node := h.waitNode(t, "lost", func(n *corev1.Node) error {
			if len(n.Spec.Taints) < 2 {
				return fmt.Errorf("taints %v", taintIDs(n))
			}
			return nil
		})
		ready := readyOf(node)
		if ready.Status != corev1.ConditionUnknown || ready.Reason != reasonUnknown || ready.Message != messageUnknown {
			t.Errorf("Ready = %s %s %q, want Unknown %s %q", ready.Status, ready.Reason, ready.Message, reasonUnknown, messageUnknown)
		}
		for _, ct := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
			if c := findCondition(node.Status.Conditions, ct); c == nil || c.Status != corev1.ConditionUnknown || c.Reason != reasonNeverUpdated {
				t.Errorf("condition %s = %+v, want Unknown %s", ct, c, reasonNeverUpdated)
			}
		}
		if diff := cmp.Diff([]string{"node.kubernetes.io/unreachable:NoExecute", "node.kubernetes.io/unreachable:NoSchedule"}, taintIDs(node)); diff != "" {
			t.Errorf("taints (-want +got):\n%s", diff)
		}
		for _, taint := range node.Spec.Taints {
			if taint.Effect == corev1.TaintEffectNoExecute && (taint.TimeAdded == nil || !taint.TimeAdded.Time.Equal(tainted)) {
				t.Errorf("NoExecute taint added at %v, want %v", taint.TimeAdded, tainted)
			}
		}

		h.wantPods(t, "lost", map[string]string{"untolerated": "deleting", "short": "running", "defaulted": "running", "forever": "running"})
		_, evicted := h.podState(t, "lost", "untolerated")
		if i := podConditionIndex(evicted.Status.Conditions, corev1.DisruptionTarget); i < 0 || evicted.Status.Conditions[i].Reason != ReasonTaintManager {
			t.Errorf("evicted pod conditions = %+v, want DisruptionTarget %s", evicted.Status.Conditions, ReasonTaintManager)
		}
		_, running := h.podState(t, "lost", "forever")
		if i := podConditionIndex(running.Status.Conditions, corev1.PodReady); i < 0 || running.Status.Conditions[i].Status != corev1.ConditionFalse {
			t.Errorf("pod on unknown node: conditions %+v, want Ready False", running.Status.Conditions)
		}
		// The next deadline is the 60 s toleration, exactly.
		if got, want := h.syncCached(t, "lost", tainted.Add(-41*time.Second)), 60*time.Second; got != want {
			t.Errorf("requeue after %v, want %v", got, want)
		}

		h.advance(60*time.Second, "lost")
		h.wantPods(t, "lost", map[string]string{"untolerated": "deleting", "short": "deleting", "defaulted": "running", "forever": "running"})
		h.advance(239*time.Second, "lost")
		if got, want := h.syncCached(t, "lost", tainted.Add(-41*time.Second)), time.Second; got != want {
			t.Errorf("requeue after %v, want %v", got, want)
		}
		h.advance(time.Second, "lost")
		h.wantPods(t, "lost", map[string]string{"untolerated": "deleting", "short": "deleting", "defaulted": "deleting", "forever": "running"})
		if got, want := h.syncCached(t, "lost", tainted.Add(-41*time.Second)), time.Duration(0); got != want {
			t.Errorf("requeue after %v, want %v (nothing left to wait for)", got, want)
		}
		if state, _ := h.podState(t, "lost", "forever"); state != "running" {
			t.Errorf("pod tolerating forever is %s", state)
		}
		wantEvent(t, h.rec, "TaintManagerEviction Marking for deletion Pod lost/defaulted")

		t.Run("and recovery removes the taints", func(t *testing.T) {
			h.renewLease(t, "lost")
			h.postReady(t, "lost")
			h.waitNode(t, "lost", func(n *corev1.Node) error {
				if len(n.Spec.Taints) != 0 {
					return fmt.Errorf("taints %v", taintIDs(n))
				}
				return nil
			})
		})
	})

	t.Run("a NoExecute taint not tolerated evicts at once", func(t *testing.T) {
		dedicated := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoExecute}
		h.createNamespace(t, "dedicated")
		h.createNode(t, "dedicated", true)
		h.createPod(t, "dedicated", "tolerating", "dedicated", corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "db"})
		h.createPod(t, "dedicated", "intolerant", "dedicated")
		err := retryConflict(func() error {
			n, err := h.client.CoreV1().Nodes().Get(t.Context(), "dedicated", metav1.GetOptions{})
			if err != nil {
				return err
			}
			n.Spec.Taints = append(n.Spec.Taints, dedicated)
			_, err = h.client.CoreV1().Nodes().Update(t.Context(), n, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("tainting node: %v", err)
		}
		h.wantPods(t, "dedicated", map[string]string{"tolerating": "running", "intolerant": "deleting"})
		if state, _ := h.podState(t, "dedicated", "tolerating"); state != "running" {
			t.Errorf("tolerating pod is %s", state)
		}
	})

	t.Run("without a lease the Ready heartbeat counts", func(t *testing.T) {
		h.createNode(t, "leaseless", false)
		h.advance(40*time.Second, "leaseless")
		h.waitNode(t, "leaseless", func(n *corev1.Node) error {
			if got := readyOf(n).Status; got != corev1.ConditionUnknown {
				return fmt.Errorf("Ready = %s", got)
			}
			return nil
		})
	})

	t.Run("pods of a deleted or missing node are deleted", func(t *testing.T) {
		h.createNamespace(t, "orphans")
		h.createNode(t, "doomed", true)
		h.createPod(t, "orphans", "on-doomed", "doomed")
		h.createPod(t, "orphans", "on-ghost", "ghost")
		if err := h.client.CoreV1().Nodes().Delete(t.Context(), "doomed", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting node: %v", err)
		}
		h.wantPods(t, "orphans", map[string]string{"on-doomed": "gone", "on-ghost": "gone"})
	})
}

// wantEvent reads recorded events until one has the prefix want.
func wantEvent(t *testing.T, rec *record.FakeRecorder, want string) {
	t.Helper()
	var seen []string
	for {
		select {
		case e := <-rec.Events:
			if strings.HasPrefix(e, "Normal "+want) {
				return
			}
			seen = append(seen, e)
		default:
			t.Errorf("no event %q among %q", want, seen)
			return
		}
	}
}

func TestStartGivesAFullGracePeriod(t *testing.T) {
	h := newHarness(t)
	h.createNode(t, "sleeper", true)
	renewed := h.clock.Now()
	h.advance(time.Hour) // the control plane was down for an hour
	h.run(t)
	if got, want := h.syncCached(t, "sleeper", renewed), DefaultGracePeriod; got != want {
		t.Errorf("requeue after %v, want %v", got, want)
	}
	node, err := h.client.CoreV1().Nodes().Get(t.Context(), "sleeper", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readyOf(node).Status; got != corev1.ConditionTrue {
		t.Errorf("Ready = %s right after start, want True", got)
	}
	h.advance(DefaultGracePeriod, "sleeper")
	h.waitNode(t, "sleeper", func(n *corev1.Node) error {
		if got := readyOf(n).Status; got != corev1.ConditionUnknown {
			return fmt.Errorf("Ready = %s", got)
		}
		return nil
	})
}
