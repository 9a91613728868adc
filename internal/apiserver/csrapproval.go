package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/auth"
	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/registry/builtin"
)

// isCSRs reports whether res is certificates.k8s.io certificatesigningrequests.
func isCSRs(res *registry.Resource) bool {
	return res.GVR.Group == certificatesv1.GroupName && res.GVR.Resource == "certificatesigningrequests"
}

// serveCSRApproval serves certificatesigningrequests/<name>/approval: GET
// returns the CSR; PUT and PATCH (kubectl certificate approve|deny, the
// approving controller) change status.conditions and metadata, never the
// spec or the certificate, as upstream's approval strategy. Besides the
// filter's check of the verb on certificatesigningrequests/approval, the
// user must be allowed to approve for the CSR's signer (verb approve on
// signers/<signerName> or signers/<domain>/* in certificates.k8s.io), as
// upstream's CertificateApproval admission plugin requires.
func (s *Server) serveCSRApproval(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	switch ri.verb {
	case "get":
		s.get(w, r, ri, st)
	case "update":
		s.updateCSRApproval(w, r, ri, st)
	case "patch":
		if err := s.authorizeStoredSigner(r.Context(), st, ri.name); err != nil {
			s.fail(w, r, err)
			return
		}
		now := metav1.NewTime(time.Now())
		s.patchWith(w, r, ri, st, registry.StatusSub, patchHook{
			ctx: builtin.WithCSRApproval,
			finish: func(current, patched runtime.Object) (runtime.Object, error) {
				return csrApprovalNext(st.Resource, current, patched, now)
			},
		})
	default:
		s.writeError(w, methodNotAllowed())
	}
}

// csrApprovalNext is the CSR an approval write stores: the request's
// metadata and conditions (timestamps filled in, validated against the
// current conditions) over the current spec and certificate.
func csrApprovalNext(res *registry.Resource, current, requested runtime.Object, now metav1.Time) (runtime.Object, error) {
	cur := current.(*certificatesv1.CertificateSigningRequest)
	next := requested.(*certificatesv1.CertificateSigningRequest).DeepCopy()
	next.Spec = *cur.Spec.DeepCopy()
	next.Status.Certificate = cur.Status.Certificate
	next.Status.Conditions = approvalConditions(next.Status.Conditions, cur.Status.Conditions, now)
	if errs := ValidateCSRApproval(next.Status.Conditions, cur.Status.Conditions); len(errs) > 0 {
		return nil, apierrors.NewInvalid(res.GroupVersionKind().GroupKind(), cur.Name, errs)
	}
	return next, nil
}

