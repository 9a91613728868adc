package apiserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/storage"
)

var allVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}

func verbAllowed(res *registry.Resource, verb string) bool {
	if res.Verbs == nil {
		return slices.Contains(allVerbs, verb)
	}
	return slices.Contains(res.Verbs, verb)
}

// fail writes err, turning the request's own deadline into 504.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		var apiStatus apierrors.APIStatus
		if !errors.As(err, &apiStatus) || apiStatus.Status().Code >= 500 {
			st := timeoutStatus()
			err = &apierrors.StatusError{ErrStatus: st}
		}
	}
	s.writeError(w, err)
}

// serveResource handles every request below /api/v1 and /apis/<g>/<v>.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	if ri.extra {
		s.writeError(w, notFoundPath())
		return
	}
	gv := schema.GroupVersion{Group: ri.group, Version: ri.version}
	stores := s.resources[gv]
	if ri.group == "" && ri.resource == "bindings" && ri.namespace != "" && ri.name == "" && stores["pods"] != nil {
		if ri.verb != "create" {
			s.writeError(w, methodNotAllowed())
			return
		}
		s.bind(w, r, ri, stores["pods"], "")
		return
	}
	if h := s.reviewHandler(ri); h != nil {
		h(w, r, ri)
		return
	}
	st := s.lookup(gv, ri.resource)
	if st == nil {
		s.writeError(w, notFoundPath())
		return
	}
	res := st.Resource
	if !res.Namespaced && ri.namespace != "" {
		s.writeError(w, notFoundPath())
		return
	}
	if res.Namespaced && ri.namespace == "" && ri.name != "" {
		s.writeError(w, notFoundPath())
		return
	}
	if res.Namespaced && ri.namespace == "" && ri.verb != "list" && ri.verb != "watch" {
		s.writeError(w, methodNotAllowed())
		return
	}
	r = s.withAdmission(w, r, ri, st)
	if ri.subresource != "" {
		s.serveSubresource(w, r, ri, st)
		return
	}
	if !verbAllowed(res, ri.verb) {
		s.writeError(w, apierrors.NewMethodNotSupported(res.GroupResource(), ri.verb))
		return
	}
	switch ri.verb {
	case "get":
		s.get(w, r, ri, st)
	case "list":
		s.list(w, r, ri, st)
	case "watch":
		s.watch(w, r, ri, st)
	case "create":
		if ri.name != "" {
			s.writeError(w, methodNotAllowed())
			return
		}
		s.create(w, r, ri, st)
	case "update":
		if ri.name == "" {
			s.writeError(w, methodNotAllowed())
			return
		}
		s.update(w, r, ri, st, registry.Main)
	case "patch":
		if ri.name == "" {
			s.writeError(w, methodNotAllowed())
			return
		}
		s.patch(w, r, ri, st, registry.Main)
	case "delete":
		s.delete(w, r, ri, st)
	case "deletecollection":
		s.deleteCollection(w, r, ri, st)
	default:
		s.writeError(w, methodNotAllowed())
	}
}

// serveObjectSub serves a subresource that reads the whole object and
// writes a part of it (status, ephemeralcontainers): get, update, patch.
func (s *Server) serveObjectSub(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store, sub registry.Subresource) {
	switch ri.verb {
	case "get":
		s.get(w, r, ri, st)
	case "update":
		s.update(w, r, ri, st, sub)
	case "patch":
		s.patch(w, r, ri, st, sub)
	default:
		s.writeError(w, methodNotAllowed())
	}
}

