package nodestatus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// runtime is a Runtime whose Version fails while down is set.
type testRuntime struct {
	*cri.Fake
	down atomic.Bool
}

func (r *testRuntime) Version(ctx context.Context) (string, string, error) {
	if r.down.Load() {
		return "", "", errors.New("cri: version: connection refused")
	}
	return r.Fake.Version(ctx)
}

// clock is a settable clock, starting at the real time.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// poll calls f every 20ms until it returns nil or 20s pass, then fails with
// f's last error.
func poll(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 20s: %v", what, err)
		}
		<-time.After(20 * time.Millisecond)
	}
}

type harness struct {
	t        *testing.T
	client   kubernetes.Interface
	reporter *Reporter
	runtime  *testRuntime
	clock    *clock
	recorder *record.FakeRecorder
	usage    atomic.Pointer[Pressure]
	observed atomic.Int64 // Usage calls: one per observation
	cancel   context.CancelFunc
	done     chan error
}

// start runs a Reporter for node name against client with fast intervals.
func start(t *testing.T, client kubernetes.Interface, name string, change func(*Config)) *harness {
	t.Helper()
	h := &harness{
		t: t, client: client, clock: &clock{},
		runtime:  &testRuntime{Fake: cri.NewFake("skiff-test/pause:3.10")},
		recorder: record.NewFakeRecorder(100),
	}
	h.usage.Store(&Pressure{})
	cfg := Config{
		Client:   client,
		NodeName: name,
		NodeIP:   "192.0.2.7",
		Labels:   map[string]string{"skiff.dev/role": "test"},
		Runtime:  h.runtime,
		Usage: func(context.Context) (Pressure, error) {
			h.observed.Add(1)
			return *h.usage.Load(), nil
		},
		RootDir:        t.TempDir(),
		Recorder:       h.recorder,
		Logger:         slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:            h.clock.Now,
		RenewInterval:  100 * time.Millisecond,
		StatusInterval: 30 * time.Millisecond,
	}
	if change != nil {
		change(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.reporter = r
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- r.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Errorf("Run did not return within 10s of cancel")
	}
}

func (h *harness) node() *corev1.Node {
	h.t.Helper()
	n, err := h.client.CoreV1().Nodes().Get(context.Background(), h.reporter.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		h.t.Fatalf("getting node: %v", err)
	}
	return n
}

func (h *harness) lease() (*coordinationv1.Lease, error) {
	return h.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(context.Background(), h.reporter.cfg.NodeName, metav1.GetOptions{})
}

// waitObservations waits until the reporter made n more observations.
func (h *harness) waitObservations(n int64) {
	h.t.Helper()
	target := h.observed.Load() + n
	poll(h.t, fmt.Sprintf("%d observations", n), func() error {
		if got := h.observed.Load(); got < target {
			return fmt.Errorf("%d observations, want %d", got, target)
		}
		return nil
	})
}

func condition(n *corev1.Node, typ corev1.NodeConditionType) corev1.NodeCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return corev1.NodeCondition{}
}

func waitCondition(h *harness, typ corev1.NodeConditionType, status corev1.ConditionStatus) *corev1.Node {
	h.t.Helper()
	var n *corev1.Node
	poll(h.t, fmt.Sprintf("%s=%s", typ, status), func() error {
		n = h.node()
		if c := condition(n, typ); c.Status != status {
			return fmt.Errorf("%s is %q (%s: %s)", typ, c.Status, c.Reason, c.Message)
		}
		return nil
	})
	return n
}

