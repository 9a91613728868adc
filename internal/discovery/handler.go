package discovery

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/internal/registry"
)

// Aggregated discovery media type parameters, as client-go sends and checks
// them.
const (
	discoveryGroup = "apidiscovery.k8s.io"
	aggregatedKind = "APIGroupDiscoveryList"
)

// document is a precomputed JSON body.
type document struct {
	body []byte
	etag string // quoted; set only for aggregated documents
}

// handler serves the documents computed by New. All fields are written by
// New only, so ServeHTTP needs no locking.
type handler struct {
	coreVersions []string             // ["v1"] when core resources exist
	apiV1        *document            // nil when there is no core group
	apis         *document            // legacy APIGroupList
	groups       map[string]*document // "/apis/<g>"
	groupVersion map[string]*document // "/apis/<g>/<v>"
	// aggregated documents by discovery version ("v2", "v2beta1").
	aggAPI  map[string]*document
	aggAPIs map[string]*document
}

// New returns the discovery handler for resources and the extra groups
// other handlers serve. It serves /api, /api/v1, /apis, /apis/<g> and
// /apis/<g>/<v> (GET and HEAD) and answers 404 for any other path. The
// documents are computed once, here; resources and extra are not retained.
// Extra groups are listed after the built-in ones.
func New(resources []*registry.Resource, extra ...ExtraGroup) http.Handler {
	h := &handler{
		groups:       map[string]*document{},
		groupVersion: map[string]*document{},
		aggAPI:       map[string]*document{},
		aggAPIs:      map[string]*document{},
	}
	all, notStored := withExtra(resources, extra)
	groups := groupsOf(all)

	groupList := &metav1.APIGroupList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
		Groups:   []metav1.APIGroup{},
	}
	aggCore := &apidiscoveryv2.APIGroupDiscoveryList{Items: []apidiscoveryv2.APIGroupDiscovery{}}
	aggNamed := &apidiscoveryv2.APIGroupDiscoveryList{Items: []apidiscoveryv2.APIGroupDiscovery{}}
	for _, g := range groups {
		if g.name == "" {
			if rs, ok := g.resources["v1"]; ok {
				h.coreVersions = []string{"v1"}
				h.apiV1 = mustJSON(resourceList(schema.GroupVersion{Version: "v1"}, rs, notStored))
				core := &groupInfo{name: "", versions: []string{"v1"}, resources: map[string][]*registry.Resource{"v1": rs}}
				aggCore.Items = append(aggCore.Items, aggregatedGroup(core))
			}
			continue
		}
		gd := groupDoc(g)
		groupList.Groups = append(groupList.Groups, *gd)
		h.groups[g.name] = mustJSON(gd)
		for _, v := range g.versions {
			gv := schema.GroupVersion{Group: g.name, Version: v}
			h.groupVersion[gv.String()] = mustJSON(resourceList(gv, g.resources[v], notStored))
		}
		aggNamed.Items = append(aggNamed.Items, aggregatedGroup(g))
	}
	h.apis = mustJSON(groupList)
	for _, v := range []string{"v2", "v2beta1"} {
		h.aggAPI[v] = aggregatedDocument(aggCore, v)
		h.aggAPIs[v] = aggregatedDocument(aggNamed, v)
	}
	return h
}

// aggregatedDocument renders list as apidiscovery.k8s.io/<version>; v2 and
// v2beta1 have the same JSON shape.
func aggregatedDocument(list *apidiscoveryv2.APIGroupDiscoveryList, version string) *document {
	l := *list
	l.TypeMeta = metav1.TypeMeta{Kind: aggregatedKind, APIVersion: discoveryGroup + "/" + version}
	d := mustJSON(&l)
	sum := sha256.Sum256(d.body)
	d.etag = strconv.Quote(strings.ToUpper(hex.EncodeToString(sum[:])))
	return d
}

