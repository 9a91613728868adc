// Package integration holds the client-go integration tests of the API
// server: each test starts the real server in-process (internal/server,
// with a temporary data directory, embedded etcd and a free loopback port)
// and drives it with client-go's typed clientset, shared informers and the
// metadata client, exactly as controllers and kubectl do.
//
// Reads: nothing outside the temporary data directories it creates.
// Writes: only those directories (removed by t.TempDir) and the servers it
// starts (stopped by t.Cleanup).
//
// It never starts the skiff binary (test/e2e does) and never needs root.
package integration
