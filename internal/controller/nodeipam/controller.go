package nodeipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// Name is the controller's name in logs and the work queue.
const Name = "node-ipam-controller"

// Defaults, as k3s's.
const (
	DefaultClusterCIDR  = "10.42.0.0/16"
	DefaultNodeMaskSize = 24
)

// ReasonCIDRNotAvailable is the event recorded on a node that cannot get a
// pod CIDR because the cluster CIDR is used up (upstream's reason).
const ReasonCIDRNotAvailable = "CIDRNotAvailable"

// Controller allocates pod CIDRs to nodes. Set its exported fields after
// New and before Run; Run it once.
type Controller struct {
	// ClusterCIDR is the range pod CIDRs are cut from.
	ClusterCIDR netip.Prefix
	// NodeMaskSize is the prefix length of each node's pod CIDR; it must
	// be longer than ClusterCIDR's by 1 to 16 bits.
	NodeMaskSize int

	client   kubernetes.Interface
	nodes    corelisters.NodeLister
	recorder record.EventRecorder
	log      *slog.Logger
	synced   cache.InformerSynced
	loop     *reconcile.Loop

	mu sync.Mutex
	// set holds the allocations; nil until Run has rebuilt it. Guarded by
	// mu.
	set *cidrSet
}

// New returns a node IPAM controller with the default cluster CIDR and
// node mask and registers the node informer on deps.Informers; start the
// factory after calling it, then call Run.
func New(deps controller.Deps) *Controller {
	log := deps.Log()
	recorder := deps.Events()
	inf := deps.Informers.Core().V1().Nodes()
	c := &Controller{
		ClusterCIDR:  netip.MustParsePrefix(DefaultClusterCIDR),
		NodeMaskSize: DefaultNodeMaskSize,
		client:       deps.Client,
		nodes:        inf.Lister(),
		recorder:     recorder,
		log:          log,
		synced:       inf.Informer().HasSynced,
	}
	c.loop = reconcile.New(Name, c.sync, log)
	if _, err := inf.Informer().AddEventHandler(c.loop.Handler()); err != nil {
		log.Info("cannot add event handler", "err", err)
	}
	return c
}

// Run validates the configuration, waits for the node cache, rebuilds the
// allocations from the nodes' pod CIDRs, then runs workers workers until
// ctx is done. It returns nil on cancellation and an error for a bad
// configuration.
func (c *Controller) Run(ctx context.Context, workers int) error {
	set, err := newCIDRSet(c.ClusterCIDR, c.NodeMaskSize)
	if err != nil {
		return err
	}
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("nodeipam: node cache did not sync")
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	for _, node := range nodes {
		p, ok := podCIDR(node)
		if !ok {
			continue
		}
		if err := set.occupy(node.Name, p); err != nil {
			c.log.Info("ignoring pod CIDR", "node", node.Name, "podCIDR", p, "err", err)
		}
	}
	c.mu.Lock()
	c.set = set
	c.mu.Unlock()
	c.log.Info("allocations rebuilt", "clusterCIDR", set.cluster, "nodeMaskSize", set.mask, "allocated", len(set.byNode))
	return c.loop.Run(ctx, workers, c.synced)
}

// podCIDR returns the node's first pod CIDR, if it has a valid one.
func podCIDR(node *corev1.Node) (netip.Prefix, bool) {
	s := node.Spec.PodCIDR
	if len(node.Spec.PodCIDRs) > 0 {
		s = node.Spec.PodCIDRs[0]
	}
	if s == "" {
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	return p, err == nil
}

// sync gives the node named name a pod CIDR if it has none, records the one
// it has, or releases the one it had when it is gone. Idempotent.
func (c *Controller) sync(ctx context.Context, name string) (time.Duration, error) {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		released := c.set.release(name)
		c.mu.Unlock()
		if released {
			c.log.Info("released pod CIDR", "node", name)
			c.requeueWaiting()
		}
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting node %s: %w", name, err)
	}
	if p, ok := podCIDR(node); ok {
		c.mu.Lock()
		defer c.mu.Unlock()
		if held, ok := c.set.of(name); ok && held == p {
			return 0, nil
		}
		if err := c.set.occupy(name, p); err != nil {
			c.log.Info("ignoring pod CIDR", "node", name, "podCIDR", p, "err", err)
		}
		return 0, nil
	}

	c.mu.Lock()
	p, err := c.set.allocate(name)
	c.mu.Unlock()
	if errors.Is(err, ErrFull) {
		c.recorder.Eventf(node, corev1.EventTypeNormal, ReasonCIDRNotAvailable, "Node %s status is now: %s", name, ReasonCIDRNotAvailable)
		c.log.Info("no pod CIDR left", "node", name, "clusterCIDR", c.ClusterCIDR)
		return 0, nil // a release re-queues the waiting nodes
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{
		"podCIDR": p.String(), "podCIDRs": []string{p.String()},
	}})
	if err != nil {
		return 0, fmt.Errorf("encoding pod CIDR patch: %w", err)
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil // its deletion will release p
	}
	if err != nil {
		// Keep p for the node: the retry patches the same subnet, and
		// if the node turns out to have another one, sync adopts it.
		return 0, fmt.Errorf("setting pod CIDR %v of node %s: %w", p, name, err)
	}
	c.log.Info("allocated pod CIDR", "node", name, "podCIDR", p)
	return 0, nil
}

// requeueWaiting enqueues the nodes that have no pod CIDR yet.
func (c *Controller) requeueWaiting() {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		c.log.Info("cannot list nodes", "err", err)
		return
	}
	for _, n := range nodes {
		if _, ok := podCIDR(n); !ok {
			c.loop.Enqueue(n.Name)
		}
	}
}