// serveSubresource handles .../<name>/<sub>.
func (s *Server) serveSubresource(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	res := st.Resource
	switch {
	case ri.subresource == "status" && res.Status:
		s.serveObjectSub(w, r, ri, st, registry.StatusSub)
	case ri.subresource == "scale" && res.Scale != nil:
		switch ri.verb {
		case "get":
			s.getScale(w, r, ri, st)
		case "update":
			s.updateScale(w, r, ri, st)
		case "patch":
			s.patchScale(w, r, ri, st)
		default:
			s.writeError(w, methodNotAllowed())
		}
	case ri.subresource == "ephemeralcontainers" && res.EphemeralContainers != nil:
		s.serveObjectSub(w, r, ri, st, registry.EphemeralContainers)
	case ri.subresource == "binding" && res.GVR.Group == "" && res.GVR.Resource == "pods":
		if ri.verb != "create" {
			s.writeError(w, methodNotAllowed())
			return
		}
		s.bind(w, r, ri, st, ri.name)
	case ri.subresource == "eviction" && res.GVR.Group == "" && res.GVR.Resource == "pods":
		s.evict(w, r, ri, st)
	case ri.subresource == "finalize" && res.GVR.Group == "" && res.GVR.Resource == "namespaces":
		if ri.verb != "update" {
			s.writeError(w, methodNotAllowed())
			return
		}
		s.update(w, r, ri, st, registry.Finalize)
	case ri.subresource == "token" && res.GVR.Group == "" && res.GVR.Resource == "serviceaccounts":
		if ri.verb != "create" {
			s.writeError(w, methodNotAllowed())
			return
		}
		s.requestToken(w, r, ri, st)
	case ri.subresource == "approval" && isCSRs(res):
		s.serveCSRApproval(w, r, ri, st)
	case isConnect(ri):
		s.serveConnect(w, r, ri, st)
	default:
		s.writeError(w, notFoundPath())
	}
}

// newRender negotiates the response format for a request on res.
func (s *Server) newRender(r *http.Request, res *registry.Resource, allowed viewsAllowed, stream bool) (*render, error) {
	allowed.jsonOnly = res.Unstructured
	f, err := s.negotiateOutput(r, allowed, stream)
	if err != nil {
		return nil, err
	}
	rd := &render{res: res, format: f, include: metav1.IncludeMetadata}
	if p := r.URL.Query().Get("pretty"); (p == "true" || p == "1") && f.info.PrettySerializer != nil {
		rd.pretty = true
	}
	if f.view == viewTable {
		if rd.include, err = parseIncludeObject(r); err != nil {
			return nil, err
		}
	}
	return rd, nil
}

func (s *Server) decodeQuery(r *http.Request, into runtime.Object) error {
	if err := s.params.DecodeParameters(r.URL.Query(), metav1.SchemeGroupVersion, into); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	return nil
}

