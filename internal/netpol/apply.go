package netpol

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/knftables"
)

// applier writes rulesets into the table: the first one (and the first
// after a failed transaction) from scratch, every later one as the
// difference from the last one written. It is used by one goroutine.
type applier struct {
	nft knftables.Interface
	// applied is what the table holds; nil means unknown, so that the
	// next apply rebuilds the table.
	applied *ruleset
}

// apply makes the table hold want, in one transaction. Applying the
// ruleset the table holds already does nothing.
func (a *applier) apply(ctx context.Context, want *ruleset) error {
	tx := a.nft.NewTransaction()
	plan(tx, a.applied, want)
	if tx.NumOperations() == 0 {
		return nil
	}
	if err := a.nft.Run(ctx, tx); err != nil {
		a.applied = nil
		return fmt.Errorf("writing nftables table %s: %w", TableName, err)
	}
	a.applied = want
	return nil
}

// plan adds to tx what turns a table holding have into one holding want;
// a nil have (or one that cannot be changed into want, such as a set whose
// type changed) rebuilds the table from scratch. A pod coming or going
// changes set elements only; rules change only with policies.
func plan(tx *knftables.Transaction, have, want *ruleset) {
	if have == nil || !compatible(have, want) {
		rebuild(tx, want)
		return
	}
	for _, name := range sortedKeys(want.sets) {
		w := want.sets[name]
		h, ok := have.sets[name]
		if !ok {
			addSet(tx, name, w)
			continue
		}
		if slices.EqualFunc(h.elems, w.elems, slices.Equal) {
			continue
		}
		old := make(map[string]bool, len(h.elems))
		for _, e := range h.elems {
			old[strings.Join(e, " . ")] = true
		}
		cur := make(map[string]bool, len(w.elems))
		for _, e := range w.elems {
			cur[strings.Join(e, " . ")] = true
		}
		for _, e := range h.elems {
			if !cur[strings.Join(e, " . ")] {
				tx.Delete(&knftables.Element{Set: name, Key: e})
			}
		}
		for _, e := range w.elems {
			if !old[strings.Join(e, " . ")] {
				tx.Add(&knftables.Element{Set: name, Key: e})
			}
		}
	}
	for _, name := range sortedKeys(want.chains) {
		if _, ok := have.chains[name]; !ok {
			tx.Add(&knftables.Chain{Name: name})
		}
	}
	for _, name := range sortedKeys(want.chains) {
		if h, ok := have.chains[name]; ok && slices.Equal(h, want.chains[name]) {
			continue
		}
		if _, ok := have.chains[name]; ok {
			tx.Flush(&knftables.Chain{Name: name})
		}
		for _, r := range want.chains[name] {
			tx.Add(&knftables.Rule{Chain: name, Rule: r})
		}
	}
	// Whatever referred to the objects to delete was rewritten above.
	for _, name := range sortedKeys(have.chains) {
		if _, ok := want.chains[name]; !ok {
			tx.Delete(&knftables.Chain{Name: name})
		}
	}
	for _, name := range sortedKeys(have.sets) {
		if _, ok := want.sets[name]; !ok {
			tx.Delete(&knftables.Set{Name: name})
		}
	}
}

// compatible reports whether have can be changed into want in place.
func compatible(have, want *ruleset) bool {
	for name, w := range want.sets {
		if h, ok := have.sets[name]; ok && h.typ != w.typ {
			return false
		}
	}
	return true
}

// rebuild adds to tx the replacement of whatever table there is by one
// holding want (the leading add makes the delete succeed on a host
// without the table).
func rebuild(tx *knftables.Transaction, want *ruleset) {
	table := &knftables.Table{Comment: knftables.PtrTo("skiff NetworkPolicy enforcement")}
	tx.Add(table)
	tx.Delete(&knftables.Table{})
	tx.Add(table)
	// Egress is checked before ingress; both must accept a new
	// connection, so the order only decides which drop counts it.
	for _, c := range []struct {
		name     string
		priority knftables.BaseChainPriority
	}{
		{chainEgress, knftables.FilterPriority + " - 1"},
		{chainIngress, knftables.FilterPriority},
	} {
		tx.Add(&knftables.Chain{
			Name:     c.name,
			Type:     knftables.PtrTo(knftables.FilterType),
			Hook:     knftables.PtrTo(knftables.ForwardHook),
			Priority: knftables.PtrTo(c.priority),
		})
	}
	for _, name := range sortedKeys(want.sets) {
		addSet(tx, name, want.sets[name])
	}
	for _, name := range sortedKeys(want.chains) {
		if name != chainIngress && name != chainEgress {
			tx.Add(&knftables.Chain{Name: name})
		}
	}
	for _, name := range sortedKeys(want.chains) {
		for _, r := range want.chains[name] {
			tx.Add(&knftables.Rule{Chain: name, Rule: r})
		}
	}
}

func addSet(tx *knftables.Transaction, name string, s setContent) {
	tx.Add(&knftables.Set{Name: name, Type: s.typ})
	for _, e := range s.elems {
		tx.Add(&knftables.Element{Set: name, Key: e})
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
