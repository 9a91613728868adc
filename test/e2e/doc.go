// Package e2e holds the end-to-end tests: they run the real skiff binary as
// a separate process and drive it with stock kubectl binaries, asserting on
// what kubectl prints.
//
// Inputs: the binary at $SKIFF_BIN, or one built from ./cmd/skiff by
// TestMain; kubectl.1.33 and kubectl.1.27 found beside the kubectl on PATH
// (after resolving symlinks), or in $SKIFF_KUBECTL_DIR. A test whose kubectl
// is missing is skipped with a message saying which one.
//
// Outputs: files only in the tests' temporary directories. Each server
// listens on a free loopback port with a fresh data dir; each kubectl
// version works in its own namespace, so the versions could run side by
// side. The root tests that start node agents also create what a node
// does (the skiff0 bridge, nftables tables, routes, containers: removed
// by "skiff reset" and the tests' cleanup), and the join tests a network
// namespace with a veth pair (10.203.0.0/24) for the second node, deleted
// afterwards; they check that nothing they added is left.
//
// The tests run with a plain "go test ./..." (no build tag) and take a
// few minutes; "go test -short" skips them.
package e2e
