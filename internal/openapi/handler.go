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
	"time"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	openapiv3 "github.com/google/gnostic-models/openapiv3"
	"github.com/munnerz/goautoneg"
	"google.golang.org/protobuf/proto"
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

// document is one served OpenAPI document: its JSON, computed in New, and
// its protobuf form, computed on first request. Both are kept gzipped:
// the documents of the built-in resources are about 8 MiB of JSON, which
// was a tenth of an idle server's memory; compressed they are a twelfth
// of that, and clients that accept gzip (kubectl, client-go) get the
// compressed bytes as they are.
type document struct {
	json gzipped
	etag string // unquoted: upper-case hex SHA-512 of the JSON

	toProto   func([]byte) ([]byte, error)
	protoOnce sync.Once
	proto     gzipped // guarded by protoOnce
	protoErr  error   // guarded by protoOnce
}

// gzipped is a gzip stream.
type gzipped []byte

func compress(b []byte) gzipped {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // the level is valid
	zw.Write(b)                                        // a bytes.Buffer does not fail
	zw.Close()
	return bytes.Clone(buf.Bytes())
}

func (g gzipped) plain() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(g))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func newDocument(v any, toProto func([]byte) ([]byte, error)) (*document, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshalling OpenAPI document: %w", err)
	}
	return &document{json: compress(b), etag: fmt.Sprintf("%X", sha512.Sum512(b)), toProto: toProto}, nil
}

func (d *document) protobuf() (gzipped, error) {
	d.protoOnce.Do(func() {
		b, err := d.json.plain()
		if err == nil {
			b, err = d.toProto(b)
		}
		if err != nil {
			d.protoErr = err
			return
		}
		d.proto = compress(b)
	})
	return d.proto, d.protoErr
}

func v2ToProto(b []byte) ([]byte, error) {
	doc, err := openapiv2.ParseDocument(b)
	if err != nil {
		return nil, fmt.Errorf("converting OpenAPI v2 to protobuf: %w", err)
	}
	return proto.Marshal(doc)
}

func v3ToProto(b []byte) ([]byte, error) {
	doc, err := openapiv3.ParseDocument(b)
	if err != nil {
		return nil, fmt.Errorf("converting OpenAPI v3 to protobuf: %w", err)
	}
	return proto.Marshal(doc)
}

// handler serves the documents built by New; they never change, so it
// needs no locking beyond the lazy protobuf conversion.
type handler struct {
	built   time.Time // Last-Modified of every document
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

// New builds the OpenAPI v2 and v3 documents of resources and returns the
// handler serving /openapi/v2, /openapi/v3 (the index) and the v3 document
// of each group version (/openapi/v3/api/v1, /openapi/v3/apis/<g>/<v>) and
// of the discovery and version endpoints (/openapi/v3/api, …/apis,
// …/apis/<g>, …/version); anything else is 404.
//
// Definitions come from the generated GetOpenAPIDefinitions; a resource
// whose Go type has no generated definition is an error (add its package
// to hack/update-openapi.sh and regenerate). New takes about a quarter of a
// second for the built-in resources; protobuf forms are converted on first
// request. The handler is safe for concurrent use.
func New(resources []*registry.Resource) (http.Handler, error) {
	info := &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: "unversioned"}}
	s, err := buildSpecs(resources, info)
	if err != nil {
		return nil, err
	}
	h := &handler{built: time.Now(), v3: map[string]*document{}}
	if h.v2, err = newDocument(s.v2, v2ToProto); err != nil {
		return nil, err
	}
	index := v3Index{Paths: map[string]v3IndexEntry{}}
	for gv, doc := range s.v3 {
		d, err := newDocument(doc, v3ToProto)
		if err != nil {
			return nil, err
		}
		h.v3[gv] = d
		q := url.Values{"hash": {d.etag}}
		index.Paths[gv] = v3IndexEntry{ServerRelativeURL: "/openapi/v3/" + gv + "?" + q.Encode()}
	}
	if h.v3Index, err = newDocument(index, nil); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/openapi/v2":
		h.serve(w, r, h.v2, mimeV2Proto, mimeV2ProtoLegacy)
	case path == "/openapi/v3":
		h.serve(w, r, h.v3Index, "", "")
	case strings.HasPrefix(path, "/openapi/v3/"):
		gv := strings.TrimPrefix(path, "/openapi/v3/")
		d, ok := h.v3[gv]
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
		h.serve(w, r, d, mimeV3Proto, mimeV3ProtoLegacy)
	default:
		http.NotFound(w, r)
	}
}

// serve writes d as JSON or, when the client prefers it and protoType is
// not empty, as protobuf, honouring If-None-Match.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, d *document, protoType, protoLegacy string) {
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
		case protoType != "" && (full == protoType || full == protoLegacy):
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
			http.ServeContent(w, r, "", h.built, bytes.NewReader(body))
			return
		}
		plain, err := body.plain()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.ServeContent(w, r, "", h.built, bytes.NewReader(plain))
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
