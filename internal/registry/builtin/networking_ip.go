package builtin

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/registry"
)

// networkingIPResources returns networking.k8s.io/v1 servicecidrs and
// ipaddresses. skiff's cluster IP allocator keeps its own reservations
// (internal/servicealloc): the ServiceCIDR "kubernetes" describes its
// range (written by the server at start), and IPAddress objects are
// stored and validated for those who use the API, not consulted.
func networkingIPResources() []*registry.Resource {
	gv := networkingv1.SchemeGroupVersion
	return []*registry.Resource{
		{
			GVR: gv.WithResource("servicecidrs"), Kind: "ServiceCIDR", ListKind: "ServiceCIDRList",
			Singular: "servicecidr", Status: true,
			Strategy: serviceCIDRStrategy(),
		},
		{
			GVR: gv.WithResource("ipaddresses"), Kind: "IPAddress", ListKind: "IPAddressList",
			Singular: "ipaddress", ShortNames: []string{"ip"},
			Strategy: ipAddressStrategy(),
		},
	}
}

// --- ServiceCIDR ----------------------------------------------------------

func serviceCIDRStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*networkingv1.ServiceCIDR, *networkingv1.ServiceCIDRList]{
		New:     func() *networkingv1.ServiceCIDR { return &networkingv1.ServiceCIDR{} },
		NewList: func() *networkingv1.ServiceCIDRList { return &networkingv1.ServiceCIDRList{} },
		PrepareForCreate: func(s *networkingv1.ServiceCIDR) {
			s.Status = networkingv1.ServiceCIDRStatus{}
		},
		Validate: func(s *networkingv1.ServiceCIDR) field.ErrorList {
			return validateServiceCIDRs(s.Spec.CIDRs, field.NewPath("spec", "cidrs"))
		},
		ValidateUpdate: func(s, old *networkingv1.ServiceCIDR) field.ErrorList {
			fld := field.NewPath("spec", "cidrs")
			allErrs := validateServiceCIDRs(s.Spec.CIDRs, fld)
			// As upstream: a single-stack range may gain the other family;
			// nothing else changes.
			grown := len(old.Spec.CIDRs) == 1 && len(s.Spec.CIDRs) == 2 && s.Spec.CIDRs[0] == old.Spec.CIDRs[0]
			if !grown && !slices.Equal(s.Spec.CIDRs, old.Spec.CIDRs) {
				allErrs = append(allErrs, field.Invalid(fld, s.Spec.CIDRs, "field is immutable"))
			}
			return allErrs
		},
		ValidateStatusUpdate: func(s, _ *networkingv1.ServiceCIDR) field.ErrorList {
			return metav1validationConditions(s.Status.Conditions, field.NewPath("status", "conditions"))
		},
		Table: &registry.TypedTable[*networkingv1.ServiceCIDR]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("CIDRs", networkingv1.ServiceCIDRSpec{}.SwaggerDoc()["cidrs"], 0),
				columnAge(),
			},
			Row: func(s *networkingv1.ServiceCIDR) []any {
				return []any{s.Name, strings.Join(s.Spec.CIDRs, ","), cellAge(&s.ObjectMeta)}
			},
		},
	})
}

// validateServiceCIDRs: one or two canonical prefixes, two only of both
// families.
func validateServiceCIDRs(cidrs []string, fld *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch {
	case len(cidrs) == 0:
		return field.ErrorList{field.Required(fld, "at least one CIDR required")}
	case len(cidrs) > 2:
		return field.ErrorList{field.TooMany(fld, len(cidrs), 2)}
	}
	var families []bool
	for i, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			allErrs = append(allErrs, field.Invalid(fld.Index(i), c, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
			continue
		}
		if p.Masked() != p || p.String() != c {
			allErrs = append(allErrs, field.Invalid(fld.Index(i), c, fmt.Sprintf("must be in canonical form (%q)", p.Masked().String())))
		}
		families = append(families, p.Addr().Is4())
	}
	if len(families) == 2 && families[0] == families[1] {
		allErrs = append(allErrs, field.Invalid(fld, cidrs, "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64"))
	}
	return allErrs
}

