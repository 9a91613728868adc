package tokens

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDiscoveryDocuments checks the OpenID discovery document and that the
// key set it points to verifies the issuer's tokens.
func TestDiscoveryDocuments(t *testing.T) {
	iss := newTestIssuer(t, "")
	const jwksURI = "https://10.0.0.1:6443/openid/v1/jwks"
	h, err := iss.DiscoveryHandler(jwksURI)
	if err != nil {
		t.Fatalf("DiscoveryHandler: %v", err)
	}
	get := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}

	rec := get(http.MethodGet, OpenIDConfigPath)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %q", OpenIDConfigPath, rec.Code, rec.Header().Get("Content-Type"))
	}
	var cfg map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &cfg); err != nil {
		t.Fatalf("decoding the discovery document: %v", err)
	}
	if cfg["issuer"] != DefaultIssuer || cfg["jwks_uri"] != jwksURI {
		t.Errorf("issuer %v, jwks_uri %v; want %s, %s", cfg["issuer"], cfg["jwks_uri"], DefaultIssuer, jwksURI)
	}
	if algs, _ := cfg["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "ES256" {
		t.Errorf("signing algorithms %v, want [ES256]", cfg["id_token_signing_alg_values_supported"])
	}

	rec = get(http.MethodGet, JWKSPath+"/")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("GET %s/: %d %q", JWKSPath, rec.Code, rec.Header().Get("Content-Type"))
	}
	var set jwkSet
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("key set %s: %v", rec.Body, err)
	}
	k := set.Keys[0]
	coord := func(s string) *big.Int {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) != 32 {
			t.Fatalf("coordinate %q: %d bytes, %v", s, len(b), err)
		}
		return new(big.Int).SetBytes(b)
	}
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: coord(k.X), Y: coord(k.Y)}

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sa", UID: "uid-1"}}
	token, _, err := iss.Issue(sa, []string{"vault"}, time.Hour, nil)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	j, err := parseJWS(token)
	if err != nil {
		t.Fatalf("parsing the token: %v", err)
	}
	if j.header.Kid != k.Kid {
		t.Errorf("token kid %q, key set kid %q", j.header.Kid, k.Kid)
	}
	if err := j.verify(pub, k.Kid); err != nil {
		t.Errorf("the published key does not verify the issuer's token: %v", err)
	}

	if rec := get(http.MethodPost, JWKSPath); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST %s: %d, want 405", JWKSPath, rec.Code)
	}
	if rec := get(http.MethodHead, OpenIDConfigPath); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD %s: %d with %d bytes, want 200 and no body", OpenIDConfigPath, rec.Code, rec.Body.Len())
	}
	if _, err := iss.DiscoveryHandler("http://10.0.0.1:6443/openid/v1/jwks"); err == nil {
		t.Error("DiscoveryHandler accepted a jwks URI that is not https")
	}
}
