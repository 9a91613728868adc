package builtin

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/registry"
)

// networkingResources returns networking.k8s.io/v1 ingresses,
// ingressclasses and networkpolicies, and discovery.k8s.io/v1
// endpointslices.
func networkingResources() []*registry.Resource {
	gv := networkingv1.SchemeGroupVersion
	return []*registry.Resource{
		{
			GVR: discoveryv1.SchemeGroupVersion.WithResource("endpointslices"), Kind: "EndpointSlice",
			ListKind: "EndpointSliceList", Singular: "endpointslice", Namespaced: true,
			Strategy: endpointSliceStrategy(),
		},
		{
			GVR: gv.WithResource("ingressclasses"), Kind: "IngressClass", ListKind: "IngressClassList",
			Singular: "ingressclass",
			Strategy: ingressClassStrategy(),
		},
		{
			GVR: gv.WithResource("ingresses"), Kind: "Ingress", ListKind: "IngressList",
			Singular: "ingress", ShortNames: []string{"ing"}, Namespaced: true, Status: true,
			Strategy: ingressStrategy(),
		},
		{
			GVR: gv.WithResource("networkpolicies"), Kind: "NetworkPolicy", ListKind: "NetworkPolicyList",
			Singular: "networkpolicy", ShortNames: []string{"netpol"}, Namespaced: true,
			Strategy: networkPolicyStrategy(),
		},
	}
}

// validProtocols are the transport protocols of ports.
func validProtocols() []corev1.Protocol {
	return []corev1.Protocol{corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP}
}

func validateProtocol(p corev1.Protocol, fldPath *field.Path) field.ErrorList {
	switch p {
	case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		return nil
	}
	return field.ErrorList{field.NotSupported(fldPath, p, validProtocols())}
}

func validatePortNumber(port int32, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, msg := range validation.IsValidPortNum(int(port)) {
		allErrs = append(allErrs, field.Invalid(fldPath, port, msg))
	}
	return allErrs
}

// --- Ingress --------------------------------------------------------------

func ingressStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*networkingv1.Ingress, *networkingv1.IngressList]{
		New:     func() *networkingv1.Ingress { return &networkingv1.Ingress{} },
		NewList: func() *networkingv1.IngressList { return &networkingv1.IngressList{} },
		PrepareForCreate: func(ing *networkingv1.Ingress) {
			ing.Status = networkingv1.IngressStatus{}
		},
		Validate: func(ing *networkingv1.Ingress) field.ErrorList {
			return validateIngressSpec(&ing.Spec, field.NewPath("spec"))
		},
		ValidateStatusUpdate: func(ing, _ *networkingv1.Ingress) field.ErrorList {
			var allErrs field.ErrorList
			for i, lb := range ing.Status.LoadBalancer.Ingress {
				p := field.NewPath("status", "loadBalancer", "ingress").Index(i)
				if lb.IP != "" {
					if _, err := netip.ParseAddr(lb.IP); err != nil {
						allErrs = append(allErrs, field.Invalid(p.Child("ip"), lb.IP, "must be a valid IP address"))
					}
				}
				if lb.Hostname != "" {
					for _, msg := range validation.IsDNS1123Subdomain(lb.Hostname) {
						allErrs = append(allErrs, field.Invalid(p.Child("hostname"), lb.Hostname, msg))
					}
				}
			}
			return allErrs
		},
		Table: &registry.TypedTable[*networkingv1.Ingress]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Class", "The name of the IngressClass resource that should be used for additional configuration", 0),
				columnString("Hosts", "Hosts that incoming requests are matched against before the ingress rule", 0),
				columnString("Address", "Address is a list containing ingress points for the load-balancer", 0),
				columnString("Ports", "Ports of TLS configurations that open", 0),
				columnAge(),
			},
			Row: func(ing *networkingv1.Ingress) []any {
				class := "<none>"
				if ing.Spec.IngressClassName != nil {
					class = *ing.Spec.IngressClassName
				}
				var addrs []string
				for _, lb := range ing.Status.LoadBalancer.Ingress {
					if lb.IP != "" {
						addrs = append(addrs, lb.IP)
					} else if lb.Hostname != "" {
						addrs = append(addrs, lb.Hostname)
					}
				}
				ports := "80"
				if len(ing.Spec.TLS) > 0 {
					ports = "80, 443"
				}
				return []any{ing.Name, class, ingressHostsCell(ing.Spec.Rules), strings.Join(addrs, ","), ports, cellAge(&ing.ObjectMeta)}
			},
		},
	})
}

