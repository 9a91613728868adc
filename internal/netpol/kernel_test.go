package netpol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/knftables"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/testserver"
)

// skipUnlessRoot skips tests that create network namespaces and load
// nftables rules.
func skipUnlessRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, a bridge and nftables rules")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// addNetns creates a network namespace deleted (with its links) when the
// test ends.
func addNetns(t *testing.T, name string) {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("deleting netns %s: %v: %s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// nftIn returns a knftables.Interface for the table in netns ns: the nft
// that knftables runs is a script running the real nft there.
func nftIn(t *testing.T, ns string) knftables.Interface {
	t.Helper()
	nftPath, err := exec.LookPath("nft")
	if err != nil {
		t.Fatal(err)
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nexec %s netns exec %s %s \"$@\"\n", ipPath, ns, nftPath)
	if err := os.WriteFile(filepath.Join(dir, "nft"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	nft, err := knftables.New(knftables.InetFamily, TableName)
	if err != nil {
		t.Fatalf("knftables.New in netns %s: %v", ns, err)
	}
	return nft
}

// inNetns runs fn on an OS thread switched into netns ns. The thread is
// never unlocked, so it ends with the goroutine instead of going back to
// the scheduler in the wrong namespace. Sockets fn opens stay in ns.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering netns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// listen serves TCP on addr in netns ns until the test ends, accepting
// and closing connections.
func listen(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// connects reports whether a TCP connection from netns ns to addr opens
// within a short timeout (dropped SYNs make it time out).
func connects(ns, addr string) error {
	return inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, 700*time.Millisecond)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// podNetwork builds two "pods", netns a (10.99.0.2) and b (10.99.0.3),
// on a bridge in a third netns br, as the node's CNI bridge would, with
// br_netfilter on in br (what Run's ensureBridgeNetfilter does on the
// host). b listens on 8080 and 9090, a on 8080. Everything goes when the
// test ends.
func podNetwork(t *testing.T, tag string) (br, a, b string) {
	t.Helper()
	suffix := fmt.Sprintf("%s-%d", tag, os.Getpid()%100000)
	br, a, b = "np-br-"+suffix, "np-a-"+suffix, "np-b-"+suffix
	for _, ns := range []string{br, a, b} {
		addNetns(t, ns)
	}
	run(t, "ip", "-n", br, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", br, "link", "set", "br0", "up")
	for _, p := range []struct{ ns, veth, ip string }{{a, "veth-a", "10.99.0.2/24"}, {b, "veth-b", "10.99.0.3/24"}} {
		run(t, "ip", "-n", br, "link", "add", p.veth, "type", "veth", "peer", "name", "eth0", "netns", p.ns)
		run(t, "ip", "-n", br, "link", "set", p.veth, "master", "br0", "up")
		run(t, "ip", "-n", p.ns, "addr", "add", p.ip, "dev", "eth0")
		run(t, "ip", "-n", p.ns, "link", "set", "eth0", "up")
	}
	run(t, "ip", "netns", "exec", br, "sh", "-c", "echo 1 > "+bridgeSysctl)
	listen(t, b, "10.99.0.3:8080")
	listen(t, b, "10.99.0.3:9090")
	listen(t, a, "10.99.0.2:8080")
	return br, a, b
}

// TestKernelEnforcement writes tables for a series of policies into a
// real kernel and checks that they stop and let through real traffic
// switched by the bridge.
func TestKernelEnforcement(t *testing.T) {
	skipUnlessRoot(t)
	br, a, b := podNetwork(t, "k")
	nft := nftIn(t, br)

	pods := []*corev1.Pod{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: "shop", Labels: map[string]string{"app": "client"}},
			Spec:       corev1.PodSpec{NodeName: testNode},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.99.0.2"},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{NodeName: testNode, Containers: []corev1.Container{{
				Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
			}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.99.0.3"},
		},
	}
	namespaces := []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}}
	policy := func(name string, sel map[string]string, types []networkingv1.PolicyType, in []networkingv1.NetworkPolicyIngressRule, out []networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: sel},
				PolicyTypes: types, Ingress: in, Egress: out,
			},
		}
	}
	ingress := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egress := []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	denyAll := policy("deny-all", nil, ingress, nil, nil)
	allowClient := policy("allow-client", map[string]string{"app": "web"}, ingress, []networkingv1.NetworkPolicyIngressRule{{
		From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}},
		Ports: []networkingv1.NetworkPolicyPort{{Port: &intstr.IntOrString{Type: intstr.String, StrVal: "http"}}},
	}}, nil)
	clientNoEgress := policy("client-no-egress", map[string]string{"app": "client"}, egress, nil, nil)
	clientToWeb := policy("client-to-web", map[string]string{"app": "client"}, egress, nil, []networkingv1.NetworkPolicyEgressRule{{
		To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
		Ports: []networkingv1.NetworkPolicyPort{{Port: &intstr.IntOrString{IntVal: 8000}, EndPort: new(int32(8100))}},
	}})

	// The steps share one table, written incrementally as Run would.
	ap := &applier{nft: nft}
	steps := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		// open lists "from->addr" connections that must open; closed
		// those that must not.
		open, closed []string
	}{
		{"no policy", nil, []string{"a->10.99.0.3:8080", "a->10.99.0.3:9090", "b->10.99.0.2:8080"}, nil},
		{"deny all ingress", []*networkingv1.NetworkPolicy{denyAll}, nil, []string{"a->10.99.0.3:8080", "b->10.99.0.2:8080"}},
		{"allow client to http", []*networkingv1.NetworkPolicy{denyAll, allowClient},
			[]string{"a->10.99.0.3:8080"}, []string{"a->10.99.0.3:9090", "b->10.99.0.2:8080"}},
		{"client egress denied", []*networkingv1.NetworkPolicy{allowClient, clientNoEgress},
			[]string{"b->10.99.0.2:8080"}, []string{"a->10.99.0.3:8080"}},
		{"client egress to web 8000-8100", []*networkingv1.NetworkPolicy{allowClient, clientToWeb},
			[]string{"a->10.99.0.3:8080"}, []string{"a->10.99.0.3:9090"}},
		{"all policies gone", nil, []string{"a->10.99.0.3:9090"}, nil},
	}
	nsOf := map[string]string{"a": a, "b": b}
	for _, step := range steps {
		rs := build(snapshot{node: testNode, policies: step.policies, pods: pods, namespaces: namespaces})
		if err := ap.apply(context.Background(), rs); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		for _, c := range step.open {
			from, addr, _ := strings.Cut(c, "->")
			if err := connects(nsOf[from], addr); err != nil {
				t.Errorf("%s: %s: %v, want a connection", step.name, c, err)
			}
		}
		for _, c := range step.closed {
			from, addr, _ := strings.Cut(c, "->")
			err := connects(nsOf[from], addr)
			var ne net.Error
			if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("%s: %s: %v, want a timeout", step.name, c, err)
			}
		}
	}
}

