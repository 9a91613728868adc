// Package etcdtest starts a throwaway embedded etcd member for tests.
//
// Start runs one member per call in t.TempDir() on free loopback ports,
// with fsync off, and stops it in t.Cleanup. Starting one takes a fraction
// of a second, so a package may call it once per test; to share one member
// across a package, call it from a helper guarded by sync.Once and give
// every test its own key prefix.
package etcdtest
