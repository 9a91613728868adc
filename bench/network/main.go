// Command network benchmarks skiff's service networking: how fast the
// service proxy programs nftables, and how many queries the cluster DNS
// answers.
//
// It needs root and nft. It runs itself again inside a network namespace
// of its own (so the host's nftables and addresses are never touched) and
// there:
//
//  1. rebuilds the proxy's rules for N services of M endpoints from
//     scratch (proxy.FullSync into the kernel), three times;
//  2. starts `skiff server --disable-agent` (the control plane, in the same
//     namespace), creates the N services and their EndpointSlices, runs the
//     proxy against it, and then changes one EndpointSlice at a time (an
//     endpoint turning not ready and back): the programming latency is from
//     just before the update request until the proxy's transaction with
//     that service has been applied (the proxy's OnSync hook);
//  3. runs the cluster DNS server against the same API and queries
//     service names over UDP from C concurrent clients for D seconds.
//
// Usage:
//
//	./bench/network/run.sh             # builds bin/skiff, runs with defaults
//	go run ./bench/network -bin bin/skiff -services 1000 -endpoints 10
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/bench/benchserver"
	"github.com/skiff-dev/skiff/internal/dns"
	"github.com/skiff-dev/skiff/internal/proxy"
)

type options struct {
	bin                 string
	services, endpoints int
	changes             int
	dnsClients          int
	dnsDuration         time.Duration
	inner               bool
}

func main() {
	var o options
	fs := flag.NewFlagSet("network", flag.ExitOnError)
	fs.StringVar(&o.bin, "bin", "", "the skiff binary (required; run.sh builds bin/skiff)")
	fs.IntVar(&o.services, "services", 1000, "services")
	fs.IntVar(&o.endpoints, "endpoints", 10, "endpoints per service")
	fs.IntVar(&o.changes, "changes", 100, "endpoint changes timed (one at a time)")
	fs.IntVar(&o.dnsClients, "dns-clients", 16, "concurrent DNS clients")
	fs.DurationVar(&o.dnsDuration, "dns-duration", 5*time.Second, "DNS load duration")
	fs.BoolVar(&o.inner, "inner", false, "internal: running inside the benchmark's network namespace")
	_ = fs.Parse(os.Args[1:])
	if o.bin == "" {
		fmt.Fprintln(os.Stderr, "network: -bin is required (use bench/network/run.sh)")
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "network: must run as root (network namespace, nftables)")
		os.Exit(2)
	}
	if !o.inner {
		os.Exit(outer())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "network:", err)
		os.Exit(1)
	}
}

// outer creates the network namespace, runs this program again inside it
// with -inner, and removes the namespace.
func outer() int {
	ns := "skiff-bench-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "network: ip netns add: %v: %s\n", err, out)
		return 1
	}
	defer exec.Command("ip", "netns", "delete", ns).Run()
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "network: bringing lo up: %v: %s\n", err, out)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "network:", err)
		return 1
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, self, "-inner"}, os.Args[1:]...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return 1
	}
	return 0
}

