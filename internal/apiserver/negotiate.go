package apiserver

import (
	"mime"
	"net/http"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// view is the shape a response is rendered in, chosen by Accept's "as".
type view int

const (
	viewObject view = iota // the resource's own kind
	viewTable
	viewPartial     // PartialObjectMetadata
	viewPartialList // PartialObjectMetadataList
)

// outputFormat is the result of content negotiation for one response.
type outputFormat struct {
	info runtime.SerializerInfo
	view view
	// viewGV is the group/version of the view kind (meta.k8s.io/v1 or
	// v1beta1); empty for viewObject.
	viewGV schema.GroupVersion
}

// acceptClause is one media range of an Accept header.
type acceptClause struct {
	typ, sub string
	params   map[string]string
	q        float64
}

// parseAccept splits an Accept header into clauses ordered by preference
// (stable for equal q). Clauses with q=0 are dropped.
func parseAccept(header string) []acceptClause {
	var out []acceptClause
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mt, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		c := acceptClause{params: map[string]string{}, q: 1}
		typ, sub, _ := strings.Cut(mt, "/")
		c.typ, c.sub = typ, sub
		for k, v := range params {
			if k == "q" {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					c.q = f
				}
				continue
			}
			c.params[k] = v
		}
		if c.q <= 0 {
			continue
		}
		out = append(out, c)
	}
	// Stable insertion sort by q, descending.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].q > out[j-1].q; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// viewsAllowed describes which Accept "as" views an endpoint can render.
type viewsAllowed struct {
	table, partial, partialList bool
	// jsonOnly: the objects are custom resources, which have no protobuf
	// form; protobuf serves only the metadata views.
	jsonOnly bool
}

// negotiateOutput picks the serializer and view for a response from the
// Accept header. stream requires a streaming serializer (watch). It
// returns a 406 error when nothing acceptable can be produced.
func (s *Server) negotiateOutput(r *http.Request, allowed viewsAllowed, stream bool) (outputFormat, error) {
	header := r.Header.Get("Accept")
	if strings.TrimSpace(header) == "" {
		header = runtime.ContentTypeJSON
	}
	for _, c := range parseAccept(header) {
		for _, info := range s.codecs.SupportedMediaTypes() {
			if !mediaMatches(c, info) {
				continue
			}
			if stream && info.StreamSerializer == nil {
				continue
			}
			out := outputFormat{info: info}
			as := c.params["as"]
			if as == "" {
				if allowed.jsonOnly && info.MediaType == runtime.ContentTypeProtobuf {
					continue
				}
				return out, nil
			}
			if c.params["g"] != "meta.k8s.io" || (c.params["v"] != "v1" && c.params["v"] != "v1beta1") {
				continue
			}
			out.viewGV = schema.GroupVersion{Group: "meta.k8s.io", Version: c.params["v"]}
			switch {
			case as == "Table" && allowed.table && info.MediaType != runtime.ContentTypeProtobuf:
				out.view = viewTable
			case as == "PartialObjectMetadata" && allowed.partial:
				out.view = viewPartial
			case as == "PartialObjectMetadataList" && allowed.partialList:
				out.view = viewPartialList
			default:
				continue
			}
			return out, nil
		}
	}
	return outputFormat{}, newStatus(http.StatusNotAcceptable, metav1.StatusReasonNotAcceptable, "the server was unable to respond with a content type that the client supports")
}

func mediaMatches(c acceptClause, info runtime.SerializerInfo) bool {
	typ, sub, _ := strings.Cut(info.MediaType, "/")
	if c.typ == "*" && c.sub == "*" {
		// Any type: only the default, JSON.
		return info.MediaType == runtime.ContentTypeJSON
	}
	if c.typ != typ {
		return false
	}
	if c.sub == "*" {
		return info.MediaType == runtime.ContentTypeJSON
	}
	return c.sub == sub
}

// requestSerializer picks the decoder for a request body from its
// Content-Type (JSON when absent). It returns a 415 error for other types.
func (s *Server) requestSerializer(r *http.Request) (runtime.SerializerInfo, error) {
	ct := r.Header.Get("Content-Type")
	mt := runtime.ContentTypeJSON
	if ct != "" {
		parsed, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return runtime.SerializerInfo{}, unsupportedMediaType(ct, s.supportedTypes())
		}
		mt = parsed
	}
	for _, info := range s.codecs.SupportedMediaTypes() {
		if info.MediaType == mt {
			return info, nil
		}
	}
	return runtime.SerializerInfo{}, unsupportedMediaType(ct, s.supportedTypes())
}

func (s *Server) supportedTypes() []string {
	var out []string
	for _, info := range s.codecs.SupportedMediaTypes() {
		out = append(out, info.MediaType)
	}
	return out
}

func unsupportedMediaType(ct string, supported []string) error {
	return newStatus(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
		"the body of the request was in an unknown format - accepted media types include: "+strings.Join(supported, ", "))
}
