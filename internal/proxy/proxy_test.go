package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/knftables"

	"github.com/skiff-dev/skiff/internal/testserver"
)

// waitFor polls cond until it returns nil or the deadline passes, then
// fails with its last error.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		<-tick.C
	}
}

// testLogger sends logs to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// dumpHas returns an error unless every line is in fake's dump and none
// of absent is a substring of it.
func dumpHas(fake *knftables.Fake, lines []string, absent ...string) error {
	d := fake.Dump()
	for _, l := range lines {
		if !strings.Contains(d, l+"\n") {
			return fmt.Errorf("no line %q in:\n%s", l, d)
		}
	}
	for _, a := range absent {
		if strings.Contains(d, a) {
			return fmt.Errorf("%q still in the table", a)
		}
	}
	return nil
}

// TestRunAgainstAPIServer runs the proxy against a real API server with a
// fake nftables and follows services and slices through their changes.
func TestRunAgainstAPIServer(t *testing.T) {
	rc := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(rc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}
	node, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}}
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	web, err := client.CoreV1().Services("default").Create(ctx, service("default", "web", ""), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ws := slice("default", "web", "web-1", 8080, "10.42.0.5@node-a:r", "10.42.1.7@node-b:r")
	if ws, err = client.DiscoveryV1().EndpointSlices("default").Create(ctx, ws, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	fake := knftables.NewFake(knftables.InetFamily, TableName)
	var mu sync.Mutex
	var syncs []SyncResult
	cfg := testConfig(fake)
	cfg.Client = client
	cfg.Logger = testLogger(t)
	cfg.MinSyncInterval = 10 * time.Millisecond
	cfg.OnSync = func(r SyncResult) {
		mu.Lock()
		syncs = append(syncs, r)
		mu.Unlock()
	}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()

	cip := web.Spec.ClusterIP
	waitFor(t, "the cluster IP rules", func() error {
		return dumpHas(fake, []string{
			"add element inet skiff-proxy service-ips { " + cip + " . tcp . 80 : goto service-default/web/tcp/http }",
			"add rule inet skiff-proxy cluster-default/web/tcp/http meta l4proto tcp dnat ip to numgen random mod 2 map @dnat-cluster-default/web/tcp/http",
			"add element inet skiff-proxy dnat-cluster-default/web/tcp/http { 0 : 10.42.0.5 . 8080, 1 : 10.42.1.7 . 8080 }",
		})
	})
	mu.Lock()
	if len(syncs) == 0 || !syncs[0].Full {
		t.Errorf("first sync %+v, want a full one", syncs)
	}
	mu.Unlock()

	// Endpoints stop being ready: connections are rejected.
	ws.Endpoints[0].Conditions.Ready = new(bool)
	ws.Endpoints[0].Conditions.Serving = new(bool)
	ws.Endpoints[1].Conditions = ws.Endpoints[0].Conditions
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, ws, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rejection of the service without endpoints", func() error {
		return dumpHas(fake, []string{
			"add element inet skiff-proxy no-endpoint-services { " + cip + " . tcp . 80 : goto reject-chain }",
		}, "chain inet skiff-proxy cluster-default/web/", "dnat-cluster-default/web/")
	})

	// A LoadBalancer gets the node's address as ingress and answers on it.
	lb := service("default", "lb", "", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	})
	lb, err = client.CoreV1().Services("default").Create(ctx, lb, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx,
		slice("default", "lb", "lb-1", 8080, "10.42.0.6@node-a:r"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the load balancer status", func() error {
		got, err := client.CoreV1().Services("default").Get(ctx, "lb", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if ing := got.Status.LoadBalancer.Ingress; len(ing) != 1 || ing[0].IP != "192.168.1.10" {
			return fmt.Errorf("ingress %+v", ing)
		}
		return nil
	})
	np := itoa(int64(lb.Spec.Ports[0].NodePort))
	waitFor(t, "the load balancer rules", func() error {
		return dumpHas(fake, []string{
			"add element inet skiff-proxy service-ips { 192.168.1.10 . tcp . 80 : goto external-default/lb/tcp/http }",
			"add element inet skiff-proxy service-nodeports { tcp . " + np + " : goto external-default/lb/tcp/http }",
			"add rule inet skiff-proxy local-default/lb/tcp/http meta l4proto tcp dnat ip to 10.42.0.6:8080",
		})
	})

	// Deleting the services removes everything they had.
	for _, name := range []string{"web", "lb"} {
		if err := client.CoreV1().Services("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the removal of the services' rules", func() error {
		return dumpHas(fake, nil, "default/web", "default/lb")
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestRunRetriesFailedTransactions checks that a failing nftables is
// retried with a full rebuild until it works.
func TestRunRetriesFailedTransactions(t *testing.T) {
	rc := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(rc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fake := &failingNFT{Fake: knftables.NewFake(knftables.InetFamily, TableName), failures: 2}
	cfg := testConfig(fake)
	cfg.Client = client
	cfg.Logger = testLogger(t)
	synced := make(chan SyncResult, 10)
	cfg.OnSync = func(r SyncResult) { synced <- r }
	go func() { _ = Run(ctx, cfg) }()
	select {
	case r := <-synced:
		if !r.Full {
			t.Errorf("first successful sync %+v, want a full one", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no successful sync")
	}
	// The default/kubernetes service has no EndpointSlice in this server.
	if err := dumpHas(fake.Fake, []string{"add chain inet skiff-proxy services"}); err != nil {
		t.Error(err)
	}
}

// failingNFT fails its first transactions.
type failingNFT struct {
	*knftables.Fake
	mu       sync.Mutex
	failures int
}

func (f *failingNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		return errors.New("injected failure")
	}
	return f.Fake.Run(ctx, tx)
}

var _ knftables.Interface = (*failingNFT)(nil)

// TestRunCoalesces checks that changes arriving within MinSyncInterval
// are applied together.
func TestRunCoalesces(t *testing.T) {
	client := kubernetes.NewForConfigOrDie(testserver.Start(t, testserver.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fake := knftables.NewFake(knftables.InetFamily, TableName)
	synced := make(chan SyncResult, 100)
	cfg := testConfig(fake)
	cfg.Client = client
	cfg.MinSyncInterval = 2 * time.Second
	cfg.OnSync = func(r SyncResult) { synced <- r }
	go func() { _ = Run(ctx, cfg) }()
	select {
	case <-synced:
	case <-time.After(20 * time.Second):
		t.Fatal("no first sync")
	}
	const n = 10
	for i := range n {
		if _, err := client.CoreV1().Services("default").Create(ctx, service("default", fmt.Sprintf("s%d", i), ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	syncs := 0
	timeout := time.After(20 * time.Second)
	for len(seen) < n {
		select {
		case r := <-synced:
			syncs++
			for _, k := range r.Services {
				seen[k] = true
			}
		case <-timeout:
			t.Fatalf("after %d syncs only %d services were written: %v", syncs, len(seen), seen)
		}
	}
	if syncs > 3 {
		t.Errorf("%d services created together took %d syncs, want them coalesced into at most 3", n, syncs)
	}
}