// TestGoldenLoadsInKernel writes every golden case's table into a real
// kernel (in a netns of its own), from scratch and then incrementally from
// the previous case, so the fake's syntax is checked against nft's.
func TestGoldenLoadsInKernel(t *testing.T) {
	skipUnlessRoot(t)
	ns := fmt.Sprintf("np-golden-%d", os.Getpid()%100000)
	addNetns(t, ns)
	nft := nftIn(t, ns)
	for _, fresh := range []bool{true, false} {
		ap := &applier{nft: nft}
		for _, name := range caseNames(t) {
			if fresh {
				ap.applied = nil
			}
			if err := ap.apply(context.Background(), build(loadCase(t, name))); err != nil {
				t.Errorf("%s (fresh %v): %v", name, fresh, err)
			}
		}
	}
}

// eventually polls check until it returns nil, failing with its last error
// after a deadline.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond) // poll interval, bounded by the deadline above
	}
}

func blocked(ns, addr string) error {
	err := connects(ns, addr)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return fmt.Errorf("connection from %s to %s: %v, want a timeout", ns, addr, err)
}

// TestKernelRun runs the whole enforcer against a real API server and a
// real kernel: pods and policies created through the API reach the
// bridge's table.
func TestKernelRun(t *testing.T) {
	skipUnlessRoot(t)
	br, a, b := podNetwork(t, "r")
	nft := nftIn(t, br)
	c := testserver.Client(t, testserver.Start(t, testserver.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Client: c, NodeName: testNode, NFT: nft}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	if _, err := c.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createPod(t, c, "shop", "client", testNode, "10.99.0.2", map[string]string{"app": "client"})
	createPod(t, c, "shop", "web", testNode, "10.99.0.3", map[string]string{"app": "web"})
	eventually(t, "an open network", func() error { return connects(a, "10.99.0.3:8080") })

	denyAll := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-all", Namespace: "shop"},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	if _, err := c.NetworkingV1().NetworkPolicies("shop").Create(context.Background(), denyAll, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deny-all to block client", func() error { return blocked(a, "10.99.0.3:8080") })
	if err := blocked(b, "10.99.0.2:8080"); err != nil {
		t.Error(err)
	}

	allow := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-client", Namespace: "shop"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}},
			}},
		},
	}
	if _, err := c.NetworkingV1().NetworkPolicies("shop").Create(context.Background(), allow, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the client's label to let it through", func() error { return connects(a, "10.99.0.3:8080") })
	if err := blocked(b, "10.99.0.2:8080"); err != nil {
		t.Error(err)
	}
}
