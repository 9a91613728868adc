package plugins

import (
	"sync"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// contribution is what one node adds to a domainSums: n under group, in
// the node's domain for topoKey (the value of that label on the node).
type contribution struct {
	group   string
	topoKey string
	n       int
}

// domainSums keeps per-domain sums of per-node contributions up to date
// with a snapshot's node list from one cycle to the next: a node whose
// NodeInfo (pointer and Version) is the one seen last time costs two
// comparisons, a changed one its removal and re-addition. This turns the
// O(pods) walk that spreading and affinity scoring do each cycle into
// O(nodes) comparisons plus O(changed nodes) work.
//
// A domain is present in sums (possibly with 0) while at least one node
// contributes to it. Not safe for concurrent use; domainSumsMemo hands one
// out under its lock.
type domainSums struct {
	nodes    []*framework.NodeInfo
	versions []uint64
	contribs [][]contribution
	values   [][]string // values[i][j]: the domain of contribs[i][j]

	sums      map[string]map[string]int // group -> domain -> sum
	nodeCount map[string]map[string]int // group -> domain -> contributing nodes
}

// update brings the sums up to date with list; compute gives a node's
// contributions (nil: none) and must depend only on the node and what
// the memo key stands for.
func (d *domainSums) update(list []*framework.NodeInfo, compute func(*framework.NodeInfo) []contribution) {
	if len(d.nodes) != len(list) || d.sums == nil {
		d.nodes = make([]*framework.NodeInfo, len(list))
		d.versions = make([]uint64, len(list))
		d.contribs = make([][]contribution, len(list))
		d.values = make([][]string, len(list))
		d.sums = map[string]map[string]int{}
		d.nodeCount = map[string]map[string]int{}
	}
	for i, ni := range list {
		if d.nodes[i] == ni && d.versions[i] == ni.Version() {
			continue
		}
		for j, c := range d.contribs[i] {
			v := d.values[i][j]
			d.sums[c.group][v] -= c.n
			if d.nodeCount[c.group][v]--; d.nodeCount[c.group][v] == 0 {
				delete(d.sums[c.group], v)
				delete(d.nodeCount[c.group], v)
			}
		}
		d.contribs[i], d.values[i] = nil, nil
		if ni.Node() != nil {
			labels := ni.Node().Labels
			for _, c := range compute(ni) {
				v, ok := labels[c.topoKey]
				if !ok {
					continue
				}
				if d.sums[c.group] == nil {
					d.sums[c.group] = map[string]int{}
					d.nodeCount[c.group] = map[string]int{}
				}
				d.sums[c.group][v] += c.n
				d.nodeCount[c.group][v]++
				d.contribs[i] = append(d.contribs[i], c)
				d.values[i] = append(d.values[i], v)
			}
		}
		d.nodes[i], d.versions[i] = ni, ni.Version()
	}
}

// domainSumsMemo holds one domainSums per key. The zero value is not
// usable; a nil memo hands out a fresh domainSums each time.
type domainSumsMemo struct {
	mu    sync.Mutex
	byKey map[string]*domainSums // guarded by mu
}

func newDomainSumsMemo() *domainSumsMemo {
	return &domainSumsMemo{byKey: map[string]*domainSums{}}
}

// lock and unlock bracket one cycle's use of the memo; the sums handed
// out by get (and the maps in them) stay valid and unchanged until the
// next lock.
func (m *domainSumsMemo) lock() {
	if m != nil {
		m.mu.Lock()
	}
}

func (m *domainSumsMemo) unlock() {
	if m != nil {
		m.mu.Unlock()
	}
}

// get returns the sums for key, updated to list. The memo must be locked.
func (m *domainSumsMemo) get(key string, list []*framework.NodeInfo, compute func(*framework.NodeInfo) []contribution) *domainSums {
	var d *domainSums
	if m == nil {
		d = &domainSums{}
	} else if d = m.byKey[key]; d == nil {
		if len(m.byKey) >= maxMemoKeys {
			clear(m.byKey)
		}
		d = &domainSums{}
		m.byKey[key] = d
	}
	d.update(list, compute)
	return d
}
