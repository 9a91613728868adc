package nodeipam

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
)

// ErrFull is returned by cidrSet.allocate when every subnet is taken.
var ErrFull = errors.New("nodeipam: no pod CIDR available in the cluster CIDR")

// maxSubnetBits bounds how many subnets a cluster CIDR is cut into (2^16,
// as upstream's range allocator).
const maxSubnetBits = 16

// cidrSet hands out the subnets of size mask of a cluster CIDR, at most one
// per node. It is not safe for concurrent use.
type cidrSet struct {
	cluster netip.Prefix
	mask    int
	count   int
	// owner maps a subnet index to the node holding it; byNode is its
	// inverse. They always agree.
	owner  map[int]string
	byNode map[string]int
	// next is where the search for a free subnet starts, so that released
	// subnets are not reused at once.
	next int
}

func newCIDRSet(cluster netip.Prefix, mask int) (*cidrSet, error) {
	if !cluster.IsValid() {
		return nil, fmt.Errorf("nodeipam: invalid cluster CIDR %v", cluster)
	}
	cluster = cluster.Masked()
	if mask <= cluster.Bits() || mask > cluster.Addr().BitLen() || mask-cluster.Bits() > maxSubnetBits {
		return nil, fmt.Errorf("nodeipam: node mask /%d does not fit cluster CIDR %v (at most %d bits more)", mask, cluster, maxSubnetBits)
	}
	return &cidrSet{
		cluster: cluster,
		mask:    mask,
		count:   1 << (mask - cluster.Bits()),
		owner:   map[int]string{},
		byNode:  map[string]int{},
	}, nil
}

// subnet returns the i-th subnet.
func (s *cidrSet) subnet(i int) netip.Prefix {
	base := new(big.Int).SetBytes(s.cluster.Addr().AsSlice())
	off := new(big.Int).Lsh(big.NewInt(int64(i)), uint(s.cluster.Addr().BitLen()-s.mask))
	b := base.Add(base, off).FillBytes(make([]byte, s.cluster.Addr().BitLen()/8))
	addr, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(addr, s.mask)
}

// index returns the index of p, or false when p is not one of the subnets.
func (s *cidrSet) index(p netip.Prefix) (int, bool) {
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
	if p.Bits() != s.mask || p.Masked() != p || !s.cluster.Contains(p.Addr()) {
		return 0, false
	}
	base := new(big.Int).SetBytes(s.cluster.Addr().AsSlice())
	off := new(big.Int).SetBytes(p.Addr().AsSlice())
	off.Sub(off, base).Rsh(off, uint(s.cluster.Addr().BitLen()-s.mask))
	return int(off.Int64()), true
}

// of returns the subnet held by node.
func (s *cidrSet) of(node string) (netip.Prefix, bool) {
	i, ok := s.byNode[node]
	if !ok {
		return netip.Prefix{}, false
	}
	return s.subnet(i), true
}

// occupy records that node holds p, releasing what node held before. It
// fails, changing nothing, when p is outside the set or another node holds
// it.
func (s *cidrSet) occupy(node string, p netip.Prefix) error {
	i, ok := s.index(p)
	if !ok {
		return fmt.Errorf("nodeipam: %v is not a /%d subnet of %v", p, s.mask, s.cluster)
	}
	if other, taken := s.owner[i]; taken && other != node {
		return fmt.Errorf("nodeipam: %v is already held by node %s", p, other)
	}
	s.release(node)
	s.owner[i] = node
	s.byNode[node] = i
	return nil
}

// allocate returns the subnet node holds, or takes the next free one for
// it. It returns ErrFull when none is free.
func (s *cidrSet) allocate(node string) (netip.Prefix, error) {
	if p, ok := s.of(node); ok {
		return p, nil
	}
	for k := range s.count {
		i := (s.next + k) % s.count
		if _, taken := s.owner[i]; taken {
			continue
		}
		s.owner[i] = node
		s.byNode[node] = i
		s.next = (i + 1) % s.count
		return s.subnet(i), nil
	}
	return netip.Prefix{}, ErrFull
}

// release frees the subnet node holds, if any, and reports whether it held
// one.
func (s *cidrSet) release(node string) bool {
	i, ok := s.byNode[node]
	if !ok {
		return false
	}
	delete(s.byNode, node)
	delete(s.owner, i)
	return true
}
