package builtin

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/auth"
)

func TestCSRRequesterFromContext(t *testing.T) {
	r := groupResource(t, "certificates.k8s.io", "certificatesigningrequests")
	claimed := certificatesv1.CertificateSigningRequestSpec{
		Request: []byte(testCSRPEM), SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
		Usages:   []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth},
		Username: "system:node:other", UID: "forged", Groups: []string{auth.BootstrappersGroup, auth.NodesGroup},
		Extra: map[string]certificatesv1.ExtraValue{"forged": {"x"}},
	}
	boot := auth.User{Name: "system:bootstrap:abcdef", Groups: []string{auth.BootstrappersGroup, auth.AllAuthenticated}}
	withExtra := auth.User{Name: "alice", UID: "u-1", Groups: []string{auth.AllAuthenticated}, Extra: map[string][]string{"scopes": {"a", "b"}}}
	tests := []struct {
		name string
		ctx  context.Context
		want certificatesv1.CertificateSigningRequestSpec
	}{
		{name: "no user: as given", ctx: context.Background(), want: claimed},
		{name: "bootstrap token user", ctx: auth.WithUser(context.Background(), boot), want: func() certificatesv1.CertificateSigningRequestSpec {
			s := *claimed.DeepCopy()
			s.Username, s.UID, s.Groups, s.Extra = boot.Name, "", boot.Groups, nil
			return s
		}()},
		{name: "user with uid and extra", ctx: auth.WithUser(context.Background(), withExtra), want: func() certificatesv1.CertificateSigningRequestSpec {
			s := *claimed.DeepCopy()
			s.Username, s.UID, s.Groups = withExtra.Name, withExtra.UID, withExtra.Groups
			s.Extra = map[string]certificatesv1.ExtraValue{"scopes": {"a", "b"}}
			return s
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: *claimed.DeepCopy()}
			csr.Status.Certificate = []byte("sneaked in")
			r.Strategy.PrepareForCreate(tt.ctx, csr)
			if diff := cmp.Diff(tt.want, csr.Spec); diff != "" {
				t.Errorf("spec after PrepareForCreate (-want +got):\n%s", diff)
			}
			if len(csr.Status.Certificate) != 0 {
				t.Errorf("status not cleared: %+v", csr.Status)
			}
		})
	}
}

func TestCSRStatusKeepsApproval(t *testing.T) {
	st := csrStrategy()
	approved := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}
	denied := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue}
	failed := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue}
	old := &certificatesv1.CertificateSigningRequest{Status: certificatesv1.CertificateSigningRequestStatus{
		Conditions: []certificatesv1.CertificateSigningRequestCondition{approved}}}

	// Through /status: Approved stays, Denied cannot be added, Failed can.
	obj := old.DeepCopy()
	obj.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{denied, failed}
	st.PrepareForStatusUpdate(context.Background(), obj, old)
	if got := obj.Status.Conditions; len(got) != 2 || got[0].Type != certificatesv1.CertificateApproved || got[1].Type != certificatesv1.CertificateFailed {
		t.Errorf("status update conditions = %+v, want [Approved Failed]", got)
	}

	// Through /approval the conditions are the request's.
	obj = old.DeepCopy()
	obj.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{denied}
	st.PrepareForStatusUpdate(WithCSRApproval(context.Background()), obj, old)
	if got := obj.Status.Conditions; len(got) != 1 || got[0].Type != certificatesv1.CertificateDenied {
		t.Errorf("approval conditions = %+v, want [Denied]", got)
	}
}
