package builtin

import (
	"context"
	"encoding/pem"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/auth"
	"github.com/skiff-dev/skiff/internal/registry"
)

// certificatesResources returns certificates.k8s.io/v1
// certificatesigningrequests. The /approval subresource is served by the
// API server (internal/apiserver/csrapproval.go) through the status path.
func certificatesResources() []*registry.Resource {
	return []*registry.Resource{{
		GVR: certificatesv1.SchemeGroupVersion.WithResource("certificatesigningrequests"), Kind: "CertificateSigningRequest",
		ListKind: "CertificateSigningRequestList", Singular: "certificatesigningrequest", ShortNames: []string{"csr"},
		Status:   true,
		Strategy: csrStrategy(),
	}}
}

// csrMinExpirationSeconds is upstream's lower bound on spec.expirationSeconds.
const csrMinExpirationSeconds = 600

// requesterStrategy records the authenticated requester of a new CSR in
// spec.username/uid/groups/extra, ignoring what the client sent, as
// upstream does: approvers (csrapproving) and signers trust these fields.
// A context without a user (in-process callers, tests) leaves them as
// given.
type requesterStrategy struct{ registry.Strategy }

type approvalKey struct{}

// WithCSRApproval marks ctx as the approval subresource's: only there may a
// status update change the Approved and Denied conditions.
func WithCSRApproval(ctx context.Context) context.Context {
	return context.WithValue(ctx, approvalKey{}, true)
}

// PrepareForStatusUpdate keeps the Approved and Denied conditions as
// stored, as upstream's status strategy does: approving goes through
// /approval, which checks that the user may approve for the signer; a
// /status update (the signer's, adding the certificate or Failed) cannot.
func (s requesterStrategy) PrepareForStatusUpdate(ctx context.Context, obj, old runtime.Object) {
	s.Strategy.PrepareForStatusUpdate(ctx, obj, old)
	if approving, _ := ctx.Value(approvalKey{}).(bool); approving {
		return
	}
	csr := obj.(*certificatesv1.CertificateSigningRequest)
	prev := old.(*certificatesv1.CertificateSigningRequest)
	isApproval := func(c certificatesv1.CertificateSigningRequestCondition) bool {
		return c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied
	}
	var conds []certificatesv1.CertificateSigningRequestCondition
	for _, c := range prev.Status.Conditions {
		if isApproval(c) {
			conds = append(conds, c)
		}
	}
	for _, c := range csr.Status.Conditions {
		if !isApproval(c) {
			conds = append(conds, c)
		}
	}
	csr.Status.Conditions = conds
}

func (s requesterStrategy) PrepareForCreate(ctx context.Context, obj runtime.Object) {
	s.Strategy.PrepareForCreate(ctx, obj)
	u, ok := auth.UserFrom(ctx)
	if !ok {
		return
	}
	csr := obj.(*certificatesv1.CertificateSigningRequest)
	csr.Spec.Username, csr.Spec.UID = u.Name, u.UID
	csr.Spec.Groups = slices.Clone(u.Groups)
	csr.Spec.Extra = nil
	if len(u.Extra) > 0 {
		csr.Spec.Extra = make(map[string]certificatesv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			csr.Spec.Extra[k] = slices.Clone(v)
		}
	}
}

func csrStrategy() registry.Strategy {
	return requesterStrategy{csrTypedStrategy()}
}

func csrTypedStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*certificatesv1.CertificateSigningRequest, *certificatesv1.CertificateSigningRequestList]{
		New: func() *certificatesv1.CertificateSigningRequest { return &certificatesv1.CertificateSigningRequest{} },
		NewList: func() *certificatesv1.CertificateSigningRequestList {
			return &certificatesv1.CertificateSigningRequestList{}
		},
		PrepareForCreate: func(csr *certificatesv1.CertificateSigningRequest) {
			// spec.username/uid/groups/extra: see requesterStrategy.
			csr.Status = certificatesv1.CertificateSigningRequestStatus{}
		},
		PrepareForUpdate: func(csr, old *certificatesv1.CertificateSigningRequest) {
			// The spec is immutable: a main update can change only metadata.
			csr.Spec = old.Spec
		},
		Validate: func(csr *certificatesv1.CertificateSigningRequest) field.ErrorList {
			return validateCSRSpec(&csr.Spec, field.NewPath("spec"))
		},
		ValidateUpdate: func(csr, _ *certificatesv1.CertificateSigningRequest) field.ErrorList {
			return validateCSRSpec(&csr.Spec, field.NewPath("spec"))
		},
		ValidateStatusUpdate: func(csr, _ *certificatesv1.CertificateSigningRequest) field.ErrorList {
			var allErrs field.ErrorList
			for i, c := range csr.Status.Conditions {
				p := field.NewPath("status", "conditions").Index(i)
				if c.Type == "" {
					allErrs = append(allErrs, field.Required(p.Child("type"), ""))
				}
				switch c.Status {
				case corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown:
				case "":
					allErrs = append(allErrs, field.Required(p.Child("status"), ""))
				default:
					allErrs = append(allErrs, field.NotSupported(p.Child("status"), c.Status,
						[]corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown}))
				}
			}
			if len(csr.Status.Certificate) > 0 {
				if block, _ := pem.Decode(csr.Status.Certificate); block == nil || block.Type != "CERTIFICATE" {
					allErrs = append(allErrs, field.Invalid(field.NewPath("status", "certificate"), "<certificate data>", "must contain at least one CERTIFICATE PEM block"))
				}
			}
			return allErrs
		},
		Fields: map[string]func(*certificatesv1.CertificateSigningRequest) string{
			"spec.signerName": func(csr *certificatesv1.CertificateSigningRequest) string { return csr.Spec.SignerName },
		},
		Table: &registry.TypedTable[*certificatesv1.CertificateSigningRequest]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnAge(),
				columnString("SignerName", certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc()["signerName"], 0),
				columnString("Requestor", certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc()["request"], 0),
				columnString("RequestedDuration", certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc()["expirationSeconds"], 0),
				columnString("Condition", certificatesv1.CertificateSigningRequestStatus{}.SwaggerDoc()["conditions"], 0),
			},
			Row: func(csr *certificatesv1.CertificateSigningRequest) []any {
				requested := "<none>"
				if csr.Spec.ExpirationSeconds != nil {
					requested = duration.HumanDuration(time.Duration(*csr.Spec.ExpirationSeconds) * time.Second)
				}
				return []any{csr.Name, cellAge(&csr.ObjectMeta), orNone(csr.Spec.SignerName), csr.Spec.Username, requested, csrConditionCell(csr)}
			},
		},
	})
}

