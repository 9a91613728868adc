package proxy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/knftables"
)

// applier turns desired per-service rules into knftables transactions and
// remembers what the table holds. It is used by one goroutine at a time.
//
// Each Service owns its chains and sets outright (their names contain the
// service's namespace and name). Map elements can collide — two
// LoadBalancer services on the same port share the node-IP ingress — so
// each element has one owner: the first service to claim it; later
// claimants are "blocked" and rebuilt when an owner releases an element.
type applier struct {
	nft  knftables.Interface
	node node

	ops      int                      // operations in the last transaction run
	services map[string]*serviceRules // what the table holds, by service key
	owners   map[elemID]string        // element -> owning service key
	blocked  map[string]bool          // services with an element owned by another
}

func newApplier(nft knftables.Interface, n node) *applier {
	return &applier{nft: nft, node: n}
}

// full replaces the whole table with the base objects and desired, in one
// transaction. On error the kernel's table is unchanged and so is a.
func (a *applier) full(ctx context.Context, desired map[string]*serviceRules) error {
	tx := a.nft.NewTransaction()
	// Delete and recreate: stale objects of an earlier run go, atomically.
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	addBase(tx, a.node, true)
	empty := map[string]*serviceRules{}
	owners, blocked, _ := a.write(tx, empty, map[elemID]string{}, desired)
	if err := a.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("rebuilding table %s: %w", TableName, err)
	}
	a.ops = tx.NumOperations()
	a.services = maps.Clone(desired)
	if a.services == nil {
		a.services = map[string]*serviceRules{} // marks the full sync as done
	}
	a.owners, a.blocked = owners, blocked
	return nil
}

// update rewrites the services in changed (a nil value: the service is
// gone) in one transaction, touching only their objects. It returns the
// keys of blocked services that should be rebuilt because an element they
// want was released. On error the table and a are unchanged.
func (a *applier) update(ctx context.Context, changed map[string]*serviceRules) ([]string, error) {
	if a.services == nil {
		return nil, fmt.Errorf("updating table %s: no full sync yet", TableName)
	}
	old := map[string]*serviceRules{}
	for key := range changed {
		old[key] = a.services[key]
	}
	tx := a.nft.NewTransaction()
	owners, blocked, released := a.write(tx, old, maps.Clone(a.owners), changed)
	a.ops = 0
	if tx.NumOperations() > 0 {
		if err := a.nft.Run(ctx, tx); err != nil {
			return nil, fmt.Errorf("updating table %s for %d services: %w", TableName, len(changed), err)
		}
		a.ops = tx.NumOperations()
	}
	for key, r := range changed {
		if r == nil {
			delete(a.services, key)
		} else {
			a.services[key] = r
		}
	}
	for key := range changed {
		delete(a.blocked, key)
	}
	maps.Copy(a.blocked, blocked)
	a.owners = owners
	var retry []string
	if released {
		for key := range a.blocked {
			if _, ok := changed[key]; !ok {
				retry = append(retry, key)
			}
		}
		slices.Sort(retry)
	}
	return retry, nil
}

