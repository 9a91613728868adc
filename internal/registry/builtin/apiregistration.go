package builtin

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/registry"
)

// apiregistrationResources returns apiregistration.k8s.io/v1 apiservices:
// one object per API group version the cluster serves. The API server
// registers its own (local) ones; an APIService naming a service is an
// extension API server's.
func apiregistrationResources() []*registry.Resource {
	return []*registry.Resource{{
		GVR: apiregistrationv1.SchemeGroupVersion.WithResource("apiservices"), Kind: "APIService",
		ListKind: "APIServiceList", Singular: "apiservice", Categories: []string{"api-extensions"},
		Status:               true,
		StatusResetsMetadata: true,
		Strategy:             apiServiceStrategy(),
	}}
}

func apiServiceStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*apiregistrationv1.APIService, *apiregistrationv1.APIServiceList]{
		New:     func() *apiregistrationv1.APIService { return &apiregistrationv1.APIService{} },
		NewList: func() *apiregistrationv1.APIServiceList { return &apiregistrationv1.APIServiceList{} },
		PrepareForCreate: func(a *apiregistrationv1.APIService) {
			a.Status = apiregistrationv1.APIServiceStatus{}
		},
		Default: func(a *apiregistrationv1.APIService) {
			if a.Spec.Service != nil && a.Spec.Service.Port == nil {
				a.Spec.Service.Port = ptr.To[int32](443)
			}
		},
		// The name is checked against the spec in Validate: "v1." (the
		// core group) is no DNS subdomain.
		ValidateName: func(name string, prefix bool) []string { return path.IsValidPathSegmentName(name) },
		Validate:     validateAPIService,
		ValidateUpdate: func(a, _ *apiregistrationv1.APIService) field.ErrorList {
			return validateAPIService(a)
		},
		ValidateStatusUpdate: func(a, _ *apiregistrationv1.APIService) field.ErrorList {
			var allErrs field.ErrorList
			for i, c := range a.Status.Conditions {
				switch c.Status {
				case apiregistrationv1.ConditionTrue, apiregistrationv1.ConditionFalse, apiregistrationv1.ConditionUnknown:
				default:
					allErrs = append(allErrs, field.NotSupported(field.NewPath("status", "conditions").Index(i).Child("status"), c.Status,
						[]string{string(apiregistrationv1.ConditionTrue), string(apiregistrationv1.ConditionFalse), string(apiregistrationv1.ConditionUnknown)}))
				}
			}
			return allErrs
		},
		Table: &registry.TypedTable[*apiregistrationv1.APIService]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Service", "The reference to the service that hosts this API endpoint.", 0),
				columnString("Available", "Whether this service is available.", 0),
				columnAge(),
			},
			Row: func(a *apiregistrationv1.APIService) []any {
				service := "Local"
				if s := a.Spec.Service; s != nil {
					service = s.Namespace + "/" + s.Name
				}
				available := "Unknown"
				for _, c := range a.Status.Conditions {
					if c.Type == apiregistrationv1.Available {
						available = string(c.Status)
						if c.Status != apiregistrationv1.ConditionTrue && c.Reason != "" {
							available += " (" + c.Reason + ")"
						}
					}
				}
				return []any{a.Name, service, available, cellAge(&a.ObjectMeta)}
			},
		},
	})
}

// validateAPIService applies upstream's rules: the name is
// "<version>.<group>", only v1 may have the empty (core) group, the
// priorities are in range, and a local APIService (no service) has no CA
// bundle and does not skip TLS verification.
func validateAPIService(a *apiregistrationv1.APIService) field.ErrorList {
	var allErrs field.ErrorList
	spec := field.NewPath("spec")
	if want := a.Spec.Version + "." + a.Spec.Group; a.Name != want {
		allErrs = append(allErrs, field.Invalid(field.NewPath("metadata", "name"), a.Name, fmt.Sprintf("must be `spec.version+\".\"+spec.group`: %q", want)))
	}
	if a.Spec.Group == "" && a.Spec.Version != "v1" {
		allErrs = append(allErrs, field.Required(spec.Child("group"), "only v1 may have an empty group and it better be legacy kube"))
	}
	if a.Spec.Group != "" {
		for _, msg := range validation.IsDNS1123Subdomain(a.Spec.Group) {
			allErrs = append(allErrs, field.Invalid(spec.Child("group"), a.Spec.Group, msg))
		}
	}
	for _, msg := range validation.IsDNS1035Label(a.Spec.Version) {
		allErrs = append(allErrs, field.Invalid(spec.Child("version"), a.Spec.Version, msg))
	}
	if p := a.Spec.GroupPriorityMinimum; p <= 0 || p > 20000 {
		allErrs = append(allErrs, field.Invalid(spec.Child("groupPriorityMinimum"), p, "must be positive and less than 20000"))
	}
	if p := a.Spec.VersionPriority; p <= 0 || p > 1000 {
		allErrs = append(allErrs, field.Invalid(spec.Child("versionPriority"), p, "must be positive and less than 1000"))
	}
	s := a.Spec.Service
	if s == nil {
		if len(a.Spec.CABundle) != 0 {
			allErrs = append(allErrs, field.Invalid(spec.Child("caBundle"), fmt.Sprintf("%d bytes", len(a.Spec.CABundle)), "local APIServices may not have a caBundle"))
		}
		if a.Spec.InsecureSkipTLSVerify {
			allErrs = append(allErrs, field.Invalid(spec.Child("insecureSkipTLSVerify"), true, "local APIServices may not have insecureSkipTLSVerify"))
		}
		return allErrs
	}
	if s.Namespace == "" {
		allErrs = append(allErrs, field.Required(spec.Child("service", "namespace"), ""))
	}
	if s.Name == "" {
		allErrs = append(allErrs, field.Required(spec.Child("service", "name"), ""))
	}
	if s.Port != nil {
		for _, msg := range validation.IsValidPortNum(int(*s.Port)) {
			allErrs = append(allErrs, field.Invalid(spec.Child("service", "port"), *s.Port, msg))
		}
	}
	if a.Spec.InsecureSkipTLSVerify && len(a.Spec.CABundle) > 0 {
		allErrs = append(allErrs, field.Invalid(spec.Child("insecureSkipTLSVerify"), true, "may not be true if caBundle is present"))
	}
	return allErrs
}
