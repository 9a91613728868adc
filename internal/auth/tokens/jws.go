package tokens

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// maxTokenBytes bounds what is parsed at all; upstream tokens are ~1 KiB.
const maxTokenBytes = 16 << 10

type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// signES256 returns the compact JWS of payload (already JSON) signed with
// key: base64url(header).base64url(payload).base64url(r||s).
func signES256(key *ecdsa.PrivateKey, kid string, payload []byte) (string, error) {
	hdr, err := json.Marshal(jwsHeader{Alg: "ES256", Kid: kid})
	if err != nil {
		return "", fmt.Errorf("encoding JWS header: %w", err)
	}
	signing := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// jws is a parsed, not yet verified, compact JWS.
type jws struct {
	header  jwsHeader
	payload []byte
	signing string // header.payload, what the signature covers
	sig     []byte
}

var errMalformed = errors.New("malformed token")

// parseJWS splits and decodes a compact JWS without verifying it. Any
// deviation from the compact form is errMalformed.
func parseJWS(token string) (*jws, error) {
	if len(token) > maxTokenBytes {
		return nil, fmt.Errorf("%w: too long", errMalformed)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: %d parts", errMalformed, len(parts))
	}
	// Strict: one encoding per byte string, so a token cannot be
	// re-spelled (non-zero trailing bits) and still verify.
	enc := base64.RawURLEncoding.Strict()
	hdr, err := enc.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", errMalformed, err)
	}
	payload, err := enc.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", errMalformed, err)
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", errMalformed, err)
	}
	var h jwsHeader
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", errMalformed, err)
	}
	return &jws{header: h, payload: payload, signing: parts[0] + "." + parts[1], sig: sig}, nil
}

// verify checks the ES256 signature with pub. Only ES256 is accepted: a
// token naming another algorithm ("none", HS256 …) is refused outright.
func (j *jws) verify(pub *ecdsa.PublicKey, kid string) error {
	if j.header.Alg != "ES256" {
		return fmt.Errorf("unsupported signing algorithm %q", j.header.Alg)
	}
	if j.header.Kid != "" && j.header.Kid != kid {
		return fmt.Errorf("unknown key id %q", j.header.Kid)
	}
	if len(j.sig) != 64 {
		return fmt.Errorf("signature is %d bytes, want 64", len(j.sig))
	}
	r := new(big.Int).SetBytes(j.sig[:32])
	s := new(big.Int).SetBytes(j.sig[32:])
	sum := sha256.Sum256([]byte(j.signing))
	if !ecdsa.Verify(pub, sum[:], r, s) {
		return errors.New("invalid signature")
	}
	return nil
}