// ingressHostsCell renders the HOSTS column: up to three hosts, then
// "+ N more..." (N counted in rules past the third), "*" when no rule
// names a host.
func ingressHostsCell(rules []networkingv1.IngressRule) string {
	const shown = 3
	var hosts []string
	more := false
	for _, r := range rules {
		if len(hosts) == shown {
			more = true
			break
		}
		if r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	if len(hosts) == 0 {
		return "*"
	}
	s := strings.Join(hosts, ",")
	if more {
		s += fmt.Sprintf(" + %d more...", len(rules)-shown)
	}
	return s
}

func validateIngressSpec(spec *networkingv1.IngressSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(spec.Rules) == 0 && spec.DefaultBackend == nil {
		allErrs = append(allErrs, field.Invalid(fldPath, spec.Rules, "either `defaultBackend` or `rules` must be specified"))
	}
	if spec.DefaultBackend != nil {
		allErrs = append(allErrs, validateIngressBackend(spec.DefaultBackend, fldPath.Child("defaultBackend"))...)
	}
	for i, r := range spec.Rules {
		p := fldPath.Child("rules").Index(i)
		if r.Host != "" {
			allErrs = append(allErrs, validateIngressHost(r.Host, p.Child("host"))...)
		}
		if r.HTTP == nil {
			continue
		}
		if len(r.HTTP.Paths) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("http", "paths"), ""))
		}
		for j, hp := range r.HTTP.Paths {
			pp := p.Child("http", "paths").Index(j)
			allErrs = append(allErrs, validateIngressPath(hp, pp)...)
		}
	}
	for i, tls := range spec.TLS {
		for j, h := range tls.Hosts {
			allErrs = append(allErrs, validateIngressHost(h, fldPath.Child("tls").Index(i).Child("hosts").Index(j))...)
		}
	}
	if spec.IngressClassName != nil {
		for _, msg := range validation.IsDNS1123Subdomain(*spec.IngressClassName) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("ingressClassName"), *spec.IngressClassName, msg))
		}
	}
	return allErrs
}

func validateIngressHost(host string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if _, err := netip.ParseAddr(host); err == nil {
		allErrs = append(allErrs, field.Invalid(fldPath, host, "must be a DNS name, not an IP address"))
	}
	var msgs []string
	if strings.Contains(host, "*") {
		msgs = validation.IsWildcardDNS1123Subdomain(host)
	} else {
		msgs = validation.IsDNS1123Subdomain(host)
	}
	for _, msg := range msgs {
		allErrs = append(allErrs, field.Invalid(fldPath, host, msg))
	}
	return allErrs
}

