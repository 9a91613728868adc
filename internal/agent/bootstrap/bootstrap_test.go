package bootstrap

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/pki"
)

func TestOutcome(t *testing.T) {
	t.Parallel()
	csr := func(conds []certificatesv1.CertificateSigningRequestCondition, cert string) *certificatesv1.CertificateSigningRequest {
		return &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "node-csr-x", UID: "u1"},
			Status:     certificatesv1.CertificateSigningRequestStatus{Conditions: conds, Certificate: []byte(cert)},
		}
	}
	cond := func(t certificatesv1.RequestConditionType, s corev1.ConditionStatus) certificatesv1.CertificateSigningRequestCondition {
		return certificatesv1.CertificateSigningRequestCondition{Type: t, Status: s, Reason: "R", Message: "M"}
	}
	approved := cond(certificatesv1.CertificateApproved, corev1.ConditionTrue)
	tests := []struct {
		name     string
		csr      *certificatesv1.CertificateSigningRequest
		uid      string
		wantDone bool
		wantCert string
		wantErr  error // errors.Is target; nil means no error
		anyErr   bool
	}{
		{"pending", csr(nil, ""), "u1", false, "", nil, false},
		{"approved, not signed", csr([]certificatesv1.CertificateSigningRequestCondition{approved}, ""), "u1", false, "", nil, false},
		{"signed", csr([]certificatesv1.CertificateSigningRequestCondition{approved}, "PEM"), "u1", true, "PEM", nil, false},
		{"denied", csr([]certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateDenied, corev1.ConditionTrue)}, ""), "u1", true, "", ErrDenied, true},
		{"denied with empty status", csr([]certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateDenied, "")}, ""), "u1", true, "", ErrDenied, true},
		{"denied false is not denied", csr([]certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateDenied, corev1.ConditionFalse)}, ""), "u1", false, "", nil, false},
		{"failed", csr([]certificatesv1.CertificateSigningRequestCondition{approved, cond(certificatesv1.CertificateFailed, corev1.ConditionTrue)}, ""), "u1", true, "", ErrFailed, true},
		{"replaced", csr(nil, "PEM"), "u2", true, "", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			done, cert, err := outcome(tc.csr, types.UID(tc.uid))
			if diff := cmp.Diff([]any{tc.wantDone, tc.wantCert}, []any{done, string(cert)}); diff != "" {
				t.Errorf("done, cert (-want +got):\n%s", diff)
			}
			if (err != nil) != tc.anyErr || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("err = %v, want %v (any error: %v)", err, tc.wantErr, tc.anyErr)
			}
		})
	}
}

func TestFresh(t *testing.T) {
	t.Parallel()
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := &x509.Certificate{NotBefore: nb, NotAfter: nb.Add(100 * time.Hour)}
	tests := []struct {
		name string
		now  time.Time
		want bool
	}{
		{"before validity", nb.Add(-time.Minute), false},
		{"just issued", nb.Add(time.Minute), true},
		{"79% of life", nb.Add(79 * time.Hour), true},
		{"80% of life", nb.Add(80 * time.Hour), false},
		{"expired", nb.Add(101 * time.Hour), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := fresh(cert, tc.now); got != tc.want {
				t.Errorf("fresh at %v = %v, want %v", tc.now, got, tc.want)
			}
		})
	}
	if got, want := renewTime(cert), nb.Add(80*time.Hour); !got.Equal(want) {
		t.Errorf("renewTime = %v, want %v", got, want)
	}
}

func TestLoadCurrent(t *testing.T) {
	t.Parallel()
	ca, other := newTestCA(t, "cluster-ca"), newTestCA(t, "other-ca")
	write := func(t *testing.T, issuer, inKubeconfig *testCA, node string) string {
		t.Helper()
		key := newKey(t)
		cert := issuer.issue(t, &x509.Certificate{Subject: subject(node), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, &key.PublicKey)
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), KubeconfigFile)
		if err := pki.WriteKubeconfig(path, "https://127.0.0.1:6443",
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inKubeconfig.cert.Raw}),
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name     string
		issuer   *testCA
		kcCA     *testCA
		certNode string
		hash     string
		wantErr  string
	}{
		{"current", ca, ca, "n1", CAHash(ca.cert), ""},
		{"no hash to compare", ca, ca, "n1", "", ""},
		{"another cluster", ca, ca, "n1", CAHash(other.cert), "is for a cluster with CA"},
		{"another node", ca, ca, "n2", CAHash(ca.cert), "not node"},
		{"not issued by the kubeconfig's CA", other, ca, "n1", "", "not issued by its CA"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := write(t, tc.issuer, tc.kcCA, tc.certNode)
			_, err := loadCurrent(path, "n1", tc.hash)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("loadCurrent = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("loadCurrent = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
	if _, err := loadCurrent(filepath.Join(t.TempDir(), "missing"), "n1", ""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("loadCurrent of a missing file = %v, want ErrNotExist", err)
	}
}
