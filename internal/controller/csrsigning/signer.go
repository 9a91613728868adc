package csrsigning

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
)

// Signer issues certificates with a CA. Implementations must be safe for
// concurrent use.
type Signer interface {
	// Sign returns the DER of a certificate for pub made from template
	// (subject, validity, usages, SANs as given; serial number and issuer
	// are the signer's business).
	Sign(template *x509.Certificate, pub crypto.PublicKey) ([]byte, error)
	// CA is the issuing certificate; callers must not modify it.
	CA() *x509.Certificate
}

// caSigner signs with an in-memory CA key pair.
type caSigner struct {
	ca  *x509.Certificate
	key crypto.Signer
}

var _ Signer = (*caSigner)(nil)

// NewSigner returns a Signer for the CA certificate ca and its private key.
// It fails when ca is not a CA or key does not belong to it.
func NewSigner(ca *x509.Certificate, key crypto.Signer) (Signer, error) {
	if ca == nil || key == nil {
		return nil, errors.New("csrsigning: no CA certificate or key")
	}
	if !ca.IsCA || !ca.BasicConstraintsValid {
		return nil, fmt.Errorf("csrsigning: certificate %q is not a CA", ca.Subject.CommonName)
	}
	if eq, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(ca.PublicKey) {
		return nil, fmt.Errorf("csrsigning: key does not match CA certificate %q", ca.Subject.CommonName)
	}
	return &caSigner{ca: ca, key: key}, nil
}

// FileSigner reads a CA pair in internal/pki's layout (PEM certificate in
// certFile, PEM private key in keyFile, e.g. DIR/pki/ca.crt and ca.key). The
// files are read once; a CA rotation needs a new Signer.
func FileSigner(certFile, keyFile string) (Signer, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("csrsigning: reading CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("csrsigning: reading CA key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("csrsigning: loading CA pair %s, %s: %w", certFile, keyFile, err)
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("csrsigning: %s is not a signing key", keyFile)
	}
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		return nil, fmt.Errorf("csrsigning: %s holds no PEM certificate", certFile)
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("csrsigning: parsing %s: %w", certFile, err)
	}
	return NewSigner(ca, key)
}

// CA implements Signer.
func (s *caSigner) CA() *x509.Certificate { return s.ca }

// Sign implements Signer. It sets a random serial number and never grants
// CA rights.
func (s *caSigner) Sign(template *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("csrsigning: generating serial number: %w", err)
	}
	t := *template
	t.SerialNumber = serial.Add(serial, big.NewInt(1))
	t.IsCA = false
	t.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, &t, s.ca, pub, s.key)
	if err != nil {
		return nil, fmt.Errorf("csrsigning: signing certificate for %q: %w", t.Subject.CommonName, err)
	}
	return der, nil
}