func validateIngressPath(hp networkingv1.HTTPIngressPath, fldPath *field.Path) field.ErrorList {
	if hp.PathType == nil {
		return field.ErrorList{field.Required(fldPath.Child("pathType"), "pathType must be specified")}
	}
	var allErrs field.ErrorList
	switch *hp.PathType {
	case networkingv1.PathTypeExact, networkingv1.PathTypePrefix:
		if !strings.HasPrefix(hp.Path, "/") {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), hp.Path, "must be an absolute path"))
		}
		for _, bad := range []string{"//", "/./", "/../", "%2f", "%2F"} {
			if strings.Contains(hp.Path, bad) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), hp.Path, "must not contain '"+bad+"'"))
			}
		}
		for _, bad := range []string{"/..", "/."} {
			if strings.HasSuffix(hp.Path, bad) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), hp.Path, "cannot end with '"+bad+"'"))
			}
		}
	case networkingv1.PathTypeImplementationSpecific:
		if hp.Path != "" && !strings.HasPrefix(hp.Path, "/") {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("path"), hp.Path, "must be an absolute path"))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("pathType"), *hp.PathType, []networkingv1.PathType{
			networkingv1.PathTypeExact, networkingv1.PathTypeImplementationSpecific, networkingv1.PathTypePrefix,
		}))
	}
	allErrs = append(allErrs, validateIngressBackend(&hp.Backend, fldPath.Child("backend"))...)
	return allErrs
}

func validateIngressBackend(b *networkingv1.IngressBackend, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch {
	case b.Service != nil && b.Resource != nil:
		allErrs = append(allErrs, field.Invalid(fldPath, "", "cannot set both resource and service backends"))
	case b.Service != nil:
		sp := fldPath.Child("service")
		if b.Service.Name == "" {
			allErrs = append(allErrs, field.Required(sp.Child("name"), ""))
		} else {
			for _, msg := range validation.IsDNS1035Label(b.Service.Name) {
				allErrs = append(allErrs, field.Invalid(sp.Child("name"), b.Service.Name, msg))
			}
		}
		port := b.Service.Port
		switch {
		case port.Name != "" && port.Number != 0:
			allErrs = append(allErrs, field.Invalid(fldPath, "", "cannot set both port name & port number"))
		case port.Name != "":
			for _, msg := range validation.IsValidPortName(port.Name) {
				allErrs = append(allErrs, field.Invalid(sp.Child("port", "name"), port.Name, msg))
			}
		case port.Number != 0:
			allErrs = append(allErrs, validatePortNumber(port.Number, sp.Child("port", "number"))...)
		default:
			allErrs = append(allErrs, field.Required(fldPath, "port name or number is required"))
		}
	case b.Resource != nil:
		allErrs = append(allErrs, validateTypedReference(b.Resource.APIGroup, b.Resource.Kind, b.Resource.Name, fldPath.Child("resource"))...)
	default:
		allErrs = append(allErrs, field.Invalid(fldPath, "", "resource or service backend is required"))
	}
	return allErrs
}

// validateTypedReference checks an ingress resource backend or an
// IngressClass parameters reference: optional apiGroup, required kind and
// name that are path segments.
func validateTypedReference(apiGroup *string, kind, name string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if apiGroup != nil {
		for _, msg := range validation.IsDNS1123Subdomain(*apiGroup) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("apiGroup"), *apiGroup, msg))
		}
	}
	if kind == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("kind"), "kind is required"))
	} else {
		for _, msg := range path.IsValidPathSegmentName(kind) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("kind"), kind, msg))
		}
	}
	if name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), "name is required"))
	} else {
		for _, msg := range path.IsValidPathSegmentName(name) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("name"), name, msg))
		}
	}
	return allErrs
}

// --- IngressClass ---------------------------------------------------------

func ingressClassStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*networkingv1.IngressClass, *networkingv1.IngressClassList]{
		New:     func() *networkingv1.IngressClass { return &networkingv1.IngressClass{} },
		NewList: func() *networkingv1.IngressClassList { return &networkingv1.IngressClassList{} },
		Default: func(ic *networkingv1.IngressClass) {
			// networking/v1 SetDefaults_IngressClass: parameters are
			// cluster-scoped unless said otherwise.
			if p := ic.Spec.Parameters; p != nil && p.Scope == nil {
				p.Scope = ptr.To(networkingv1.IngressClassParametersReferenceScopeCluster)
			}
		},
		Validate: validateIngressClass,
		ValidateUpdate: func(ic, old *networkingv1.IngressClass) field.ErrorList {
			allErrs := validateIngressClass(ic)
			return append(allErrs, validateImmutable(ic.Spec.Controller, old.Spec.Controller, field.NewPath("spec", "controller"))...)
		},
		Table: &registry.TypedTable[*networkingv1.IngressClass]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Controller", "Controller that is responsible for handling this class", 0),
				columnString("Parameters", "A reference to a resource with additional parameters", 0),
				columnAge(),
			},
			Row: func(ic *networkingv1.IngressClass) []any {
				params := "<none>"
				if p := ic.Spec.Parameters; p != nil {
					params = p.Kind
					if p.APIGroup != nil && *p.APIGroup != "" {
						params += "." + *p.APIGroup
					}
					params += "/" + p.Name
				}
				return []any{ic.Name, ic.Spec.Controller, params, cellAge(&ic.ObjectMeta)}
			},
		},
	})
}

func validateIngressClass(ic *networkingv1.IngressClass) field.ErrorList {
	var allErrs field.ErrorList
	fldPath := field.NewPath("spec")
	if ic.Spec.Controller == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("controller"), ""))
	} else {
		if len(ic.Spec.Controller) > 250 {
			allErrs = append(allErrs, field.TooLong(fldPath.Child("controller"), "", 250))
		}
		allErrs = append(allErrs, validation.IsDomainPrefixedPath(fldPath.Child("controller"), ic.Spec.Controller)...)
	}
	if p := ic.Spec.Parameters; p != nil {
		pp := fldPath.Child("parameters")
		allErrs = append(allErrs, validateTypedReference(p.APIGroup, p.Kind, p.Name, pp)...)
		switch {
		case p.Scope == nil:
			allErrs = append(allErrs, field.Required(pp.Child("scope"), ""))
		case *p.Scope == networkingv1.IngressClassParametersReferenceScopeCluster:
			if p.Namespace != nil {
				allErrs = append(allErrs, field.Forbidden(pp.Child("namespace"), "`parameters.scope` is set to 'Cluster'"))
			}
		case *p.Scope == networkingv1.IngressClassParametersReferenceScopeNamespace:
			if p.Namespace == nil {
				allErrs = append(allErrs, field.Required(pp.Child("namespace"), "`parameters.scope` is set to 'Namespace'"))
			} else {
				for _, msg := range validation.IsDNS1123Label(*p.Namespace) {
					allErrs = append(allErrs, field.Invalid(pp.Child("namespace"), *p.Namespace, msg))
				}
			}
		default:
			allErrs = append(allErrs, field.NotSupported(pp.Child("scope"), *p.Scope, []string{
				networkingv1.IngressClassParametersReferenceScopeCluster, networkingv1.IngressClassParametersReferenceScopeNamespace,
			}))
		}
	}
	return allErrs
}

// --- NetworkPolicy --------------------------------------------------------

func networkPolicyStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*networkingv1.NetworkPolicy, *networkingv1.NetworkPolicyList]{
		New:     func() *networkingv1.NetworkPolicy { return &networkingv1.NetworkPolicy{} },
		NewList: func() *networkingv1.NetworkPolicyList { return &networkingv1.NetworkPolicyList{} },
		Default: defaultNetworkPolicy,
		Validate: func(np *networkingv1.NetworkPolicy) field.ErrorList {
			return validateNetworkPolicySpec(&np.Spec, field.NewPath("spec"))
		},
		Table: &registry.TypedTable[*networkingv1.NetworkPolicy]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Pod-Selector", networkingv1.NetworkPolicySpec{}.SwaggerDoc()["podSelector"], 0),
				columnAge(),
			},
			Row: func(np *networkingv1.NetworkPolicy) []any {
				return []any{np.Name, metav1.FormatLabelSelector(&np.Spec.PodSelector), cellAge(&np.ObjectMeta)}
			},
		},
	})
}

