package framework

import (
	"slices"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// Snapshot is an immutable view of the cluster for one scheduling
// decision: the nodes (with their pods) and derived indexes. The cache
// refreshes one Snapshot in place between decisions (UpdateSnapshot);
// during a decision nothing changes it.
type Snapshot struct {
	// NodeInfoMap holds every node with a Node object, by name.
	NodeInfoMap map[string]*NodeInfo
	// NodeInfoList holds the same nodes in a stable order.
	NodeInfoList []*NodeInfo
	// HavePodsWithAffinity / HavePodsWithRequiredAntiAffinity list the
	// nodes that have pods with (required anti-)affinity terms.
	HavePodsWithAffinity             []*NodeInfo
	HavePodsWithRequiredAntiAffinity []*NodeInfo
	// ImageNodes counts, per image name, the nodes that report it.
	ImageNodes map[string]int
	// NamespaceLabels looks up namespace labels for namespaceSelector
	// terms; nil means no namespace has labels.
	NamespaceLabels NamespaceLabels
	// Generation is the cache generation the snapshot reflects.
	Generation int64
}

// Get returns the NodeInfo of a node, or nil.
func (s *Snapshot) Get(name string) *NodeInfo { return s.NodeInfoMap[name] }

// NumNodes returns the number of nodes.
func (s *Snapshot) NumNodes() int { return len(s.NodeInfoList) }

// NewSnapshot builds a snapshot from objects (for tests and tools):
// pods are placed on their spec.nodeName, with priority from
// spec.priority.
func NewSnapshot(nodes []*v1.Node, pods []*v1.Pod) *Snapshot {
	byName := make(map[string]*NodeInfo, len(nodes))
	for _, n := range nodes {
		byName[n.Name] = NewNodeInfo(n)
	}
	for _, p := range pods {
		if ni := byName[p.Spec.NodeName]; ni != nil {
			var prio int32
			if p.Spec.Priority != nil {
				prio = *p.Spec.Priority
			}
			ni.AddPod(NewPodInfo(p, prio))
		}
	}
	s := &Snapshot{NodeInfoMap: byName}
	s.Rebuild()
	return s
}

// Rebuild recomputes the list and indexes from NodeInfoMap, ordering the
// list by node name.
func (s *Snapshot) Rebuild() {
	names := make([]string, 0, len(s.NodeInfoMap))
	for name := range s.NodeInfoMap {
		names = append(names, name)
	}
	sort.Strings(names)
	s.RebuildOrdered(names)
	s.RecountImages()
}

// RebuildOrdered recomputes the list (in the given name order, skipping
// names not in the map) and the indexes.
func (s *Snapshot) RebuildOrdered(names []string) {
	s.NodeInfoList = s.NodeInfoList[:0]
	s.HavePodsWithAffinity = s.HavePodsWithAffinity[:0]
	s.HavePodsWithRequiredAntiAffinity = s.HavePodsWithRequiredAntiAffinity[:0]
	for _, name := range names {
		ni := s.NodeInfoMap[name]
		if ni == nil {
			continue
		}
		s.NodeInfoList = append(s.NodeInfoList, ni)
		if len(ni.PodsWithAffinity) > 0 {
			s.HavePodsWithAffinity = append(s.HavePodsWithAffinity, ni)
		}
		if len(ni.PodsWithRequiredAntiAffinity) > 0 {
			s.HavePodsWithRequiredAntiAffinity = append(s.HavePodsWithRequiredAntiAffinity, ni)
		}
	}
}

// RebuildIndexes recomputes HavePodsWithAffinity and
// HavePodsWithRequiredAntiAffinity from NodeInfoList, for callers that
// replaced list entries in place.
func (s *Snapshot) RebuildIndexes() {
	s.HavePodsWithAffinity = s.HavePodsWithAffinity[:0]
	s.HavePodsWithRequiredAntiAffinity = s.HavePodsWithRequiredAntiAffinity[:0]
	for _, ni := range s.NodeInfoList {
		if len(ni.PodsWithAffinity) > 0 {
			s.HavePodsWithAffinity = append(s.HavePodsWithAffinity, ni)
		}
		if len(ni.PodsWithRequiredAntiAffinity) > 0 {
			s.HavePodsWithRequiredAntiAffinity = append(s.HavePodsWithRequiredAntiAffinity, ni)
		}
	}
}

// ReplaceInIndexes updates HavePodsWithAffinity and
// HavePodsWithRequiredAntiAffinity for a node whose NodeInfo was replaced
// in place in NodeInfoList by ni, in O(log nodes) plus a copy when the
// node enters or leaves an index. It relies on the list's order being by
// name (as NewSnapshot and the cache keep it).
func (s *Snapshot) ReplaceInIndexes(ni *NodeInfo) {
	s.HavePodsWithAffinity = replaceByName(s.HavePodsWithAffinity, ni, len(ni.PodsWithAffinity) > 0)
	s.HavePodsWithRequiredAntiAffinity = replaceByName(s.HavePodsWithRequiredAntiAffinity, ni, len(ni.PodsWithRequiredAntiAffinity) > 0)
}

// replaceByName puts ni in place of the entry of the same name in list
// (sorted by name), inserts it, or removes that entry when !keep.
func replaceByName(list []*NodeInfo, ni *NodeInfo, keep bool) []*NodeInfo {
	i, found := slices.BinarySearchFunc(list, ni.Name(), func(e *NodeInfo, name string) int {
		return strings.Compare(e.Name(), name)
	})
	switch {
	case found && keep:
		list[i] = ni
	case found:
		list = slices.Delete(list, i, i+1)
	case keep:
		list = slices.Insert(list, i, ni)
	}
	return list
}

// RecountImages recomputes ImageNodes from NodeInfoList; callers do it
// only when a node object changed.
func (s *Snapshot) RecountImages() {
	s.ImageNodes = make(map[string]int, len(s.ImageNodes))
	for _, ni := range s.NodeInfoList {
		for _, img := range ni.node.Status.Images {
			for _, n := range img.Names {
				s.ImageNodes[n]++
			}
		}
	}
}

// WithNode returns a shallow copy of s in which ni replaces the node of
// the same name (for what-if evaluations such as preemption). s is not
// changed; the copy's map, list and indexes are rebuilt, which costs O(nodes).
func (s *Snapshot) WithNode(ni *NodeInfo) *Snapshot {
	out := &Snapshot{
		NodeInfoMap:     make(map[string]*NodeInfo, len(s.NodeInfoMap)),
		NodeInfoList:    make([]*NodeInfo, len(s.NodeInfoList)),
		ImageNodes:      s.ImageNodes,
		NamespaceLabels: s.NamespaceLabels,
		Generation:      s.Generation,
	}
	for i, n := range s.NodeInfoList {
		if n.Name() == ni.Name() {
			n = ni
		}
		out.NodeInfoList[i] = n
		out.NodeInfoMap[n.Name()] = n
		if len(n.PodsWithAffinity) > 0 {
			out.HavePodsWithAffinity = append(out.HavePodsWithAffinity, n)
		}
		if len(n.PodsWithRequiredAntiAffinity) > 0 {
			out.HavePodsWithRequiredAntiAffinity = append(out.HavePodsWithRequiredAntiAffinity, n)
		}
	}
	return out
}