func invalidOptions(kind string, errs field.ErrorList) error {
	if len(errs) == 0 {
		return nil
	}
	return apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: kind}, "", errs)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	var opts metav1.GetOptions
	if err := s.decodeQuery(r, &opts); err != nil {
		s.fail(w, r, err)
		return
	}
	rd, err := s.newRender(r, st.Resource, viewsAllowed{table: true, partial: true}, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	obj, err := st.Get(r.Context(), ri.namespace, ri.name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeObject(w, http.StatusOK, rd, obj)
}

// listOptions decodes and validates the list/watch query parameters.
func (s *Server) listOptions(r *http.Request, res *registry.Resource, ri *requestInfo) (metav1.ListOptions, storage.Predicate, error) {
	var opts metav1.ListOptions
	if err := s.decodeQuery(r, &opts); err != nil {
		return opts, storage.Predicate{}, err
	}
	if ri.name != "" {
		// A watch of one object (legacy path): select it by name.
		sel := fields.OneTermEqualSelector("metadata.name", ri.name)
		if opts.FieldSelector != "" {
			opts.FieldSelector += "," + sel.String()
		} else {
			opts.FieldSelector = sel.String()
		}
	}
	var pred storage.Predicate
	if opts.LabelSelector != "" {
		sel, err := labels.Parse(opts.LabelSelector)
		if err != nil {
			return opts, pred, apierrors.NewBadRequest(err.Error())
		}
		pred.Label = sel
	}
	if opts.FieldSelector != "" {
		sel, err := fields.ParseSelector(opts.FieldSelector)
		if err != nil {
			return opts, pred, apierrors.NewBadRequest(err.Error())
		}
		supported := res.Strategy.FieldLabels()
		for _, req := range sel.Requirements() {
			if !slices.Contains(supported, req.Field) {
				return opts, pred, apierrors.NewBadRequest("field label not supported: " + req.Field)
			}
		}
		pred.Field = sel
	}
	var errs field.ErrorList
	isWatch := ri.verb == "watch"
	if isWatch && opts.SendInitialEvents != nil {
		// Streaming lists (client-go's WatchListClient): upstream requires
		// bookmarks and resourceVersionMatch=NotOlderThan.
		if !opts.AllowWatchBookmarks {
			errs = append(errs, field.Forbidden(field.NewPath("allowWatchBookmarks"), "allowWatchBookmarks must be set to true when sendInitialEvents is specified"))
		}
		if opts.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), fmt.Sprintf("sendInitialEvents requires setting resourceVersionMatch to %s", metav1.ResourceVersionMatchNotOlderThan)))
		}
	} else if opts.ResourceVersionMatch != "" {
		switch {
		case isWatch:
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
		case opts.ResourceVersion == "":
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden unless resourceVersion is provided"))
		case opts.Continue != "":
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden when continue is provided"))
		case opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact && opts.ResourceVersion == "0":
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""))
		case opts.ResourceVersionMatch != metav1.ResourceVersionMatchExact && opts.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan:
			errs = append(errs, field.NotSupported(field.NewPath("resourceVersionMatch"), opts.ResourceVersionMatch,
				[]string{string(metav1.ResourceVersionMatchExact), string(metav1.ResourceVersionMatchNotOlderThan)}))
		}
	}
	if opts.Continue != "" && opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
		errs = append(errs, field.Forbidden(field.NewPath("resourceVersion"), "specifying resource version is not allowed when using continue"))
	}
	if opts.SendInitialEvents != nil && !isWatch {
		errs = append(errs, field.Forbidden(field.NewPath("sendInitialEvents"), "sendInitialEvents is forbidden for list"))
	}
	if opts.Limit < 0 {
		errs = append(errs, field.Invalid(field.NewPath("limit"), opts.Limit, "must be greater than or equal to 0"))
	}
	return opts, pred, invalidOptions("ListOptions", errs)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	opts, pred, err := s.listOptions(r, st.Resource, ri)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rd, err := s.newRender(r, st.Resource, viewsAllowed{table: true, partialList: true}, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	lo := storage.ListOptions{
		Predicate:            pred,
		ResourceVersion:      opts.ResourceVersion,
		ResourceVersionMatch: storage.ResourceVersionMatch(opts.ResourceVersionMatch),
		Limit:                opts.Limit,
		Continue:             opts.Continue,
	}
	if rd.format.view == viewObject && !rd.pretty {
		switch rd.format.info.MediaType {
		case runtime.ContentTypeJSON:
			lo.Encoder = jsonItems
		case runtime.ContentTypeProtobuf:
			lo.Encoder = protobufItems
		}
	}
	list, err := st.List(r.Context(), ri.namespace, lo)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if el, ok := list.(*storage.EncodedList); ok {
		if el.Encoding == protobufItems.ID {
			s.writeEncodedProtobufList(w, st.Resource, el)
			return
		}
		s.writeEncodedList(w, st.Resource, el)
		return
	}
	s.writeObject(w, http.StatusOK, rd, list)
}

// jsonItems encodes list items as the JSON serializer would inside a list;
// the watch cache memoizes the result per object version, so a list of
// many objects is framed from ready bytes.
var jsonItems = &storage.ItemEncoder{ID: "json", Encode: func(obj runtime.Object) ([]byte, error) {
	return json.Marshal(obj)
}}

// protobufItems encodes list items as the protobuf serializer does inside
// a list (the item's own message, without the runtime.Unknown envelope);
// memoized like jsonItems.
var protobufItems = &storage.ItemEncoder{ID: "protobuf", Encode: func(obj runtime.Object) ([]byte, error) {
	m, ok := obj.(interface{ Marshal() ([]byte, error) })
	if !ok {
		return nil, fmt.Errorf("%T has no protobuf encoding", obj)
	}
	return m.Marshal()
}}

// protobufPrefix starts every protobuf-encoded object (upstream's magic).
var protobufPrefix = []byte{'k', '8', 's', 0}