// write adds to tx what turns the services' old rules into their new ones
// (nil: none), in an order the kernel accepts: new sets and chains, chain
// contents, element deletions then additions, and finally the stale
// chains (flushed, then deleted, so references among them do not matter)
// and sets. owners is updated in place and returned with the services that
// are blocked and whether any element was released.
func (a *applier) write(tx *knftables.Transaction, old map[string]*serviceRules, owners map[elemID]string, desired map[string]*serviceRules) (map[elemID]string, map[string]bool, bool) {
	keys := append(sortedKeys(desired), sortedKeys(old)...)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	emptyRules := newServiceRules()
	get := func(m map[string]*serviceRules, key string) *serviceRules {
		if r := m[key]; r != nil {
			return r
		}
		return emptyRules
	}

	// 1. New sets, maps and chains.
	for _, key := range keys {
		o, n := get(old, key), get(desired, key)
		for _, name := range sortedKeys(n.sets) {
			if _, ok := o.sets[name]; !ok {
				tx.Add(affinitySet(name, n.sets[name]))
			}
		}
		for _, name := range sortedKeys(n.maps) {
			if _, ok := o.maps[name]; !ok {
				tx.Add(&knftables.Map{Name: name, TypeOf: n.maps[name].typeOf})
			}
		}
		for _, name := range sortedKeys(n.chains) {
			if _, ok := o.chains[name]; !ok {
				tx.Add(&knftables.Chain{Name: name})
			}
		}
	}
	// 2. Index map (spread-, dnat-) and chain contents.
	for _, key := range keys {
		o, n := get(old, key), get(desired, key)
		for _, name := range sortedKeys(n.maps) {
			prev, existed := o.maps[name]
			if existed && prev.equal(n.maps[name]) {
				continue
			}
			if existed {
				tx.Flush(&knftables.Map{Name: name})
			}
			tx.Add(indexElements(name, n.maps[name].values))
		}
		for _, name := range sortedKeys(n.chains) {
			prev, existed := o.chains[name]
			if existed && slices.Equal(prev, n.chains[name]) {
				continue
			}
			if existed {
				tx.Flush(&knftables.Chain{Name: name})
			}
			for _, rule := range n.chains[name] {
				tx.Add(&knftables.Rule{Chain: name, Rule: rule})
			}
		}
	}
	// 3. Elements: release, then claim.
	released := false
	for _, key := range keys {
		o, n := get(old, key), get(desired, key)
		for _, id := range sortedElems(o.elems) {
			if owners[id] != key {
				continue
			}
			if v, ok := n.elems[id]; ok && v == o.elems[id] {
				continue
			}
			tx.Delete(id.element(o.elems[id]))
			delete(owners, id)
			released = true
		}
	}
	blocked := map[string]bool{}
	for _, key := range keys {
		n := get(desired, key)
		for _, id := range sortedElems(n.elems) {
			switch owner, ok := owners[id]; {
			case ok && owner == key:
				// Unchanged (changed ones were released above).
			case ok:
				blocked[key] = true
			default:
				tx.Add(id.element(n.elems[id]))
				owners[id] = key
			}
		}
	}
	// 4. Stale chains, maps and sets. Flushing the chains drops their
	// references to maps, sets and other chains; deleting the maps drops
	// theirs to endpoint chains; then everything can go.
	var stale []string
	for _, key := range keys {
		o, n := get(old, key), get(desired, key)
		for _, name := range sortedKeys(o.chains) {
			if _, ok := n.chains[name]; !ok {
				stale = append(stale, name)
				tx.Flush(&knftables.Chain{Name: name})
			}
		}
	}
	for _, key := range keys {
		o, n := get(old, key), get(desired, key)
		for _, name := range sortedKeys(o.maps) {
			if _, ok := n.maps[name]; !ok {
				tx.Delete(&knftables.Map{Name: name})
			}
		}
	}
	for _, name := range stale {
		tx.Delete(&knftables.Chain{Name: name})
	}
	for _, key := range keys {
		o, n := get(old, key), get(desired, key)
		for _, name := range sortedKeys(o.sets) {
			if _, ok := n.sets[name]; !ok {
				tx.Delete(&knftables.Set{Name: name})
			}
		}
	}
	return owners, blocked, released
}

// indexElements adds values[i] under key i to the spread- or dnat- map
// name, in one command. knftables writes an Element per command, and the
// kernel pays for each (it even looks the map up by name, through a list
// of every set in the table): one command per map instead of one per
// element more than halves the time of a full rebuild. nft's syntax allows
// several elements in one "add element"; knftables copies the text
// through, and its fake keeps it as one element, which is fine for these
// maps: their elements are only ever replaced all at once (flush).
func indexElements(name string, values []string) *knftables.Element {
	var rest strings.Builder
	rest.WriteString(values[0])
	for i, v := range values[1:] {
		fmt.Fprintf(&rest, ", %d : %s", i+1, v)
	}
	return &knftables.Element{Map: name, Key: []string{"0"}, Value: []string{rest.String()}}
}

// affinitySet is the set of clients recently sent to one endpoint; the
// endpoint chain adds the client, the spreading chain looks it up.
func affinitySet(name string, timeout time.Duration) *knftables.Set {
	return &knftables.Set{
		Name:    name,
		Type:    "ipv4_addr",
		Flags:   []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
		Timeout: &timeout,
	}
}

func sortedElems(m map[elemID]string) []elemID {
	ids := make([]elemID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b elemID) int {
		if a.m != b.m {
			if a.m < b.m {
				return -1
			}
			return 1
		}
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	return ids
}