// mustJSON marshals a discovery type; these contain only strings, bools and
// slices, so marshalling cannot fail.
func mustJSON(v any) *document {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("discovery: marshalling %T: %v", v, err))
	}
	return &document{body: b}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed",
			fmt.Sprintf("%s is not supported on discovery endpoints", r.Method))
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var doc *document
	switch {
	case path == "/api":
		if v, ok := negotiateAggregated(r.Header.Values("Accept")); ok {
			h.serveAggregated(w, r, h.aggAPI[v], v)
			return
		}
		h.serveAPIVersions(w, r)
		return
	case path == "/apis":
		if v, ok := negotiateAggregated(r.Header.Values("Accept")); ok {
			h.serveAggregated(w, r, h.aggAPIs[v], v)
			return
		}
		doc = h.apis
	case path == "/api/v1":
		doc = h.apiV1
	case len(parts) == 2 && parts[0] == "apis":
		doc = h.groups[parts[1]]
	case len(parts) == 3 && parts[0] == "apis":
		doc = h.groupVersion[parts[1]+"/"+parts[2]]
	}
	if doc == nil {
		writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("the server could not find the requested resource (get %s)", path))
		return
	}
	writeJSON(w, r, doc.body)
}

// serveAPIVersions writes the legacy /api document. Its server address is
// the host the client used to reach us.
func (h *handler) serveAPIVersions(w http.ResponseWriter, r *http.Request) {
	v := &metav1.APIVersions{
		TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
		Versions: h.coreVersions,
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{
			{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host},
		},
	}
	if v.Versions == nil {
		v.Versions = []string{}
	}
	writeJSON(w, r, mustJSON(v).body)
}

// serveAggregated writes an aggregated discovery document, or 304 when the
// client already has it.
func (h *handler) serveAggregated(w http.ResponseWriter, r *http.Request, doc *document, version string) {
	hdr := w.Header()
	hdr.Set("Vary", "Accept")
	hdr.Set("ETag", doc.etag)
	hdr.Set("Content-Type", "application/json;g="+discoveryGroup+";v="+version+";as="+aggregatedKind)
	for _, tag := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		if t := strings.TrimSpace(tag); t == doc.etag || t == "*" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	hdr.Set("Content-Length", strconv.Itoa(len(doc.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(doc.body)
	}
}

func writeJSON(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// writeStatus writes a metav1.Status failure, as the API server reports
// errors.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	st := &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reason,
		Code:     int32(code),
	}
	b := mustJSON(st).body
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// acceptClause is one media range of an Accept header.
type acceptClause struct {
	base   string
	params map[string]string
	q      float64
}

// negotiateAggregated reports whether the Accept header prefers aggregated
// discovery and, if so, which version ("v2" or "v2beta1"). Clauses are
// considered by descending q, ties in header order; the first clause we can
// serve decides. A clause asking for aggregated discovery in a form we
// cannot produce (protobuf, another version) is skipped.
func negotiateAggregated(accept []string) (string, bool) {
	var clauses []acceptClause
	for _, a := range accept {
		for _, c := range strings.Split(a, ",") {
			c = strings.TrimSpace(c)
			if c == "" {
				continue
			}
			base, params, err := mime.ParseMediaType(c)
			if err != nil {
				continue
			}
			q := 1.0
			if s, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(s, 64); err == nil {
					q = f
				}
			}
			clauses = append(clauses, acceptClause{base: base, params: params, q: q})
		}
	}
	sort.SliceStable(clauses, func(i, j int) bool { return clauses[i].q > clauses[j].q })
	for _, c := range clauses {
		if c.q <= 0 {
			continue
		}
		if _, ok := c.params["g"]; !ok {
			// A plain media range: the legacy document serves it.
			return "", false
		}
		if c.params["g"] != discoveryGroup || c.params["as"] != aggregatedKind {
			continue
		}
		if c.base != "application/json" && c.base != "application/*" && c.base != "*/*" {
			continue
		}
		if v := c.params["v"]; v == "v2" || v == "v2beta1" {
			return v, true
		}
	}
	return "", false
}
