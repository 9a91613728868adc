package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/internal/testserver"
)

func testNode(name, podCIDR string, ips ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: podCIDR}}
	if podCIDR != "" {
		n.Spec.PodCIDRs = []string{podCIDR}
	}
	for _, ip := range ips {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	return n
}

func TestDesiredRoutes(t *testing.T) {
	cases := []struct {
		name  string
		nodes []*corev1.Node
		want  map[string]string
	}{
		{"self is skipped", []*corev1.Node{testNode("node-a", "10.42.0.0/24", "192.168.1.10")}, map[string]string{}},
		{"other nodes", []*corev1.Node{
			testNode("node-a", "10.42.0.0/24", "192.168.1.10"),
			testNode("node-b", "10.42.1.0/24", "192.168.1.11"),
			testNode("node-c", "10.42.2.0/24", "fd00::3", "192.168.1.12"),
		}, map[string]string{"10.42.1.0/24": "192.168.1.11", "10.42.2.0/24": "192.168.1.12"}},
		{"no pod CIDR or no address", []*corev1.Node{
			testNode("node-b", "", "192.168.1.11"),
			testNode("node-c", "10.42.2.0/24"),
			testNode("node-d", "fd00:42::/64", "192.168.1.13"),
		}, map[string]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, desiredRoutes(tc.nodes, "node-a")); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunRoutes runs RunRoutes' loop against a real API server, with "ip"
// inside a network namespace, and follows nodes coming and going; a route
// of another protocol must survive.
func TestRunRoutes(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t, "routes")
	// A veth pair stands for the node's network (no dummy module here).
	sh(t, "ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	sh(t, "ip", "-n", ns, "addr", "add", "192.168.88.1/24", "dev", "d0")
	sh(t, "ip", "-n", ns, "link", "set", "d1", "up")
	sh(t, "ip", "-n", ns, "link", "set", "d0", "up")
	sh(t, "ip", "-n", ns, "route", "add", "10.42.9.0/24", "via", "192.168.88.9")

	client := kubernetes.NewForConfigOrDie(testserver.Start(t, testserver.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, n := range []*corev1.Node{
		testNode("node-a", "10.42.0.0/24", "192.168.88.1"),
		testNode("node-b", "10.42.1.0/24", "192.168.88.2"),
		testNode("node-c", "10.42.2.0/24", "192.168.88.3"),
		testNode("node-far", "10.42.3.0/24", "10.99.0.1"), // not on a connected network
	} {
		created, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status = n.Status
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() {
		done <- runRoutes(ctx, routesConfig{
			client: client, nodeName: "node-a", log: testLogger(t),
			ip: []string{"ip", "-n", ns}, resync: time.Second,
		})
	}()
	routes := func() string { return sh(t, "ip", "-n", ns, "-4", "route", "show") }
	want := func(lines []string, absent ...string) func() error {
		return func() error {
			got := routes()
			for _, l := range lines {
				if !strings.Contains(got, l) {
					return fmt.Errorf("no route %q in:\n%s", l, got)
				}
			}
			for _, a := range absent {
				if strings.Contains(got, a) {
					return fmt.Errorf("route %q still in:\n%s", a, got)
				}
			}
			return nil
		}
	}
	waitFor(t, "routes to the other nodes", want([]string{
		"10.42.1.0/24 via 192.168.88.2 dev d0 proto 201",
		"10.42.2.0/24 via 192.168.88.3 dev d0 proto 201",
		"10.42.9.0/24 via 192.168.88.9 dev d0",
	}, "10.42.0.0/24", "10.42.3.0/24"))

	if err := client.CoreV1().Nodes().Delete(ctx, "node-c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted node's route to go", want([]string{
		"10.42.1.0/24 via 192.168.88.2 dev d0 proto 201",
		"10.42.9.0/24 via 192.168.88.9 dev d0",
	}, "10.42.2.0/24"))

	// Someone deletes our route: the resync puts it back.
	sh(t, "ip", "-n", ns, "route", "del", "10.42.1.0/24")
	waitFor(t, "the route to come back", want([]string{"10.42.1.0/24 via 192.168.88.2 dev d0 proto 201"}))

	cancel()
	if err := <-done; err != nil {
		t.Errorf("runRoutes returned %v, want nil", err)
	}
}
