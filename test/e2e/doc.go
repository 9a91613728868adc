// Package e2e holds the end-to-end tests: they run the real skiff binary as
// a separate process and drive it with stock kubectl binaries, asserting on
// what kubectl prints.
//
// Inputs: the binary at $SKIFF_BIN, or one built from ./cmd/skiff by
// TestMain; kubectl.1.33 and kubectl.1.27 found beside the kubectl on PATH
// (after resolving symlinks), or in $SKIFF_KUBECTL_DIR. A test whose kubectl
// is missing is skipped with a message saying which one.
//
// Outputs: nothing outside the tests' temporary directories. Each server
// listens on a free loopback port with a fresh data dir; each kubectl
// version works in its own namespace, so the versions could run side by
// side.
//
// The tests run with a plain "go test ./..." (no build tag) and take about
// a minute; "go test -short" skips them.
package e2e
