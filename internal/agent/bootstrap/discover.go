package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrCAHashMismatch is returned (wrapped) by Discover when no self-signed
// CA the server presents has the expected hash: the server is not the one
// the join command was made for.
var ErrCAHashMismatch = errors.New("bootstrap: server CA does not match the CA hash")

// CAHash returns "sha256:<hex>" of ca's SubjectPublicKeyInfo (the same pin
// as tokens.CAHash).
func CAHash(ca *x509.Certificate) string {
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Discover fetches the server's CA without trusting anything yet: it dials
// server (an https URL) with verification off, takes the chain the server
// presents (skiff's serving chain ends with the CA certificate), picks the
// self-signed CA whose hash is caHash, and verifies the serving certificate
// against it for the URL's host. It returns the CA as PEM. Nothing but the
// TLS handshake is sent to the server.
func Discover(ctx context.Context, server, caHash string) ([]byte, error) {
	want, err := parseCAHash(caHash)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return nil, fmt.Errorf("bootstrap: server %q is not an https URL", server)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	d := tls.Dialer{Config: &tls.Config{
		// Verified below against the pinned CA, before anything is sent.
		InsecureSkipVerify: true, //nolint:gosec
		ServerName:         host,
		MinVersion:         tls.VersionTLS12,
	}}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("bootstrap: dialing %s: %w", server, err)
	}
	chain := conn.(*tls.Conn).ConnectionState().PeerCertificates
	_ = conn.Close()
	if len(chain) == 0 {
		return nil, fmt.Errorf("bootstrap: %s presented no certificate", server)
	}

	var ca *x509.Certificate
	var seen []string
	for i := len(chain) - 1; i >= 0; i-- {
		c := chain[i]
		if !c.IsCA || !bytes.Equal(c.RawSubject, c.RawIssuer) || c.CheckSignatureFrom(c) != nil {
			continue
		}
		sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		if subtle.ConstantTimeCompare(sum[:], want) == 1 {
			ca = c
			break
		}
		seen = append(seen, CAHash(c))
	}
	if ca == nil {
		if len(seen) == 0 {
			return nil, fmt.Errorf("bootstrap: %s presented no self-signed CA certificate in its chain", server)
		}
		return nil, fmt.Errorf("%w: %s presents %s, want %s", ErrCAHashMismatch, server, strings.Join(seen, ", "), caHash)
	}

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != ca {
			inter.AddCert(c)
		}
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{
		DNSName: host, Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return nil, fmt.Errorf("bootstrap: verifying %s's serving certificate against the pinned CA: %w", server, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), nil
}

// parseCAHash decodes "sha256:<64 hex digits>".
func parseCAHash(s string) ([]byte, error) {
	hexSum, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return nil, fmt.Errorf("bootstrap: CA hash %q does not start with \"sha256:\"", s)
	}
	sum, err := hex.DecodeString(hexSum)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("bootstrap: CA hash %q is not sha256: and 64 hex digits", s)
	}
	return sum, nil
}
