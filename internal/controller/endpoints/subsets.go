package endpoints

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// MaxAddresses is how many addresses (ready and not ready together) one
// Endpoints object lists at most; the rest are truncated and the object is
// annotated with corev1.EndpointsOverCapacity = "truncated".
const MaxAddresses = 1000

// member is one address serving one port (port nil: a headless service
// without ports), ready or not.
type member struct {
	addr  corev1.EndpointAddress
	port  *corev1.EndpointPort
	ready bool
}

// packSubsets groups members into subsets the way upstream repacks them:
// one subset per distinct set of ports, listing every address serving
// exactly that set, ready ones in addresses and the others in
// notReadyAddresses. An address that is ready for one port is ready for
// all (it is one pod). The output is sorted, so equal input gives equal
// output regardless of order.
func packSubsets(members []member) []corev1.EndpointSubset {
	type addrInfo struct {
		addr  corev1.EndpointAddress
		ready bool
		ports map[string]corev1.EndpointPort
	}
	byAddr := map[string]*addrInfo{}
	var order []string
	for _, m := range members {
		k := addressKey(&m.addr)
		ai, ok := byAddr[k]
		if !ok {
			ai = &addrInfo{addr: m.addr, ports: map[string]corev1.EndpointPort{}}
			byAddr[k] = ai
			order = append(order, k)
		}
		ai.ready = ai.ready || m.ready
		if m.port != nil {
			ai.ports[portKey(m.port)] = *m.port
		}
	}
	type group struct {
		ports           []corev1.EndpointPort
		ready, notReady []corev1.EndpointAddress
	}
	groups := map[string]*group{}
	for _, k := range order {
		ai := byAddr[k]
		keys := make([]string, 0, len(ai.ports))
		for pk := range ai.ports {
			keys = append(keys, pk)
		}
		slices.Sort(keys)
		gk := strings.Join(keys, ",")
		g, ok := groups[gk]
		if !ok {
			g = &group{ports: make([]corev1.EndpointPort, 0, len(keys))}
			for _, pk := range keys {
				g.ports = append(g.ports, ai.ports[pk])
			}
			groups[gk] = g
		}
		if ai.ready {
			g.ready = append(g.ready, ai.addr)
		} else {
			g.notReady = append(g.notReady, ai.addr)
		}
	}
	gkeys := make([]string, 0, len(groups))
	for gk := range groups {
		gkeys = append(gkeys, gk)
	}
	slices.Sort(gkeys)
	subsets := make([]corev1.EndpointSubset, 0, len(gkeys))
	for _, gk := range gkeys {
		g := groups[gk]
		sortAddresses(g.ready)
		sortAddresses(g.notReady)
		subsets = append(subsets, corev1.EndpointSubset{Addresses: g.ready, NotReadyAddresses: g.notReady, Ports: g.ports})
	}
	return subsets
}

func addressKey(a *corev1.EndpointAddress) string {
	if a.TargetRef != nil {
		return a.IP + "/" + string(a.TargetRef.UID)
	}
	return a.IP
}

func portKey(p *corev1.EndpointPort) string {
	return p.Name + "/" + strconv.Itoa(int(p.Port)) + "/" + string(p.Protocol)
}

func sortAddresses(as []corev1.EndpointAddress) {
	slices.SortFunc(as, func(a, b corev1.EndpointAddress) int {
		if c := cmp.Compare(a.IP, b.IP); c != 0 {
			return c
		}
		return cmp.Compare(addressKey(&a), addressKey(&b))
	})
}

// truncateSubsets cuts subsets down to MaxAddresses addresses and reports
// whether it had to. Ready addresses are kept before not-ready ones; the
// addresses kept are spread over the subsets in proportion to their sizes.
// subsets is modified in place.
func truncateSubsets(subsets []corev1.EndpointSubset) bool {
	ready, notReady := 0, 0
	for _, s := range subsets {
		ready += len(s.Addresses)
		notReady += len(s.NotReadyAddresses)
	}
	if ready+notReady <= MaxAddresses {
		return false
	}
	truncReady := ready > MaxAddresses
	budget, total := MaxAddresses-ready, notReady
	if truncReady {
		budget, total = MaxAddresses, ready
	}
	left := budget
	for i := range subsets {
		s := &subsets[i]
		n := len(s.NotReadyAddresses)
		if truncReady {
			n = len(s.Addresses)
		}
		keep := int(math.Ceil(float64(n) / float64(total) * float64(budget)))
		keep = min(keep, left, n)
		if truncReady {
			s.Addresses = s.Addresses[:keep]
			s.NotReadyAddresses = nil
		} else {
			s.NotReadyAddresses = s.NotReadyAddresses[:keep]
		}
		left -= keep
	}
	return true
}