// writeEncodedProtobufList frames a protobuf list around items encoded by
// protobufItems: the prefix, then a runtime.Unknown with the list's
// apiVersion and kind whose raw bytes are the list message, field 1 its
// ListMeta and field 2 each item, exactly as the protobuf serializer
// encodes the typed list (its streaming form writes the same bytes).
func (s *Server) writeEncodedProtobufList(w http.ResponseWriter, res *registry.Resource, el *storage.EncodedList) {
	listMeta := metav1.ListMeta{ResourceVersion: el.ResourceVersion}
	lm, err := listMeta.Marshal()
	if err != nil {
		s.writeError(w, apierrors.NewInternalError(err))
		return
	}
	rawSize := protoFieldSize(len(lm))
	for _, it := range el.Items {
		rawSize += protoFieldSize(len(it))
	}
	unk := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: res.GVR.GroupVersion().String(), Kind: res.ListKind}}
	bp := listBuffer(len(protobufPrefix) + rawSize + 64)
	buf := bytes.NewBuffer((*bp)[:0])
	buf.Write(protobufPrefix)
	if _, err := unk.MarshalToWriter(buf, rawSize, func(w io.Writer) (int, error) {
		n := writeProtoField(w, 1, lm)
		for _, it := range el.Items {
			n += writeProtoField(w, 2, it)
		}
		return n, nil
	}); err != nil {
		s.writeError(w, apierrors.NewInternalError(err))
		return
	}
	s.writeListBody(w, runtime.ContentTypeProtobuf, bp, buf.Bytes())
}

// protoFieldSize is the encoded size of a length-delimited protobuf field
// with a one-byte tag and n bytes of data.
func protoFieldSize(n int) int {
	return 1 + len(binary.AppendUvarint(nil, uint64(n))) + n
}

// writeProtoField writes a length-delimited field (wire type 2) number f
// holding data to w (a bytes.Buffer: it cannot fail) and returns its size.
func writeProtoField(w io.Writer, f int, data []byte) int {
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = byte(f<<3 | 2)
	n := 1 + binary.PutUvarint(hdr[1:], uint64(len(data)))
	_, _ = w.Write(hdr[:n])
	_, _ = w.Write(data)
	return n + len(data)
}

// writeEncodedList frames a JSON list around items encoded by jsonItems.
// The bytes are what encoding the typed list would give. The body is
// framed in a pooled buffer and written at once: a list of 10,000 pods is
// about 19 MiB, and a fresh buffer per request was half of what a LIST
// allocated (the timeout filter's copy of the body is the other half).
func (s *Server) writeEncodedList(w http.ResponseWriter, res *registry.Resource, el *storage.EncodedList) {
	head, err := json.Marshal(struct {
		metav1.TypeMeta `json:",inline"`
		ListMeta        metav1.ListMeta `json:"metadata"`
	}{
		TypeMeta: metav1.TypeMeta{Kind: res.ListKind, APIVersion: res.GVR.GroupVersion().String()},
		ListMeta: metav1.ListMeta{ResourceVersion: el.ResourceVersion},
	})
	if err != nil {
		s.writeError(w, apierrors.NewInternalError(err))
		return
	}
	size := len(head) + len(`,"items":[]}`) + 1
	for _, it := range el.Items {
		size += len(it) + 1
	}
	bp := listBuffer(size)
	buf := append((*bp)[:0], head[:len(head)-1]...) // drop the closing brace
	buf = append(buf, `,"items":[`...)
	for i, it := range el.Items {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, it...)
	}
	buf = append(buf, "]}\n"...)
	s.writeListBody(w, runtime.ContentTypeJSON, bp, buf)
}

// writeListBody sends a framed list body and gives its buffer back: body
// is *bp's storage, possibly grown (a ResponseWriter does not keep the
// slice past Write).
func (s *Server) writeListBody(w http.ResponseWriter, contentType string, bp *[]byte, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(body); err != nil {
		s.log.Debug("writing response failed", "err", err)
	}
	*bp = body
	reuseListBuffer(bp)
}

// listBuffers holds the buffers writeEncodedList frames lists in. A
// sync.Pool lets the garbage collector take idle ones back (after two
// cycles without use), so a burst of large lists leaves nothing behind.
var listBuffers sync.Pool

// Only buffers of lists from minPooledListBuffer to maxPooledListBuffer
// bytes are pooled: small ones are cheap, and larger ones are rare and
// would stay in memory.
const (
	minPooledListBuffer = 256 << 10
	maxPooledListBuffer = 64 << 20
)

