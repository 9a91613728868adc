package tokens

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The paths of the service account issuer discovery documents, as
// upstream's API server serves them (ServiceAccountIssuerDiscovery).
const (
	OpenIDConfigPath = "/.well-known/openid-configuration"
	JWKSPath         = "/openid/v1/jwks"
)

// openIDConfig is the OpenID Connect discovery document: just what a
// relying party needs to verify service account tokens.
type openIDConfig struct {
	Issuer        string   `json:"issuer"`
	JWKSURI       string   `json:"jwks_uri"`
	ResponseTypes []string `json:"response_types_supported"`
	SubjectTypes  []string `json:"subject_types_supported"`
	SigningAlgs   []string `json:"id_token_signing_alg_values_supported"`
}

// jwk is one JSON Web Key (RFC 7517) of an EC P-256 public key.
type jwk struct {
	Use string `json:"use"`
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Crv string `json:"crv"`
	Alg string `json:"alg"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// DiscoveryHandler serves the issuer's OpenID Connect discovery document
// at OpenIDConfigPath and its public keys at JWKSPath (a trailing slash
// is accepted on both), so that systems outside the cluster can verify
// service account tokens, as upstream does. jwksURI is where the keys can
// be fetched (upstream: the API server's external address + JWKSPath).
// Only GET and HEAD are served; both documents may be cached for an hour.
// It fails if the issuer or jwksURI is not an https URL, as upstream
// requires for discovery.
func (i *Issuer) DiscoveryHandler(jwksURI string) (http.Handler, error) {
	for _, u := range []string{i.issuer, jwksURI} {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "https" || p.Host == "" {
			return nil, fmt.Errorf("service account issuer discovery needs https URLs, got %q", u)
		}
	}
	config, err := json.Marshal(openIDConfig{
		Issuer:        i.issuer,
		JWKSURI:       jwksURI,
		ResponseTypes: []string{"id_token"},
		SubjectTypes:  []string{"public"},
		SigningAlgs:   []string{"ES256"},
	})
	if err != nil {
		return nil, fmt.Errorf("encoding the discovery document: %w", err)
	}
	pub, err := i.key.PublicKey.ECDH()
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	point := pub.Bytes() // 0x04 || X || Y, 32 bytes each for P-256
	keys, err := json.Marshal(jwkSet{Keys: []jwk{{
		Use: "sig", Kty: "EC", Kid: i.kid, Crv: "P-256", Alg: "ES256",
		X: base64.RawURLEncoding.EncodeToString(point[1:33]),
		Y: base64.RawURLEncoding.EncodeToString(point[33:65]),
	}}})
	if err != nil {
		return nil, fmt.Errorf("encoding the key set: %w", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		var contentType string
		switch strings.TrimSuffix(r.URL.Path, "/") {
		case OpenIDConfigPath:
			body, contentType = config, "application/json"
		case JWKSPath:
			body, contentType = keys, "application/jwk-set+json"
		default:
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	}), nil
}
