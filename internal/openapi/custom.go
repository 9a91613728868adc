package openapi

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// customInfo is the info of the v3 documents of custom resource group
// versions, as upstream's apiextensions-apiserver titles them.
var customInfo = &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes CRD Swagger", Version: "v0.1.0"}}

// customCRD is what one CRD contributes to the documents. It depends on
// the CRD's spec alone and is kept, keyed by the spec's hash, until the
// CRD changes or goes.
type customCRD struct {
	hash string
	// crd is a copy of the CRD's name and spec, from which the operations
	// and definitions of a version are derived again when its v3 document
	// is rebuilt (they are cheap to derive and costly to keep).
	crd *apiextensionsv1.CustomResourceDefinition
	// versions are the served versions, but those left out.
	versions []string
	errs     []error // why versions were left out
	// v2 holds the members the CRD adds to the built-in v2 document.
	v2 packedMembers
}

// customVersion is the operations and definitions of a served version.
type customVersion struct {
	gv     schema.GroupVersion
	routes []common.Route
	// defs holds the kind's and list kind's definitions, for v2 or v3.
	defs map[string]common.OpenAPIDefinition
}

// v2Member is one path, definition or shared parameter added to the v2
// document: `"name":value` in JSON, and a gnostic Document holding only
// it in protobuf.
type v2Member struct{ json, pb []byte }

// packedMembers holds a CRD's v2 members compressed: their JSON and their
// protobuf forms, each concatenated in index order.
type packedMembers struct {
	index    []memberEnd
	json, pb gzipped
}

// memberEnd names a member and where its forms end in the concatenations.
type memberEnd struct {
	section, name  string
	jsonEnd, pbEnd int
}

// pack compresses members, in section and name order.
func pack(members map[string]map[string]v2Member) packedMembers {
	var p packedMembers
	var js, pb []byte
	for _, sec := range v2Sections {
		for _, name := range sortedKeys(members[sec]) {
			m := members[sec][name]
			js, pb = append(js, m.json...), append(pb, m.pb...)
			p.index = append(p.index, memberEnd{sec, name, len(js), len(pb)})
		}
	}
	p.json, p.pb = compress(js), compress(pb)
	return p
}

// unpack returns the members p holds, by section and name.
func (p packedMembers) unpack() (map[string]map[string]v2Member, error) {
	js, err := p.json.plain()
	if err != nil {
		return nil, err
	}
	pb, err := p.pb.plain()
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]v2Member{}
	lastJS, lastPB := 0, 0
	for _, m := range p.index {
		if out[m.section] == nil {
			out[m.section] = map[string]v2Member{}
		}
		out[m.section][m.name] = v2Member{json: js[lastJS:m.jsonEnd], pb: pb[lastPB:m.pbEnd]}
		lastJS, lastPB = m.jsonEnd, m.pbEnd
	}
	return out, nil
}

