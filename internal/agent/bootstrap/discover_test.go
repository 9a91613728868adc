package bootstrap

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testCA is a CA that can issue certificates in tests.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// issue signs a leaf for pub with the given template fields filled in.
func (ca *testCA) issue(t testing.TB, tmpl *x509.Certificate, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// tlsServer serves HTTPS on 127.0.0.1 presenting chain (DER) for a
// certificate signed by signer.
func tlsServer(t *testing.T, signer *testCA, extra ...*x509.Certificate) string {
	t.Helper()
	key := newKey(t)
	leaf := signer.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}, &key.PublicKey)
	chain := [][]byte{leaf.Raw}
	for _, c := range extra {
		chain = append(chain, c.Raw)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("Discover sent a request: %s %s", r.Method, r.URL)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	ca, other := newTestCA(t, "cluster-ca"), newTestCA(t, "other-ca")
	good := tlsServer(t, ca, ca.cert)
	noCA := tlsServer(t, ca)
	// Presents the pinned CA but is served with a certificate of another CA.
	impostor := tlsServer(t, other, ca.cert)
	tests := []struct {
		name    string
		server  string
		hash    string
		wantErr string // substring; "" means success
		is      error
	}{
		{"matching hash", good, CAHash(ca.cert), "", nil},
		{"upper-case hex is not the format", good, strings.ToUpper(CAHash(ca.cert)), "does not start", nil},
		{"wrong hash", good, CAHash(other.cert), "does not match", ErrCAHashMismatch},
		{"no CA in the chain", noCA, CAHash(ca.cert), "no self-signed CA", nil},
		{"serving certificate from another CA", impostor, CAHash(ca.cert), "verifying", nil},
		{"malformed hash", good, "sha256:abcd", "64 hex digits", nil},
		{"not https", strings.Replace(good, "https", "http", 1), CAHash(ca.cert), "not an https URL", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			got, err := Discover(ctx, tc.server, tc.hash)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Discover = %v, want error containing %q", err, tc.wantErr)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("Discover error %v is not %v", err, tc.is)
				}
				return
			}
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			want := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
			if !bytes.Equal(got, want) {
				t.Errorf("Discover returned\n%s\nwant\n%s", got, want)
			}
		})
	}
}
