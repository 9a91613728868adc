package openapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	openapiv3 "github.com/google/gnostic-models/openapiv3"
	"github.com/munnerz/goautoneg"
	"google.golang.org/protobuf/proto"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-dev/skiff/internal/registry"
)

// Media types of the OpenAPI documents. The "@" forms are what kubectl and
// client-go send; the server answers with the "." form, as upstream does.
const (
	mimeJSON          = "application/json"
	mimeV2Proto       = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
	mimeV2ProtoLegacy = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	mimeV3Proto       = "application/com.github.proto-openapi.spec.v3.v1.0+protobuf"
	mimeV3ProtoLegacy = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
)

// document is one served OpenAPI document: its JSON and its protobuf
// form, computed on first request (or, for documents built by
// SetCustomResources, before they are published). Both are kept gzipped:
// the documents of the built-in resources are about 8 MiB of JSON, which
// was a tenth of an idle server's memory; compressed they are a twelfth
// of that, and clients that accept gzip (kubectl, client-go) get the
// compressed bytes as they are. A document never changes once published.
type document struct {
	json     gzipped
	etag     string    // unquoted: upper-case hex SHA-512 of the JSON
	modified time.Time // Last-Modified

	hasProto bool // whether the document is served as protobuf too
	// protoFrom, when not nil, is a document of the same content whose
	// protobuf form this one shares.
	protoFrom *document
	protoOnce sync.Once
	// toProto converts the JSON; guarded by protoOnce, dropped once used.
	toProto  func(gzipped) ([]byte, error)
	proto    gzipped // guarded by protoOnce
	protoErr error   // guarded by protoOnce
}

// gzipped is a gzip stream.
type gzipped []byte

// gzipWriters holds gzip writers for compress: a new one allocates
// about a megabyte, and SetCustomResources compresses a few documents
// per CRD. It is a cache, not state: no result depends on it.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // the level is valid
	return zw
}}

func compress(b []byte) gzipped {
	var buf bytes.Buffer
	buf.Grow(len(b)/4 + 64)
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	zw.Write(b) // a bytes.Buffer does not fail
	zw.Close()
	gzipWriters.Put(zw)
	return bytes.Clone(buf.Bytes())
}

func (g gzipped) plain() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(g))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func newDocument(v any, modified time.Time, toProto func(gzipped) ([]byte, error)) (*document, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshalling OpenAPI document: %w", err)
	}
	return newDocumentJSON(b, modified, toProto), nil
}

// newDocumentJSON is newDocument of JSON already marshalled.
func newDocumentJSON(b []byte, modified time.Time, toProto func(gzipped) ([]byte, error)) *document {
	return &document{json: compress(b), etag: fmt.Sprintf("%X", sha512.Sum512(b)), modified: modified,
		hasProto: toProto != nil, toProto: toProto}
}

// at returns d dated modified.
func (d *document) at(modified time.Time) *document {
	from := d
	if d.protoFrom != nil {
		from = d.protoFrom
	}
	return &document{json: d.json, etag: d.etag, modified: modified, hasProto: d.hasProto, protoFrom: from}
}

// protobuf returns d's protobuf form, converting it on first call.
func (d *document) protobuf() (gzipped, error) {
	if d.protoFrom != nil {
		return d.protoFrom.protobuf()
	}
	d.protoOnce.Do(func() {
		b, err := d.toProto(d.json)
		d.toProto = nil
		if err != nil {
			d.protoErr = err
			return
		}
		d.proto = compress(b)
	})
	return d.proto, d.protoErr
}

func v2ToProto(g gzipped) ([]byte, error) {
	b, err := g.plain()
	if err != nil {
		return nil, err
	}
	doc, err := openapiv2.ParseDocument(b)
	if err != nil {
		return nil, fmt.Errorf("converting OpenAPI v2 to protobuf: %w", err)
	}
	return proto.Marshal(doc)
}

func v3ToProto(g gzipped) ([]byte, error) {
	b, err := g.plain()
	if err != nil {
		return nil, err
	}
	doc, err := openapiv3.ParseDocument(b)
	if err != nil {
		return nil, fmt.Errorf("converting OpenAPI v3 to protobuf: %w", err)
	}
	return proto.Marshal(doc)
}

// Handler serves the OpenAPI documents of the built-in resources, built
// once by New, merged with those of the custom resources last given to
// SetCustomResources. It is safe for concurrent use.
type Handler struct {
	// cur is what is served; readers load it and never wait for
	// SetCustomResources, which builds a new state and swaps it in.
	cur atomic.Pointer[state]

	// The built-in documents and what SetCustomResources needs to merge
	// into them; set by New and never changed.
	builtin *state
	v2      builtinV2
	// crDefsV2 and crDefsV3 hold the generated definitions the operations
	// of every custom resource refer to (ObjectMeta, ListMeta, Status,
	// DeleteOptions, Patch, Scale and their dependencies, TypeMeta), with
	// v2 and v3 references. kube-openapi's builders write the namer's
	// extensions into their extension maps, the same each time: they are
	// used under mu only.
	crDefsV2, crDefsV3 map[string]common.OpenAPIDefinition
	namer              *namer
	info               *spec.Info

	mu sync.Mutex // serialises SetCustomResources
	// What SetCustomResources last published, guarded by mu: the CRDs'
	// contributions by name, and the keys (CRD names and spec hashes) of
	// the v2 document and of each custom v3 document.
	crds   map[string]*customCRD
	v2Key  string
	v3Keys map[string]string
	// remote holds the v3 documents of extension API servers last given
	// to SetRemoteV3, by "apis/<g>/<v>"; guarded by mu.
	remote map[string]*document
}

