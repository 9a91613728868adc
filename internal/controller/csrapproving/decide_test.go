package csrapproving

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
)

type reqOpts struct {
	cn  string
	org []string
	dns []string
}

func makeRequest(t testing.TB, r reqOpts) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: r.cn, Organization: r.org}, DNSNames: r.dns,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestDecide(t *testing.T) {
	t.Parallel()
	ds, ke, ca, sa := certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth, certificatesv1.UsageServerAuth
	node := reqOpts{cn: "system:node:n1", org: []string{"system:nodes"}}
	// csr builds a request; mutate adjusts it.
	csr := func(r reqOpts, user string, groups []string, mutate ...func(*certificatesv1.CertificateSigningRequest)) *certificatesv1.CertificateSigningRequest {
		c := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: makeRequest(t, r), SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
			Usages: []certificatesv1.KeyUsage{ds, ca}, Username: user, Groups: groups,
		}}
		for _, m := range mutate {
			m(c)
		}
		return c
	}
	bootstrapper := []string{"system:bootstrappers", "system:authenticated"}
	nodes := []string{"system:nodes", "system:authenticated"}
	tests := []struct {
		name string
		csr  *certificatesv1.CertificateSigningRequest
		want bool
		why  string // substring of the message
	}{
		{"bootstrapper joining", csr(node, "system:bootstrap:abcdef", bootstrapper), true, "Auto approving kubelet client"},
		{"bootstrapper with key encipherment", csr(node, "system:bootstrap:abcdef", bootstrapper, func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = []certificatesv1.KeyUsage{ds, ke, ca}
		}), true, "Auto approving kubelet client"},
		{"node renewing itself", csr(node, "system:node:n1", nodes), true, "Auto approving self kubelet client"},
		{"node renewing another node", csr(node, "system:node:n2", nodes), false, "neither a bootstrapper nor the node"},
		{"node name without the group", csr(node, "system:node:n1", []string{"system:authenticated"}), false, "neither"},
		{"ordinary user", csr(node, "alice", []string{"devs", "system:authenticated"}), false, "neither"},
		{"no requester recorded", csr(node, "", nil), false, "neither"},
		{"other signer", csr(node, "system:bootstrap:abcdef", bootstrapper, func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.SignerName = certificatesv1.KubeAPIServerClientSignerName
		}), false, "not handled"},
		{"already approved", csr(node, "system:bootstrap:abcdef", bootstrapper, func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}
		}), false, "already"},
		{"denied", csr(node, "system:bootstrap:abcdef", bootstrapper, func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue}}
		}), false, "already"},
		{"extra organization", csr(reqOpts{cn: "system:node:n1", org: []string{"system:nodes", "system:masters"}}, "system:bootstrap:abcdef", bootstrapper), false, "organization"},
		{"not a node name", csr(reqOpts{cn: "admin", org: []string{"system:nodes"}}, "system:bootstrap:abcdef", bootstrapper), false, "common name"},
		{"SANs", csr(reqOpts{cn: "system:node:n1", org: []string{"system:nodes"}, dns: []string{"n1"}}, "system:bootstrap:abcdef", bootstrapper), false, "subject alternative names"},
		{"server auth usage", csr(node, "system:bootstrap:abcdef", bootstrapper, func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = []certificatesv1.KeyUsage{ds, ca, sa}
		}), false, "usage"},
		{"missing client auth", csr(node, "system:bootstrap:abcdef", bootstrapper, func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = []certificatesv1.KeyUsage{ds}
		}), false, "lack"},
		{"garbage request", csr(node, "system:bootstrap:abcdef", bootstrapper, func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Request = []byte("not pem")
		}), false, "no PEM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Decide(tc.csr)
			if diff := cmp.Diff(tc.want, got.Approve); diff != "" {
				t.Errorf("Approve (-want +got):\n%s\nmessage: %s", diff, got.Message)
			}
			if !strings.Contains(got.Message, tc.why) {
				t.Errorf("Message = %q, want it to contain %q", got.Message, tc.why)
			}
		})
	}
}
