package netpol

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/knftables"

	"github.com/skiff-dev/skiff/internal/testserver"
)

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// waitFor polls until the fake's dump satisfies every check, failing with
// the last dump after a deadline.
func waitFor(t *testing.T, fake *knftables.Fake, what string, checks ...func(dump string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		dump := fake.Dump()
		ok := true
		for _, c := range checks {
			ok = ok && c(dump)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; table:\n%s", what, dump)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, bounded by the deadline above
	}
}

func has(line string) func(string) bool {
	return func(dump string) bool { return strings.Contains(dump, line+"\n") }
}

func lacks(line string) func(string) bool {
	return func(dump string) bool { return !strings.Contains(dump, line+"\n") }
}

func createPod(t *testing.T, c kubernetes.Interface, ns, name, node, ip string, labels map[string]string, ports ...corev1.ContainerPort) {
	t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "c", Image: "busybox", Ports: ports}},
		},
	}
	p, err := c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	if _, err := c.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("setting pod %s/%s status: %v", ns, name, err)
	}
}

// TestRunAgainstAPIServer runs the enforcer against a real API server
// with a fake nftables and follows policies, pods and namespaces.
func TestRunAgainstAPIServer(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	c := testserver.Client(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	fake := knftables.NewFake(knftables.InetFamily, TableName)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Client: c, NodeName: "node-a", NFT: fake,
			Logger: slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "tools"}},
	} {
		if _, err := c.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	createPod(t, c, "shop", "web-1", "node-a", "10.42.0.10", map[string]string{"app": "web"},
		corev1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP})
	createPod(t, c, "shop", "web-2", "node-b", "10.42.1.10", map[string]string{"app": "web"})
	createPod(t, c, "shop", "client", "node-b", "10.42.1.11", map[string]string{"app": "client"})
	createPod(t, c, "tools", "debug", "node-a", "10.42.0.20", map[string]string{"app": "client"})
	waitFor(t, fake, "the base table", has("add rule inet skiff-netpol pod-ingress ip daddr @ingress-isolated drop"))

	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}},
					{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "ops"}}},
				},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &intstr.IntOrString{Type: intstr.String, StrVal: "http"}}},
			}},
		},
	}
	if _, err := c.NetworkingV1().NetworkPolicies("shop").Create(context.Background(), np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fake, "the policy",
		has("add rule inet skiff-netpol pod-ingress ip daddr @sel/shop/web jump in/shop/web"),
		has("add rule inet skiff-netpol in/shop/web ip saddr @in/shop/web/0/peers ip daddr . meta l4proto . th dport @in/shop/web/0/ports accept"),
		has("add element inet skiff-netpol sel/shop/web { 10.42.0.10 }"),
		lacks("add element inet skiff-netpol sel/shop/web { 10.42.1.10 }"),
		has("add element inet skiff-netpol in/shop/web/0/ports { 10.42.0.10 . tcp . 8080 }"),
		has("add element inet skiff-netpol in/shop/web/0/peers { 10.42.1.11 }"),
		lacks("add element inet skiff-netpol in/shop/web/0/peers { 10.42.0.20 }"))

	// Labelling tools brings its pods in through the namespace selector.
	tools, err := c.CoreV1().Namespaces().Get(context.Background(), "tools", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tools = tools.DeepCopy()
	tools.Labels = map[string]string{"team": "ops"}
	if _, err := c.CoreV1().Namespaces().Update(context.Background(), tools, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fake, "the namespace's pods as peers", has("add element inet skiff-netpol in/shop/web/0/peers { 10.42.0.20 }"))

	// A new local web pod is selected; a deleted client leaves the peers.
	createPod(t, c, "shop", "web-3", "node-a", "10.42.0.30", map[string]string{"app": "web"},
		corev1.ContainerPort{Name: "http", ContainerPort: 9000, Protocol: corev1.ProtocolTCP})
	if err := c.CoreV1().Pods("shop").Delete(context.Background(), "client", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fake, "pod changes",
		has("add element inet skiff-netpol ingress-isolated { 10.42.0.30 }"),
		has("add element inet skiff-netpol in/shop/web/0/ports { 10.42.0.30 . tcp . 9000 }"),
		lacks("add element inet skiff-netpol in/shop/web/0/peers { 10.42.1.11 }"))

	// Deleting the policy leaves nobody isolated.
	if err := c.NetworkingV1().NetworkPolicies("shop").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fake, "the policy's removal",
		lacks("add chain inet skiff-netpol in/shop/web"),
		lacks("add set inet skiff-netpol sel/shop/web { type ipv4_addr ; }"),
		lacks("add element inet skiff-netpol ingress-isolated { 10.42.0.10 }"),
		lacks("add element inet skiff-netpol ingress-isolated { 10.42.0.30 }"))
}

func TestRunConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no client", Config{NodeName: "n"}},
		{"no node", Config{Client: kubernetes.New(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Run(context.Background(), tt.cfg); err == nil {
				t.Errorf("Run(%+v) = nil, want an error", tt.cfg)
			}
		})
	}
}
