package builtin

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/registry"
)

func serviceResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("services"),
		Kind:       "Service",
		ListKind:   "ServiceList",
		Singular:   "service",
		ShortNames: []string{"svc"},
		Categories: []string{"all"},
		Namespaced: true,
		Status:     true,
		Strategy: registry.Define(registry.Typed[*corev1.Service, *corev1.ServiceList]{
			New:                  func() *corev1.Service { return &corev1.Service{} },
			NewList:              func() *corev1.ServiceList { return &corev1.ServiceList{} },
			PrepareForCreate:     func(s *corev1.Service) { s.Status = corev1.ServiceStatus{} },
			PrepareForUpdate:     prepareServiceForUpdate,
			Default:              defaultService,
			Validate:             validateService,
			ValidateUpdate:       validateServiceUpdate,
			ValidateStatusUpdate: validateServiceStatus,
			ValidateName:         registry.NameIsDNS1035Label,
			Fields: map[string]func(*corev1.Service) string{
				"spec.clusterIP": func(s *corev1.Service) string { return s.Spec.ClusterIP },
				"spec.type":      func(s *corev1.Service) string { return string(s.Spec.Type) },
			},
			Table: &registry.TypedTable[*corev1.Service]{
				Columns: []metav1.TableColumnDefinition{
					columnName(),
					columnString("Type", corev1.ServiceSpec{}.SwaggerDoc()["type"], 0),
					columnString("Cluster-IP", corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"], 0),
					columnString("External-IP", corev1.ServiceSpec{}.SwaggerDoc()["externalIPs"], 0),
					columnString("Port(s)", corev1.ServiceSpec{}.SwaggerDoc()["ports"], 0),
					columnAge(),
					columnString("Selector", corev1.ServiceSpec{}.SwaggerDoc()["selector"], 1),
				},
				Row: serviceRow,
			},
		}),
	}
}

// externallyAccessible reports whether traffic policies for external
// traffic apply (NodePort, LoadBalancer, or ClusterIP with externalIPs).
func externallyAccessible(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer || s.Spec.Type == corev1.ServiceTypeNodePort ||
		(s.Spec.Type == corev1.ServiceTypeClusterIP && len(s.Spec.ExternalIPs) > 0)
}

func defaultService(s *corev1.Service) {
	spec := &s.Spec
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	if spec.SessionAffinity == corev1.ServiceAffinityNone {
		spec.SessionAffinityConfig = nil
	}
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		if c := spec.SessionAffinityConfig; c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{
				TimeoutSeconds: ptr.To(int32(corev1.DefaultClientIPServiceAffinitySeconds)),
			}}
		}
	}
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	for i := range spec.Ports {
		sp := &spec.Ports[i]
		if sp.Protocol == "" {
			sp.Protocol = corev1.ProtocolTCP
		}
		if sp.TargetPort == intstr.FromInt32(0) || sp.TargetPort == intstr.FromString("") {
			sp.TargetPort = intstr.FromInt32(sp.Port)
		}
	}
	if externallyAccessible(s) && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.InternalTrafficPolicy == nil && spec.Type != corev1.ServiceTypeExternalName {
		spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyCluster)
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
		spec.AllocateLoadBalancerNodePorts = ptr.To(true)
	}
	// IP families: skiff is single-stack IPv4 until service networking
	// lands; upstream sets these while allocating the cluster IP.
	if spec.Type != corev1.ServiceTypeExternalName {
		if spec.ClusterIP != "" && len(spec.ClusterIPs) == 0 {
			spec.ClusterIPs = []string{spec.ClusterIP}
		}
		if spec.IPFamilyPolicy == nil {
			// Headless services without a selector prefer dual stack
			// (their endpoints are managed by the user, of any family).
			if isHeadless(s) && len(spec.Selector) == 0 {
				spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyPreferDualStack)
			} else {
				spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
			}
		}
		if len(spec.IPFamilies) == 0 {
			spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}
	}
}