// csrConditionCell renders the CONDITION column: "Pending", or the true
// conditions joined by "," ("Approved,Issued").
func csrConditionCell(csr *certificatesv1.CertificateSigningRequest) string {
	var approved, denied, failed bool
	for _, c := range csr.Status.Conditions {
		if c.Status != "" && c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case certificatesv1.CertificateApproved:
			approved = true
		case certificatesv1.CertificateDenied:
			denied = true
		case certificatesv1.CertificateFailed:
			failed = true
		}
	}
	var out []string
	if approved {
		out = append(out, "Approved")
	}
	if denied {
		out = append(out, "Denied")
	}
	if failed {
		out = append(out, "Failed")
	}
	if len(csr.Status.Certificate) > 0 {
		out = append(out, "Issued")
	}
	if len(out) == 0 {
		return "Pending"
	}
	return strings.Join(out, ",")
}

func validateCSRSpec(spec *certificatesv1.CertificateSigningRequestSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(spec.Request) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("request"), ""))
	} else if block, _ := pem.Decode(spec.Request); block == nil || block.Type != "CERTIFICATE REQUEST" {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("request"), "<request data>", "PEM block type must be CERTIFICATE REQUEST"))
	}
	if spec.SignerName == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("signerName"), ""))
	} else {
		domain, path, ok := strings.Cut(spec.SignerName, "/")
		switch {
		case !ok || domain == "" || path == "":
			allErrs = append(allErrs, field.Invalid(fldPath.Child("signerName"), spec.SignerName, "must be a fully qualified domain and path of the form 'example.com/signer-name'"))
		case strings.Contains(path, "/"):
			allErrs = append(allErrs, field.Invalid(fldPath.Child("signerName"), spec.SignerName, "must be a fully qualified domain and path of the form 'example.com/signer-name'"))
		default:
			allErrs = append(allErrs, validateQualifiedDomain(domain, fldPath.Child("signerName"))...)
		}
	}
	if spec.ExpirationSeconds != nil && *spec.ExpirationSeconds < csrMinExpirationSeconds {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("expirationSeconds"), *spec.ExpirationSeconds, "may not specify a duration less than 600 seconds (10 minutes)"))
	}
	if len(spec.Usages) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("usages"), ""))
	}
	seen := map[certificatesv1.KeyUsage]bool{}
	for i, u := range spec.Usages {
		if !csrKnownUsage(u) {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("usages").Index(i), u, csrUsages()))
		}
		if seen[u] {
			allErrs = append(allErrs, field.Duplicate(fldPath.Child("usages").Index(i), u))
		}
		seen[u] = true
	}
	return allErrs
}

func validateQualifiedDomain(domain string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if !strings.Contains(domain, ".") {
		return field.ErrorList{field.Invalid(fldPath, domain, "should be a domain with at least two segments separated by dots")}
	}
	for _, msg := range registry.NameIsDNSSubdomain(domain, false) {
		allErrs = append(allErrs, field.Invalid(fldPath, domain, msg))
	}
	return allErrs
}

func csrUsages() []certificatesv1.KeyUsage {
	return []certificatesv1.KeyUsage{
		certificatesv1.UsageSigning, certificatesv1.UsageDigitalSignature, certificatesv1.UsageContentCommitment,
		certificatesv1.UsageKeyEncipherment, certificatesv1.UsageKeyAgreement, certificatesv1.UsageDataEncipherment,
		certificatesv1.UsageCertSign, certificatesv1.UsageCRLSign, certificatesv1.UsageEncipherOnly,
		certificatesv1.UsageDecipherOnly, certificatesv1.UsageAny, certificatesv1.UsageServerAuth,
		certificatesv1.UsageClientAuth, certificatesv1.UsageCodeSigning, certificatesv1.UsageEmailProtection,
		certificatesv1.UsageSMIME, certificatesv1.UsageIPsecEndSystem, certificatesv1.UsageIPsecTunnel,
		certificatesv1.UsageIPsecUser, certificatesv1.UsageTimestamping, certificatesv1.UsageOCSPSigning,
		certificatesv1.UsageMicrosoftSGC, certificatesv1.UsageNetscapeSGC,
	}
}

func csrKnownUsage(u certificatesv1.KeyUsage) bool {
	for _, k := range csrUsages() {
		if k == u {
			return true
		}
	}
	return false
}
