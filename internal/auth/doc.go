// Package auth holds what authentication, authorization and admission
// share: who is asking (User) and what a request does (Attributes). The
// parts live in subpackages: rbac and node (authorizers), tokens (bearer
// token authenticators and the service account token issuer), and the
// API server wires them in front of its handlers.
//
// It reads and writes nothing.
package auth