// prepareServiceForUpdate keeps what the server assigned when the client
// omits it (a replace of the original manifest): cluster IPs, node ports,
// the health check node port and the IP families.
func prepareServiceForUpdate(s, old *corev1.Service) {
	dropTypeDependentFields(s, old)
	if s.Spec.Type == corev1.ServiceTypeExternalName || old.Spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	if s.Spec.ClusterIP == "" && len(s.Spec.ClusterIPs) == 0 {
		s.Spec.ClusterIP = old.Spec.ClusterIP
		s.Spec.ClusterIPs = slices.Clone(old.Spec.ClusterIPs)
	}
	if s.Spec.IPFamilyPolicy == nil {
		s.Spec.IPFamilyPolicy = old.Spec.IPFamilyPolicy
	}
	if len(s.Spec.IPFamilies) == 0 {
		s.Spec.IPFamilies = slices.Clone(old.Spec.IPFamilies)
	}
	// Node ports and the health check node port are carried over only where
	// both the old and the new service use them: a change to a type (or an
	// allocateLoadBalancerNodePorts or traffic policy) without them releases
	// them, as upstream does.
	if needsNodePorts(old) && needsNodePorts(s) {
		for i := range s.Spec.Ports {
			np := &s.Spec.Ports[i]
			if np.NodePort != 0 {
				continue
			}
			for _, op := range old.Spec.Ports {
				if op.Port == np.Port && (op.Protocol == np.Protocol || np.Protocol == "") {
					np.NodePort = op.NodePort
					break
				}
			}
		}
	}
	if needsHealthCheckNodePort(old) && needsHealthCheckNodePort(s) && s.Spec.HealthCheckNodePort == 0 {
		s.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
	}
}

// needsNodePorts reports whether the service is given node ports: a NodePort
// service, or a LoadBalancer that does not opt out of them.
func needsNodePorts(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeNodePort ||
		(s.Spec.Type == corev1.ServiceTypeLoadBalancer && ptr.Deref(s.Spec.AllocateLoadBalancerNodePorts, true))
}

// needsHealthCheckNodePort reports whether the service is given a health
// check node port: a LoadBalancer with the Local external traffic policy.
func needsHealthCheckNodePort(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// dropTypeDependentFields clears, as upstream does on a type change, the
// fields the new type has no use for when the client left them as they
// were (it sent back what it read): cluster IPs and IP families for
// ExternalName, node ports where none are allocated, the health check
// node port without a Local LoadBalancer, the LoadBalancer-only fields,
// and the external traffic policy where no external traffic comes. A
// value the client changed is kept, and validation judges it.
func dropTypeDependentFields(s, old *corev1.Service) {
	spec, was := &s.Spec, &old.Spec
	if spec.Type == was.Type {
		return
	}
	if spec.Type == corev1.ServiceTypeExternalName {
		if spec.ClusterIP == was.ClusterIP && slices.Equal(spec.ClusterIPs, was.ClusterIPs) {
			spec.ClusterIP, spec.ClusterIPs = "", nil
		}
		if slices.Equal(spec.IPFamilies, was.IPFamilies) {
			spec.IPFamilies = nil
		}
		if ptr.Equal(spec.IPFamilyPolicy, was.IPFamilyPolicy) {
			spec.IPFamilyPolicy = nil
		}
	}
	if !needsNodePorts(s) {
		for i := range spec.Ports {
			np := &spec.Ports[i]
			for _, op := range was.Ports {
				if op.Port == np.Port && op.Protocol == np.Protocol && op.NodePort == np.NodePort {
					np.NodePort = 0
				}
			}
		}
	}
	if !needsHealthCheckNodePort(s) && spec.HealthCheckNodePort == was.HealthCheckNodePort {
		spec.HealthCheckNodePort = 0
	}
	if spec.Type != corev1.ServiceTypeLoadBalancer {
		if ptr.Equal(spec.AllocateLoadBalancerNodePorts, was.AllocateLoadBalancerNodePorts) {
			spec.AllocateLoadBalancerNodePorts = nil
		}
		if ptr.Equal(spec.LoadBalancerClass, was.LoadBalancerClass) {
			spec.LoadBalancerClass = nil
		}
	}
	if !externallyAccessible(s) && spec.ExternalTrafficPolicy == was.ExternalTrafficPolicy {
		spec.ExternalTrafficPolicy = ""
	}
}

var serviceTypes = []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName}

func isHeadless(s *corev1.Service) bool {
	return s.Spec.ClusterIP == corev1.ClusterIPNone
}