// SetCustomResources replaces the published custom resources with every
// served version of crds, which should be the CRDs whose names are
// accepted and that are not gone. For each version it publishes the
// operations upstream publishes for custom resources and the definitions
// of the kind (named as upstream, e.g. com.example.stable.v1.CronTab,
// from the version's schema) and of the list kind: in /openapi/v2,
// merged with the built-in resources, and in one v3 document per group
// version, listed in the /openapi/v3 index.
//
// The new documents are built (v2 also in protobuf) before they are
// published, all at once: readers see the old ones until then and never
// wait for a rebuild. Calls are serialised. What a CRD contributes is kept until
// its spec changes, so a call rebuilds only the v3 documents of the
// group versions whose CRDs changed and re-assembles the v2 document if
// any did; a call with the CRDs already published changes nothing
// (documents, ETags and Last-Modified stay). A version that would clash
// with a built-in resource (its path or its definition name) is left
// out, and the returned error names it; everything else is still
// published. The CRDs are not modified; copies of their names and specs
// are kept.
func (h *Handler) SetCustomResources(crds []*apiextensionsv1.CustomResourceDefinition) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	old := h.cur.Load()

	crds = slices.Clone(crds)
	slices.SortFunc(crds, func(a, b *apiextensionsv1.CustomResourceDefinition) int { return strings.Compare(a.Name, b.Name) })
	var errs []error
	cache := make(map[string]*customCRD, len(crds))
	var used []*customCRD // in name order
	var v2Key strings.Builder
	byGV := map[string][]versionOf{} // by v3 document key
	gvKeys := map[string]*strings.Builder{}
	for _, crd := range crds {
		if _, dup := cache[crd.Name]; dup {
			continue
		}
		hash, err := specHash(crd)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c := h.crds[crd.Name]
		if c == nil || c.hash != hash {
			c = h.buildCRD(crd, hash)
		}
		cache[crd.Name] = c
		errs = append(errs, c.errs...)
		if len(c.versions) == 0 {
			continue
		}
		used = append(used, c)
		fmt.Fprintf(&v2Key, "%s=%s;", crd.Name, hash)
		for _, v := range c.versions {
			key := strings.TrimPrefix(gvPrefix(schema.GroupVersion{Group: crd.Spec.Group, Version: v}), "/")
			byGV[key] = append(byGV[key], versionOf{c.crd, v})
			if gvKeys[key] == nil {
				gvKeys[key] = &strings.Builder{}
			}
			fmt.Fprintf(gvKeys[key], "%s=%s;", crd.Name, hash)
		}
	}

	st := &state{v3: maps.Clone(h.builtin.v3)}
	switch {
	case v2Key.String() == h.v2Key:
		st.v2 = old.v2
	case len(used) == 0:
		st.v2 = h.builtin.v2
	default:
		d, err := h.customV2(used, now)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		st.v2 = d
	}
	st.v2 = publishable(old.v2, st.v2, now)

	v3Keys := make(map[string]string, len(byGV))
	for key, versions := range byGV {
		if gvKeys[key].String() == h.v3Keys[key] && old.v3[key] != nil {
			st.v3[key] = old.v3[key]
			v3Keys[key] = h.v3Keys[key]
			continue
		}
		d, err := h.customV3(versions, h.builtin.v3[key], now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st.v3[key] = d
		v3Keys[key] = gvKeys[key].String()
	}
	for key, d := range st.v3 {
		st.v3[key] = publishable(old.v3[key], d, now)
	}
	h.addRemote(st)
	index, err := newV3Index(st.v3, now)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	st.v3Index = publishable(old.v3Index, index, now)

	// kubectl reads v2 as protobuf: convert it now rather than on a
	// reader's request (0.2 s for the built-in part, once; a few
	// milliseconds after). The v3 documents, which kubectl reads as JSON,
	// are converted on first request, as the built-in ones are, to keep
	// the memory of the protobuf form of a hundred group versions for
	// when a client asks for it.
	if _, err := st.v2.protobuf(); err != nil {
		return errors.Join(append(errs, err)...)
	}
	h.cur.Store(st)
	h.crds, h.v2Key, h.v3Keys = cache, v2Key.String(), v3Keys
	return errors.Join(errs...)
}

// specHash identifies what the documents take from crd: its spec.
func specHash(crd *apiextensionsv1.CustomResourceDefinition) (string, error) {
	b, err := json.Marshal(&crd.Spec)
	if err != nil {
		return "", fmt.Errorf("hashing the spec of %s: %w", crd.Name, err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b)), nil
}

// publishable returns the document to serve where old was served: old
// itself when the content is the same, else d, dated now if it is older
// (a built-in document served again), so that Last-Modified never goes
// back.
func publishable(old, d *document, now time.Time) *document {
	if old != nil && old.etag == d.etag {
		return old
	}
	if d.modified.Before(now) {
		return d.at(now)
	}
	return d
}

// versionOf names a version of a CRD.
type versionOf struct {
	crd     *apiextensionsv1.CustomResourceDefinition
	version string
}

// buildCRD returns what crd contributes: its served versions and their
// v2 members.
func (h *Handler) buildCRD(crd *apiextensionsv1.CustomResourceDefinition, hash string) *customCRD {
	c := &customCRD{hash: hash, crd: &apiextensionsv1.CustomResourceDefinition{}}
	c.crd.Name = crd.Name
	crd.Spec.DeepCopyInto(&c.crd.Spec)
	var versions []*customVersion
	for i := range c.crd.Spec.Versions {
		v := &c.crd.Spec.Versions[i]
		if !v.Served {
			continue
		}
		cv, err := h.customVersion(c.crd, v, true)
		if err != nil {
			c.errs = append(c.errs, err)
			continue
		}
		versions = append(versions, cv)
		c.versions = append(c.versions, v.Name)
	}
	if len(versions) == 0 {
		return c
	}
	members, err := h.v2Members(versions)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("publishing %s in OpenAPI v2: %w", crd.Name, err))
		c.versions = nil
		return c
	}
	c.v2 = pack(members)
	return c
}

