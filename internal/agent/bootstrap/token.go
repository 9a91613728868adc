package bootstrap

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// JoinTokenPrefix starts a join token. The format (after k3s's "K10"
// tokens, with kubeadm's CA pin) is
//
//	K10<64 hex digits>::<id>.<secret>
//
// where the hex digits are the SHA-256 of the cluster CA's
// SubjectPublicKeyInfo (CAHash without its "sha256:") and <id>.<secret>
// is a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16}). One string carries
// both what the agent trusts and how it authenticates.
const JoinTokenPrefix = "K10"

var (
	bootstrapTokenRE = regexp.MustCompile(`\A[a-z0-9]{6}\.[a-z0-9]{16}\z`)
	joinTokenRE      = regexp.MustCompile(`\AK10([0-9a-f]{64})::([a-z0-9]{6}\.[a-z0-9]{16})\z`)
)

// ErrBadToken is returned (wrapped) by ParseJoinToken for a token of
// neither accepted form.
var ErrBadToken = errors.New("bootstrap: malformed token")

// FormatJoinToken returns the join token for bootstrap token token
// ("<id>.<secret>") and CA hash caHash ("sha256:<hex>").
func FormatJoinToken(token, caHash string) (string, error) {
	if !bootstrapTokenRE.MatchString(token) {
		return "", fmt.Errorf("%w: bootstrap token is not <6 [a-z0-9]>.<16 [a-z0-9]>", ErrBadToken)
	}
	if _, err := parseCAHash(caHash); err != nil {
		return "", err
	}
	return JoinTokenPrefix + strings.ToLower(strings.TrimPrefix(caHash, "sha256:")) + "::" + token, nil
}

// ParseJoinToken splits s into the bootstrap token and the CA hash. s is
// either a join token (FormatJoinToken), whose CA hash is then returned
// as "sha256:<hex>", or a plain bootstrap token "<id>.<secret>", whose CA
// hash is "" (the caller needs --ca-cert-hash then). Whitespace around s
// is ignored.
func ParseJoinToken(s string) (token, caHash string, err error) {
	s = strings.TrimSpace(s)
	if m := joinTokenRE.FindStringSubmatch(s); m != nil {
		return m[2], "sha256:" + m[1], nil
	}
	if bootstrapTokenRE.MatchString(s) {
		return s, "", nil
	}
	if strings.HasPrefix(s, JoinTokenPrefix) {
		return "", "", fmt.Errorf("%w: want K10<64 lower-case hex digits>::<id>.<secret>", ErrBadToken)
	}
	return "", "", fmt.Errorf("%w: want K10<CA hash>::<id>.<secret> or <id>.<secret> (id: 6, secret: 16 of [a-z0-9])", ErrBadToken)
}

// ResolveToken combines a --token value and a --ca-cert-hash value: the
// hash in a join token, the flag's otherwise; both given must agree. It
// returns the bootstrap token and the CA hash to check the server
// against.
func ResolveToken(flagToken, flagHash string) (token, caHash string, err error) {
	token, caHash, err = ParseJoinToken(flagToken)
	if err != nil {
		return "", "", err
	}
	if flagHash != "" {
		if _, err := parseCAHash(flagHash); err != nil {
			return "", "", err
		}
		flagHash = strings.ToLower(flagHash)
		if caHash != "" && caHash != flagHash {
			return "", "", fmt.Errorf("bootstrap: the token's CA hash %s differs from --ca-cert-hash %s", caHash, flagHash)
		}
		caHash = flagHash
	}
	if caHash == "" {
		return "", "", errors.New("bootstrap: a plain <id>.<secret> token needs --ca-cert-hash sha256:<hex> (or use the K10… token skiff token create prints)")
	}
	return token, caHash, nil
}