func validateService(s *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")

	if !slices.Contains(serviceTypes, s.Spec.Type) {
		if s.Spec.Type == "" {
			errs = append(errs, field.Required(spec.Child("type"), ""))
		} else {
			errs = append(errs, field.NotSupported(spec.Child("type"), s.Spec.Type, serviceTypes))
		}
	}

	if s.Spec.Type == corev1.ServiceTypeExternalName {
		if s.Spec.ExternalName == "" {
			errs = append(errs, field.Required(spec.Child("externalName"), ""))
		} else {
			name := strings.TrimSuffix(s.Spec.ExternalName, ".")
			for _, msg := range validation.IsDNS1123Subdomain(name) {
				errs = append(errs, field.Invalid(spec.Child("externalName"), s.Spec.ExternalName, msg))
			}
		}
		if s.Spec.ClusterIP != "" {
			errs = append(errs, field.Forbidden(spec.Child("clusterIP"), "may not be set for ExternalName services"))
		}
	} else if len(s.Spec.Ports) == 0 && !isHeadless(s) {
		errs = append(errs, field.Required(spec.Child("ports"), ""))
	}

	if ip := s.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		errs = append(errs, validation.IsValidIP(spec.Child("clusterIP"), ip)...)
	}
	if isHeadless(s) && (s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer) {
		errs = append(errs, field.Invalid(spec.Child("clusterIPs").Index(0), corev1.ClusterIPNone, fmt.Sprintf("may not be set to 'None' for %s services", s.Spec.Type)))
	}
	if len(s.Spec.ClusterIPs) > 0 && s.Spec.ClusterIP != "" && s.Spec.ClusterIPs[0] != s.Spec.ClusterIP {
		errs = append(errs, field.Invalid(spec.Child("clusterIPs"), s.Spec.ClusterIPs, "first value must match `clusterIP`"))
	}
	for i, ip := range s.Spec.ExternalIPs {
		errs = append(errs, validation.IsValidIP(spec.Child("externalIPs").Index(i), ip)...)
	}

	requireName := len(s.Spec.Ports) > 1
	names := sets.New[string]()
	keys := sets.New[string]()
	for i, sp := range s.Spec.Ports {
		p := spec.Child("ports").Index(i)
		if sp.Name == "" {
			if requireName {
				errs = append(errs, field.Required(p.Child("name"), ""))
			}
		} else {
			for _, msg := range validation.IsDNS1123Label(sp.Name) {
				errs = append(errs, field.Invalid(p.Child("name"), sp.Name, msg))
			}
			if names.Has(sp.Name) {
				errs = append(errs, field.Duplicate(p.Child("name"), sp.Name))
			}
			names.Insert(sp.Name)
		}
		for _, msg := range validation.IsValidPortNum(int(sp.Port)) {
			errs = append(errs, field.Invalid(p.Child("port"), sp.Port, msg))
		}
		if sp.Protocol == "" {
			errs = append(errs, field.Required(p.Child("protocol"), ""))
		} else if !validProtocol(sp.Protocol) {
			errs = append(errs, field.NotSupported(p.Child("protocol"), sp.Protocol, supportedPortProtocols))
		}
		errs = append(errs, validatePortOrName(sp.TargetPort, p.Child("targetPort"))...)
		if sp.NodePort != 0 {
			if s.Spec.Type == corev1.ServiceTypeClusterIP || s.Spec.Type == corev1.ServiceTypeExternalName {
				errs = append(errs, field.Forbidden(p.Child("nodePort"), fmt.Sprintf("may not be used when `type` is '%s'", s.Spec.Type)))
			} else {
				for _, msg := range validation.IsValidPortNum(int(sp.NodePort)) {
					errs = append(errs, field.Invalid(p.Child("nodePort"), sp.NodePort, msg))
				}
			}
		}
		key := strconv.Itoa(int(sp.Port)) + "/" + string(sp.Protocol)
		if keys.Has(key) {
			errs = append(errs, field.Duplicate(p, key))
		}
		keys.Insert(key)
	}

	errs = append(errs, metav1validation.ValidateLabels(s.Spec.Selector, spec.Child("selector"))...)

	switch s.Spec.SessionAffinity {
	case corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP:
	case "":
		errs = append(errs, field.Required(spec.Child("sessionAffinity"), ""))
	default:
		errs = append(errs, field.NotSupported(spec.Child("sessionAffinity"), s.Spec.SessionAffinity,
			[]corev1.ServiceAffinity{corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone}))
	}
	if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		if t := *c.ClientIP.TimeoutSeconds; t <= 0 || t > maxClientIPAffinitySeconds {
			errs = append(errs, field.Invalid(spec.Child("sessionAffinityConfig", "clientIP", "timeoutSeconds"), t,
				fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds)))
		}
	}

	if etp := s.Spec.ExternalTrafficPolicy; etp != "" {
		if !externallyAccessible(s) {
			errs = append(errs, field.Invalid(spec.Child("externalTrafficPolicy"), etp, "may only be set for externally-accessible services"))
		} else if etp != corev1.ServiceExternalTrafficPolicyCluster && etp != corev1.ServiceExternalTrafficPolicyLocal {
			errs = append(errs, field.NotSupported(spec.Child("externalTrafficPolicy"), etp,
				[]corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal}))
		}
	} else if externallyAccessible(s) {
		errs = append(errs, field.Required(spec.Child("externalTrafficPolicy"), ""))
	}
	if itp := s.Spec.InternalTrafficPolicy; itp != nil && *itp != corev1.ServiceInternalTrafficPolicyCluster && *itp != corev1.ServiceInternalTrafficPolicyLocal {
		errs = append(errs, field.NotSupported(spec.Child("internalTrafficPolicy"), *itp,
			[]corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}))
	}
	if pol := s.Spec.IPFamilyPolicy; pol != nil {
		pols := []corev1.IPFamilyPolicy{corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack}
		if !slices.Contains(pols, *pol) {
			errs = append(errs, field.NotSupported(spec.Child("ipFamilyPolicy"), *pol, pols))
		}
	}
	for i, f := range s.Spec.IPFamilies {
		if f != corev1.IPv4Protocol && f != corev1.IPv6Protocol {
			errs = append(errs, field.NotSupported(spec.Child("ipFamilies").Index(i), f, []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}))
		}
	}
	return errs
}

