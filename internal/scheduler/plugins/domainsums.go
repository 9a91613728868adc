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
	ids      [][]int32  // ids[i][j]: the interned number of values[i][j]

	sums      map[string]map[string]int // group -> domain -> sum
	nodeCount map[string]map[string]int // group -> domain -> contributing nodes

	// in numbers the domains (shared by the memo's sums);
	// byID[group][id] is the same sum as sums[group][domain] (0 past the
	// end), so that a node's domain sum can be read by its position in
	// the list without hashing a label value.
	in   *interner
	byID map[string][]int
	// nodesByID[group][id] is nodeCount[group][domain] by number.
	nodesByID map[string][]int
}

// minSum returns the smallest sum of group over the domains some node
// contributes to, and false when there are none; the same as ranging
// over sums[group], without hashing.
func (d *domainSums) minSum(group string) (int, bool) {
	sums, nodes := d.byID[group], d.nodesByID[group]
	min, ok := 0, false
	for id, n := range nodes {
		if n > 0 && (!ok || sums[id] < min) {
			min, ok = sums[id], true
		}
	}
	return min, ok
}

// interner numbers strings (label values) for the position-indexed sums;
// numbers are never reused.
type interner struct{ ids map[string]int32 }

func newInterner() *interner { return &interner{ids: map[string]int32{}} }

// id returns the number of v.
func (in *interner) id(v string) int32 {
	id, ok := in.ids[v]
	if !ok {
		id = int32(len(in.ids))
		in.ids[v] = id
	}
	return id
}

// sumAt returns byID[id], 0 for a domain never summed.
func sumAt(byID []int, id int32) int {
	if id < 0 || int(id) >= len(byID) {
		return 0
	}
	return byID[id]
}

// keyPositions numbers, by position in a node list, each node's value of
// one label (-1: no such label), kept up to date like domainSums.
type keyPositions struct {
	nodes    []*framework.NodeInfo
	versions []uint64
	ids      []int32
}

func (k *keyPositions) update(key string, list []*framework.NodeInfo, in *interner) {
	if len(k.nodes) != len(list) {
		k.nodes = make([]*framework.NodeInfo, len(list))
		k.versions = make([]uint64, len(list))
		k.ids = make([]int32, len(list))
	}
	for i, ni := range list {
		if k.nodes[i] == ni && k.versions[i] == ni.Version() {
			continue
		}
		k.ids[i] = -1
		if ni.Node() != nil {
			if v, ok := ni.Node().Labels[key]; ok {
				k.ids[i] = in.id(v)
			}
		}
		k.nodes[i], k.versions[i] = ni, ni.Version()
	}
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
		d.ids = make([][]int32, len(list))
		d.sums = map[string]map[string]int{}
		d.nodeCount = map[string]map[string]int{}
		d.byID = map[string][]int{}
		d.nodesByID = map[string][]int{}
		if d.in == nil {
			d.in = newInterner()
		}
	}
	for i, ni := range list {
		if d.nodes[i] == ni && d.versions[i] == ni.Version() {
			continue
		}
		for j, c := range d.contribs[i] {
			v := d.values[i][j]
			d.sums[c.group][v] -= c.n
			d.byID[c.group][d.ids[i][j]] -= c.n
			d.nodesByID[c.group][d.ids[i][j]]--
			if d.nodeCount[c.group][v]--; d.nodeCount[c.group][v] == 0 {
				delete(d.sums[c.group], v)
				delete(d.nodeCount[c.group], v)
			}
		}
		d.contribs[i], d.values[i], d.ids[i] = nil, nil, nil
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
				id := d.in.id(v)
				byID, nodesByID := d.byID[c.group], d.nodesByID[c.group]
				if int(id) >= len(byID) {
					byID = append(byID, make([]int, int(id)+1-len(byID))...)
					nodesByID = append(nodesByID, make([]int, int(id)+1-len(nodesByID))...)
					d.byID[c.group], d.nodesByID[c.group] = byID, nodesByID
				}
				byID[id] += c.n
				nodesByID[id]++
				d.contribs[i] = append(d.contribs[i], c)
				d.values[i] = append(d.values[i], v)
				d.ids[i] = append(d.ids[i], id)
			}
		}
		d.nodes[i], d.versions[i] = ni, ni.Version()
	}
}

// domainSumsMemo holds one domainSums per key. The zero value is not
// usable; a nil memo hands out a fresh domainSums each time.
type domainSumsMemo struct {
	mu        sync.Mutex
	byKey     map[string]*domainSums   // guarded by mu
	in        *interner                // guarded by mu; shared by the sums
	byTopoKey map[string]*keyPositions // guarded by mu
}

func newDomainSumsMemo() *domainSumsMemo {
	return &domainSumsMemo{byKey: map[string]*domainSums{}, in: newInterner(), byTopoKey: map[string]*keyPositions{}}
}

// positions returns, by position in list, the number of each node's value
// of the label key, numbered like the sums' domains (-1: no such label).
// The memo must be locked; the slice stays valid until the next lock.
// A nil memo returns nil.
func (m *domainSumsMemo) positions(key string, list []*framework.NodeInfo) []int32 {
	if m == nil {
		return nil
	}
	k := m.byTopoKey[key]
	if k == nil {
		if len(m.byTopoKey) >= maxMemoKeys {
			clear(m.byTopoKey)
		}
		k = &keyPositions{}
		m.byTopoKey[key] = k
	}
	k.update(key, list, m.in)
	return k.ids
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
		d = &domainSums{in: m.in}
		m.byKey[key] = d
	}
	d.update(list, compute)
	return d
}