// state is one consistent set of served documents.
type state struct {
	v2      *document
	v3Index *document
	v3      map[string]*document // by "api/v1", "apis/<g>/<v>"
}

// v3Index is the body of /openapi/v3.
type v3Index struct {
	Paths map[string]v3IndexEntry `json:"paths"`
}

type v3IndexEntry struct {
	ServerRelativeURL string `json:"serverRelativeURL"`
}

func newV3Index(docs map[string]*document, modified time.Time) (*document, error) {
	index := v3Index{Paths: make(map[string]v3IndexEntry, len(docs))}
	for gv, d := range docs {
		q := url.Values{"hash": {d.etag}}
		index.Paths[gv] = v3IndexEntry{ServerRelativeURL: "/openapi/v3/" + gv + "?" + q.Encode()}
	}
	return newDocument(index, modified, nil)
}

// New builds the OpenAPI v2 and v3 documents of resources and returns the
// handler serving /openapi/v2, /openapi/v3 (the index) and the v3 document
// of each group version (/openapi/v3/api/v1, /openapi/v3/apis/<g>/<v>) and
// of the discovery and version endpoints (/openapi/v3/api, …/apis,
// …/apis/<g>, …/version); anything else is 404. It publishes no custom
// resources until SetCustomResources is called.
//
// Definitions come from the generated GetOpenAPIDefinitions; a resource
// whose Go type has no generated definition is an error (add its package
// to hack/update-openapi.sh and regenerate). New takes about a fifth of a
// second for the built-in resources; protobuf forms are converted on first
// request.
func New(resources []*registry.Resource) (*Handler, error) {
	info := &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: "unversioned"}}
	s, err := buildSpecs(resources, info)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	h := &Handler{builtin: &state{v3: map[string]*document{}}, namer: s.namer, info: info,
		crDefsV2: s.crDefsV2, crDefsV3: s.crDefsV3}
	if h.v2, err = newBuiltinV2(s.v2, now); err != nil {
		return nil, err
	}
	h.builtin.v2 = h.v2.doc
	for gv, doc := range s.v3 {
		if h.builtin.v3[gv], err = newDocument(doc, now, v3ToProto); err != nil {
			return nil, err
		}
	}
	if h.builtin.v3Index, err = newV3Index(h.builtin.v3, now); err != nil {
		return nil, err
	}
	h.cur.Store(h.builtin)
	return h, nil
}

// ServeHTTP serves the current documents.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	st := h.cur.Load()
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/openapi/v2":
		serve(w, r, st.v2, mimeV2Proto, mimeV2ProtoLegacy)
	case path == "/openapi/v3":
		serve(w, r, st.v3Index, "", "")
	case strings.HasPrefix(path, "/openapi/v3/"):
		gv := strings.TrimPrefix(path, "/openapi/v3/")
		d, ok := st.v3[gv]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if hash := r.URL.Query().Get("hash"); hash != "" {
			if hash != d.etag {
				// The client has an old index: send it to the current one.
				q := url.Values{"hash": {d.etag}}
				http.Redirect(w, r, "/openapi/v3/"+gv+"?"+q.Encode(), http.StatusMovedPermanently)
				return
			}
			w.Header().Set("Cache-Control", "public, immutable")
			w.Header().Set("Expires", time.Now().AddDate(1, 0, 0).UTC().Format(http.TimeFormat))
		}
		serve(w, r, d, mimeV3Proto, mimeV3ProtoLegacy)
	default:
		http.NotFound(w, r)
	}
}

// serve writes d as JSON or, when the client prefers it and protoType is
// not empty, as protobuf, honouring If-None-Match.
func serve(w http.ResponseWriter, r *http.Request, d *document, protoType, protoLegacy string) {
	w.Header().Add("Vary", "Accept")
	accept := r.Header.Get("Accept")
	if accept == "" {
		accept = "*/*"
	}
	clauses := goautoneg.ParseAccept(accept)
	sort.SliceStable(clauses, func(i, j int) bool { return clauses[i].Q > clauses[j].Q })
	for _, c := range clauses {
		full := c.Type + "/" + c.SubType
		var body gzipped
		var ctype string
		switch {
		case full == mimeJSON || full == "application/*" || full == "*/*":
			body, ctype = d.json, mimeJSON
		case protoType != "" && d.hasProto && (full == protoType || full == protoLegacy):
			b, err := d.protobuf()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			body, ctype = b, protoType
		default:
			continue
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Etag", strconv.Quote(d.etag))
		w.Header().Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			w.Header().Set("Content-Encoding", "gzip")
			http.ServeContent(w, r, "", d.modified, bytes.NewReader(body))
			return
		}
		plain, err := body.plain()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.ServeContent(w, r, "", d.modified, bytes.NewReader(plain))
		return
	}
	http.Error(w, "none of the accepted media types is served", http.StatusNotAcceptable)
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if q > 0 {
			return true
		}
	}
	return false
}
