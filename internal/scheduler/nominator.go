package scheduler

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// nominator remembers which unbound pods are nominated to which node
// (status.nominatedNodeName, set by preemption), so that the room their
// victims free is not taken by pods of lower priority. It is fed by the
// informer handlers and by preempt; safe for concurrent use.
type nominator struct {
	mu sync.Mutex
	// byNode maps node -> uid -> pod; nodeOf is the reverse (guarded by mu).
	byNode map[string]map[types.UID]*v1.Pod
	nodeOf map[types.UID]string
}

func newNominator() *nominator {
	return &nominator{byNode: map[string]map[types.UID]*v1.Pod{}, nodeOf: map[types.UID]string{}}
}

// set records pod's nomination to node; "" removes it.
func (n *nominator) set(pod *v1.Pod, node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if old, ok := n.nodeOf[pod.UID]; ok {
		delete(n.byNode[old], pod.UID)
		if len(n.byNode[old]) == 0 {
			delete(n.byNode, old)
		}
		delete(n.nodeOf, pod.UID)
	}
	if node == "" {
		return
	}
	m := n.byNode[node]
	if m == nil {
		m = map[types.UID]*v1.Pod{}
		n.byNode[node] = m
	}
	m[pod.UID] = pod
	n.nodeOf[pod.UID] = node
}

// adjust returns snap with the pods nominated to each node that are at
// least as important as pi (pi itself excluded) counted on that node; it
// returns snap itself when there are none.
func (n *nominator) adjust(snap *framework.Snapshot, pi *framework.PodInfo, priority func(*v1.Pod) int32) *framework.Snapshot {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := snap
	for node, pods := range n.byNode {
		var clone *framework.NodeInfo
		for uid, p := range pods {
			if uid == pi.Pod.UID {
				continue
			}
			prio := priority(p)
			if prio < pi.Priority {
				continue
			}
			if clone == nil {
				ni := out.Get(node)
				if ni == nil {
					break
				}
				clone = ni.Clone()
			}
			np := p.DeepCopy()
			np.Spec.NodeName = node
			clone.AddPod(framework.NewPodInfo(np, prio))
		}
		if clone != nil {
			out = out.WithNode(clone)
		}
	}
	return out
}

// lowerOn returns the pods nominated to node whose priority is below
// prio, except the pod with uid except.
func (n *nominator) lowerOn(node string, prio int32, priority func(*v1.Pod) int32, except types.UID) []*v1.Pod {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*v1.Pod
	for uid, p := range n.byNode[node] {
		if uid != except && priority(p) < prio {
			out = append(out, p)
		}
	}
	return out
}
