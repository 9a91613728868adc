package csrsigning

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
)

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

// csrTemplate describes a certificate request for tests.
type csrTemplate struct {
	cn  string
	org []string
	dns []string
	ips []net.IP
}

func makeRequest(t *testing.T, r csrTemplate) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: r.cn, Organization: r.org}, DNSNames: r.dns, IPAddresses: r.ips,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func newCA(t *testing.T, notBefore, notAfter time.Time) Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(ca, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const (
		kubeletClient = certificatesv1.KubeAPIServerClientKubeletSignerName
		client        = certificatesv1.KubeAPIServerClientSignerName
		serving       = certificatesv1.KubeletServingSignerName
	)
	ds, ke := certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment
	ca, sa := certificatesv1.UsageClientAuth, certificatesv1.UsageServerAuth
	node := csrTemplate{cn: "system:node:n1", org: []string{"system:nodes"}}
	nodeSAN := csrTemplate{cn: "system:node:n1", org: []string{"system:nodes"}, dns: []string{"n1"}, ips: []net.IP{net.ParseIP("10.0.0.1")}}
	tests := []struct {
		name    string
		signer  string
		req     csrTemplate
		usages  []certificatesv1.KeyUsage
		wantErr string // substring; "" means valid
	}{
		{"node client", kubeletClient, node, []certificatesv1.KeyUsage{ds, ca}, ""},
		{"node client with key encipherment", kubeletClient, node, []certificatesv1.KeyUsage{ke, ds, ca}, ""},
		{"node client missing client auth", kubeletClient, node, []certificatesv1.KeyUsage{ds}, "missing required usage"},
		{"node client with server auth", kubeletClient, node, []certificatesv1.KeyUsage{ds, ca, sa}, "not allowed"},
		{"node client with SANs", kubeletClient, nodeSAN, []certificatesv1.KeyUsage{ds, ca}, "subject alternative names"},
		{"node client wrong org", kubeletClient, csrTemplate{cn: "system:node:n1", org: []string{"system:nodes", "system:masters"}}, []certificatesv1.KeyUsage{ds, ca}, "organization"},
		{"node client wrong cn", kubeletClient, csrTemplate{cn: "alice", org: []string{"system:nodes"}}, []certificatesv1.KeyUsage{ds, ca}, "common name"},
		{"node client empty node name", kubeletClient, csrTemplate{cn: "system:node:", org: []string{"system:nodes"}}, []certificatesv1.KeyUsage{ds, ca}, "common name"},
		{"serving", serving, nodeSAN, []certificatesv1.KeyUsage{ds, ke, sa}, ""},
		{"serving without SANs", serving, node, []certificatesv1.KeyUsage{ds, sa}, "at least one DNS or IP"},
		{"serving with client auth", serving, nodeSAN, []certificatesv1.KeyUsage{ds, sa, ca}, "not allowed"},
		{"client", client, csrTemplate{cn: "alice", org: []string{"devs"}}, []certificatesv1.KeyUsage{ca}, ""},
		{"client all usages", client, csrTemplate{cn: "alice"}, []certificatesv1.KeyUsage{ds, ke, ca}, ""},
		{"client without client auth", client, csrTemplate{cn: "alice"}, []certificatesv1.KeyUsage{ds}, "missing required usage"},
		{"client with server auth", client, csrTemplate{cn: "alice"}, []certificatesv1.KeyUsage{ca, sa}, "invalid usage"},
		{"other signer", "example.com/foo", node, []certificatesv1.KeyUsage{ds, ca}, "not handled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := ParseRequest(makeRequest(t, tc.req))
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			err = Validate(tc.signer, req, tc.usages)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseRequestRejects(t *testing.T) {
	t.Parallel()
	good := makeRequest(t, csrTemplate{cn: "x"})
	blk, _ := pem.Decode(good)
	tampered := append([]byte(nil), blk.Bytes...)
	tampered[len(tampered)-5] ^= 0xff // inside the signature
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"wrong PEM type", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes})},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1, 2, 3}})},
		{"bad signature", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseRequest(tc.in); err == nil {
				t.Errorf("ParseRequest succeeded, want error")
			}
		})
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	i32 := func(v int32) *int32 { return &v }
	tests := []struct {
		name string
		in   *int32
		want time.Duration
	}{
		{"unset", nil, MaxDuration},
		{"one hour", i32(3600), time.Hour},
		{"below minimum", i32(60), MinDuration},
		{"above maximum", i32(1 << 30), MaxDuration},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Duration(tc.in); got != tc.want {
				t.Errorf("Duration = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	hour := int32(3600)
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth}
	type window struct{ NotBefore, NotAfter time.Time }
	tests := []struct {
		name    string
		ca      Signer
		exp     *int32
		want    window
		wantErr bool
	}{
		{"requested hour", newCA(t, t0.Add(-time.Hour), t0.Add(10*365*24*time.Hour)), &hour, window{t0.Add(-backdate), t0.Add(time.Hour)}, false},
		{"default a year", newCA(t, t0.Add(-time.Hour), t0.Add(10*365*24*time.Hour)), nil, window{t0.Add(-backdate), t0.Add(MaxDuration)}, false},
		{"capped by the CA", newCA(t, t0.Add(-time.Minute), t0.Add(30*time.Minute)), &hour, window{t0.Add(-time.Minute), t0.Add(30 * time.Minute)}, false},
		{"expired CA", newCA(t, t0.Add(-2*time.Hour), t0.Add(-time.Hour)), &hour, window{}, true},
	}
	req, err := ParseRequest(makeRequest(t, csrTemplate{cn: "system:node:n1", org: []string{"system:nodes"}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl, err := Template(req, usages, tc.exp, tc.ca.CA(), t0)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Template succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Template: %v", err)
			}
			if diff := cmp.Diff(tc.want, window{tmpl.NotBefore, tmpl.NotAfter}); diff != "" {
				t.Errorf("validity (-want +got):\n%s", diff)
			}
			der, err := tc.ca.Sign(tmpl, req.PublicKey)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			got := struct {
				CN    string
				O     []string
				KU    x509.KeyUsage
				EKU   []x509.ExtKeyUsage
				IsCA  bool
				Valid bool
			}{cert.Subject.CommonName, cert.Subject.Organization, cert.KeyUsage, cert.ExtKeyUsage, cert.IsCA, cert.CheckSignatureFrom(tc.ca.CA()) == nil}
			want := got
			want.CN, want.O = "system:node:n1", []string{"system:nodes"}
			want.KU, want.EKU = x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
			want.IsCA, want.Valid = false, true
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("certificate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewSignerRejects(t *testing.T) {
	t.Parallel()
	a, b := newCA(t, t0, t0.Add(time.Hour)), newCA(t, t0, t0.Add(time.Hour))
	if _, err := NewSigner(a.CA(), b.(*caSigner).key); err == nil {
		t.Errorf("NewSigner with another CA's key succeeded")
	}
	leafDER, err := a.Sign(&x509.Certificate{Subject: pkix.Name{CommonName: "leaf"}, NotBefore: t0, NotAfter: t0.Add(time.Hour)}, b.(*caSigner).key.Public())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSigner(leaf, b.(*caSigner).key); err == nil {
		t.Errorf("NewSigner with a leaf certificate succeeded")
	}
}
