package nodeipam

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
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

// run starts a controller against client, configured by configure, and
// returns a function that stops it and waits for it.
func run(t *testing.T, client kubernetes.Interface, rec record.EventRecorder, configure func(*Controller)) (stop func()) {
	factory := informers.NewSharedInformerFactory(client, 0)
	c := New(controller.Deps{
		Client: client, Informers: factory, Recorder: rec,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if configure != nil {
		configure(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.StartWithContext(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 2) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	}
	t.Cleanup(stop)
	return stop
}

func createNodes(t *testing.T, client kubernetes.Interface, names ...string) {
	t.Helper()
	for _, name := range names {
		_, err := client.CoreV1().Nodes().Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating node %s: %v", name, err)
		}
	}
}

// podCIDRs waits until every named node has a pod CIDR and returns them.
func podCIDRs(t *testing.T, client kubernetes.Interface, names ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	eventually(t, func() error {
		for _, name := range names {
			node, err := client.CoreV1().Nodes().Get(t.Context(), name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if node.Spec.PodCIDR == "" {
				return fmt.Errorf("node %s has no pod CIDR", name)
			}
			if diff := cmp.Diff([]string{node.Spec.PodCIDR}, node.Spec.PodCIDRs); diff != "" {
				return fmt.Errorf("node %s podCIDRs (-want +got):\n%s", name, diff)
			}
			got[name] = node.Spec.PodCIDR
		}
		return nil
	})
	return got
}

// checkUnique fails unless the CIDRs are distinct /24s of 10.42.0.0/16.
func checkUnique(t *testing.T, cidrs map[string]string) {
	t.Helper()
	cluster := netip.MustParsePrefix(DefaultClusterCIDR)
	seen := map[string]string{}
	for node, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Bits() != DefaultNodeMaskSize || !cluster.Contains(p.Addr()) {
			t.Errorf("node %s: pod CIDR %q is not a /%d of %s", node, s, DefaultNodeMaskSize, cluster)
		}
		if other, dup := seen[s]; dup {
			t.Errorf("nodes %s and %s both have %s", node, other, s)
		}
		seen[s] = node
	}
}

func TestAllocation(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)

	// A node that already has a pod CIDR keeps it and nobody else gets it.
	_, err := client.CoreV1().Nodes().Create(t.Context(), &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "preset"},
		Spec:       corev1.NodeSpec{PodCIDR: "10.42.0.0/24", PodCIDRs: []string{"10.42.0.0/24"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node: %v", err)
	}
	stop := run(t, client, record.NewFakeRecorder(100), nil)
	createNodes(t, client, "n1", "n2", "n3")
	first := podCIDRs(t, client, "preset", "n1", "n2", "n3")
	if first["preset"] != "10.42.0.0/24" {
		t.Errorf("preset node's pod CIDR changed to %s", first["preset"])
	}
	checkUnique(t, first)

	// After a restart the allocations are rebuilt: old nodes keep theirs,
	// new ones get others.
	stop()
	run(t, client, record.NewFakeRecorder(100), nil)
	createNodes(t, client, "n4", "n5")
	second := podCIDRs(t, client, "preset", "n1", "n2", "n3", "n4", "n5")
	for name, cidr := range first {
		if second[name] != cidr {
			t.Errorf("node %s: pod CIDR %s after restart, was %s", name, second[name], cidr)
		}
	}
	checkUnique(t, second)
}

func TestRangeFull(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	rec := record.NewFakeRecorder(100)
	run(t, client, rec, func(c *Controller) { c.ClusterCIDR = netip.MustParsePrefix("10.9.0.0/23") })

	createNodes(t, client, "a", "b")
	got := podCIDRs(t, client, "a", "b")
	if got["a"] == got["b"] || !strings.HasPrefix(got["a"], "10.9.") || !strings.HasPrefix(got["b"], "10.9.") {
		t.Errorf("pod CIDRs %v, want the two /24s of 10.9.0.0/23", got)
	}
	createNodes(t, client, "c")
	select {
	case e := <-rec.Events:
		if want := "Normal CIDRNotAvailable Node c status is now: CIDRNotAvailable"; e != want {
			t.Errorf("event %q, want %q", e, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no CIDRNotAvailable event")
	}
	if err := client.CoreV1().Nodes().Delete(t.Context(), "a", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting node: %v", err)
	}
	if c := podCIDRs(t, client, "c")["c"]; c != got["a"] {
		t.Errorf("node c got %s, want the released %s", c, got["a"])
	}
}
