package csrsigning

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/controllertest"
	"github.com/skiff-dev/skiff/internal/pki"
)

func TestFileSigner(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pki")
	b, err := pki.Ensure(pki.Options{Dir: dir, Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := FileSigner(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatalf("FileSigner: %v", err)
	}
	if !s.CA().Equal(b.CA) {
		t.Errorf("FileSigner CA differs from the pki bundle's")
	}
	if _, err := FileSigner(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "admin.key")); err == nil {
		t.Errorf("FileSigner with a mismatched key succeeded")
	}
	if _, err := FileSigner(filepath.Join(dir, "missing.crt"), filepath.Join(dir, "ca.key")); err == nil {
		t.Errorf("FileSigner with a missing file succeeded")
	}
}

// approve marks csr approved through /approval, as kubectl certificate
// approve does.
func approve(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	csr, err := client.CertificatesV1().CertificateSigningRequests().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test", Message: "approved by test",
	})
	if _, err := client.CertificatesV1().CertificateSigningRequests().UpdateApproval(t.Context(), name, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("approving %s: %v", name, err)
	}
}

func TestController(t *testing.T) {
	signer := newCA(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	var c *Controller
	client, _ := controllertest.Run(t, 2, func(deps controller.Deps, _ *rest.Config) (controllertest.Runner, error) {
		c = New(deps, signer)
		return c, nil
	})
	api := client.CertificatesV1().CertificateSigningRequests()
	create := func(t *testing.T, name, signerName string, req csrTemplate, usages []certificatesv1.KeyUsage, exp *int32) {
		t.Helper()
		_, err := api.Create(t.Context(), &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request: makeRequest(t, req), SignerName: signerName, Usages: usages, ExpirationSeconds: exp,
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
	}
	nodeUsages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	node := csrTemplate{cn: "system:node:n1", org: []string{"system:nodes"}}

	t.Run("an approved node client request is signed", func(t *testing.T) {
		hour := int32(3600)
		create(t, "node-n1", certificatesv1.KubeAPIServerClientKubeletSignerName, node, nodeUsages, &hour)
		approve(t, client, "node-n1")
		var certPEM []byte
		controllertest.Eventually(t, func() error {
			csr, err := api.Get(t.Context(), "node-n1", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(csr.Status.Certificate) == 0 {
				return errors.New("no certificate yet")
			}
			certPEM = csr.Status.Certificate
			return nil
		})
		blk, _ := pem.Decode(certPEM)
		if blk == nil {
			t.Fatalf("status.certificate is not PEM: %q", certPEM)
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(signer.CA())
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("issued certificate does not verify against the CA: %v", err)
		}
		got := fmt.Sprintf("CN=%s O=%v KU=%v EKU=%v life=%v", cert.Subject.CommonName, cert.Subject.Organization,
			cert.KeyUsage, cert.ExtKeyUsage, cert.NotAfter.Sub(cert.NotBefore))
		want := fmt.Sprintf("CN=%s O=%v KU=%v EKU=%v life=%v", "system:node:n1", []string{"system:nodes"},
			x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, time.Hour+backdate)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("certificate (-want +got):\n%s", diff)
		}
	})

	t.Run("an approved invalid request fails", func(t *testing.T) {
		create(t, "node-bad", certificatesv1.KubeAPIServerClientKubeletSignerName,
			csrTemplate{cn: "system:node:n1", org: []string{"system:masters"}}, nodeUsages, nil)
		approve(t, client, "node-bad")
		controllertest.Eventually(t, func() error {
			csr, err := api.Get(t.Context(), "node-bad", metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, c := range csr.Status.Conditions {
				if c.Type == certificatesv1.CertificateFailed && c.Reason == ReasonValidationFailure {
					if len(csr.Status.Certificate) > 0 {
						return errors.New("failed request has a certificate")
					}
					return nil
				}
			}
			return fmt.Errorf("no Failed condition yet: %+v", csr.Status.Conditions)
		})
	})

	t.Run("pending, denied and foreign requests are left alone", func(t *testing.T) {
		create(t, "pending", certificatesv1.KubeAPIServerClientKubeletSignerName, node, nodeUsages, nil)
		create(t, "foreign", "example.com/other", node, nodeUsages, nil)
		approve(t, client, "foreign")
		create(t, "denied", certificatesv1.KubeAPIServerClientKubeletSignerName, node, nodeUsages, nil)
		csr, err := api.Get(t.Context(), "denied", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue, Reason: "Test"}}
		if _, err := api.UpdateApproval(t.Context(), "denied", csr, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// A marker request created last and signed proves the controller
		// has processed the events before it (one ordered watch, and
		// direct syncs below check the rest deterministically).
		create(t, "marker", certificatesv1.KubeAPIServerClientSignerName, csrTemplate{cn: "m"}, []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth}, nil)
		approve(t, client, "marker")
		controllertest.Eventually(t, func() error {
			csr, err := api.Get(t.Context(), "marker", metav1.GetOptions{})
			if err != nil || len(csr.Status.Certificate) == 0 {
				return fmt.Errorf("marker not signed yet (err %v)", err)
			}
			return nil
		})
		for _, name := range []string{"pending", "foreign", "denied"} {
			if _, err := c.sync(t.Context(), name); err != nil {
				t.Errorf("sync %s: %v", name, err)
			}
			csr, err := api.Get(t.Context(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(csr.Status.Certificate) > 0 {
				t.Errorf("%s got a certificate", name)
			}
			for _, cond := range csr.Status.Conditions {
				if cond.Type == certificatesv1.CertificateFailed {
					t.Errorf("%s got a Failed condition", name)
				}
			}
		}
	})
}
