package discovery

import (
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"sort"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/skiff-dev/skiff/internal/registry"
)

// allVerbs returns what a Resource with nil Verbs serves, sorted as upstream
// prints them.
func allVerbs() []string {
	return []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
}

// subresource is one subresource as discovery advertises it.
type subresource struct {
	name string
	// kind is the response kind; a zero Kind means the parent's kind.
	kind  schema.GroupVersionKind
	verbs []string
}

// wellKnownSubresources lists, per core resource, the subresources upstream
// advertises beyond status and scale.
func wellKnownSubresources(gr schema.GroupResource) []subresource {
	core := func(kind string) schema.GroupVersionKind { return schema.GroupVersionKind{Version: "v1", Kind: kind} }
	if gr == (schema.GroupResource{Group: "certificates.k8s.io", Resource: "certificatesigningrequests"}) {
		return []subresource{{name: "approval", verbs: []string{"get", "patch", "update"}}}
	}
	if gr.Group != "" {
		return nil
	}
	switch gr.Resource {
	case "pods":
		return []subresource{
			{name: "attach", kind: core("PodAttachOptions"), verbs: []string{"create", "get"}},
			{name: "binding", kind: core("Binding"), verbs: []string{"create"}},
			{name: "ephemeralcontainers", verbs: []string{"get", "patch", "update"}},
			{name: "eviction", kind: schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}, verbs: []string{"create"}},
			{name: "exec", kind: core("PodExecOptions"), verbs: []string{"create", "get"}},
			{name: "log", verbs: []string{"get"}},
			{name: "portforward", kind: core("PodPortForwardOptions"), verbs: []string{"create", "get"}},
			{name: "proxy", kind: core("PodProxyOptions"), verbs: []string{"create", "delete", "get", "patch", "update"}},
		}
	case "services":
		return []subresource{{name: "proxy", kind: core("ServiceProxyOptions"), verbs: []string{"create", "delete", "get", "patch", "update"}}}
	case "namespaces":
		return []subresource{{name: "finalize", verbs: []string{"update"}}}
	case "nodes":
		return []subresource{{name: "proxy", kind: core("NodeProxyOptions"), verbs: []string{"create", "delete", "get", "patch", "update"}}}
	case "serviceaccounts":
		return []subresource{{name: "token", kind: schema.GroupVersionKind{Group: "authentication.k8s.io", Version: "v1", Kind: "TokenRequest"}, verbs: []string{"create"}}}
	}
	return nil
}

// subresourcesOf returns r's subresources sorted by name.
func subresourcesOf(r *registry.Resource) []subresource {
	var out []subresource
	if r.Status {
		out = append(out, subresource{name: "status", verbs: []string{"get", "patch", "update"}})
	}
	if r.Scale != nil {
		out = append(out, subresource{
			name:  "scale",
			kind:  schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"},
			verbs: []string{"get", "patch", "update"},
		})
	}
	out = append(out, wellKnownSubresources(r.GroupResource())...)
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// verbsOf returns r's verbs, sorted, never nil.
func verbsOf(r *registry.Resource) []string {
	if r.Verbs == nil {
		return allVerbs()
	}
	v := slices.Clone(r.Verbs)
	sort.Strings(v)
	return v
}

// StorageVersionHash returns the storageVersionHash discovery publishes for
// a resource stored as gvk: the base64 of the first 8 bytes of the SHA-256
// of "group/version/kind", as upstream computes it. Clients only compare it
// for equality.
func StorageVersionHash(gvk schema.GroupVersionKind) string {
	sum := sha256.Sum256([]byte(gvk.Group + "/" + gvk.Version + "/" + gvk.Kind))
	return base64.StdEncoding.EncodeToString(sum[:8])
}

// groupInfo is one API group and the resources of each of its versions.
type groupInfo struct {
	name string
	// versions is sorted by preference, the preferred version first.
	versions  []string
	resources map[string][]*registry.Resource // by version
}

// groupsOf groups resources by API group, in order of first appearance, with
// each group's versions sorted by Kubernetes version priority.
func groupsOf(resources []*registry.Resource) []*groupInfo {
	var out []*groupInfo
	byName := map[string]*groupInfo{}
	for _, r := range resources {
		g, ok := byName[r.GVR.Group]
		if !ok {
			g = &groupInfo{name: r.GVR.Group, resources: map[string][]*registry.Resource{}}
			byName[r.GVR.Group] = g
			out = append(out, g)
		}
		v := r.GVR.Version
		if _, ok := g.resources[v]; !ok {
			g.versions = append(g.versions, v)
		}
		g.resources[v] = append(g.resources[v], r)
	}
	for _, g := range out {
		sort.SliceStable(g.versions, func(i, j int) bool {
			return version.CompareKubeAwareVersionStrings(g.versions[i], g.versions[j]) > 0
		})
		for _, rs := range g.resources {
			sort.SliceStable(rs, func(i, j int) bool { return rs[i].GVR.Resource < rs[j].GVR.Resource })
		}
	}
	return out
}

// hasPods reports whether core/v1 pods is among rs; the legacy "bindings"
// resource is advertised alongside it.
func hasPods(rs []*registry.Resource) bool {
	for _, r := range rs {
		if r.GVR.Group == "" && r.GVR.Resource == "pods" {
			return true
		}
	}
	return false
}

// resourceList builds the legacy APIResourceList of one group version.
// Resources in notStored (extra groups' resources) get no storageVersionHash:
// nothing stores them.
func resourceList(gv schema.GroupVersion, rs []*registry.Resource, notStored map[*registry.Resource]bool) *metav1.APIResourceList {
	list := &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: gv.String(),
		APIResources: []metav1.APIResource{},
	}
	if gv.Group == "" && hasPods(rs) {
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: "bindings", SingularName: "binding", Namespaced: true, Kind: "Binding", Verbs: []string{"create"},
		})
	}
	for _, r := range rs {
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name:         r.GVR.Resource,
			SingularName: singularOf(r),
			Namespaced:   r.Namespaced,
			Kind:         r.Kind,
			Verbs:        verbsOf(r),
			ShortNames:   slices.Clone(r.ShortNames),
			Categories:   slices.Clone(r.Categories),
		})
		if !notStored[r] {
			gvk := r.GroupVersionKind()
			if r.StoredAs != nil {
				// Both versions share the stored version's objects.
				gvk = r.StoredAs.GVR.GroupVersion().WithKind(r.Kind)
			}
			list.APIResources[len(list.APIResources)-1].StorageVersionHash = StorageVersionHash(gvk)
		}
		for _, s := range subresourcesOf(r) {
			e := metav1.APIResource{
				Name:       r.GVR.Resource + "/" + s.name,
				Namespaced: r.Namespaced,
				Kind:       r.Kind,
				Verbs:      s.verbs,
			}
			if s.kind.Kind != "" {
				e.Group, e.Version, e.Kind = s.kind.Group, s.kind.Version, s.kind.Kind
			}
			list.APIResources = append(list.APIResources, e)
		}
	}
	return list
}