func drainEvents(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// TestReporter registers a node and follows it through its life: NotReady
// until the network is, Ready, the Lease renewed, no status writes while
// nothing changes, a forced report after ReportInterval, pressure, a
// runtime outage, deletion and re-registration.
func TestReporter(t *testing.T) {
	t.Parallel()
	cfg := testserver.Start(t, testserver.Options{})
	client := testserver.Client(t, cfg)
	ctx := context.Background()
	h := start(t, client, "n1", nil)

	select {
	case <-h.reporter.Registered():
	case <-time.After(20 * time.Second):
		t.Fatal("not registered within 20s")
	}

	t.Run("registered NotReady with capacity, labels, addresses, info", func(t *testing.T) {
		n := waitCondition(h, corev1.NodeReady, corev1.ConditionFalse)
		if c := condition(n, corev1.NodeReady); c.Reason != "KubeletNotReady" || !strings.Contains(c.Message, "NetworkPluginNotReady") {
			t.Errorf("Ready = %s: %s, want KubeletNotReady about the network", c.Reason, c.Message)
		}
		for _, k := range []string{"kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch", "skiff.dev/role"} {
			if n.Labels[k] == "" {
				t.Errorf("label %s missing: %v", k, n.Labels)
			}
		}
		if n.Labels["kubernetes.io/hostname"] != "n1" {
			t.Errorf("hostname label = %q", n.Labels["kubernetes.io/hostname"])
		}
		wantTaints := []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}}
		if diff := cmp.Diff(wantTaints, n.Spec.Taints); diff != "" {
			t.Errorf("taints (-want +got):\n%s", diff)
		}
		for _, r := range []corev1.ResourceName{"cpu", "memory", "ephemeral-storage", "pods"} {
			c, a := n.Status.Capacity[r], n.Status.Allocatable[r]
			if c.Sign() <= 0 || a.Sign() <= 0 || a.Cmp(c) > 0 {
				t.Errorf("%s: capacity %s, allocatable %s", r, c.String(), a.String())
			}
		}
		wantAddresses := []corev1.NodeAddress{{Type: "InternalIP", Address: "192.0.2.7"}, {Type: "Hostname", Address: "n1"}}
		if diff := cmp.Diff(wantAddresses, n.Status.Addresses); diff != "" {
			t.Errorf("addresses (-want +got):\n%s", diff)
		}
		v, err := client.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		info := n.Status.NodeInfo
		if info.KubeletVersion != v.GitVersion || info.ContainerRuntimeVersion != "fake://0.1.0" || info.OperatingSystem != "linux" || info.BootID == "" {
			t.Errorf("nodeInfo = %+v; want kubelet %s, runtime fake://0.1.0", info, v.GitVersion)
		}
		if n.Status.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
			t.Errorf("kubelet port = %d", n.Status.DaemonEndpoints.KubeletEndpoint.Port)
		}
		if len(n.Status.Images) != 1 || n.Status.Images[0].Names[0] != "skiff-test/pause:3.10" {
			t.Errorf("images = %+v", n.Status.Images)
		}
	})

	t.Run("Ready once the network is", func(t *testing.T) {
		h.reporter.SetNetworkReady(true, "")
		n := waitCondition(h, corev1.NodeReady, corev1.ConditionTrue)
		if c := condition(n, corev1.NodeReady); c.Reason != "KubeletReady" || c.Message != "kubelet is posting ready status" {
			t.Errorf("Ready = %s: %s", c.Reason, c.Message)
		}
		poll(t, "events", func() error {
			if got := drainEvents(h.recorder); !contains(got, "Normal NodeReady Node n1 status is now: NodeReady") {
				return fmt.Errorf("events %q lack NodeReady", got)
			}
			return nil
		})
	})

	t.Run("lease renewed and owned by the node", func(t *testing.T) {
		var first *metav1.MicroTime
		poll(t, "lease renewed twice", func() error {
			l, err := h.lease()
			if err != nil {
				return err
			}
			if first == nil {
				first = l.Spec.RenewTime
				return errors.New("first renewal seen")
			}
			if !l.Spec.RenewTime.After(first.Time) {
				return fmt.Errorf("renewTime still %v", l.Spec.RenewTime)
			}
			n := h.node()
			wantOwners := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "n1", UID: n.UID}}
			if diff := cmp.Diff(wantOwners, l.OwnerReferences); diff != "" {
				return fmt.Errorf("owners (-want +got):\n%s", diff)
			}
			if *l.Spec.HolderIdentity != "n1" || *l.Spec.LeaseDurationSeconds != 40 {
				return fmt.Errorf("holder %q duration %d", *l.Spec.HolderIdentity, *l.Spec.LeaseDurationSeconds)
			}
			return nil
		})
	})

	t.Run("no status write while nothing changes", func(t *testing.T) {
		before := h.node().ResourceVersion
		h.waitObservations(10)
		if after := h.node().ResourceVersion; after != before {
			t.Errorf("node written while unchanged: resourceVersion %s -> %s", before, after)
		}
	})

	t.Run("report after ReportInterval even when unchanged", func(t *testing.T) {
		before := condition(h.node(), corev1.NodeReady)
		h.clock.Advance(DefaultReportInterval + time.Second)
		poll(t, "heartbeat advanced", func() error {
			c := condition(h.node(), corev1.NodeReady)
			if !c.LastHeartbeatTime.After(before.LastHeartbeatTime.Time) {
				return fmt.Errorf("heartbeat still %v", c.LastHeartbeatTime)
			}
			if !c.LastTransitionTime.Equal(&before.LastTransitionTime) {
				return fmt.Errorf("transition time moved: %v -> %v", before.LastTransitionTime, c.LastTransitionTime)
			}
			return nil
		})
	})

	t.Run("memory pressure", func(t *testing.T) {
		h.usage.Store(&Pressure{Memory: true})
		n := waitCondition(h, corev1.NodeMemoryPressure, corev1.ConditionTrue)
		if c := condition(n, corev1.NodeMemoryPressure); c.Reason != "KubeletHasInsufficientMemory" {
			t.Errorf("MemoryPressure reason %q", c.Reason)
		}
		h.usage.Store(&Pressure{})
		waitCondition(h, corev1.NodeMemoryPressure, corev1.ConditionFalse)
	})

	t.Run("runtime down", func(t *testing.T) {
		h.runtime.down.Store(true)
		n := waitCondition(h, corev1.NodeReady, corev1.ConditionFalse)
		if c := condition(n, corev1.NodeReady); c.Message != "container runtime is down" {
			t.Errorf("Ready message %q", c.Message)
		}
		if got := n.Status.NodeInfo.ContainerRuntimeVersion; got != "fake://0.1.0" {
			t.Errorf("runtime version %q, want the last known", got)
		}
		h.runtime.down.Store(false)
		waitCondition(h, corev1.NodeReady, corev1.ConditionTrue)
	})

	t.Run("Unknown set by the node lifecycle controller is corrected", func(t *testing.T) {
		n := h.node()
		for i := range n.Status.Conditions {
			n.Status.Conditions[i].Status = corev1.ConditionUnknown
			n.Status.Conditions[i].Reason = "NodeStatusUnknown"
		}
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitCondition(h, corev1.NodeReady, corev1.ConditionTrue)
		waitCondition(h, corev1.NodeMemoryPressure, corev1.ConditionFalse)
	})

	t.Run("deleted node registered again", func(t *testing.T) {
		old := h.node()
		if err := client.CoreV1().Nodes().Delete(ctx, "n1", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "node back with a new UID and Ready", func() error {
			n, err := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if n.UID == old.UID {
				return errors.New("same UID")
			}
			if c := condition(n, corev1.NodeReady); c.Status != corev1.ConditionTrue {
				return fmt.Errorf("Ready %q", c.Status)
			}
			l, err := h.lease()
			if err != nil {
				return err
			}
			if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].UID != n.UID {
				return fmt.Errorf("lease owners %+v, want node UID %s", l.OwnerReferences, n.UID)
			}
			return nil
		})
	})

	h.stop()
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// TestReregistrationKeepsSpec starts a reporter for a node that exists with
// a pod CIDR, taints, a stale label and no status: the spec is kept, the
// labels it owns restored, the status posted.
func TestReregistrationKeepsSpec(t *testing.T) {
	t.Parallel()
	cfg := testserver.Start(t, testserver.Options{})
	client := testserver.Client(t, cfg)
	ctx := context.Background()
	spec := corev1.NodeSpec{
		PodCIDR:       "10.42.3.0/24",
		PodCIDRs:      []string{"10.42.3.0/24"},
		Taints:        []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}},
		Unschedulable: true,
	}
	_, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n2", Labels: map[string]string{"kubernetes.io/hostname": "stale", "user": "kept"}},
		Spec:       spec,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, client, "n2", func(c *Config) {
		c.Taints = []corev1.Taint{{Key: "registration", Effect: corev1.TaintEffectNoExecute}}
	})
	h.reporter.SetNetworkReady(true, "")
	n := waitCondition(h, corev1.NodeReady, corev1.ConditionTrue)
	if diff := cmp.Diff(spec, n.Spec); diff != "" {
		t.Errorf("spec changed (-want +got):\n%s", diff)
	}
	if n.Labels["kubernetes.io/hostname"] != "n2" || n.Labels["user"] != "kept" || n.Labels["skiff.dev/role"] != "test" {
		t.Errorf("labels = %v", n.Labels)
	}
	cidr, err := h.reporter.PodCIDR(ctx)
	if err != nil || cidr != "10.42.3.0/24" {
		t.Errorf("PodCIDR = %q, %v; want 10.42.3.0/24", cidr, err)
	}
}

// TestPodCIDR waits for a pod CIDR that is assigned after registration,
// and checks that the wait ends with its context.
func TestPodCIDR(t *testing.T) {
	t.Parallel()
	cfg := testserver.Start(t, testserver.Options{})
	client := testserver.Client(t, cfg)
	ctx := context.Background()
	h := start(t, client, "n3", nil)

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := h.reporter.PodCIDR(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("PodCIDR before assignment = %v, want deadline exceeded", err)
	}

	type result struct {
		cidr string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		c, err := h.reporter.PodCIDR(ctx)
		got <- result{c, err}
	}()
	<-h.reporter.Registered()
	patch := []byte(`{"spec":{"podCIDR":"10.42.7.0/24","podCIDRs":["10.42.7.0/24"]}}`)
	if _, err := client.CoreV1().Nodes().Patch(ctx, "n3", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.err != nil || r.cidr != "10.42.7.0/24" {
			t.Errorf("PodCIDR = %q, %v; want 10.42.7.0/24", r.cidr, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("PodCIDR did not return within 20s of the assignment")
	}
}
