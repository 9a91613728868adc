package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"github.com/skiff-dev/skiff/internal/cachetrim"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// RouteProtocol is the routing protocol number of the routes RunRoutes
// adds ("ip route show proto 201"); it only ever changes or deletes
// routes of this protocol in the main table.
const RouteProtocol = 201

// routesResync is how often RunRoutes re-reads the routing table even
// without Node changes (someone may have deleted a route, an interface
// may have come up).
const routesResync = 30 * time.Second

// RunRoutes keeps host-gateway routes to the other nodes' pod CIDRs until
// ctx ends: for every Node but nodeName with an IPv4 pod CIDR and an IPv4
// InternalIP it adds or replaces "podCIDR via InternalIP proto
// RouteProtocol", and it deletes the routes of that protocol no Node
// wants any more (deleted nodes). A gateway that is not on a connected
// network is logged and retried. It runs "ip" (iproute2); it returns nil
// when ctx ends, an error only when it cannot start.
func RunRoutes(ctx context.Context, client kubernetes.Interface, nodeName string, logger *slog.Logger) error {
	return runRoutes(ctx, routesConfig{client: client, nodeName: nodeName, log: logger, ip: []string{"ip"}, resync: routesResync})
}

type routesConfig struct {
	client   kubernetes.Interface
	nodeName string
	log      *slog.Logger
	ip       []string // the ip command, e.g. {"ip", "-n", "ns"} in tests
	resync   time.Duration
}

func runRoutes(ctx context.Context, cfg routesConfig) error {
	if cfg.client == nil || cfg.nodeName == "" {
		return errors.New("proxy routes: no API client or node name")
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	if _, err := exec.LookPath(cfg.ip[0]); err != nil {
		return fmt.Errorf("proxy routes: %w", err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cfg.client, 0, cachetrim.Option())
	defer factory.Shutdown()
	kick := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	nodes := factory.Core().V1().Nodes()
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    poke,
		UpdateFunc: func(_, obj any) { poke(obj) },
		DeleteFunc: poke,
	}); err != nil {
		return fmt.Errorf("proxy routes: watching nodes: %w", err)
	}
	factory.StartWithContext(ctx)
	for _, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil // ctx ended
		}
	}
	ticker := time.NewTicker(cfg.resync)
	defer ticker.Stop()
	var last map[string]string // what the last sync achieved or tried; nil: sync
	lastErr := ""
	for {
		list, err := nodes.Lister().List(labels.Everything())
		synced := false
		if err == nil {
			want := desiredRoutes(list, cfg.nodeName)
			// Node heartbeats poke us often; without a change only the
			// resync ticker re-reads the kernel (and retries failures).
			if last == nil || !equalRoutes(want, last) {
				err = syncRoutes(ctx, cfg, want)
				last, synced = want, true
			}
		}
		switch {
		case err == nil && !synced:
		case err == nil:
			lastErr = ""
		case ctx.Err() != nil:
		case err.Error() != lastErr:
			lastErr = err.Error()
			cfg.log.Info("syncing pod network routes failed", "err", err)
		default:
			cfg.log.Debug("syncing pod network routes failed again", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-ticker.C:
			last = nil
		}
	}
}

// desiredRoutes maps the IPv4 pod CIDRs of every node but self to the
// node's IPv4 InternalIP. It is pure.
func desiredRoutes(nodes []*corev1.Node, self string) map[string]string {
	want := map[string]string{}
	for _, n := range nodes {
		if n.Name == self {
			continue
		}
		gw := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && isIPv4(a.Address) {
				gw = a.Address
				break
			}
		}
		if gw == "" {
			continue
		}
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			p, err := netip.ParsePrefix(c)
			if err != nil || !p.Addr().Is4() {
				continue
			}
			want[p.Masked().String()] = gw
		}
	}
	return want
}

func equalRoutes(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// syncRoutes makes the routes of RouteProtocol in the main table equal to
// want (destination -> gateway). It tries every route and returns the
// errors joined.
func syncRoutes(ctx context.Context, cfg routesConfig, want map[string]string) error {
	have, err := listRoutes(ctx, cfg.ip)
	if err != nil {
		return err
	}
	proto := itoa(RouteProtocol)
	var errs []error
	for _, dst := range sortedKeys(want) {
		if have[dst] == want[dst] {
			continue
		}
		if _, err := runIP(ctx, cfg.ip, "-4", "route", "replace", dst, "via", want[dst], "proto", proto); err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.log.Info("pod network route set", "dst", dst, "via", want[dst])
	}
	for _, dst := range sortedKeys(have) {
		if _, ok := want[dst]; ok {
			continue
		}
		if _, err := runIP(ctx, cfg.ip, "-4", "route", "del", dst, "proto", proto); err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.log.Info("pod network route removed", "dst", dst)
	}
	return errors.Join(errs...)
}

// listRoutes returns our routes in the main table: destination -> gateway.
func listRoutes(ctx context.Context, ip []string) (map[string]string, error) {
	out, err := runIP(ctx, ip, "-4", "-j", "route", "show", "table", "main", "proto", itoa(RouteProtocol))
	if err != nil {
		return nil, err
	}
	var routes []struct {
		Dst     string `json:"dst"`
		Gateway string `json:"gateway"`
	}
	if s := bytes.TrimSpace(out); len(s) > 0 {
		if err := json.Unmarshal(s, &routes); err != nil {
			return nil, fmt.Errorf("parsing ip route output: %w", err)
		}
	}
	have := map[string]string{}
	for _, r := range routes {
		dst := r.Dst
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		have[dst] = r.Gateway
	}
	return have, nil
}

func runIP(ctx context.Context, ip []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, ip[0], append(append([]string(nil), ip[1:]...), args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("running %s %s: %w: %s", strings.Join(ip, " "), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
