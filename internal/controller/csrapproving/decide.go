package csrapproving

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
)

// Well-known names (as internal/auth names them).
const (
	nodeUserPrefix     = "system:node:"
	nodesGroup         = "system:nodes"
	bootstrappersGroup = "system:bootstrappers"
)

// Messages of the Approved condition, as upstream words them.
const (
	msgBootstrap = "Auto approving kubelet client certificate after SubjectAccessReview."
	msgRenewal   = "Auto approving self kubelet client certificate after SubjectAccessReview."
)

// Decision is what Decide concluded for one CSR.
type Decision struct {
	// Approve is true when the controller approves the request.
	Approve bool
	// Message is the Approved condition's message when Approve is set,
	// otherwise why the request is left alone (for logs).
	Message string
}

// Decide reports whether csr is a node client certificate request this
// controller approves. It is pure: it reads only csr.
//
// It approves when every one of these holds:
//   - the signer is kubernetes.io/kube-apiserver-client-kubelet;
//   - the CSR is neither approved nor denied yet;
//   - the request parses, its signature checks, its subject is CN
//     system:node:<name> and O exactly [system:nodes], it has no SANs, and
//     its usages are digital signature and client auth, optionally key
//     encipherment;
//   - the requester is in group system:bootstrappers (joining), or is in
//     group system:nodes with spec.username equal to the CN (renewal).
func Decide(csr *certificatesv1.CertificateSigningRequest) Decision {
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName {
		return Decision{Message: fmt.Sprintf("signer %q is not handled", csr.Spec.SignerName)}
	}
	if hasCondition(csr, certificatesv1.CertificateApproved) || hasCondition(csr, certificatesv1.CertificateDenied) {
		return Decision{Message: "already approved or denied"}
	}
	cn, err := nodeClientRequest(csr)
	if err != nil {
		return Decision{Message: "not a node client certificate request: " + err.Error()}
	}
	switch {
	case slices.Contains(csr.Spec.Groups, bootstrappersGroup):
		return Decision{Approve: true, Message: msgBootstrap}
	case slices.Contains(csr.Spec.Groups, nodesGroup) && csr.Spec.Username == cn:
		return Decision{Approve: true, Message: msgRenewal}
	default:
		return Decision{Message: fmt.Sprintf("requester %q (groups %q) is neither a bootstrapper nor the node %q itself",
			csr.Spec.Username, csr.Spec.Groups, cn)}
	}
}

// nodeClientRequest checks the shape of a node client certificate request
// and returns its common name.
func nodeClientRequest(csr *certificatesv1.CertificateSigningRequest) (string, error) {
	blk, _ := pem.Decode(csr.Spec.Request)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return "", errors.New("request holds no PEM CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return "", fmt.Errorf("parsing request: %w", err)
	}
	if err := req.CheckSignature(); err != nil {
		return "", fmt.Errorf("checking request signature: %w", err)
	}
	if !slices.Equal(req.Subject.Organization, []string{nodesGroup}) {
		return "", fmt.Errorf("organization %q is not exactly [%q]", req.Subject.Organization, nodesGroup)
	}
	cn := req.Subject.CommonName
	if !strings.HasPrefix(cn, nodeUserPrefix) || len(cn) == len(nodeUserPrefix) {
		return "", fmt.Errorf("common name %q is not %s<node>", cn, nodeUserPrefix)
	}
	if len(req.DNSNames)+len(req.EmailAddresses)+len(req.IPAddresses)+len(req.URIs) > 0 {
		return "", errors.New("subject alternative names are not allowed")
	}
	seen := map[certificatesv1.KeyUsage]bool{}
	for _, u := range csr.Spec.Usages {
		switch u {
		case certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth:
			seen[u] = true
		default:
			return "", fmt.Errorf("usage %q is not allowed", u)
		}
	}
	if !seen[certificatesv1.UsageDigitalSignature] || !seen[certificatesv1.UsageClientAuth] {
		return "", fmt.Errorf("usages %q lack %q or %q", csr.Spec.Usages, certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth)
	}
	return cn, nil
}

// hasCondition reports whether csr has condition t with status True (or
// empty, which upstream treats as True).
func hasCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && (c.Status == "" || c.Status == corev1.ConditionTrue) {
			return true
		}
	}
	return false
}
