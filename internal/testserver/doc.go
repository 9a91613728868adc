// Package testserver starts a real skiff control plane (embedded etcd and
// the API server, through internal/server) for the tests of components
// that are clients of the API server: controllers, the scheduler, the
// node agent. It owns a temporary data dir and a free loopback port, and
// stops the server when the test ends.
package testserver