// customVersion returns the operations of version v of crd and the
// definitions of its kinds, for v2 or v3, or an error if they would clash
// with the built-in resources.
func (h *Handler) customVersion(crd *apiextensionsv1.CustomResourceDefinition, v *apiextensionsv1.CustomResourceDefinitionVersion, v2 bool) (*customVersion, error) {
	e := customEndpoint(crd, v)
	name, listName := string(e.obj.(customModel)), string(e.list.(customModel))
	routes := endpointRoutes(e)
	if clash := h.clash(routes, name, listName); clash != "" {
		return nil, fmt.Errorf("publishing %s %s in OpenAPI: %s of a built-in resource", crd.Name, v.Name, clash)
	}
	r := refs{prefix: "#/components/schemas/", defs: h.crDefsV3}
	if v2 {
		r = refs{v2: true, prefix: "#/definitions/", defs: h.crDefsV2}
	}
	kind, list := customKindSchemas(crd, v, r)
	return &customVersion{gv: e.gv, routes: routes, defs: map[string]common.OpenAPIDefinition{
		name:     {Schema: *kind, Dependencies: []string{objectMetaName()}},
		listName: {Schema: *list, Dependencies: []string{util.GetCanonicalTypeName(metav1.ListMeta{}), name}},
	}}, nil
}

// customEndpoint describes the operations of version v of crd.
func customEndpoint(crd *apiextensionsv1.CustomResourceDefinition, v *apiextensionsv1.CustomResourceDefinitionVersion) endpoint {
	names := crd.Spec.Names
	listKind := names.ListKind
	if listKind == "" {
		listKind = names.Kind + "List"
	}
	e := endpoint{
		gv:         schema.GroupVersion{Group: crd.Spec.Group, Version: v.Name},
		resource:   names.Plural,
		kind:       names.Kind,
		namespaced: crd.Spec.Scope != apiextensionsv1.ClusterScoped,
		verbs:      map[string]bool{},
		custom:     true,
	}
	for _, verb := range []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"} {
		e.verbs[verb] = true
	}
	e.obj = customModel(customModelName(e.gv.Group, e.gv.Version, names.Kind))
	e.list = customModel(customModelName(e.gv.Group, e.gv.Version, listKind))
	if v.Subresources != nil {
		e.status = v.Subresources.Status != nil
		e.scale = v.Subresources.Scale != nil
	}
	return e
}

// clash names what in routes or the definition names is already the
// built-in resources', or returns "".
func (h *Handler) clash(routes []common.Route, names ...string) string {
	for _, r := range routes {
		if h.v2.names["paths"][r.Path()] {
			return "path " + r.Path() + " is that"
		}
	}
	for _, n := range names {
		if h.v2.names["definitions"][n] {
			return "definition " + n + " is that"
		}
	}
	return ""
}

// v2Members builds the v2 spec of one CRD's versions and returns what it
// adds to the built-in document. Shared parameters are named after a
// hash of their content, so the same name in two CRDs' specs is the same
// parameter.
func (h *Handler) v2Members(versions []*customVersion) (map[string]map[string]v2Member, error) {
	defs := maps.Clone(h.crDefsV2)
	containers := make([]common.RouteContainer, 0, len(versions))
	for _, v := range versions {
		maps.Copy(defs, v.defs)
		containers = append(containers, &container{root: gvPrefix(v.gv), routes: v.routes})
	}
	cfg := &common.Config{
		Info:                           h.info,
		GetDefinitions:                 func(common.ReferenceCallback) map[string]common.OpenAPIDefinition { return defs },
		GetDefinitionName:              h.namer.definitionName,
		GetOperationIDAndTagsFromRoute: operationIDAndTags,
		CommonResponses: map[int]spec.Response{
			401: {ResponseProps: spec.ResponseProps{Description: "Unauthorized"}},
		},
	}
	sw, err := builder.BuildOpenAPISpecFromRoutes(containers, cfg)
	if err != nil {
		return nil, fmt.Errorf("building: %w", err)
	}
	return h.v2.members(sw)
}

