package netpol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/skiff-dev/skiff/internal/cachetrim"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/knftables"
)

// Config configures Run.
type Config struct {
	// Client reads NetworkPolicies, Pods and Namespaces. Required.
	Client kubernetes.Interface
	// NodeName is the node whose pods are enforced. Required.
	NodeName string
	// NFT writes the table. nil means the host's nftables
	// (knftables.New(knftables.InetFamily, TableName)), after making sure
	// that bridged traffic reaches the inet hooks (br_netfilter); a
	// non-nil NFT is used as it is, with no host set-up.
	NFT knftables.Interface
	// Logger receives Info and Debug records; nil discards them.
	Logger *slog.Logger
}

const (
	// coalesce is how long a sync waits after the first change it
	// serves, so that a burst of changes costs one transaction.
	coalesce = 100 * time.Millisecond
	// retryMin and retryMax bound the wait before retrying a failed sync.
	retryMin = time.Second
	retryMax = 30 * time.Second
)

// Run enforces the NetworkPolicies for the pods of cfg.NodeName until ctx
// ends, then returns nil; it returns an error only when it cannot start
// (bad config, no nft, no br_netfilter). The table is rebuilt from scratch
// on start and after a failed transaction, and left in place when Run
// returns, so that pods stay isolated while the agent restarts.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Client == nil || cfg.NodeName == "" {
		return errors.New("netpol: Client and NodeName are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nft := cfg.NFT
	if nft == nil {
		if err := ensureBridgeNetfilter(ctx); err != nil {
			return err
		}
		var err error
		if nft, err = knftables.New(knftables.InetFamily, TableName); err != nil {
			return fmt.Errorf("netpol: opening nftables: %w", err)
		}
	}

	factory := informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0, cachetrim.Option())
	policies := factory.Networking().V1().NetworkPolicies()
	pods := factory.Core().V1().Pods()
	namespaces := factory.Core().V1().Namespaces()
	if err := pods.Informer().SetTransform(trimPod); err != nil {
		return fmt.Errorf("netpol: setting pod transform: %w", err)
	}
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	for _, inf := range []cache.SharedIndexInformer{policies.Informer(), pods.Informer(), namespaces.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("netpol: adding event handler: %w", err)
		}
	}
	factory.StartWithContext(ctx)
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("netpol: syncing %v cache", typ)
		}
	}

	a := &applier{nft: nft}
	sync := func() error {
		var s snapshot
		var err error
		s.node = cfg.NodeName
		if s.policies, err = policies.Lister().List(labels.Everything()); err != nil {
			return fmt.Errorf("listing network policies: %w", err)
		}
		if s.pods, err = pods.Lister().List(labels.Everything()); err != nil {
			return fmt.Errorf("listing pods: %w", err)
		}
		if s.namespaces, err = namespaces.Lister().List(labels.Everything()); err != nil {
			return fmt.Errorf("listing namespaces: %w", err)
		}
		start := time.Now()
		rs := build(s)
		if err := a.apply(ctx, rs); err != nil {
			return err
		}
		log.Debug("netpol synced", "policies", len(s.policies), "pods", len(s.pods), "took", time.Since(start))
		return nil
	}

	log.Info("netpol started", "node", cfg.NodeName, "table", TableName)
	retry := retryMin
	var timer <-chan time.Time
	notify() // the first sync, from scratch
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			if timer == nil {
				timer = time.After(coalesce)
			}
		case <-timer:
			timer = nil
			err := sync()
			switch {
			case err == nil:
				retry = retryMin
			case ctx.Err() != nil:
				return nil
			default:
				log.Info("netpol sync failed", "err", err, "retryIn", retry)
				timer = time.After(retry)
				retry = min(2*retry, retryMax)
			}
		}
	}
}

// trimPod keeps what policies look at, to keep the cache small: name,
// namespace, labels, node, host network, named container ports, phase and
// addresses.
func trimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID,
			ResourceVersion: p.ResourceVersion, Labels: p.Labels,
		},
		Spec: corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork},
		Status: corev1.PodStatus{
			Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs,
		},
	}
	trim := func(cs []corev1.Container) []corev1.Container {
		var out []corev1.Container
		for _, c := range cs {
			var ports []corev1.ContainerPort
			for _, cp := range c.Ports {
				if cp.Name != "" {
					ports = append(ports, corev1.ContainerPort{Name: cp.Name, Protocol: cp.Protocol, ContainerPort: cp.ContainerPort})
				}
			}
			if len(ports) > 0 {
				out = append(out, corev1.Container{Name: c.Name, Ports: ports})
			}
		}
		return out
	}
	out.Spec.InitContainers = trim(p.Spec.InitContainers)
	out.Spec.Containers = trim(p.Spec.Containers)
	return out, nil
}

// bridgeSysctl makes bridged IPv4 traffic pass the IPv4 (and inet) hooks.
const bridgeSysctl = "/proc/sys/net/bridge/bridge-nf-call-iptables"

// ensureBridgeNetfilter makes sure that traffic between two pods on the
// node's bridge, which is switched rather than routed, reaches the table's
// forward hook: it loads br_netfilter if its sysctl is missing and turns
// the sysctl on.
func ensureBridgeNetfilter(ctx context.Context) error {
	if _, err := os.Stat(bridgeSysctl); errors.Is(err, os.ErrNotExist) {
		if out, err := exec.CommandContext(ctx, "modprobe", "br_netfilter").CombinedOutput(); err != nil {
			return fmt.Errorf("netpol: loading br_netfilter: %w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	b, err := os.ReadFile(bridgeSysctl)
	if err != nil {
		return fmt.Errorf("netpol: reading %s: %w", bridgeSysctl, err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(bridgeSysctl, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("netpol: enabling %s: %w", bridgeSysctl, err)
	}
	return nil
}
