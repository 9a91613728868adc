package apiserver

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/auth"
)

func TestValidateCSRApproval(t *testing.T) {
	cond := func(typ certificatesv1.RequestConditionType, st corev1.ConditionStatus) certificatesv1.CertificateSigningRequestCondition {
		return certificatesv1.CertificateSigningRequestCondition{Type: typ, Status: st}
	}
	type conds = []certificatesv1.CertificateSigningRequestCondition
	approved := cond(certificatesv1.CertificateApproved, corev1.ConditionTrue)
	denied := cond(certificatesv1.CertificateDenied, corev1.ConditionTrue)
	failed := cond(certificatesv1.CertificateFailed, corev1.ConditionTrue)
	tests := []struct {
		name     string
		new, old conds
		want     []string
	}{
		{name: "approve", new: conds{approved}},
		{name: "deny", new: conds{denied}},
		{name: "keep approval, add custom", new: conds{approved, cond("Custom", corev1.ConditionFalse)}, old: conds{approved}},
		{name: "approve and deny", new: conds{approved, denied},
			want: []string{`status.conditions[1].type: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive`}},
		{name: "deny an approved request", new: conds{denied}, old: conds{approved},
			want: []string{`status.conditions: Forbidden: updates may not remove a condition of type "Approved"`}},
		{name: "remove denial", new: nil, old: conds{denied},
			want: []string{`status.conditions: Forbidden: updates may not remove a condition of type "Denied"`}},
		{name: "duplicate", new: conds{approved, approved},
			want: []string{`status.conditions[1].type: Duplicate value: "Approved"`}},
		{name: "duplicate failed", new: conds{failed, failed},
			want: []string{`status.conditions[1].type: Duplicate value: "Failed"`}},
		{name: "approved false", new: conds{cond(certificatesv1.CertificateApproved, corev1.ConditionFalse)},
			want: []string{`status.conditions[0].status: Unsupported value: "False": supported values: "True"`}},
		{name: "no type, no status", new: conds{cond("", "")},
			want: []string{`status.conditions[0].status: Required value`, `status.conditions[0].type: Required value`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := []string{}
			for _, e := range ValidateCSRApproval(tt.new, tt.old) {
				got = append(got, e.Error())
			}
			want := tt.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// signerAuthorizer allows approve on the listed signers names.
type signerAuthorizer struct {
	allowed []string
	asked   []string
}

func (a *signerAuthorizer) Authorize(_ context.Context, attrs auth.Attributes) (auth.Decision, string, error) {
	a.asked = append(a.asked, attrs.Verb+" "+attrs.APIGroup+"/"+attrs.Resource+"/"+attrs.Name)
	for _, n := range a.allowed {
		if attrs.Verb == "approve" && attrs.Resource == "signers" && attrs.APIGroup == "certificates.k8s.io" && attrs.Name == n {
			return auth.Allow, "", nil
		}
	}
	return auth.NoOpinion, "", nil
}

func TestAuthorizeSignerApproval(t *testing.T) {
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "c"},
		Spec:       certificatesv1.CertificateSigningRequestSpec{SignerName: "example.com/mine"},
	}
	alice := auth.User{Name: "alice", Groups: []string{auth.AllAuthenticated}}
	admin := auth.User{Name: "root", Groups: []string{auth.SystemMasters}}
	tests := []struct {
		name    string
		authz   *signerAuthorizer
		user    auth.User
		wantErr bool
	}{
		{name: "no authorizer", user: alice},
		{name: "exact signer", authz: &signerAuthorizer{allowed: []string{"example.com/mine"}}, user: alice},
		{name: "domain wildcard", authz: &signerAuthorizer{allowed: []string{"example.com/*"}}, user: alice},
		{name: "other signer", authz: &signerAuthorizer{allowed: []string{"example.com/other", "other.io/*"}}, user: alice, wantErr: true},
		{name: "system:masters", authz: &signerAuthorizer{}, user: admin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{log: slog.New(slog.DiscardHandler)}
			if tt.authz != nil {
				s.cfg.Authorizer = tt.authz
			}
			err := s.authorizeSignerApproval(auth.WithUser(context.Background(), tt.user), csr)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `user not permitted to approve requests with signerName "example.com/mine"`) {
				t.Fatalf("err = %v, want Forbidden naming the signer", err)
			}
			if want := []string{"approve certificates.k8s.io/signers/example.com/mine", "approve certificates.k8s.io/signers/example.com/*"}; !cmp.Equal(want, tt.authz.asked) {
				t.Errorf("asked %q, want %q", tt.authz.asked, want)
			}
		})
	}
}
