package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/internal/testserver"
)

// kernelNet is the test topology, three namespaces:
//
//	client (192.168.77.2, 10.42.5.5) --- node (192.168.77.1 | 10.42.0.1) --- pods (10.42.0.5, 10.42.0.6)
//
// The node holds the proxy's table and forwards; the pods namespace
// stands for two pods on the node's pod network (one L2 segment, like the
// bridge) and serves whoami on port 8080 of both addresses; the client is
// outside the cluster CIDR, and its second address stands for a pod of
// another node (routed through the client). The node's default route
// points at the client.
type kernelNet struct {
	node, pods, client string
}

func newKernelNet(t *testing.T) kernelNet {
	k := kernelNet{node: newNetns(t, "node"), pods: newNetns(t, "pods"), client: newNetns(t, "client")}
	sh(t, "ip", "-n", k.node, "link", "add", "pod0", "type", "veth", "peer", "name", "eth0", "netns", k.pods)
	sh(t, "ip", "-n", k.node, "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", k.client)
	sh(t, "ip", "-n", k.node, "addr", "add", "10.42.0.1/24", "dev", "pod0")
	sh(t, "ip", "-n", k.node, "addr", "add", "192.168.77.1/24", "dev", "ext0")
	sh(t, "ip", "-n", k.pods, "addr", "add", "10.42.0.5/24", "dev", "eth0")
	sh(t, "ip", "-n", k.pods, "addr", "add", "10.42.0.6/24", "dev", "eth0")
	sh(t, "ip", "-n", k.client, "addr", "add", "192.168.77.2/24", "dev", "eth0")
	sh(t, "ip", "-n", k.client, "addr", "add", remotePod+"/32", "dev", "eth0")
	for _, l := range [][2]string{{k.node, "pod0"}, {k.node, "ext0"}, {k.pods, "eth0"}, {k.client, "eth0"}} {
		sh(t, "ip", "-n", l[0], "link", "set", l[1], "up")
	}
	sh(t, "ip", "-n", k.pods, "route", "add", "default", "via", "10.42.0.1")
	sh(t, "ip", "-n", k.client, "route", "add", "default", "via", "192.168.77.1")
	sh(t, "ip", "-n", k.node, "route", "add", "default", "via", "192.168.77.2")
	sh(t, "ip", "netns", "exec", k.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	serveWhoami(t, k.pods, "10.42.0.5:8080")
	serveWhoami(t, k.pods, "10.42.0.6:8080")
	return k
}

// remotePod is the client namespace's address that stands for a pod of
// another node: in the cluster CIDR, outside the node's pod CIDR.
const remotePod = "10.42.5.5"

// TestKernelTraffic applies the proxy's rules to a real kernel in network
// namespaces and sends traffic through them: cluster IP from outside,
// from the node and from a pod (same segment and hairpin), NodePort,
// session affinity, rejection without endpoints, and an incremental
// update that removes an endpoint and a service.
func TestKernelTraffic(t *testing.T) {
	requireRoot(t)
	k := newKernelNet(t)
	nft := nftIn(t, k.node)
	cfg := testConfig(nft)
	cfg.NodeIPs = []string{"192.168.77.1"}
	n := mustNode(cfg)
	ctx := context.Background()

	web := service("shop", "web", "10.96.0.10", nodePort(30080))
	empty := service("shop", "empty", "10.96.0.11", nodePort(30082))
	sticky := service("shop", "sticky", "10.96.0.12", affinity(600))
	local := service("shop", "local", "10.96.0.13", nodePort(30081), externalLocal)
	fenced := service("shop", "fenced", "10.96.0.14", port(81), loadBalancer(30084, "192.168.77.1"), sourceRanges("10.0.0.0/8"))
	allowed := service("shop", "open", "10.96.0.15", port(82), loadBalancer(30085, "192.168.77.1"), sourceRanges("192.168.77.0/24"))
	onlyLocal := service("shop", "onlylocal", "10.96.0.16", nodePort(30086), externalLocal)
	s1 := state{
		svcs: []*corev1.Service{web, empty, sticky, local, fenced, allowed, onlyLocal},
		slices: []*discoveryv1.EndpointSlice{
			slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:r", "10.42.0.6@node-a:r"),
			slice("shop", "sticky", "sticky-1", 8080, "10.42.0.5@node-a:r", "10.42.0.6@node-a:r"),
			slice("shop", "local", "local-1", 8080, "10.42.0.5@node-a:r", "10.42.9.9@node-b:r"),
			slice("shop", "fenced", "fenced-1", 8080, "10.42.0.5@node-a:r"),
			slice("shop", "open", "open-1", 8080, "10.42.0.5@node-a:r"),
			slice("shop", "onlylocal", "onlylocal-1", 8080, "10.42.0.5@node-a:r"),
		},
	}
	a := newApplier(nft, n)
	if err := a.full(ctx, desiredRules(s1, n)); err != nil {
		t.Fatalf("applying the rules: %v", err)
	}
	// A second full sync replaces the table atomically.
	if err := a.full(ctx, desiredRules(s1, n)); err != nil {
		t.Fatalf("rebuilding the rules: %v", err)
	}

	// reach sends n connections from ns to addr and returns the servers
	// that answered and the client addresses they saw.
	reach := func(t *testing.T, ns, addr string, n int) (servers, clients map[string]bool) {
		t.Helper()
		servers, clients = map[string]bool{}, map[string]bool{}
		for range n {
			s, c, err := whoami(ns, addr)
			if err != nil {
				t.Fatalf("connecting from %s to %s: %v", ns, addr, err)
			}
			servers[s], clients[c] = true, true
		}
		return servers, clients
	}
	both := map[string]bool{"10.42.0.5:8080": true, "10.42.0.6:8080": true}

	t.Run("cluster IP from outside is spread and masqueraded", func(t *testing.T) {
		servers, clients := reach(t, k.client, "10.96.0.10:80", 30)
		if !equalSets(servers, both) {
			t.Errorf("servers %v, want both endpoints", keysOf(servers))
		}
		if !equalSets(clients, map[string]bool{"10.42.0.1": true}) {
			t.Errorf("endpoints saw clients %v, want the node's address 10.42.0.1 (masquerade)", keysOf(clients))
		}
	})
	t.Run("cluster IP from the node", func(t *testing.T) {
		reach(t, k.node, "10.96.0.10:80", 5)
	})
	t.Run("cluster IP from a pod on the same segment, hairpin included", func(t *testing.T) {
		servers, clients := reach(t, k.pods, "10.96.0.10:80", 30)
		if !equalSets(servers, both) {
			t.Errorf("servers %v, want both endpoints", keysOf(servers))
		}
		// Masqueraded (nat-postrouting), else the reply would not be
		// reverse-NATed and the connection would fail anyway.
		if !equalSets(clients, map[string]bool{"10.42.0.1": true}) {
			t.Errorf("endpoints saw clients %v, want the node's address 10.42.0.1 (masquerade)", keysOf(clients))
		}
	})
	t.Run("NodePort", func(t *testing.T) {
		servers, _ := reach(t, k.client, "192.168.77.1:30080", 30)
		if !equalSets(servers, both) {
			t.Errorf("servers %v, want both endpoints", keysOf(servers))
		}
		reach(t, k.node, "192.168.77.1:30080", 3)
		reach(t, k.pods, "192.168.77.1:30080", 3)
	})
	t.Run("externalTrafficPolicy Local keeps the client address", func(t *testing.T) {
		servers, clients := reach(t, k.client, "192.168.77.1:30081", 10)
		if !equalSets(servers, map[string]bool{"10.42.0.5:8080": true}) {
			t.Errorf("servers %v, want only the local endpoint", keysOf(servers))
		}
		if !equalSets(clients, map[string]bool{"192.168.77.2": true}) {
			t.Errorf("endpoint saw clients %v, want the client's own address", keysOf(clients))
		}
	})
	t.Run("externalTrafficPolicy Local masquerades other nodes' pods", func(t *testing.T) {
		// (This node's pods on the same bridge are masqueraded too, by
		// nat-postrouting; the "cluster IP from a pod" case checks it.)
		for range 3 {
			_, client, err := whoamiFrom(k.client, remotePod, "192.168.77.1:30086")
			if err != nil {
				t.Fatalf("connecting from %s: %v", remotePod, err)
			}
			if client != "10.42.0.1" {
				t.Errorf("endpoint saw client %s, want the node's address 10.42.0.1 (masquerade)", client)
			}
		}
	})
	t.Run("loadBalancerSourceRanges", func(t *testing.T) {
		reach(t, k.client, "192.168.77.1:82", 2) // allowed range
		reach(t, k.pods, "192.168.77.1:81", 2)   // allowed range
		if _, _, err := whoami(k.client, "192.168.77.1:81"); err == nil {
			t.Error("a client outside loadBalancerSourceRanges reached the load balancer")
		}
	})
	t.Run("session affinity", func(t *testing.T) {
		servers, _ := reach(t, k.client, "10.96.0.12:80", 15)
		if len(servers) != 1 {
			t.Errorf("servers %v, want a single one", keysOf(servers))
		}
	})
	t.Run("no endpoints or no such port is refused", func(t *testing.T) {
		for _, ns := range []string{k.client, k.node, k.pods} {
			for _, addr := range []string{"10.96.0.11:80", "192.168.77.1:30082", "10.96.0.10:81"} {
				_, _, err := whoami(ns, addr)
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("from %s to %s: got %v, want connection refused", ns, addr, err)
				}
			}
		}
	})

	// Incremental: one endpoint fewer, the sticky service gone, the empty
	// one gets an endpoint.
	s2 := state{
		svcs: []*corev1.Service{web, empty},
		slices: []*discoveryv1.EndpointSlice{
			slice("shop", "web", "web-1", 8080, "10.42.0.6@node-a:r", "10.42.0.5@node-a:n"),
			slice("shop", "empty", "empty-1", 8080, "10.42.0.5@node-a:r"),
		},
	}
	cur := desiredRules(s2, n)
	changed := map[string]*serviceRules{"shop/web": cur["shop/web"], "shop/empty": cur["shop/empty"], "shop/sticky": nil}
	if _, err := a.update(ctx, changed); err != nil {
		t.Fatalf("incremental update: %v", err)
	}
	t.Run("after the update", func(t *testing.T) {
		servers, _ := reach(t, k.client, "10.96.0.10:80", 10)
		if !equalSets(servers, map[string]bool{"10.42.0.6:8080": true}) {
			t.Errorf("servers %v, want only 10.42.0.6:8080", keysOf(servers))
		}
		servers, _ = reach(t, k.client, "10.96.0.11:80", 3)
		if !equalSets(servers, map[string]bool{"10.42.0.5:8080": true}) {
			t.Errorf("servers %v, want 10.42.0.5:8080", keysOf(servers))
		}
		out := sh(t, "ip", "netns", "exec", k.node, "nft", "list", "table", "inet", TableName)
		if strings.Contains(out, "sticky") {
			t.Errorf("the deleted service's objects are still in the table:\n%s", out)
		}
	})
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keysOf(m map[string]bool) string { return fmt.Sprint(sortedKeys(m)) }

// TestKernelIncremental walks the incremental steps against the real
// kernel, which (unlike the fake) refuses to delete objects still in use:
// every transaction must be accepted, and the table must end with only
// its base objects.
func TestKernelIncremental(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t, "incr")
	nft := nftIn(t, ns)
	cfg := testConfig(nft)
	cfg.NodeIPs = nil // node ports on every local address (fib)
	n := mustNode(cfg)
	walkSteps(t, nft, n, func(*testing.T, state, map[string]*serviceRules) {})
	out := sh(t, "ip", "netns", "exec", ns, "nft", "list", "table", "inet", TableName)
	if strings.Contains(out, "shop/") {
		t.Errorf("objects of services left after every service went:\n%s", out)
	}
	for range 2 { // twice: deleting a missing table is fine
		if err := Cleanup(context.Background(), nft); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
	}
	if out := sh(t, "ip", "netns", "exec", ns, "nft", "list", "tables"); strings.Contains(out, TableName) {
		t.Errorf("table left after Cleanup: %s", out)
	}
}

