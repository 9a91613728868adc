// Package tokens authenticates bearer tokens and issues service account
// tokens.
//
// It owns three kinds of token:
//
//   - Service account tokens: ES256-signed JWTs with upstream's claims
//     (iss, sub system:serviceaccount:<ns>:<name>, aud, exp, iat, nbf,
//     jti, and "kubernetes.io": namespace, serviceaccount, pod/secret/node).
//     An Issuer signs them with a P-256 key pair kept as PEM files
//     (sa.key, sa.pub) in a directory it is given, created on first use.
//     Issuer.TokenRequest is the serviceaccounts/token subresource's logic;
//     Issuer.LegacyToken signs the never-expiring tokens of
//     kubernetes.io/service-account-token secrets for a token controller.
//   - Bootstrap tokens "<id>.<secret>" backed by kube-system secrets
//     bootstrap-token-<id>, created by CreateBootstrapToken for joining
//     nodes; CAHash gives the CA pin a join command carries.
//   - Any of them reviewed by Review (TokenReview), through Union.
//
// Reads: service accounts, pods, secrets and nodes through informer
// listers (Lookups), never the API directly while authenticating; the key
// directory. Writes: the key directory (once), and the bootstrap token
// secret (CreateBootstrapToken, through the API).
//
// It must never authenticate a token it cannot fully verify: invalid,
// expired, foreign, or revoked tokens (deleted service account, bound
// object deleted or recreated with another UID) are "not authenticated"
// (false, nil) with the reason at Debug, and malformed input never
// panics. It does not decide what a user may do (that is RBAC).
//
// # Usage
//
// The API server builds, once at start:
//
//	iss, err := tokens.NewIssuer(filepath.Join(dataDir, "sa"), "", nil)
//	iss.Logger = log.With("component", "tokens")
//	lookups := tokens.Lookups{ServiceAccounts: f.Core().V1().ServiceAccounts().Lister(), …}
//	authn := tokens.Union(iss.Authenticator(lookups), tokens.NewBootstrapAuthenticator(lookups.Secrets))
//
// then, per request with "Authorization: Bearer <t>",
// authn.AuthenticateToken(ctx, t); for POST …/serviceaccounts/<n>/token,
// iss.TokenRequest(ctx, sa, req, lookups); for TokenReview,
// tokens.Review(ctx, authn, tr). The informers must have synced before
// tokens are checked, or valid tokens are refused.
package tokens
