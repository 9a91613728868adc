package proxy

import (
	"context"
	"slices"
	"strings"

	"sigs.k8s.io/knftables"
)

// baseLines are the dump lines of an empty table, left out of
// serviceDump so that golden files show only what services add.
func baseLines() map[string]bool {
	fake := knftables.NewFake(knftables.InetFamily, TableName)
	tx := fake.NewTransaction()
	addBase(tx, mustNode(testConfig(nil)), false)
	if err := fake.Run(context.Background(), tx); err != nil {
		panic(err)
	}
	out := map[string]bool{}
	for _, l := range strings.Split(fake.Dump(), "\n") {
		out[l] = true
	}
	return out
}

// serviceDump is fake's dump without the base table's lines, in dump
// order (objects, then rules in chain order, then elements).
func serviceDump(fake *knftables.Fake) string {
	base := baseLines()
	var out []string
	for _, l := range strings.Split(fake.Dump(), "\n") {
		if l != "" && !base[l] {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// sortedDump is fake's whole dump, sorted (element order is insertion
// order in the fake).
func sortedDump(fake *knftables.Fake) string {
	lines := strings.Split(strings.TrimSpace(fake.Dump()), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

func mustNode(cfg Config) node {
	n, err := newNode(cfg)
	if err != nil {
		panic(err)
	}
	return n
}
