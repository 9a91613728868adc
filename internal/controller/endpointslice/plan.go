package endpointslice

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/controller/endpoints"
	"github.com/skiff-dev/skiff/internal/controller/ownership"
)

// group is the desired endpoints of one address type that serve one set
// of ports.
type group struct {
	ports []discovery.EndpointPort
	// endpoints by endpointKey.
	endpoints map[string]discovery.Endpoint
}

// changes is what a sync writes: slices to create (no name yet), to
// update (copies of existing slices, changed) and to delete.
type changes struct {
	create, update, delete []*discovery.EndpointSlice
}

func (c *changes) add(o changes) {
	c.create = append(c.create, o.create...)
	c.update = append(c.update, o.update...)
	c.delete = append(c.delete, o.delete...)
}

// empty reports whether nothing needs writing.
func (c *changes) empty() bool {
	return len(c.create)+len(c.update)+len(c.delete) == 0
}

// planAddressType computes the changes that turn existing (the slices of
// svc of address type at, all owned by svc) into slices holding exactly
// the desired groups, at most max endpoints each, as upstream's reconciler
// does: existing slices keep the endpoints that are still wanted (updated
// in place if they changed) and lose the others; slices being updated
// anyway are filled up first, then a slice left unchanged that can take
// all the rest, and only then new slices are made; slices left empty are
// deleted, or reused for what would be created. When no slice would be
// left, one empty placeholder slice stays (an existing one is kept).
//
// It is pure: existing slices are not modified.
func planAddressType(svc *corev1.Service, at discovery.AddressType, existing []*discovery.EndpointSlice, desired map[string]*group, max int) changes {
	var out changes
	wantLabels := sliceLabels(svc)
	byPorts := map[string][]*discovery.EndpointSlice{}
	for _, s := range existing {
		k := portsKey(s.Ports)
		byPorts[k] = append(byPorts[k], s)
	}
	for _, k := range slices.Sorted(maps.Keys(byPorts)) {
		if _, ok := desired[k]; !ok {
			out.delete = append(out.delete, byPorts[k]...)
		}
	}
	for _, pk := range slices.Sorted(maps.Keys(desired)) {
		out.add(planPorts(svc, at, byPorts[pk], desired[pk], wantLabels, max))
	}

	if len(existing) == len(out.delete) && len(out.create) == 0 {
		placeholder := newSlice(svc, at, []discovery.EndpointPort{}, wantLabels)
		if len(out.delete) == 1 && isPlaceholder(out.delete[0], placeholder) {
			out.delete = nil
		} else {
			out.create = append(out.create, placeholder)
		}
	}

	// Reuse slices that would be deleted for those that would be created.
	for len(out.create) > 0 && len(out.delete) > 0 {
		created := out.create[len(out.create)-1]
		out.create = out.create[:len(out.create)-1]
		reused := out.delete[len(out.delete)-1].DeepCopy()
		out.delete = out.delete[:len(out.delete)-1]
		reused.Labels = created.Labels
		reused.OwnerReferences = created.OwnerReferences
		reused.Ports = created.Ports
		reused.Endpoints = created.Endpoints
		out.update = append(out.update, reused)
	}

	return out
}