func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func run(ctx context.Context, o options) error {
	fmt.Println("machine:", benchserver.Machine())
	fmt.Printf("%d services × %d endpoints\n\n", o.services, o.endpoints)
	svcs, eps := proxy.SyntheticServices(o.services, o.endpoints)
	pcfg := proxy.Config{NodeName: "node-a", NodeIPs: []string{"192.0.2.10"}, ClusterCIDR: "10.42.0.0/16", PodCIDR: "10.42.0.0/24"}

	// 1. From scratch.
	var rebuilds []time.Duration
	var ops int
	for range 3 {
		res, err := proxy.FullSync(ctx, pcfg, svcs, eps)
		if err != nil {
			return fmt.Errorf("full sync: %w", err)
		}
		rebuilds = append(rebuilds, res.Duration)
		ops = res.Operations
	}
	rebuild := percentile(rebuilds, 0.5)
	fmt.Printf("rules from scratch (median of 3): %v (%d nft operations), target < 1s: %s\n",
		benchserver.Round(rebuild), ops, benchserver.Verdict(rebuild < time.Second))

	// 2. Programming latency through the API.
	tmp, err := os.MkdirTemp("", "skiff-bench-network-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	srv, err := benchserver.Start(ctx, o.bin, filepath.Join(tmp, "server"), "--disable-scheduler", "--disable-controller-manager")
	if err != nil {
		return err
	}
	defer srv.Stop()
	client, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := createAll(ctx, client, svcs, eps); err != nil {
		return err
	}

	var mu sync.Mutex
	synced := map[string]time.Time{}
	notify := make(chan struct{}, 1)
	pcfg.Client = client
	pcfg.Logger = slog.New(slog.DiscardHandler)
	pcfg.OnSync = func(r proxy.SyncResult) {
		now := time.Now()
		mu.Lock()
		for _, k := range r.Services {
			synced[k] = now
		}
		mu.Unlock()
		select {
		case notify <- struct{}{}:
		default:
		}
	}
	pctx, stopProxy := context.WithCancel(ctx)
	proxyDone := make(chan error, 1)
	go func() { proxyDone <- proxy.Run(pctx, pcfg) }()
	defer func() { stopProxy(); <-proxyDone }()
	waitFor := func(pred func() bool, timeout time.Duration) error {
		deadline := time.After(timeout)
		for {
			mu.Lock()
			ok := pred()
			mu.Unlock()
			if ok {
				return nil
			}
			select {
			case <-notify:
			case err := <-proxyDone:
				return fmt.Errorf("proxy stopped: %v", err)
			case <-deadline:
				return fmt.Errorf("timed out")
			}
		}
	}
	if err := waitFor(func() bool { return len(synced) >= o.services }, 2*time.Minute); err != nil {
		return fmt.Errorf("initial sync of %d services: %w", o.services, err)
	}
	var lat []time.Duration
	for i := range o.changes {
		es := eps[rand.IntN(len(eps))]
		key := es.Namespace + "/" + es.Labels[discoveryv1.LabelServiceName]
		cur, err := client.DiscoveryV1().EndpointSlices(es.Namespace).Get(ctx, es.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ready := cur.Endpoints[0].Conditions.Ready == nil || !*cur.Endpoints[0].Conditions.Ready
		cur.Endpoints[0].Conditions.Ready = &ready
		t0 := time.Now()
		if _, err := client.DiscoveryV1().EndpointSlices(es.Namespace).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return err
		}
		if err := waitFor(func() bool { return synced[key].After(t0) }, 30*time.Second); err != nil {
			return fmt.Errorf("change %d of %s: %w", i, key, err)
		}
		mu.Lock()
		lat = append(lat, synced[key].Sub(t0))
		mu.Unlock()
	}
	p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
	fmt.Printf("programming latency (%d changes, endpoint change → rules applied): p50 %v, p99 %v, target p99 < 1s: %s\n",
		o.changes, benchserver.Round(p50), benchserver.Round(p99), benchserver.Verdict(p99 < time.Second))

	// 3. Cluster DNS.
	ds, err := dns.New(dns.Config{Client: client, Listen: "127.0.0.1:0", Upstreams: []string{"127.0.0.1:9"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	dctx, stopDNS := context.WithCancel(ctx)
	dnsDone := make(chan error, 1)
	go func() { dnsDone <- ds.Run(dctx) }()
	defer func() { stopDNS(); <-dnsDone }()
	select {
	case <-ds.Ready():
	case err := <-dnsDone:
		return fmt.Errorf("dns: %v", err)
	}
	addr := ds.Addr().String()
	var total, failed atomic.Int64
	var lmu sync.Mutex
	var dnsLat []time.Duration
	var wg sync.WaitGroup
	end := time.Now().Add(o.dnsDuration)
	for range o.dnsClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &mdns.Client{Net: "udp", Timeout: 2 * time.Second}
			conn, err := c.Dial(addr)
			if err != nil {
				failed.Add(1)
				return
			}
			defer conn.Close()
			var mine []time.Duration
			for time.Now().Before(end) {
				m := new(mdns.Msg)
				m.SetQuestion(fmt.Sprintf("svc-%d.bench.svc.cluster.local.", rand.IntN(o.services)), mdns.TypeA)
				t0 := time.Now()
				r, _, err := c.ExchangeWithConn(m, conn)
				d := time.Since(t0)
				total.Add(1)
				if err != nil || r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
					failed.Add(1)
					continue
				}
				mine = append(mine, d)
			}
			lmu.Lock()
			dnsLat = append(dnsLat, mine...)
			lmu.Unlock()
		}()
	}
	wg.Wait()
	qps := float64(len(dnsLat)) / o.dnsDuration.Seconds()
	fmt.Printf("cluster DNS (%d UDP clients, %v): %.0f answers/s, p50 %v, p99 %v, %d of %d queries failed\n",
		o.dnsClients, o.dnsDuration, qps, benchserver.Round(percentile(dnsLat, 0.5)), benchserver.Round(percentile(dnsLat, 0.99)), failed.Load(), total.Load())
	return nil
}

// createAll creates the services (cluster IPs allocated by the API) and
// their slices with 16 concurrent clients.
func createAll(ctx context.Context, client kubernetes.Interface, svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) error {
	work := make(chan int)
	errc := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				svc := svcs[i].DeepCopy()
				svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
				if _, err := client.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
					errc <- err
					return
				}
				if _, err := client.DiscoveryV1().EndpointSlices(eps[i].Namespace).Create(ctx, eps[i], metav1.CreateOptions{}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for i := range svcs {
		select {
		case work <- i:
		case err := <-errc:
			close(work)
			wg.Wait()
			return err
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}