// defaultNetworkPolicy applies networking/v1 SetDefaults_NetworkPolicy:
// ports default to TCP, and policyTypes to Ingress (+ Egress when egress
// rules are given).
func defaultNetworkPolicy(np *networkingv1.NetworkPolicy) {
	for i := range np.Spec.Ingress {
		defaultNetworkPolicyPorts(np.Spec.Ingress[i].Ports)
	}
	for i := range np.Spec.Egress {
		defaultNetworkPolicyPorts(np.Spec.Egress[i].Ports)
	}
	if len(np.Spec.PolicyTypes) == 0 {
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) != 0 {
			np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
}

func defaultNetworkPolicyPorts(ports []networkingv1.NetworkPolicyPort) {
	for i := range ports {
		if ports[i].Protocol == nil {
			ports[i].Protocol = ptr.To(corev1.ProtocolTCP)
		}
	}
}

func validateNetworkPolicySpec(spec *networkingv1.NetworkPolicySpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateLabelSelector(&spec.PodSelector, fldPath.Child("podSelector"))...)
	for i, r := range spec.Ingress {
		p := fldPath.Child("ingress").Index(i)
		for j, port := range r.Ports {
			allErrs = append(allErrs, validateNetworkPolicyPort(port, p.Child("ports").Index(j))...)
		}
		for j, peer := range r.From {
			allErrs = append(allErrs, validateNetworkPolicyPeer(peer, p.Child("from").Index(j))...)
		}
	}
	for i, r := range spec.Egress {
		p := fldPath.Child("egress").Index(i)
		for j, port := range r.Ports {
			allErrs = append(allErrs, validateNetworkPolicyPort(port, p.Child("ports").Index(j))...)
		}
		for j, peer := range r.To {
			allErrs = append(allErrs, validateNetworkPolicyPeer(peer, p.Child("to").Index(j))...)
		}
	}
	valid := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	for i, t := range spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("policyTypes").Index(i), t, valid))
		}
	}
	if len(spec.PolicyTypes) > len(valid) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("policyTypes"), spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	return allErrs
}

func validateNetworkPolicyPort(port networkingv1.NetworkPolicyPort, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if port.Protocol != nil {
		allErrs = append(allErrs, validateProtocol(*port.Protocol, fldPath.Child("protocol"))...)
	}
	if port.Port != nil {
		if port.Port.Type == intstr.Int {
			allErrs = append(allErrs, validatePortNumber(port.Port.IntVal, fldPath.Child("port"))...)
			if port.EndPort != nil {
				if *port.EndPort < port.Port.IntVal {
					allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), *port.EndPort, "must be greater than or equal to `port`"))
				}
				allErrs = append(allErrs, validatePortNumber(*port.EndPort, fldPath.Child("endPort"))...)
			}
		} else {
			if port.EndPort != nil {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), *port.EndPort, "may not be specified when `port` is non-numeric"))
			}
			for _, msg := range validation.IsValidPortName(port.Port.StrVal) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("port"), port.Port.StrVal, msg))
			}
		}
	} else if port.EndPort != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("endPort"), *port.EndPort, "may not be specified when `port` is not specified"))
	}
	return allErrs
}

func validateNetworkPolicyPeer(peer networkingv1.NetworkPolicyPeer, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	n := 0
	if peer.PodSelector != nil {
		n++
		allErrs = append(allErrs, validateLabelSelector(peer.PodSelector, fldPath.Child("podSelector"))...)
	}
	if peer.NamespaceSelector != nil {
		n++
		allErrs = append(allErrs, validateLabelSelector(peer.NamespaceSelector, fldPath.Child("namespaceSelector"))...)
	}
	if peer.IPBlock != nil {
		n++
		allErrs = append(allErrs, validateIPBlock(peer.IPBlock, fldPath.Child("ipBlock"))...)
	}
	if n == 0 {
		allErrs = append(allErrs, field.Required(fldPath, "must specify a peer"))
	} else if peer.IPBlock != nil && n > 1 {
		allErrs = append(allErrs, field.Forbidden(fldPath, "may not specify both ipBlock and another peer"))
	}
	return allErrs
}