// listBuffer returns a buffer with room for size bytes, pooled if the list
// is large.
func listBuffer(size int) *[]byte {
	if size < minPooledListBuffer {
		b := make([]byte, 0, size)
		return &b
	}
	if bp, ok := listBuffers.Get().(*[]byte); ok {
		if cap(*bp) >= size {
			return bp
		}
		// Too small for this list: let it go rather than keep two.
	}
	b := make([]byte, 0, size)
	return &b
}

// reuseListBuffer returns bp to the pool if it is of a size worth keeping.
func reuseListBuffer(bp *[]byte) {
	if c := cap(*bp); c >= minPooledListBuffer && c <= maxPooledListBuffer {
		listBuffers.Put(bp)
	}
}

// readBody reads the (size-limited) request body.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var maxBytes *http.MaxBytesError
		if errors.As(err, &maxBytes) {
			return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", maxBytes.Limit))
		}
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	return b, nil
}

// fieldValidation returns the effective directive ("" means Warn).
func fieldValidation(v string) string {
	if v == "" {
		return metav1.FieldValidationWarn
	}
	return v
}

// decodeBody decodes the request body as gvk into into, honouring the
// fieldValidation directive: unknown or duplicate fields fail the request
// with Strict and become warnings with Warn.
func (s *Server) decodeBody(r *http.Request, gvk schema.GroupVersionKind, into runtime.Object, validation string) (runtime.Object, []string, error) {
	info, err := s.requestSerializer(r)
	if err != nil {
		return nil, nil, err
	}
	if _, custom := into.(*unstructured.Unstructured); custom && info.MediaType == runtime.ContentTypeProtobuf {
		return nil, nil, unsupportedMediaType(info.MediaType, []string{runtime.ContentTypeJSON, runtime.ContentTypeYAML})
	}
	body, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	return s.decodeWith(info, body, gvk, into, validation)
}

// pruneFrom says where a pruned custom resource came from: a request
// body (create, update), a patch's result, or an apply configuration.
type pruneFrom int

const (
	fromBody pruneFrom = iota
	fromPatch
	fromApply
)

// pruneUnknown removes from a custom resource what its schema (and
// ObjectMeta) does not know (Resource.Prune) and reports it
// per the fieldValidation directive, as upstream reports unknown fields:
// the request fails with Strict, they become warnings with Warn (the
// default), Ignore drops them silently. Server-side apply words them as
// structured-merge-diff does (`.spec.foo: field not declared in schema`),
// the other writes as strict decoding does (`unknown field "spec.foo"`),
// and a body (not a patch) that fails is, as a typed body would be, one
// that "cannot be handled as a <Kind>".
func pruneUnknown(res *registry.Resource, obj runtime.Object, validation string, warnings []string, from pruneFrom) ([]string, error) {
	apply := from == fromApply
	if res.Prune == nil {
		return warnings, nil
	}
	pruned := res.Prune(obj)
	if len(pruned) == 0 {
		return warnings, nil
	}
	msgs := make([]string, len(pruned))
	for i, p := range pruned {
		if apply {
			msgs[i] = "." + p + ": field not declared in schema"
		} else {
			msgs[i] = fmt.Sprintf("unknown field %q", p)
		}
	}
	switch fieldValidation(validation) {
	case metav1.FieldValidationIgnore:
		return warnings, nil
	case metav1.FieldValidationStrict:
		if apply {
			return nil, apierrors.NewBadRequest("failed to create typed patch object: " + strings.Join(msgs, ", "))
		}
		errs := make([]error, len(msgs))
		for i, m := range msgs {
			errs[i] = errors.New(m)
		}
		strict := runtime.NewStrictDecodingError(errs)
		if from == fromBody {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", res.Kind, res.GVR.Version, res.Kind, strict))
		}
		return nil, apierrors.NewBadRequest(strict.Error())
	}
	return append(warnings, msgs...), nil
}

