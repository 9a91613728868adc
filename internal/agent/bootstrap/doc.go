// Package bootstrap gives a joining node agent its own client certificate
// and keeps it fresh, as the kubelet's TLS bootstrap and client
// certificate rotation do.
//
// It owns the directory Config.Dir (DIR/agent of an agent's data dir):
//
//	kubeconfig   server, cluster CA and the node's client certificate and
//	             key, embedded (0600, written atomically, last)
//	node.crt     the node's client certificate (0644)
//	node.key     its private key (ECDSA P-256, 0600)
//
// Reads: the server's TLS chain ([Discover]); its own files. Writes: the
// files above, and CertificateSigningRequests through the API (create,
// then get and watch the one it created).
//
// Trust: before it has a certificate it trusts the server only when the
// server presents a self-signed CA whose SubjectPublicKeyInfo hashes to
// Config.CAHash ("sha256:<hex>", as kubeadm's discovery hash and
// tokens.CAHash) and whose serving certificate verifies against that CA.
// It then authenticates with the bootstrap token as a bearer token. When
// renewing it trusts the CA in its kubeconfig and authenticates with its
// current certificate. It never sends the token to an unverified server,
// never writes a certificate that does not match its key or names another
// node, and never approves its own request.
//
// Join tokens ([FormatJoinToken], [ParseJoinToken], [ResolveToken]) carry
// both: "K10<64 hex digits of the CA hash>::<id>.<secret>", what `skiff
// token create` prints and `skiff agent --token` takes (a plain
// "<id>.<secret>" needs --ca-cert-hash).
//
// Lifecycle of the node certificate:
//
//	none/expired ──token──> CSR ──approved+signed──> valid
//	valid ──80% of its life passed──> CSR (current cert) ──> valid (new key)
//	CSR ──denied/failed──> error (ErrDenied, ErrFailed)
//
// # Usage
//
//	cfg := bootstrap.Config{Server: url, Token: tok, CAHash: hash, NodeName: name, Dir: filepath.Join(dataDir, "agent")}
//	kubeconfig, err := bootstrap.Kubeconfig(ctx, cfg) // blocks until approved and signed
//	... run the agent with kubeconfig ...
//	go bootstrap.Rotate(ctx, cfg, reconnect) // renews; reconnect rebuilds clients
package bootstrap