func validateIPBlock(b *networkingv1.IPBlock, fldPath *field.Path) field.ErrorList {
	if b.CIDR == "" {
		return field.ErrorList{field.Required(fldPath.Child("cidr"), "")}
	}
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return field.ErrorList{field.Invalid(fldPath.Child("cidr"), b.CIDR, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")}
	}
	var allErrs field.ErrorList
	for i, e := range b.Except {
		p := fldPath.Child("except").Index(i)
		ex, err := netip.ParsePrefix(e)
		if err != nil {
			allErrs = append(allErrs, field.Invalid(p, e, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
			continue
		}
		if ex.Bits() <= cidr.Bits() || !cidr.Contains(ex.Addr()) {
			allErrs = append(allErrs, field.Invalid(p, e, "must be a strict subset of `cidr`"))
		}
	}
	return allErrs
}

// --- EndpointSlice --------------------------------------------------------

// endpointSliceMax are upstream's bounds on an EndpointSlice.
const (
	endpointSliceMaxEndpoints = 1000
	endpointSliceMaxPorts     = 100
	endpointMaxAddresses      = 100
)

func endpointSliceStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*discoveryv1.EndpointSlice, *discoveryv1.EndpointSliceList]{
		New:      func() *discoveryv1.EndpointSlice { return &discoveryv1.EndpointSlice{} },
		NewList:  func() *discoveryv1.EndpointSliceList { return &discoveryv1.EndpointSliceList{} },
		Default:  defaultEndpointSlice,
		Validate: validateEndpointSlice,
		ValidateUpdate: func(es, old *discoveryv1.EndpointSlice) field.ErrorList {
			allErrs := validateEndpointSlice(es)
			return append(allErrs, validateImmutable(es.AddressType, old.AddressType, field.NewPath("addressType"))...)
		},
		Table: &registry.TypedTable[*discoveryv1.EndpointSlice]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("AddressType", discoveryv1.EndpointSlice{}.SwaggerDoc()["addressType"], 0),
				columnString("Ports", discoveryv1.EndpointSlice{}.SwaggerDoc()["ports"], 0),
				columnString("Endpoints", discoveryv1.EndpointSlice{}.SwaggerDoc()["endpoints"], 0),
				columnAge(),
			},
			Row: func(es *discoveryv1.EndpointSlice) []any {
				return []any{es.Name, string(es.AddressType), endpointSlicePortsCell(es.Ports), endpointSliceEndpointsCell(es.Endpoints), cellAge(&es.ObjectMeta)}
			},
		},
	})
}

// defaultEndpointSlice applies discovery/v1 defaults: port name "" and
// protocol TCP.
func defaultEndpointSlice(es *discoveryv1.EndpointSlice) {
	for i := range es.Ports {
		if es.Ports[i].Name == nil {
			es.Ports[i].Name = ptr.To("")
		}
		if es.Ports[i].Protocol == nil {
			es.Ports[i].Protocol = ptr.To(corev1.ProtocolTCP)
		}
	}
}