func (s *Server) decodeWith(info runtime.SerializerInfo, body []byte, gvk schema.GroupVersionKind, into runtime.Object, validation string) (runtime.Object, []string, error) {
	validation = fieldValidation(validation)
	dec := info.Serializer
	if validation != metav1.FieldValidationIgnore && info.StrictSerializer != nil {
		dec = info.StrictSerializer
	}
	cannot := func(err error) error {
		return apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", gvk.Kind, gvk.Version, gvk.Kind, err))
	}
	obj, actual, err := dec.Decode(body, &gvk, into)
	var warnings []string
	if err != nil {
		strictErr, isStrict := runtime.AsStrictDecodingError(err)
		if !isStrict || obj == nil {
			return nil, nil, cannot(err)
		}
		if validation == metav1.FieldValidationStrict {
			return nil, nil, cannot(err)
		}
		for _, e := range strictErr.Errors() {
			warnings = append(warnings, e.Error())
		}
	}
	if reflect.TypeOf(obj) != reflect.TypeOf(into) || (actual != nil && *actual != gvk) {
		got := ""
		if actual != nil {
			got = actual.GroupVersion().String()
		}
		if actual != nil && actual.GroupVersion() != gvk.GroupVersion() {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", got, gvk.GroupVersion()))
		}
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized (must be of type %s)", gvk.Kind))
	}
	return obj, warnings, nil
}

// addWarnings sets Warning headers in the upstream format.
func addWarnings(w http.ResponseWriter, warnings []string) {
	for _, msg := range warnings {
		msg = strings.ReplaceAll(msg, `\`, `\\`)
		msg = strings.ReplaceAll(msg, `"`, `\"`)
		w.Header().Add("Warning", `299 - "`+msg+`"`)
	}
}

// ensureNamespace reconciles the object's namespace with the request's:
// empty becomes the request's, cluster-scoped objects lose theirs, and a
// mismatch is 400.
func ensureNamespace(obj runtime.Object, namespace string, namespaced bool) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	switch {
	case !namespaced:
		m.SetNamespace("")
	case m.GetNamespace() == "":
		m.SetNamespace(namespace)
	case m.GetNamespace() != namespace:
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	return nil
}

// checkName rejects a body whose name differs from the URL's.
func checkName(obj runtime.Object, name string) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	if m.GetName() != name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), name))
	}
	return nil
}

