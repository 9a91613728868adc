package cache

import (
	"fmt"
	"slices"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// Cache is safe for concurrent use.
type Cache struct {
	priority func(*v1.Pod) int32

	mu sync.Mutex
	// nodes holds every node with a Node object or pods (guarded by mu).
	nodes map[string]*framework.NodeInfo
	// names are the names of nodes with a Node object, sorted (guarded
	// by mu).
	names []string
	// pods are the pods in the cache by uid (guarded by mu).
	pods map[types.UID]*podState
	// generation increases on every change; nodeGeneration on changes of
	// node objects (guarded by mu).
	generation, nodeGeneration int64
	// dirty names the nodes changed since the last UpdateSnapshot;
	// namesChanged says nodes were added or removed; snapNodeGen is the
	// nodeGeneration the last snapshot's image counts reflect (guarded by
	// mu). They assume one Snapshot is kept up to date from the cache.
	dirty        map[string]struct{}
	namesChanged bool
	snapNodeGen  int64
}

type podState struct {
	pod     *v1.Pod
	assumed bool
	bound   bool // binding finished (for assumed pods)
}

// New returns an empty cache; priority resolves a pod's priority.
func New(priority func(*v1.Pod) int32) *Cache {
	if priority == nil {
		priority = func(p *v1.Pod) int32 {
			if p.Spec.Priority != nil {
				return *p.Spec.Priority
			}
			return 0
		}
	}
	return &Cache{priority: priority, nodes: map[string]*framework.NodeInfo{}, pods: map[types.UID]*podState{}, dirty: map[string]struct{}{}}
}

func (c *Cache) nodeLocked(name string) *framework.NodeInfo {
	ni := c.nodes[name]
	if ni == nil {
		ni = framework.NewNodeInfo(nil)
		c.nodes[name] = ni
	}
	return ni
}

func (c *Cache) touchLocked(name string, ni *framework.NodeInfo) {
	c.generation++
	ni.Generation = c.generation
	c.dirty[name] = struct{}{}
}

func (c *Cache) addPodLocked(pod *v1.Pod) {
	ni := c.nodeLocked(pod.Spec.NodeName)
	ni.AddPod(framework.NewPodInfo(pod, c.priority(pod)))
	c.touchLocked(pod.Spec.NodeName, ni)
}

func (c *Cache) removePodLocked(pod *v1.Pod) {
	ni := c.nodes[pod.Spec.NodeName]
	if ni == nil {
		return
	}
	ni.RemovePod(pod.UID)
	c.touchLocked(pod.Spec.NodeName, ni)
	if ni.Node() == nil && len(ni.Pods) == 0 {
		delete(c.nodes, pod.Spec.NodeName)
	}
}

// AssumePod counts pod (whose spec.nodeName is the chosen node) on its
// node before it is bound. It fails if the pod is already in the cache.
func (c *Cache) AssumePod(pod *v1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pods[pod.UID]; ok {
		return fmt.Errorf("assuming pod %s/%s: already in the cache", pod.Namespace, pod.Name)
	}
	c.addPodLocked(pod)
	c.pods[pod.UID] = &podState{pod: pod, assumed: true}
	return nil
}

// FinishBinding records that the bind of an assumed pod succeeded; the
// pod stays assumed until the informer delivers it (AddPod).
func (c *Cache) FinishBinding(pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[pod.UID]; ok && ps.assumed {
		ps.bound = true
	}
}

// ForgetPod undoes AssumePod (the bind failed). Forgetting a pod that is
// not assumed does nothing.
func (c *Cache) ForgetPod(pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[pod.UID]
	if !ok || !ps.assumed {
		return
	}
	c.removePodLocked(ps.pod)
	delete(c.pods, pod.UID)
}

// IsAssumed reports whether the pod is assumed and not yet confirmed.
func (c *Cache) IsAssumed(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[uid]
	return ok && ps.assumed
}

// AddPod adds a bound pod seen by the informer, confirming it if it was
// assumed (possibly onto another node: the informer wins).
func (c *Cache) AddPod(pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[pod.UID]; ok {
		c.removePodLocked(ps.pod)
	}
	c.addPodLocked(pod)
	c.pods[pod.UID] = &podState{pod: pod}
}

// UpdatePod replaces a bound pod.
func (c *Cache) UpdatePod(pod *v1.Pod) { c.AddPod(pod) }

// RemovePod removes a pod (deleted, or finished).
func (c *Cache) RemovePod(pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[pod.UID]
	if !ok {
		return
	}
	c.removePodLocked(ps.pod)
	delete(c.pods, pod.UID)
}

// AddNode adds or replaces a node object.
func (c *Cache) AddNode(node *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni := c.nodeLocked(node.Name)
	if ni.Node() == nil {
		i, _ := slices.BinarySearch(c.names, node.Name)
		c.names = slices.Insert(c.names, i, node.Name)
		c.namesChanged = true
	}
	ni.SetNode(node)
	c.touchLocked(node.Name, ni)
	c.nodeGeneration++
}

// UpdateNode replaces a node object.
func (c *Cache) UpdateNode(node *v1.Node) { c.AddNode(node) }

// RemoveNode removes a node object; its pods stay until they are removed.
func (c *Cache) RemoveNode(node *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni := c.nodes[node.Name]
	if ni == nil {
		return
	}
	if i, ok := slices.BinarySearch(c.names, node.Name); ok {
		c.names = slices.Delete(c.names, i, i+1)
		c.namesChanged = true
	}
	ni.SetNode(nil)
	c.touchLocked(node.Name, ni)
	c.nodeGeneration++
	if len(ni.Pods) == 0 {
		delete(c.nodes, node.Name)
	}
}

// UpdateSnapshot brings snap up to date, cloning only the nodes changed
// since snap was last updated; when no node was added or removed, the
// list and its affinity indexes are patched in place, so the cost is
// proportional to the changed nodes. snap must only ever be
// updated from this cache, and not be in use by a decision while it is
// updated.
func (c *Cache) UpdateSnapshot(snap *framework.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	full := c.namesChanged || snap.NodeInfoMap == nil || len(snap.NodeInfoList) != len(c.names)
	if full {
		prev := snap.NodeInfoMap
		snap.NodeInfoMap = make(map[string]*framework.NodeInfo, len(c.names))
		for _, name := range c.names {
			ni := c.nodes[name]
			if old := prev[name]; old != nil && old.Generation == ni.Generation {
				snap.NodeInfoMap[name] = old // unchanged: the clone is still exact
				continue
			}
			snap.NodeInfoMap[name] = ni.Clone()
		}
		snap.RebuildOrdered(c.names)
	} else {
		// rebuild: the list (and the indexes) must be rebuilt from the
		// map; otherwise the list and the affinity indexes are patched
		// in place.
		rebuild := false
		for name := range c.dirty {
			ni := c.nodes[name]
			if ni == nil || ni.Node() == nil {
				continue
			}
			old := snap.NodeInfoMap[name]
			clone := ni.Clone()
			snap.NodeInfoMap[name] = clone
			i, ok := slices.BinarySearch(c.names, name)
			if !ok || i >= len(snap.NodeInfoList) || old == nil || snap.NodeInfoList[i] != old {
				rebuild = true
				continue
			}
			snap.NodeInfoList[i] = clone
			if len(old.PodsWithAffinity)+len(clone.PodsWithAffinity) > 0 ||
				len(old.PodsWithRequiredAntiAffinity)+len(clone.PodsWithRequiredAntiAffinity) > 0 {
				snap.ReplaceInIndexes(clone)
			}
		}
		if rebuild {
			snap.RebuildOrdered(c.names)
		}
	}
	clear(c.dirty)
	if c.snapNodeGen != c.nodeGeneration || snap.ImageNodes == nil {
		snap.RecountImages()
		c.snapNodeGen = c.nodeGeneration
	}
	c.namesChanged = false
	snap.Generation = c.generation
}

// NodeCount returns the number of nodes with a Node object.
func (c *Cache) NodeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.names)
}