func (s *Server) updateCSRApproval(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	res := st.Resource
	var opts metav1.UpdateOptions
	rd, obj, warnings, err := s.readWrite(r, ri, res, &opts, "UpdateOptions",
		func() field.ErrorList { return metavalidation.ValidateUpdateOptions(&opts) }, &opts.FieldValidation)
	if err == nil {
		err = checkName(obj, ri.name)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	if err := s.authorizeStoredSigner(ctx, st, ri.name); err != nil {
		s.fail(w, r, err)
		return
	}
	fm, manager := s.fieldManagersOf(st).forSub(registry.StatusSub), managerName(r, opts.FieldManager)
	now := metav1.NewTime(time.Now())
	out, _, err := st.Update(builtin.WithCSRApproval(ctx), "", ri.name, registry.StatusSub,
		func(_ context.Context, current runtime.Object) (runtime.Object, error) {
			next, err := csrApprovalNext(res, current, obj, now)
			if err != nil {
				return nil, err
			}
			return s.trackUpdate(fm, current, next, manager, res), nil
		}, opts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	addWarnings(w, warnings)
	s.writeObject(w, http.StatusOK, rd, out)
}

// authorizeStoredSigner reads the CSR name and requires the user to be
// allowed to approve for its signer: spec.signerName is immutable, so the
// stored one is the one to check.
func (s *Server) authorizeStoredSigner(ctx context.Context, st *registry.Store, name string) error {
	stored, err := st.Get(ctx, "", name)
	if err != nil {
		return err
	}
	return s.authorizeSignerApproval(ctx, stored.(*certificatesv1.CertificateSigningRequest))
}

// authorizeSignerApproval requires the request's user to be allowed to
// approve for csr's signer. With no Authorizer configured everyone is.
func (s *Server) authorizeSignerApproval(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) error {
	if s.cfg.Authorizer == nil {
		return nil
	}
	u, _ := auth.UserFrom(ctx)
	if u.InGroup(auth.SystemMasters) {
		return nil
	}
	names := []string{csr.Spec.SignerName}
	if domain, _, ok := strings.Cut(csr.Spec.SignerName, "/"); ok {
		names = append(names, domain+"/*")
	}
	for _, name := range names {
		d, _, err := s.cfg.Authorizer.Authorize(ctx, auth.Attributes{
			User: u, Verb: "approve", ResourceRequest: true,
			APIGroup: certificatesv1.GroupName, APIVersion: "*", Resource: "signers", Name: name,
		})
		if err != nil {
			s.log.Info("authorizer failed", "user", u.Name, "err", err)
		}
		if d == auth.Allow {
			return nil
		}
	}
	return apierrors.NewForbidden(certificatesv1.Resource("certificatesigningrequests"), csr.Name,
		fmt.Errorf("user not permitted to approve requests with signerName %q", csr.Spec.SignerName))
}

// approvalConditions is the conditions an approval update stores: the
// requested ones, with empty timestamps filled in (from the same condition
// in old, else now).
func approvalConditions(in, old []certificatesv1.CertificateSigningRequestCondition, now metav1.Time) []certificatesv1.CertificateSigningRequestCondition {
	out := make([]certificatesv1.CertificateSigningRequestCondition, len(in))
	for i, c := range in {
		if c.LastUpdateTime.IsZero() {
			c.LastUpdateTime = now
		}
		if c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = now
			for _, o := range old {
				if o.Type == c.Type && o.Status == c.Status && !o.LastTransitionTime.IsZero() {
					c.LastTransitionTime = o.LastTransitionTime
					break
				}
			}
		}
		out[i] = c
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ValidateCSRApproval checks an approval update's conditions against the
// stored ones, as upstream validates certificatesigningrequests/approval:
// every condition has a type and a known status; Approved, Denied and
// Failed appear at most once; Approved and Denied have status True and
// are mutually exclusive; and an Approved or Denied condition, once set,
// is never removed.
func ValidateCSRApproval(conds, old []certificatesv1.CertificateSigningRequestCondition) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status", "conditions")
	seen := map[certificatesv1.RequestConditionType]bool{}
	for i, c := range conds {
		ip := p.Index(i)
		switch c.Status {
		case corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown:
		case "":
			errs = append(errs, field.Required(ip.Child("status"), ""))
		default:
			errs = append(errs, field.NotSupported(ip.Child("status"), c.Status,
				[]corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown}))
		}
		switch c.Type {
		case "":
			errs = append(errs, field.Required(ip.Child("type"), ""))
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied:
			if c.Status != corev1.ConditionTrue && c.Status != "" {
				errs = append(errs, field.NotSupported(ip.Child("status"), c.Status, []corev1.ConditionStatus{corev1.ConditionTrue}))
			}
			other := certificatesv1.CertificateDenied
			if c.Type == certificatesv1.CertificateDenied {
				other = certificatesv1.CertificateApproved
			}
			if seen[other] {
				errs = append(errs, field.Invalid(ip.Child("type"), c.Type, "Approved and Denied conditions are mutually exclusive"))
			}
		}
		switch c.Type {
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
			if seen[c.Type] {
				errs = append(errs, field.Duplicate(ip.Child("type"), c.Type))
			}
		}
		seen[c.Type] = true
	}
	for _, t := range []certificatesv1.RequestConditionType{certificatesv1.CertificateApproved, certificatesv1.CertificateDenied} {
		had := false
		for _, o := range old {
			had = had || o.Type == t
		}
		if had && !seen[t] {
			errs = append(errs, field.Forbidden(p, fmt.Sprintf("updates may not remove a condition of type %q", t)))
		}
	}
	return errs
}