// TestKernelRun runs the whole proxy — informers, sync loop, real nft —
// against a real API server, and checks traffic as services change.
func TestKernelRun(t *testing.T) {
	requireRoot(t)
	k := newKernelNet(t)
	nft := nftIn(t, k.node)
	client := kubernetes.NewForConfigOrDie(testserver.Start(t, testserver.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := client.CoreV1().Services("shop").Create(ctx, service("shop", "web", ""), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	es := slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:r", "10.42.0.6@node-a:r")
	if es, err = client.DiscoveryV1().EndpointSlices("shop").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(nft)
	cfg.Client = client
	cfg.NodeIPs = []string{"192.168.77.1"}
	cfg.Logger = testLogger(t)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()

	addr := svc.Spec.ClusterIP + ":80"
	waitFor(t, "the service to answer", func() error {
		_, _, err := whoami(k.client, addr)
		return err
	})

	es.Endpoints = es.Endpoints[:1]
	if _, err := client.DiscoveryV1().EndpointSlices("shop").Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	listing := func() string { return sh(t, "ip", "netns", "exec", k.node, "nft", "list", "table", "inet", TableName) }
	waitFor(t, "the removed endpoint to leave the table", func() error {
		if out := listing(); strings.Contains(out, "10.42.0.6") {
			return fmt.Errorf("10.42.0.6 still in:\n%s", out)
		}
		return nil
	})
	for range 10 {
		server, _, err := whoami(k.client, addr)
		if err != nil {
			t.Fatal(err)
		}
		if server != "10.42.0.5:8080" {
			t.Fatalf("answered by %s after its endpoint was removed", server)
		}
	}

	if err := client.CoreV1().Services("shop").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted service to leave the table", func() error {
		if out := listing(); strings.Contains(out, "shop/web") {
			return fmt.Errorf("shop/web still in:\n%s", out)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
}