// metav1validationConditions checks conditions as metav1 requires: a type
// and a status of True, False or Unknown, each type once.
func metav1validationConditions(conds []metav1.Condition, fld *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	seen := map[string]bool{}
	for i, c := range conds {
		p := fld.Index(i)
		if c.Type == "" {
			allErrs = append(allErrs, field.Required(p.Child("type"), ""))
		} else if seen[c.Type] {
			allErrs = append(allErrs, field.Duplicate(p.Child("type"), c.Type))
		}
		seen[c.Type] = true
		switch c.Status {
		case metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown:
		default:
			allErrs = append(allErrs, field.NotSupported(p.Child("status"), c.Status, []string{"False", "True", "Unknown"}))
		}
	}
	return allErrs
}

// --- IPAddress ------------------------------------------------------------

func ipAddressStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*networkingv1.IPAddress, *networkingv1.IPAddressList]{
		New:     func() *networkingv1.IPAddress { return &networkingv1.IPAddress{} },
		NewList: func() *networkingv1.IPAddressList { return &networkingv1.IPAddressList{} },
		// The name is the address: checked in Validate ("fe80::1" is no
		// DNS subdomain).
		ValidateName: func(name string, _ bool) []string { return path.IsValidPathSegmentName(name) },
		Validate:     validateIPAddress,
		ValidateUpdate: func(ip, old *networkingv1.IPAddress) field.ErrorList {
			allErrs := validateIPAddress(ip)
			if !apiequality.Semantic.DeepEqual(ip.Spec.ParentRef, old.Spec.ParentRef) {
				allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "parentRef"), ip.Spec.ParentRef, "field is immutable"))
			}
			return allErrs
		},
		Table: &registry.TypedTable[*networkingv1.IPAddress]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("ParentRef", networkingv1.IPAddressSpec{}.SwaggerDoc()["parentRef"], 0),
			},
			Row: func(ip *networkingv1.IPAddress) []any {
				ref := ""
				if p := ip.Spec.ParentRef; p != nil {
					ref = p.Resource
					if p.Group != "" {
						ref += "." + p.Group
					}
					ref += "/"
					if p.Namespace != "" {
						ref += p.Namespace + "/"
					}
					ref += p.Name
				}
				return []any{ip.Name, ref}
			},
		},
	})
}

// validateIPAddress: the name is an IP address in canonical form, and the
// parent reference names a resource and an object.
func validateIPAddress(ip *networkingv1.IPAddress) field.ErrorList {
	var allErrs field.ErrorList
	name := field.NewPath("metadata", "name")
	if a, err := netip.ParseAddr(ip.Name); err != nil || a.Zone() != "" || a.Is4In6() {
		allErrs = append(allErrs, field.Invalid(name, ip.Name, "must be a valid ip address"))
	} else if a.String() != ip.Name {
		allErrs = append(allErrs, field.Invalid(name, ip.Name, fmt.Sprintf("must be in canonical form (%q)", a.String())))
	}
	ref := field.NewPath("spec", "parentRef")
	p := ip.Spec.ParentRef
	if p == nil {
		return append(allErrs, field.Required(ref, ""))
	}
	if p.Group != "" {
		for _, msg := range validation.IsDNS1123Subdomain(p.Group) {
			allErrs = append(allErrs, field.Invalid(ref.Child("group"), p.Group, msg))
		}
	}
	if p.Resource == "" {
		allErrs = append(allErrs, field.Required(ref.Child("resource"), ""))
	} else {
		for _, msg := range path.IsValidPathSegmentName(p.Resource) {
			allErrs = append(allErrs, field.Invalid(ref.Child("resource"), p.Resource, msg))
		}
	}
	if p.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(p.Namespace) {
			allErrs = append(allErrs, field.Invalid(ref.Child("namespace"), p.Namespace, msg))
		}
	}
	if p.Name == "" {
		allErrs = append(allErrs, field.Required(ref.Child("name"), ""))
	} else {
		for _, msg := range path.IsValidPathSegmentName(p.Name) {
			allErrs = append(allErrs, field.Invalid(ref.Child("name"), p.Name, msg))
		}
	}
	return allErrs
}
