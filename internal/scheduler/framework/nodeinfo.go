package framework

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/hostports"
)

// NodeInfo is a node with the aggregates of the pods on it (bound and
// assumed). The cache owns and mutates its NodeInfos under its lock;
// snapshots hold clones that nobody mutates.
type NodeInfo struct {
	node *v1.Node
	// unschedulable and taints repeat the node's spec.unschedulable and
	// spec.taints here, beside the fields the resource filter reads: the
	// first filters then need not touch the Node object itself, which for
	// most of 5,000 nodes is not in the CPU's cache (reading
	// spec.unschedulable was 7% of the server's CPU while it scheduled).
	unschedulable bool
	taints        []v1.Taint
	// Pods are the pods on the node, in no particular order.
	Pods []*PodInfo
	// PodsWithAffinity are the Pods with any pod (anti-)affinity term;
	// PodsWithRequiredAntiAffinity those with a required anti-affinity
	// term.
	PodsWithAffinity             []*PodInfo
	PodsWithRequiredAntiAffinity []*PodInfo
	// Requested sums the Pods' requests; NonZeroRequested their scoring
	// requests.
	Requested        Resource
	NonZeroRequested Resource
	// Allocatable is the node's status.allocatable.
	Allocatable Resource
	// UsedPorts are the host ports the Pods hold.
	UsedPorts []hostports.HostPort
	// Generation increases on every change (the cache sets it).
	Generation int64
	// version counts this NodeInfo's own mutations (SetNode, AddPod,
	// RemovePod). Together with the pointer it identifies the content,
	// also for clones that are changed outside the cache (preemption's
	// what-ifs, nominated pods), whose Generation stays the original's.
	version uint64
}

// Version returns a number that changes whenever n is mutated through
// its methods. A (pointer, Version) pair therefore names one state of the
// pods and node, which lets plugins memoize per-node results across
// scheduling cycles.
func (n *NodeInfo) Version() uint64 { return n.version }

// NewNodeInfo returns a NodeInfo for node (which may be nil while only
// pods are known) holding pods.
func NewNodeInfo(node *v1.Node, pods ...*PodInfo) *NodeInfo {
	ni := &NodeInfo{}
	ni.SetNode(node)
	for _, p := range pods {
		ni.AddPod(p)
	}
	return ni
}

// Node returns the node, nil if only its pods are known.
func (n *NodeInfo) Node() *v1.Node { return n.node }

// SetNode sets the node object and its allocatable.
func (n *NodeInfo) SetNode(node *v1.Node) {
	n.version++
	n.node = node
	n.Allocatable = Resource{}
	n.unschedulable, n.taints = false, nil
	if node != nil {
		n.Allocatable = NewResource(node.Status.Allocatable)
		n.unschedulable, n.taints = node.Spec.Unschedulable, node.Spec.Taints
	}
}

// Unschedulable returns the node's spec.unschedulable (false without a
// node).
func (n *NodeInfo) Unschedulable() bool { return n.unschedulable }

// Taints returns the node's spec.taints (nil without a node); they must
// not be changed.
func (n *NodeInfo) Taints() []v1.Taint { return n.taints }

// AddPod adds a pod's aggregates.
func (n *NodeInfo) AddPod(p *PodInfo) {
	n.version++
	n.Pods = append(n.Pods, p)
	if p.HasAffinity() {
		n.PodsWithAffinity = append(n.PodsWithAffinity, p)
	}
	if len(p.RequiredAntiAffinityTerms) > 0 {
		n.PodsWithRequiredAntiAffinity = append(n.PodsWithRequiredAntiAffinity, p)
	}
	n.Requested.Plus(&p.Requests)
	n.Requested.AllowedPodNumber++
	n.NonZeroRequested.Plus(&p.NonZeroRequests)
	n.UsedPorts = append(n.UsedPorts, hostports.Of(p.Pod)...)
}

// RemovePod removes the pod with uid; it reports whether it was there.
func (n *NodeInfo) RemovePod(uid types.UID) bool {
	i := indexOf(n.Pods, uid)
	if i < 0 {
		return false
	}
	n.version++
	p := n.Pods[i]
	n.Pods = removeAt(n.Pods, i)
	if j := indexOf(n.PodsWithAffinity, uid); j >= 0 {
		n.PodsWithAffinity = removeAt(n.PodsWithAffinity, j)
	}
	if j := indexOf(n.PodsWithRequiredAntiAffinity, uid); j >= 0 {
		n.PodsWithRequiredAntiAffinity = removeAt(n.PodsWithRequiredAntiAffinity, j)
	}
	n.Requested.Minus(&p.Requests)
	n.Requested.AllowedPodNumber--
	n.NonZeroRequested.Minus(&p.NonZeroRequests)
	for _, hp := range hostports.Of(p.Pod) {
		for k := range n.UsedPorts {
			if n.UsedPorts[k] == hp {
				n.UsedPorts = append(n.UsedPorts[:k:k], n.UsedPorts[k+1:]...)
				break
			}
		}
	}
	return true
}

func indexOf(ps []*PodInfo, uid types.UID) int {
	for i, p := range ps {
		if p.Pod.UID == uid {
			return i
		}
	}
	return -1
}

// removeAt removes element i without reusing the backing array, so that
// clones sharing it are not disturbed.
func removeAt(ps []*PodInfo, i int) []*PodInfo {
	out := make([]*PodInfo, 0, len(ps)-1)
	out = append(out, ps[:i]...)
	return append(out, ps[i+1:]...)
}

// Clone returns a copy whose slices and maps are its own (the PodInfos
// and the node object are shared: they are immutable).
func (n *NodeInfo) Clone() *NodeInfo {
	return &NodeInfo{
		node:                         n.node,
		unschedulable:                n.unschedulable,
		taints:                       n.taints,
		Pods:                         append([]*PodInfo(nil), n.Pods...),
		PodsWithAffinity:             append([]*PodInfo(nil), n.PodsWithAffinity...),
		PodsWithRequiredAntiAffinity: append([]*PodInfo(nil), n.PodsWithRequiredAntiAffinity...),
		Requested:                    n.Requested.Clone(),
		NonZeroRequested:             n.NonZeroRequested.Clone(),
		Allocatable:                  n.Allocatable.Clone(),
		UsedPorts:                    append([]hostports.HostPort(nil), n.UsedPorts...),
		Generation:                   n.Generation,
	}
}

// Name returns the node's name ("" without a node).
func (n *NodeInfo) Name() string {
	if n.node == nil {
		return ""
	}
	return n.node.Name
}