// readWrite reads what a create or update request carries: its options
// from the query (filled into opts and checked by validate, 422 naming
// optsKind), how the answer is to be rendered, and the object in the body,
// decoded with the request's field validation (read from *fieldValidation
// once opts is filled) and placed in the URL's namespace.
func (s *Server) readWrite(r *http.Request, ri *requestInfo, res *registry.Resource, opts runtime.Object, optsKind string,
	validate func() field.ErrorList, fieldValidation *string) (*render, runtime.Object, []string, error) {
	if err := s.decodeQuery(r, opts); err != nil {
		return nil, nil, nil, err
	}
	if err := invalidOptions(optsKind, validate()); err != nil {
		return nil, nil, nil, err
	}
	rd, err := s.newRender(r, res, viewsAllowed{}, false)
	if err != nil {
		return nil, nil, nil, err
	}
	obj, warnings, err := s.decodeBody(r, res.GroupVersionKind(), res.Strategy.New(), *fieldValidation)
	if err != nil {
		return nil, nil, nil, err
	}
	if warnings, err = pruneUnknown(res, obj, *fieldValidation, warnings, fromBody); err != nil {
		return nil, nil, nil, err
	}
	if err := ensureNamespace(obj, ri.namespace, res.Namespaced); err != nil {
		return nil, nil, nil, err
	}
	return rd, obj, warnings, nil
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	res := st.Resource
	var opts metav1.CreateOptions
	rd, obj, warnings, err := s.readWrite(r, ri, res, &opts, "CreateOptions",
		func() field.ErrorList { return metavalidation.ValidateCreateOptions(&opts) }, &opts.FieldValidation)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if acc, err := meta.Accessor(obj); err == nil {
		auditCreateName(r.Context(), acc.GetName())
	}
	obj = s.trackCreate(s.fieldManagersOf(st), obj, managerName(r, opts.FieldManager), res)
	out, err := st.CreateOwned(r.Context(), ri.namespace, obj, opts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	addWarnings(w, warnings)
	s.writeObject(w, http.StatusCreated, rd, out)
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store, sub registry.Subresource) {
	res := st.Resource
	var opts metav1.UpdateOptions
	rd, obj, warnings, err := s.readWrite(r, ri, res, &opts, "UpdateOptions",
		func() field.ErrorList { return metavalidation.ValidateUpdateOptions(&opts) }, &opts.FieldValidation)
	if err == nil {
		err = checkName(obj, ri.name)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fm, manager := s.fieldManagersOf(st).forSub(sub), managerName(r, opts.FieldManager)
	out, created, err := st.Update(r.Context(), ri.namespace, ri.name, sub,
		func(_ context.Context, current runtime.Object) (runtime.Object, error) {
			return s.trackUpdate(fm, current, obj.DeepCopyObject(), manager, res), nil
		}, opts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	addWarnings(w, warnings)
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	s.writeObject(w, code, rd, out)
}

// deleteOptions reads DeleteOptions from the body when there is one, else
// from the query, as upstream does.
func (s *Server) deleteOptions(r *http.Request) (metav1.DeleteOptions, error) {
	var opts metav1.DeleteOptions
	body, err := readBody(r)
	if err != nil {
		return opts, err
	}
	if len(body) == 0 {
		if err := s.decodeQuery(r, &opts); err != nil {
			return opts, err
		}
	} else {
		info, err := s.requestSerializer(r)
		if err != nil {
			return opts, err
		}
		if info.MediaType == runtime.ContentTypeProtobuf {
			// The envelope's apiVersion may be any group's version (or
			// meta.k8s.io/v1): unwrap it without consulting the scheme.
			var unk runtime.Unknown
			if !bytes.HasPrefix(body, protobufMagic) {
				return opts, apierrors.NewBadRequest("decoding DeleteOptions: missing protobuf envelope")
			}
			if err := unk.Unmarshal(body[len(protobufMagic):]); err != nil {
				return opts, apierrors.NewBadRequest(fmt.Sprintf("decoding DeleteOptions: %v", err))
			}
			if err := opts.Unmarshal(unk.Raw); err != nil {
				return opts, apierrors.NewBadRequest(fmt.Sprintf("decoding DeleteOptions: %v", err))
			}
		} else if err := yaml.Unmarshal(body, &opts); err != nil {
			return opts, apierrors.NewBadRequest(fmt.Sprintf("decoding DeleteOptions: %v", err))
		}
	}
	return opts, invalidOptions("DeleteOptions", metavalidation.ValidateDeleteOptions(&opts))
}

// protobufMagic prefixes Kubernetes protobuf bodies.
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}

// returnsDeletedObject reports whether a finished delete answers with the
// object rather than a Success Status (upstream: pods).
func returnsDeletedObject(res *registry.Resource) bool {
	return res.GVR.Group == "" && res.GVR.Resource == "pods"
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	res := st.Resource
	opts, err := s.deleteOptions(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rd, err := s.newRender(r, res, viewsAllowed{}, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	obj, deleted, err := st.Delete(r.Context(), ri.namespace, ri.name, opts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	code := http.StatusOK
	//nolint:staticcheck // OrphanDependents is deprecated but still decides 202 upstream.
	if !deleted && opts.OrphanDependents != nil && !*opts.OrphanDependents {
		code = http.StatusAccepted
	}
	if obj == nil || (deleted && !returnsDeletedObject(res)) {
		details := &metav1.StatusDetails{Name: ri.name, Group: res.GVR.Group, Kind: res.GVR.Resource}
		if obj != nil {
			if m, err := meta.Accessor(obj); err == nil {
				details.UID = m.GetUID()
			}
		}
		obj = &metav1.Status{Status: metav1.StatusSuccess, Code: int32(code), Details: details}
	}
	s.writeObject(w, code, rd, obj)
}

func (s *Server) deleteCollection(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	res := st.Resource
	lopts, pred, err := s.listOptions(r, res, ri)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	opts, err := s.deleteOptions(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rd, err := s.newRender(r, res, viewsAllowed{}, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := st.DeleteCollection(r.Context(), ri.namespace, storage.ListOptions{
		Predicate:            pred,
		ResourceVersion:      lopts.ResourceVersion,
		ResourceVersionMatch: storage.ResourceVersionMatch(lopts.ResourceVersionMatch),
		Limit:                lopts.Limit,
		Continue:             lopts.Continue,
	}, opts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeObject(w, http.StatusOK, rd, list)
}