// validateServiceUpdate adds the update rules: cluster IPs may not change
// once set, except to or from type ExternalName.
func validateServiceUpdate(s, old *corev1.Service) field.ErrorList {
	errs := validateService(s)
	if s.Spec.Type == corev1.ServiceTypeExternalName || old.Spec.Type == corev1.ServiceTypeExternalName {
		return errs
	}
	if old.Spec.ClusterIP != "" && s.Spec.ClusterIP != old.Spec.ClusterIP {
		errs = append(errs, validateImmutable(s.Spec.ClusterIP, old.Spec.ClusterIP, field.NewPath("spec", "clusterIP"))...)
	}
	for i, ip := range old.Spec.ClusterIPs {
		if i < len(s.Spec.ClusterIPs) && s.Spec.ClusterIPs[i] != ip {
			errs = append(errs, field.Invalid(field.NewPath("spec", "clusterIPs").Index(i), s.Spec.ClusterIPs, "may not change once set"))
		}
	}
	return errs
}

func validateServiceStatus(s, _ *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status", "loadBalancer", "ingress")
	for i, ing := range s.Status.LoadBalancer.Ingress {
		if ing.IP != "" {
			errs = append(errs, validation.IsValidIP(p.Index(i).Child("ip"), ing.IP)...)
		}
		if ing.Hostname != "" {
			for _, msg := range validation.IsDNS1123Subdomain(ing.Hostname) {
				errs = append(errs, field.Invalid(p.Index(i).Child("hostname"), ing.Hostname, msg))
			}
		}
	}
	return errs
}

func serviceRow(s *corev1.Service) []any {
	clusterIP := "<none>"
	if len(s.Spec.ClusterIPs) > 0 {
		clusterIP = s.Spec.ClusterIPs[0]
	} else if s.Spec.ClusterIP != "" {
		clusterIP = s.Spec.ClusterIP
	}
	return []any{
		s.Name,
		string(s.Spec.Type),
		clusterIP,
		serviceExternalIP(s),
		servicePorts(s.Spec.Ports),
		cellAge(&s.ObjectMeta),
		formatLabelMap(s.Spec.Selector),
	}
}

func serviceExternalIP(s *corev1.Service) string {
	switch s.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(s.Spec.ExternalIPs) > 0 {
			return strings.Join(s.Spec.ExternalIPs, ",")
		}
		return "<none>"
	case corev1.ServiceTypeLoadBalancer:
		lb := sets.New[string]()
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if ing.IP != "" {
				lb.Insert(ing.IP)
			} else if ing.Hostname != "" {
				lb.Insert(ing.Hostname)
			}
		}
		ips := append(sets.List(lb), s.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
		return strings.Join(ips, ",")
	case corev1.ServiceTypeExternalName:
		return s.Spec.ExternalName
	}
	return "<unknown>"
}

func servicePorts(ports []corev1.ServicePort) string {
	if len(ports) == 0 {
		return "<none>"
	}
	parts := make([]string, 0, len(ports))
	for _, p := range ports {
		if p.NodePort > 0 {
			parts = append(parts, fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol))
		} else {
			parts = append(parts, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
		}
	}
	return strings.Join(parts, ",")
}

// maxClientIPAffinitySeconds is upstream's limit on
// sessionAffinityConfig.clientIP.timeoutSeconds (one day).
const maxClientIPAffinitySeconds = 86400
