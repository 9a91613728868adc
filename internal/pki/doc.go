// Package pki creates and keeps the cluster's certificates and writes
// kubeconfig files.
//
// It owns the directory DIR/pki of a server's data dir:
//
//	ca.crt, ca.key            cluster CA (ECDSA P-256, 10 years)
//	serving.crt, serving.key  the API server's serving certificate (1 year)
//	admin.crt, admin.key      the admin client certificate
//	                          (CN skiff-admin, O system:masters, 1 year)
//	front-proxy-ca.crt/.key   the front-proxy CA, and the client
//	front-proxy-client.crt/.key certificate (CN front-proxy-client) the API
//	                          server proxies to extension API servers with
//	                          (Bundle.FrontProxy)
//	<name>.crt, <name>.key    client certificates issued on demand by
//	                          Bundle.ClientCert: kubelet-client (the API
//	                          server towards node agents) and node-<node>
//	                          (the server's own node agent)
//
// The service account token signing key pair (sa.key, sa.pub) lives in
// the same directory but belongs to internal/auth/tokens.
//
// Keys are written with mode 0600, every file atomically (temporary file,
// fsync, rename), so a crash never leaves a half-written key behind.
//
// Inputs: the directory, the host names and addresses the server must be
// reachable as, and a clock. Outputs: the files above and a [Bundle] holding
// the parsed material. It never talks to the network and never touches
// anything outside the directory it is given (and the kubeconfig path given
// to [WriteKubeconfig]).
//
// # Usage
//
// The server calls [Ensure] once at start:
//
//	b, err := pki.Ensure(pki.Options{Dir: filepath.Join(dataDir, "pki"), Hosts: []string{"10.0.0.5"}})
//	tlsCfg := b.ServerTLSConfig()   // serve with it; client certs verified against the CA
//	...
//	pki.WriteKubeconfig(path, "https://10.0.0.5:6443", b.CAPEM, b.AdminCertPEM, b.AdminKeyPEM)
//
// Ensure is idempotent: existing certificates are reused; the serving
// certificate is re-issued when it expires within [RenewBefore] or no longer
// covers a requested host, and the admin certificate when it expires within
// RenewBefore. The CA is never replaced once it exists; a CA that cannot be
// read is an error, not a reason to start over (that would invalidate every
// client certificate handed out).
package pki
