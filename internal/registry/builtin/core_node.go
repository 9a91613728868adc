package builtin

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/registry"
)

// ---- nodes ----

func nodeResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("nodes"),
		Kind:       "Node",
		ListKind:   "NodeList",
		Singular:   "node",
		ShortNames: []string{"no"},
		Status:     true,
		Strategy: registry.Define(registry.Typed[*corev1.Node, *corev1.NodeList]{
			New:     func() *corev1.Node { return &corev1.Node{} },
			NewList: func() *corev1.NodeList { return &corev1.NodeList{} },
			// No PrepareForCreate: the node agent registers its node with
			// status, as upstream allows.
			Default:              defaultNode,
			Validate:             validateNode,
			ValidateUpdate:       validateNodeUpdate,
			ValidateStatusUpdate: func(n, _ *corev1.Node) field.ErrorList { return validateNodeStatus(n) },
			Fields: map[string]func(*corev1.Node) string{
				"spec.unschedulable": func(n *corev1.Node) string { return strconv.FormatBool(n.Spec.Unschedulable) },
			},
			Table: &registry.TypedTable[*corev1.Node]{
				Columns: []metav1.TableColumnDefinition{
					columnName(),
					columnString("Status", "The status of the node", 0),
					columnString("Roles", "The roles of the node", 0),
					columnAge(),
					columnString("Version", corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"], 0),
					columnString("Internal-IP", corev1.NodeStatus{}.SwaggerDoc()["addresses"], 1),
					columnString("External-IP", corev1.NodeStatus{}.SwaggerDoc()["addresses"], 1),
					columnString("OS-Image", corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"], 1),
					columnString("Kernel-Version", corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"], 1),
					columnString("Container-Runtime", corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"], 1),
				},
				Row: nodeRow,
			},
		}),
	}
}

// defaultNode: allocatable defaults to capacity.
func defaultNode(n *corev1.Node) {
	roundResourceList(n.Status.Capacity)
	roundResourceList(n.Status.Allocatable)
	if n.Status.Allocatable == nil && len(n.Status.Capacity) > 0 {
		n.Status.Allocatable = corev1.ResourceList{}
		for k, v := range n.Status.Capacity {
			n.Status.Allocatable[k] = v.DeepCopy()
		}
	}
}

func validateNode(n *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	errs = append(errs, validateTaints(n.Spec.Taints, spec.Child("taints"))...)
	if n.Spec.PodCIDR != "" {
		if _, _, err := net.ParseCIDR(n.Spec.PodCIDR); err != nil {
			errs = append(errs, field.Invalid(spec.Child("podCIDR"), n.Spec.PodCIDR, "must be a valid CIDR"))
		}
	}
	for i, c := range n.Spec.PodCIDRs {
		if _, _, err := net.ParseCIDR(c); err != nil {
			errs = append(errs, field.Invalid(spec.Child("podCIDRs").Index(i), c, "must be a valid CIDR"))
		}
	}
	if len(n.Spec.PodCIDRs) > 0 && n.Spec.PodCIDR != "" && n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
		errs = append(errs, field.Invalid(spec.Child("podCIDRs"), n.Spec.PodCIDRs, "first entry must match spec.podCIDR"))
	}
	return append(errs, validateNodeStatus(n)...)
}

func validateNodeStatus(n *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	st := field.NewPath("status")
	errs = append(errs, validateResourceList(n.Status.Capacity, st.Child("capacity"))...)
	errs = append(errs, validateResourceList(n.Status.Allocatable, st.Child("allocatable"))...)
	for i, a := range n.Status.Addresses {
		if a.Type == "" {
			errs = append(errs, field.Required(st.Child("addresses").Index(i).Child("type"), ""))
		}
	}
	return errs
}

// validateNodeUpdate: podCIDR(s) and providerID may only be set once.
func validateNodeUpdate(n, old *corev1.Node) field.ErrorList {
	errs := validateNode(n)
	spec := field.NewPath("spec")
	if old.Spec.PodCIDR != "" && n.Spec.PodCIDR != old.Spec.PodCIDR {
		errs = append(errs, field.Forbidden(spec.Child("podCIDR"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if len(old.Spec.PodCIDRs) > 0 && !slices.Equal(n.Spec.PodCIDRs, old.Spec.PodCIDRs) {
		errs = append(errs, field.Forbidden(spec.Child("podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if old.Spec.ProviderID != "" && n.Spec.ProviderID != old.Spec.ProviderID {
		errs = append(errs, field.Forbidden(spec.Child("providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	return errs
}

func validateTaints(taints []corev1.Taint, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, t := range taints {
		p := fldPath.Index(i)
		errs = append(errs, metav1validation.ValidateLabelName(t.Key, p.Child("key"))...)
		if t.Value != "" {
			for _, msg := range validation.IsValidLabelValue(t.Value) {
				errs = append(errs, field.Invalid(p.Child("value"), t.Value, msg))
			}
		}
		if t.Effect == "" {
			errs = append(errs, field.Required(p.Child("effect"), ""))
		} else if !validTaintEffect(t.Effect) {
			errs = append(errs, field.NotSupported(p.Child("effect"), t.Effect, taintEffects))
		}
		key := t.Key + "/" + string(t.Effect)
		if seen.Has(key) {
			errs = append(errs, field.Duplicate(p, fmt.Sprintf("taint key=%q and effect=%q", t.Key, t.Effect)))
		}
		seen.Insert(key)
	}
	return errs
}

const (
	nodeLabelRolePrefix = "node-role.kubernetes.io/"
	nodeLabelRole       = "kubernetes.io/role"
)

func nodeRow(n *corev1.Node) []any {
	var status []string
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				status = append(status, "Ready")
			} else {
				status = append(status, "NotReady")
			}
			break
		}
	}
	if len(status) == 0 {
		status = append(status, "Unknown")
	}
	if n.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}
	roles := sets.New[string]()
	for k, v := range n.Labels {
		switch {
		case strings.HasPrefix(k, nodeLabelRolePrefix):
			if r := strings.TrimPrefix(k, nodeLabelRolePrefix); r != "" {
				roles.Insert(r)
			}
		case k == nodeLabelRole && v != "":
			roles.Insert(v)
		}
	}
	rolesCell := strings.Join(sets.List(roles), ",")
	if rolesCell == "" {
		rolesCell = "<none>"
	}
	addr := func(t corev1.NodeAddressType) string {
		for _, a := range n.Status.Addresses {
			if a.Type == t {
				return a.Address
			}
		}
		return "<none>"
	}
	unknown := func(s string) string {
		if s == "" {
			return "<unknown>"
		}
		return s
	}
	info := n.Status.NodeInfo
	return []any{
		n.Name, strings.Join(status, ","), rolesCell, cellAge(&n.ObjectMeta), info.KubeletVersion,
		addr(corev1.NodeInternalIP), addr(corev1.NodeExternalIP),
		unknown(info.OSImage), unknown(info.KernelVersion), unknown(info.ContainerRuntimeVersion),
	}
}

// ---- endpoints ----

func endpointsResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("endpoints"),
		Kind:       "Endpoints",
		ListKind:   "EndpointsList",
		Singular:   "endpoints",
		ShortNames: []string{"ep"},
		Namespaced: true,
		Strategy: registry.Define(registry.Typed[*corev1.Endpoints, *corev1.EndpointsList]{
			New:     func() *corev1.Endpoints { return &corev1.Endpoints{} },
			NewList: func() *corev1.EndpointsList { return &corev1.EndpointsList{} },
			Default: func(e *corev1.Endpoints) {
				for i := range e.Subsets {
					for j := range e.Subsets[i].Ports {
						if e.Subsets[i].Ports[j].Protocol == "" {
							e.Subsets[i].Ports[j].Protocol = corev1.ProtocolTCP
						}
					}
				}
			},
			Validate: validateEndpoints,
			Table: &registry.TypedTable[*corev1.Endpoints]{
				Columns: []metav1.TableColumnDefinition{
					columnName(),
					columnString("Endpoints", corev1.Endpoints{}.SwaggerDoc()["subsets"], 0),
					columnAge(),
				},
				Row: func(e *corev1.Endpoints) []any {
					return []any{e.Name, formatEndpoints(e), cellAge(&e.ObjectMeta)}
				},
			},
		}),
	}
}

func validateEndpoints(e *corev1.Endpoints) field.ErrorList {
	var errs field.ErrorList
	for i, ss := range e.Subsets {
		p := field.NewPath("subsets").Index(i)
		for j, a := range ss.Addresses {
			errs = append(errs, validation.IsValidIP(p.Child("addresses").Index(j).Child("ip"), a.IP)...)
		}
		for j, a := range ss.NotReadyAddresses {
			errs = append(errs, validation.IsValidIP(p.Child("notReadyAddresses").Index(j).Child("ip"), a.IP)...)
		}
		for j, port := range ss.Ports {
			pp := p.Child("ports").Index(j)
			if len(ss.Ports) > 1 && port.Name == "" {
				errs = append(errs, field.Required(pp.Child("name"), ""))
			} else if port.Name != "" {
				for _, msg := range validation.IsDNS1123Label(port.Name) {
					errs = append(errs, field.Invalid(pp.Child("name"), port.Name, msg))
				}
			}
			for _, msg := range validation.IsValidPortNum(int(port.Port)) {
				errs = append(errs, field.Invalid(pp.Child("port"), port.Port, msg))
			}
			if port.Protocol == "" {
				errs = append(errs, field.Required(pp.Child("protocol"), ""))
			} else if !validProtocol(port.Protocol) {
				errs = append(errs, field.NotSupported(pp.Child("protocol"), port.Protocol, supportedPortProtocols))
			}
		}
	}
	return errs
}

// formatEndpoints lists up to three ip:port pairs and how many more there
// are, as upstream's printer does.
func formatEndpoints(e *corev1.Endpoints) string {
	if len(e.Subsets) == 0 {
		return "<none>"
	}
	const max = 3
	var list []string
	more := false
	count := 0
	for _, ss := range e.Subsets {
		if len(ss.Ports) == 0 {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) == max {
					more = true
					break
				}
				list = append(list, a.IP)
			}
			continue
		}
		for _, port := range ss.Ports {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) == max {
					more = true
					break
				}
				list = append(list, net.JoinHostPort(a.IP, strconv.Itoa(int(port.Port))))
			}
		}
	}
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, count-max)
	}
	return ret
}
