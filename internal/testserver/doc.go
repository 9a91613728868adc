// Package testserver starts a real skiff control plane (embedded etcd and
// the API server, through internal/server) for the tests of components
// that are clients of the API server: controllers, the scheduler, the
// node agent. It owns a temporary data dir (or the one given) and a free
// loopback port, and stops the server when the test ends.
//
// Start returns an admin (system:masters) client configuration;
// StartServer also returns the Server, whose ConfigFor issues a client
// certificate from the cluster CA for any user and groups — a node
// ("system:node:<name>", "system:nodes"), a control plane component — so
// that tests run under the authorizers as that identity. Components given
// in Options run as their Identity, exactly as in "skiff server".
package testserver