// customV2 returns the built-in v2 document with the members of crds
// added (each name once, the first CRD's, in name order).
func (h *Handler) customV2(crds []*customCRD, now time.Time) (*document, error) {
	unpacked := make([]map[string]map[string]v2Member, 0, len(crds))
	for _, c := range crds {
		m, err := c.v2.unpack()
		if err != nil {
			return nil, fmt.Errorf("reading the OpenAPI v2 of %s: %w", c.crd.Name, err)
		}
		unpacked = append(unpacked, m)
	}
	add := additions{}
	var pb []byte
	for _, sec := range v2Sections {
		seen := map[string]bool{}
		for _, members := range unpacked {
			for _, name := range sortedKeys(members[sec]) {
				if seen[name] {
					continue
				}
				seen[name] = true
				m := members[sec][name]
				add[sec] = append(add[sec], m.json)
				pb = append(pb, m.pb...)
			}
		}
	}
	plain, err := h.v2.doc.json.plain()
	if err != nil {
		return nil, fmt.Errorf("reading the built-in OpenAPI v2: %w", err)
	}
	base := h.v2.doc
	return newDocumentJSON(h.v2.splice(plain, add), now, func(gzipped) ([]byte, error) {
		gz, err := base.protobuf()
		if err != nil {
			return nil, err
		}
		out, err := gz.plain()
		if err != nil {
			return nil, err
		}
		return append(out, pb...), nil
	}), nil
}

// customV3 returns the v3 document of versions, all of one group
// version; if a built-in document of that group version exists, they are
// merged into it.
func (h *Handler) customV3(versions []versionOf, builtin *document, now time.Time) (*document, error) {
	var gv schema.GroupVersion
	defs := maps.Clone(h.crDefsV3)
	var routes []common.Route
	for _, ref := range versions {
		for i := range ref.crd.Spec.Versions {
			v := &ref.crd.Spec.Versions[i]
			if v.Name != ref.version {
				continue
			}
			cv, err := h.customVersion(ref.crd, v, false)
			if err != nil {
				return nil, err
			}
			gv = cv.gv
			maps.Copy(defs, cv.defs)
			routes = append(routes, cv.routes...)
		}
	}
	cfg := &common.OpenAPIV3Config{
		Info:                           customInfo,
		Definitions:                    defs,
		GetDefinitionName:              h.namer.definitionName,
		GetOperationIDAndTagsFromRoute: operationIDAndTags,
		CommonResponses: map[int]*spec3.Response{
			401: {ResponseProps: spec3.ResponseProps{Description: "Unauthorized"}},
		},
	}
	doc, err := builder3.BuildOpenAPISpecFromRoutes([]common.RouteContainer{&container{root: gvPrefix(gv), routes: routes}}, cfg)
	if err != nil {
		return nil, fmt.Errorf("building OpenAPI v3 of %s: %w", gv, err)
	}
	if builtin != nil {
		if doc, err = mergeV3(builtin, doc); err != nil {
			return nil, fmt.Errorf("merging OpenAPI v3 of %s: %w", gv, err)
		}
	}
	return newDocument(doc, now, v3ToProto)
}

// mergeV3 returns the built-in document base with the paths and schemas
// of add it lacks.
func mergeV3(base *document, add *spec3.OpenAPI) (*spec3.OpenAPI, error) {
	plain, err := base.json.plain()
	if err != nil {
		return nil, err
	}
	out := &spec3.OpenAPI{}
	if err := json.Unmarshal(plain, out); err != nil {
		return nil, err
	}
	if out.Paths == nil {
		out.Paths = &spec3.Paths{}
	}
	if out.Paths.Paths == nil {
		out.Paths.Paths = map[string]*spec3.Path{}
	}
	if out.Components == nil {
		out.Components = &spec3.Components{}
	}
	if out.Components.Schemas == nil {
		out.Components.Schemas = map[string]*spec.Schema{}
	}
	for k, p := range add.Paths.Paths {
		if _, ok := out.Paths.Paths[k]; !ok {
			out.Paths.Paths[k] = p
		}
	}
	for k, s := range add.Components.Schemas {
		if _, ok := out.Components.Schemas[k]; !ok {
			out.Components.Schemas[k] = s
		}
	}
	return out, nil
}