// groupDoc builds the legacy APIGroup of a named group.
func groupDoc(g *groupInfo) *metav1.APIGroup {
	doc := &metav1.APIGroup{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
		Name:     g.name,
	}
	for _, v := range g.versions {
		doc.Versions = append(doc.Versions, metav1.GroupVersionForDiscovery{
			GroupVersion: schema.GroupVersion{Group: g.name, Version: v}.String(),
			Version:      v,
		})
	}
	doc.PreferredVersion = doc.Versions[0]
	return doc
}

// aggregatedGroup builds the aggregated discovery entry of one group.
func aggregatedGroup(g *groupInfo) apidiscoveryv2.APIGroupDiscovery {
	out := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g.name}}
	for _, v := range g.versions {
		rs := g.resources[v]
		vd := apidiscoveryv2.APIVersionDiscovery{
			Version:   v,
			Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent,
			Resources: []apidiscoveryv2.APIResourceDiscovery{},
		}
		if g.name == "" && hasPods(rs) {
			vd.Resources = append(vd.Resources, apidiscoveryv2.APIResourceDiscovery{
				Resource:         "bindings",
				ResponseKind:     &metav1.GroupVersionKind{Version: "v1", Kind: "Binding"},
				Scope:            apidiscoveryv2.ScopeNamespace,
				SingularResource: "binding",
				Verbs:            []string{"create"},
			})
		}
		for _, r := range rs {
			scope := apidiscoveryv2.ScopeCluster
			if r.Namespaced {
				scope = apidiscoveryv2.ScopeNamespace
			}
			gvk := r.GroupVersionKind()
			rd := apidiscoveryv2.APIResourceDiscovery{
				Resource:         r.GVR.Resource,
				ResponseKind:     &metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
				Scope:            scope,
				SingularResource: singularOf(r),
				Verbs:            verbsOf(r),
				ShortNames:       slices.Clone(r.ShortNames),
				Categories:       slices.Clone(r.Categories),
			}
			for _, s := range subresourcesOf(r) {
				k := s.kind
				if k.Kind == "" {
					k = gvk
				}
				rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{
					Subresource:  s.name,
					ResponseKind: &metav1.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind},
					Verbs:        s.verbs,
				})
			}
			vd.Resources = append(vd.Resources, rd)
		}
		out.Versions = append(out.Versions, vd)
	}
	return out
}

// singularOf returns r's singular name, defaulting to its lower-cased kind
// as upstream does; kubectl maps "kubectl get deployment" through it.
func singularOf(r *registry.Resource) string {
	if r.Singular != "" {
		return r.Singular
	}
	return strings.ToLower(r.Kind)
}
