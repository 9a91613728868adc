package tokens

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKeyFiles(t *testing.T) {
	t.Parallel()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384DER, err := x509.MarshalPKCS8PrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		key     []byte // sa.key written before NewIssuer; nil: none
		wantErr bool
		wantKey *ecdsa.PrivateKey
	}{
		{name: "created"},
		{name: "SEC 1 key reused", key: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), wantKey: ec},
		{name: "not PEM", key: []byte("hello"), wantErr: true},
		{name: "P-384", key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER}), wantErr: true},
		{name: "RSA", key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}), wantErr: true},
		{name: "certificate", key: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "sa")
			if tc.key != nil {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "sa.key"), tc.key, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			iss, err := NewIssuer(dir, "", nil)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("NewIssuer succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("NewIssuer: %v", err)
			}
			if tc.wantKey != nil && !iss.PublicKey().Equal(&tc.wantKey.PublicKey) {
				t.Errorf("NewIssuer did not use the key in the directory")
			}
			st, err := os.Stat(filepath.Join(dir, "sa.key"))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("sa.key mode = %v, want 0600", st.Mode().Perm())
			}
			pubPEM, err := os.ReadFile(filepath.Join(dir, "sa.pub"))
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(pubPEM)
			if block == nil || block.Type != "PUBLIC KEY" {
				t.Fatalf("sa.pub is not a PEM public key")
			}
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil || !iss.PublicKey().Equal(pub) {
				t.Errorf("sa.pub does not hold the issuer's public key (%v)", err)
			}
			if diff := cmp.Diff([]string{DefaultIssuer}, iss.APIAudiences()); diff != "" {
				t.Errorf("default API audiences (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := NewIssuer(t.TempDir(), LegacyIssuer, nil); err == nil {
		t.Errorf("NewIssuer with the legacy issuer name succeeded")
	}
}

func TestClaimsDecoding(t *testing.T) {
	t.Parallel()
	d := func(v int64) *numericDate { n := numericDate(v); return &n }
	tests := []struct {
		name    string
		in      string
		want    claims
		wantErr bool
	}{
		{name: "audience as a string", in: `{"aud":"a"}`, want: claims{Audience: audience{"a"}}},
		{name: "audience as a list", in: `{"aud":["a","b"]}`, want: claims{Audience: audience{"a", "b"}}},
		{name: "audience as an object", in: `{"aud":{}}`, wantErr: true},
		{name: "fractional dates", in: `{"exp":1700000000.9,"nbf":1e9}`, want: claims{Expiry: d(1700000000), NotBefore: d(1000000000)}},
		{name: "date out of range", in: `{"exp":1e300}`, wantErr: true},
		{name: "date as a string", in: `{"exp":"soon"}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got claims
			err := json.Unmarshal([]byte(tc.in), &got)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("claims (-want +got):\n%s", diff)
				}
			}
		})
	}
}
