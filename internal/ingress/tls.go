package ingress

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// FallbackCommonName is the subject CN of the self-signed certificate
// served when no spec.tls entry covers the requested server name.
const FallbackCommonName = "skiff ingress fallback certificate"

// selfSigned makes the fallback certificate: ECDSA P-256, valid for a year
// from now (an hour back, for skewed clocks), for the name ingress.local.
func selfSigned(now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating fallback key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("generating fallback serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: FallbackCommonName},
		DNSNames:     []string{"ingress.local"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing fallback certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing fallback certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// certCache parses TLS secrets into key pairs once per secret
// resourceVersion. Safe for concurrent use.
type certCache struct {
	mu      sync.Mutex
	entries map[types.UID]certEntry // guarded by mu
}

type certEntry struct {
	resourceVersion string
	cert            *tls.Certificate
	err             error
}

// get returns the key pair of a kubernetes.io/tls secret (tls.crt and
// tls.key, PEM).
func (cc *certCache) get(s *corev1.Secret) (*tls.Certificate, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if e, ok := cc.entries[s.UID]; ok && e.resourceVersion == s.ResourceVersion {
		return e.cert, e.err
	}
	cert, err := parseKeyPair(s)
	if cc.entries == nil {
		cc.entries = map[types.UID]certEntry{}
	}
	cc.entries[s.UID] = certEntry{resourceVersion: s.ResourceVersion, cert: cert, err: err}
	return cert, err
}

// retain drops the entries of secrets not in keep (called after a
// rebuild with the secrets that still exist).
func (cc *certCache) retain(keep map[types.UID]bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for uid := range cc.entries {
		if !keep[uid] {
			delete(cc.entries, uid)
		}
	}
}

func parseKeyPair(s *corev1.Secret) (*tls.Certificate, error) {
	if s.Type != corev1.SecretTypeTLS {
		return nil, fmt.Errorf("type is %q, not %q", s.Type, corev1.SecretTypeTLS)
	}
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 || len(key) == 0 {
		return nil, errors.New("no tls.crt or tls.key")
	}
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return nil, fmt.Errorf("parsing key pair: %w", err)
	}
	return &cert, nil
}