// planPorts plans the slices of one port set.
func planPorts(svc *corev1.Service, at discovery.AddressType, existing []*discovery.EndpointSlice, g *group, wantLabels map[string]string, max int) changes {
	var out changes
	remaining := maps.Clone(g.endpoints)
	var unchanged []*discovery.EndpointSlice
	existing = slices.Clone(existing)
	slices.SortFunc(existing, func(a, b *discovery.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	for _, s := range existing {
		var keep []discovery.Endpoint
		changed := false
		for _, ep := range s.Endpoints {
			k := endpointKey(&ep)
			want, ok := remaining[k]
			if !ok {
				changed = true // no longer wanted, or a duplicate
				continue
			}
			delete(remaining, k)
			if !apiequality.Semantic.DeepEqual(ep, want) {
				changed = true
			}
			keep = append(keep, want)
		}
		labelsChanged := !apiequality.Semantic.DeepEqual(s.Labels, wantLabels)
		switch {
		case changed && len(keep) == 0:
			out.delete = append(out.delete, s)
		case changed || labelsChanged:
			u := s.DeepCopy()
			u.Endpoints = keep
			u.Labels = maps.Clone(wantLabels)
			out.update = append(out.update, u)
		default:
			unchanged = append(unchanged, s)
		}
	}

	keys := slices.Sorted(maps.Keys(remaining))
	pop := func(s *discovery.EndpointSlice) {
		for len(keys) > 0 && len(s.Endpoints) < max {
			s.Endpoints = append(s.Endpoints, remaining[keys[0]])
			keys = keys[1:]
		}
	}
	// Fill the slices written anyway, fullest first.
	if len(keys) > 0 {
		fill := slices.Clone(out.update)
		slices.SortStableFunc(fill, func(a, b *discovery.EndpointSlice) int { return cmp.Compare(len(b.Endpoints), len(a.Endpoints)) })
		for _, s := range fill {
			pop(s)
		}
	}
	for len(keys) > 0 {
		var s *discovery.EndpointSlice
		if len(keys) < max {
			// The fullest unchanged slice that takes all the rest.
			best := -1
			for i, u := range unchanged {
				if len(u.Endpoints)+len(keys) <= max && (best < 0 || len(u.Endpoints) > len(unchanged[best].Endpoints)) {
					best = i
				}
			}
			if best >= 0 {
				s = unchanged[best].DeepCopy()
				unchanged = slices.Delete(unchanged, best, best+1)
				out.update = append(out.update, s)
			}
		}
		if s == nil {
			s = newSlice(svc, at, g.ports, wantLabels)
			out.create = append(out.create, s)
		}
		pop(s)
	}
	return out
}

// newSlice is an empty slice of svc (named by the server from
// generateName "<service>-").
func newSlice(svc *corev1.Service, at discovery.AddressType, ports []discovery.EndpointPort, labels map[string]string) *discovery.EndpointSlice {
	return &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    svc.Name + "-",
			Namespace:       svc.Namespace,
			Labels:          maps.Clone(labels),
			OwnerReferences: []metav1.OwnerReference{ownership.NewControllerRef(svc, corev1.SchemeGroupVersion.WithKind("Service"))},
		},
		AddressType: at,
		Ports:       slices.Clone(ports),
		Endpoints:   []discovery.Endpoint{},
	}
}

// isPlaceholder reports whether s is an empty slice equal to placeholder
// in what matters: namespace, labels, owner, address type, no ports and
// no endpoints.
func isPlaceholder(s, placeholder *discovery.EndpointSlice) bool {
	return s.Namespace == placeholder.Namespace &&
		apiequality.Semantic.DeepEqual(s.Labels, placeholder.Labels) &&
		apiequality.Semantic.DeepEqual(s.OwnerReferences, placeholder.OwnerReferences) &&
		s.AddressType == placeholder.AddressType &&
		len(s.Ports) == 0 && len(s.Endpoints) == 0
}

// sliceLabels are the labels of svc's slices: the service's own labels
// (except the reserved keys), service.kubernetes.io/headless for services
// without a cluster IP, kubernetes.io/service-name and
// endpointslice.kubernetes.io/managed-by.
func sliceLabels(svc *corev1.Service) map[string]string {
	l := map[string]string{}
	for k, v := range svc.Labels {
		switch k {
		case discovery.LabelServiceName, discovery.LabelManagedBy, corev1.IsHeadlessService:
			continue
		}
		l[k] = v
	}
	if endpoints.IsHeadless(svc) {
		l[corev1.IsHeadlessService] = ""
	}
	l[discovery.LabelServiceName] = svc.Name
	l[discovery.LabelManagedBy] = ManagedBy
	return l
}

// portsKey identifies a set of ports independently of order.
func portsKey(ports []discovery.EndpointPort) string {
	keys := make([]string, 0, len(ports))
	for _, p := range ports {
		var b strings.Builder
		if p.Name != nil {
			b.WriteString(*p.Name)
		}
		b.WriteByte('/')
		if p.Port != nil {
			b.WriteString(strconv.Itoa(int(*p.Port)))
		}
		b.WriteByte('/')
		if p.Protocol != nil {
			b.WriteString(string(*p.Protocol))
		} else {
			b.WriteString(string(corev1.ProtocolTCP))
		}
		b.WriteByte('/')
		if p.AppProtocol != nil {
			b.WriteString(*p.AppProtocol)
		}
		keys = append(keys, b.String())
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

// endpointKey identifies an endpoint across syncs: the pod it stands for,
// its addresses and hostname. Other fields (conditions, node, zone) are
// updated in place.
func endpointKey(ep *discovery.Endpoint) string {
	var b strings.Builder
	if ep.TargetRef != nil {
		b.WriteString(ep.TargetRef.Namespace + "/" + ep.TargetRef.Name)
	}
	b.WriteByte('|')
	addrs := slices.Clone(ep.Addresses)
	slices.Sort(addrs)
	b.WriteString(strings.Join(addrs, ","))
	b.WriteByte('|')
	if ep.Hostname != nil {
		b.WriteString(*ep.Hostname)
	}
	return b.String()
}