func validateEndpointSlice(es *discoveryv1.EndpointSlice) field.ErrorList {
	var allErrs field.ErrorList
	switch es.AddressType {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN:
	case "":
		allErrs = append(allErrs, field.Required(field.NewPath("addressType"), ""))
	default:
		allErrs = append(allErrs, field.NotSupported(field.NewPath("addressType"), es.AddressType, []discoveryv1.AddressType{
			discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN,
		}))
	}
	if len(es.Endpoints) > endpointSliceMaxEndpoints {
		allErrs = append(allErrs, field.TooMany(field.NewPath("endpoints"), len(es.Endpoints), endpointSliceMaxEndpoints))
	}
	for i, ep := range es.Endpoints {
		p := field.NewPath("endpoints").Index(i)
		if len(ep.Addresses) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("addresses"), "must contain at least 1 address"))
		} else if len(ep.Addresses) > endpointMaxAddresses {
			allErrs = append(allErrs, field.TooMany(p.Child("addresses"), len(ep.Addresses), endpointMaxAddresses))
		}
		for j, a := range ep.Addresses {
			allErrs = append(allErrs, validateEndpointAddress(a, es.AddressType, p.Child("addresses").Index(j))...)
		}
		if ep.Hostname != nil {
			for _, msg := range validation.IsDNS1123Label(*ep.Hostname) {
				allErrs = append(allErrs, field.Invalid(p.Child("hostname"), *ep.Hostname, msg))
			}
		}
	}
	if len(es.Ports) > endpointSliceMaxPorts {
		allErrs = append(allErrs, field.TooMany(field.NewPath("ports"), len(es.Ports), endpointSliceMaxPorts))
	}
	names := map[string]bool{}
	for i, port := range es.Ports {
		p := field.NewPath("ports").Index(i)
		name := ptr.Deref(port.Name, "")
		if name != "" {
			for _, msg := range validation.IsDNS1123Label(name) {
				allErrs = append(allErrs, field.Invalid(p.Child("name"), name, msg))
			}
		}
		if names[name] {
			allErrs = append(allErrs, field.Duplicate(p.Child("name"), name))
		}
		names[name] = true
		if port.Protocol == nil {
			allErrs = append(allErrs, field.Required(p.Child("protocol"), ""))
		} else {
			allErrs = append(allErrs, validateProtocol(*port.Protocol, p.Child("protocol"))...)
		}
		if port.Port != nil {
			allErrs = append(allErrs, validatePortNumber(*port.Port, p.Child("port"))...)
		}
	}
	return allErrs
}

func validateEndpointAddress(a string, t discoveryv1.AddressType, fldPath *field.Path) field.ErrorList {
	switch t {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return field.ErrorList{field.Invalid(fldPath, a, "must be a valid IP address")}
		}
		if t == discoveryv1.AddressTypeIPv4 && !ip.Is4() {
			return field.ErrorList{field.Invalid(fldPath, a, "must be an IPv4 address")}
		}
		if t == discoveryv1.AddressTypeIPv6 && !ip.Is6() {
			return field.ErrorList{field.Invalid(fldPath, a, "must be an IPv6 address")}
		}
	case discoveryv1.AddressTypeFQDN:
		var allErrs field.ErrorList
		for _, msg := range validation.IsDNS1123Subdomain(a) {
			allErrs = append(allErrs, field.Invalid(fldPath, a, msg))
		}
		return allErrs
	}
	return nil
}

// endpointSlicePortsCell renders the PORTS column ("80,443", "<unset>").
func endpointSlicePortsCell(ports []discoveryv1.EndpointPort) string {
	if len(ports) == 0 {
		return "<unset>"
	}
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		if p.Port == nil {
			out = append(out, "<unset>")
			continue
		}
		out = append(out, strconv.Itoa(int(*p.Port)))
	}
	return strings.Join(out, ",")
}

// endpointSliceEndpointsCell renders the ENDPOINTS column: the first three
// addresses, then "+ N more...".
func endpointSliceEndpointsCell(eps []discoveryv1.Endpoint) string {
	var addrs []string
	for _, ep := range eps {
		addrs = append(addrs, ep.Addresses...)
	}
	if len(addrs) == 0 {
		return "<unset>"
	}
	if len(addrs) > 3 {
		return strings.Join(addrs[:3], ",") + fmt.Sprintf(" + %d more...", len(addrs)-3)
	}
	return strings.Join(addrs, ",")
}
