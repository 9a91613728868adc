package csrsigning

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
)

const (
	// MinDuration is the shortest certificate issued (upstream's minimum
	// spec.expirationSeconds).
	MinDuration = 10 * time.Minute
	// MaxDuration is the longest certificate issued, and the lifetime of
	// one whose request gives no spec.expirationSeconds (upstream's
	// --cluster-signing-duration default).
	MaxDuration = 365 * 24 * time.Hour
	// backdate is how far before now a certificate becomes valid, for
	// clocks that lag (upstream backdates by 5 minutes too).
	backdate = 5 * time.Minute
)

// nodeUserPrefix and nodesGroup are node agents' user prefix and group.
const (
	nodeUserPrefix = "system:node:"
	nodesGroup     = "system:nodes"
)

// Signers handled by this controller.
var signers = []string{
	certificatesv1.KubeAPIServerClientKubeletSignerName,
	certificatesv1.KubeAPIServerClientSignerName,
	certificatesv1.KubeletServingSignerName,
}

// Handles reports whether this controller signs for signerName.
func Handles(signerName string) bool { return slices.Contains(signers, signerName) }

// ParseRequest decodes and parses the PEM CERTIFICATE REQUEST of a CSR and
// checks its self-signature (proof of possession of the key).
func ParseRequest(pemData []byte) (*x509.CertificateRequest, error) {
	blk, _ := pem.Decode(pemData)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("request holds no PEM CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate request: %w", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("checking certificate request signature: %w", err)
	}
	return req, nil
}

// Validate checks that a request fits its signer, as upstream's signer
// does; the error says what does not fit:
//
//   - kube-apiserver-client-kubelet: CN system:node:<name>, O exactly
//     [system:nodes], no SANs, usages digital signature and client auth,
//     optionally key encipherment.
//   - kubelet-serving: CN system:node:<name>, O exactly [system:nodes],
//     at least one DNS or IP SAN, no email or URI SANs, usages digital
//     signature and server auth, optionally key encipherment.
//   - kube-apiserver-client: usages include client auth and are among
//     client auth, digital signature and key encipherment.
func Validate(signerName string, req *x509.CertificateRequest, usages []certificatesv1.KeyUsage) error {
	switch signerName {
	case certificatesv1.KubeAPIServerClientKubeletSignerName:
		if err := nodeSubject(req); err != nil {
			return err
		}
		if len(req.DNSNames) > 0 || len(req.EmailAddresses) > 0 || len(req.IPAddresses) > 0 || len(req.URIs) > 0 {
			return errors.New("a node client certificate may not have subject alternative names")
		}
		return exactUsages(usages, certificatesv1.UsageClientAuth)
	case certificatesv1.KubeletServingSignerName:
		if err := nodeSubject(req); err != nil {
			return err
		}
		if len(req.DNSNames) == 0 && len(req.IPAddresses) == 0 {
			return errors.New("a node serving certificate needs at least one DNS or IP subject alternative name")
		}
		if len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
			return errors.New("a node serving certificate may not have email or URI subject alternative names")
		}
		return exactUsages(usages, certificatesv1.UsageServerAuth)
	case certificatesv1.KubeAPIServerClientSignerName:
		hasClientAuth := false
		for _, u := range usages {
			switch u {
			case certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment:
			case certificatesv1.UsageClientAuth:
				hasClientAuth = true
			default:
				return fmt.Errorf("invalid usage for client certificate: %s", u)
			}
		}
		if !hasClientAuth {
			return fmt.Errorf("missing required usage for client certificate: %s", certificatesv1.UsageClientAuth)
		}
		return nil
	default:
		return fmt.Errorf("signer %q is not handled by this controller", signerName)
	}
}

func nodeSubject(req *x509.CertificateRequest) error {
	if !slices.Equal(req.Subject.Organization, []string{nodesGroup}) {
		return fmt.Errorf("subject organization must be exactly [%q], not %q", nodesGroup, req.Subject.Organization)
	}
	cn := req.Subject.CommonName
	if !strings.HasPrefix(cn, nodeUserPrefix) || len(cn) == len(nodeUserPrefix) {
		return fmt.Errorf("subject common name must be %q followed by the node name, not %q", nodeUserPrefix, cn)
	}
	return nil
}

// exactUsages accepts digital signature + ext (+ key encipherment), in any
// order, nothing else.
func exactUsages(usages []certificatesv1.KeyUsage, ext certificatesv1.KeyUsage) error {
	seen := map[certificatesv1.KeyUsage]bool{}
	for _, u := range usages {
		switch u {
		case certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, ext:
			seen[u] = true
		default:
			return fmt.Errorf("usage %q not allowed (allowed: %s, %s, optionally %s)", u,
				certificatesv1.UsageDigitalSignature, ext, certificatesv1.UsageKeyEncipherment)
		}
	}
	for _, u := range []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, ext} {
		if !seen[u] {
			return fmt.Errorf("missing required usage %q", u)
		}
	}
	return nil
}

// keyUsages maps API usages to x509 ones; usages this controller never
// accepts (see Validate) are absent.
var keyUsages = map[certificatesv1.KeyUsage]x509.KeyUsage{
	certificatesv1.UsageDigitalSignature: x509.KeyUsageDigitalSignature,
	certificatesv1.UsageKeyEncipherment:  x509.KeyUsageKeyEncipherment,
}

var extKeyUsages = map[certificatesv1.KeyUsage]x509.ExtKeyUsage{
	certificatesv1.UsageClientAuth: x509.ExtKeyUsageClientAuth,
	certificatesv1.UsageServerAuth: x509.ExtKeyUsageServerAuth,
}

// Template returns the certificate to issue for a validated request: the
// request's subject and SANs, the usages, valid from now-5m for the
// requested duration (see Duration), truncated to the CA's NotAfter. It
// fails when the CA is no longer valid at now.
func Template(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage, expirationSeconds *int32, ca *x509.Certificate, now time.Time) (*x509.Certificate, error) {
	if !now.Before(ca.NotAfter) {
		return nil, fmt.Errorf("the CA %q expired at %s", ca.Subject.CommonName, ca.NotAfter.UTC().Format(time.RFC3339))
	}
	t := &x509.Certificate{
		Subject:        req.Subject,
		DNSNames:       req.DNSNames,
		IPAddresses:    req.IPAddresses,
		EmailAddresses: req.EmailAddresses,
		URIs:           req.URIs,
		NotBefore:      now.Add(-backdate),
		NotAfter:       now.Add(Duration(expirationSeconds)),
	}
	// The CSR's own extensions (other than the SANs above) are ignored.
	t.Subject.ExtraNames = nil
	if t.NotBefore.Before(ca.NotBefore) {
		t.NotBefore = ca.NotBefore
	}
	if t.NotAfter.After(ca.NotAfter) {
		t.NotAfter = ca.NotAfter
	}
	for _, u := range usages {
		if ku, ok := keyUsages[u]; ok {
			t.KeyUsage |= ku
		}
		if eku, ok := extKeyUsages[u]; ok && !slices.Contains(t.ExtKeyUsage, eku) {
			t.ExtKeyUsage = append(t.ExtKeyUsage, eku)
		}
	}
	return t, nil
}

// Duration is the lifetime for spec.expirationSeconds: MaxDuration when nil,
// otherwise clamped to [MinDuration, MaxDuration].
func Duration(expirationSeconds *int32) time.Duration {
	if expirationSeconds == nil {
		return MaxDuration
	}
	d := time.Duration(*expirationSeconds) * time.Second
	return min(max(d, MinDuration), MaxDuration)
}
