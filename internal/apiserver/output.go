package apiserver

import (
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/internal/registry"
)

// shallowCopy returns a copy of obj's top-level struct, so that TypeMeta can
// be set without touching an object shared with the watch cache. Nested
// maps and slices stay shared and must not be modified.
func shallowCopy(obj runtime.Object) runtime.Object {
	switch u := obj.(type) {
	case *unstructured.Unstructured:
		// The struct holds only a map: copy the map's top level.
		c := &unstructured.Unstructured{Object: make(map[string]any, len(u.Object))}
		maps.Copy(c.Object, u.Object)
		return c
	case *unstructured.UnstructuredList:
		c := &unstructured.UnstructuredList{Object: make(map[string]any, len(u.Object)), Items: u.Items}
		maps.Copy(c.Object, u.Object)
		return c
	}
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return obj.DeepCopyObject()
	}
	c := reflect.New(v.Elem().Type())
	c.Elem().Set(v.Elem())
	return c.Interface().(runtime.Object)
}

// withKind returns obj with apiVersion/kind set: obj itself when it
// already says so (the watch cache's objects and the objects a write
// returns do), else a shallow copy, so that an object shared with the
// watch cache is never written. Either way the result is only to be read.
func withKind(obj runtime.Object, gvk schema.GroupVersionKind) runtime.Object {
	if obj.GetObjectKind().GroupVersionKind() == gvk {
		return obj
	}
	c := shallowCopy(obj)
	c.GetObjectKind().SetGroupVersionKind(gvk)
	return c
}

// parseIncludeObject reads ?includeObject= (metav1.TableOptions).
func parseIncludeObject(r *http.Request) (metav1.IncludeObjectPolicy, error) {
	v := metav1.IncludeObjectPolicy(r.URL.Query().Get("includeObject"))
	switch v {
	case "":
		return metav1.IncludeMetadata, nil
	case metav1.IncludeNone, metav1.IncludeMetadata, metav1.IncludeObject:
		return v, nil
	}
	return "", newStatus(http.StatusBadRequest, metav1.StatusReasonBadRequest,
		fmt.Sprintf("includeObject: Unsupported value: %q: supported values: \"None\", \"Metadata\", \"Object\"", v))
}

// render is one response body being prepared for a resource.
type render struct {
	res     *registry.Resource
	format  outputFormat
	include metav1.IncludeObjectPolicy
	// noHeaders drops the table's column definitions (watch events after
	// the first).
	noHeaders bool
	// pretty asks for indented output (?pretty=true), where supported.
	pretty bool
}

// transform converts an object or list of the resource (or a Status) into
// what the client asked to see. It never mutates obj.
func (rd *render) transform(obj runtime.Object) (runtime.Object, error) {
	if st, ok := obj.(*metav1.Status); ok {
		c := *st
		c.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
		return &c, nil
	}
	isList := meta.IsListType(obj)
	gv := rd.res.GVR.GroupVersion()
	switch rd.format.view {
	case viewTable:
		return rd.table(obj, isList)
	case viewPartial:
		if isList {
			return nil, fmt.Errorf("rendering a list as PartialObjectMetadata")
		}
		return rd.partial(obj)
	case viewPartialList:
		if !isList {
			return nil, fmt.Errorf("rendering an object as PartialObjectMetadataList")
		}
		items, err := meta.ExtractList(obj)
		if err != nil {
			return nil, fmt.Errorf("reading list: %w", err)
		}
		out := &metav1.PartialObjectMetadataList{
			TypeMeta: metav1.TypeMeta{APIVersion: rd.format.viewGV.String(), Kind: "PartialObjectMetadataList"},
			Items:    make([]metav1.PartialObjectMetadata, 0, len(items)),
		}
		if lm, err := meta.ListAccessor(obj); err == nil {
			out.ResourceVersion = lm.GetResourceVersion()
			out.Continue = lm.GetContinue()
			out.RemainingItemCount = lm.GetRemainingItemCount()
		}
		for _, it := range items {
			p, err := rd.partial(it)
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, *p)
		}
		return out, nil
	}
	if isList {
		return withKind(obj, gv.WithKind(rd.res.ListKind)), nil
	}
	return withKind(obj, gv.WithKind(rd.res.Kind)), nil
}

func (rd *render) partial(obj runtime.Object) (*metav1.PartialObjectMetadata, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("reading metadata: %w", err)
	}
	p := meta.AsPartialObjectMetadata(m)
	gv := rd.format.viewGV
	if gv.Empty() {
		gv = metav1.SchemeGroupVersion
	}
	p.TypeMeta = metav1.TypeMeta{APIVersion: gv.String(), Kind: "PartialObjectMetadata"}
	return p, nil
}

// defaultColumns is the table of resources without a Strategy.Table.
var defaultColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
	{Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
}

func (rd *render) table(obj runtime.Object, isList bool) (*metav1.Table, error) {
	var items []runtime.Object
	t := &metav1.Table{}
	if isList {
		var err error
		if items, err = meta.ExtractList(obj); err != nil {
			return nil, fmt.Errorf("reading list: %w", err)
		}
		if lm, err := meta.ListAccessor(obj); err == nil {
			t.ResourceVersion = lm.GetResourceVersion()
			t.Continue = lm.GetContinue()
			t.RemainingItemCount = lm.GetRemainingItemCount()
		}
	} else {
		items = []runtime.Object{obj}
		if m, err := meta.Accessor(obj); err == nil {
			t.ResourceVersion = m.GetResourceVersion()
		}
	}
	gv := rd.format.viewGV
	if gv.Empty() {
		gv = metav1.SchemeGroupVersion
	}
	t.TypeMeta = metav1.TypeMeta{APIVersion: gv.String(), Kind: "Table"}

	tbl := rd.res.Strategy.Table()
	if !rd.noHeaders {
		if tbl != nil {
			t.ColumnDefinitions = tbl.Columns
		} else {
			t.ColumnDefinitions = defaultColumns
		}
	}
	if tbl != nil && tbl.Less != nil && len(items) > 1 {
		// items is ExtractList's own slice: sorting it leaves the list be.
		sort.SliceStable(items, func(i, j int) bool { return tbl.Less(items[i], items[j]) })
	}
	t.Rows = make([]metav1.TableRow, 0, len(items))
	for _, it := range items {
		row := metav1.TableRow{}
		if tbl != nil {
			row.Cells = tbl.Row(it)
		} else {
			m, err := meta.Accessor(it)
			if err != nil {
				return nil, fmt.Errorf("reading metadata: %w", err)
			}
			row.Cells = []any{m.GetName(), m.GetCreationTimestamp().UTC().Format(time.RFC3339)}
		}
		switch rd.include {
		case metav1.IncludeNone:
		case metav1.IncludeObject:
			row.Object.Object = withKind(it, rd.res.GroupVersionKind())
		default:
			p, err := rd.partial(it)
			if err != nil {
				return nil, err
			}
			p.APIVersion = metav1.SchemeGroupVersion.String()
			row.Object.Object = p
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// writeObject renders obj for the client and writes it with code.
func (s *Server) writeObject(w http.ResponseWriter, code int, rd *render, obj runtime.Object) {
	out, err := rd.transform(obj)
	if err != nil {
		s.writeError(w, err)
		return
	}
	info := rd.format.info
	enc := info.Serializer
	if rd.pretty && info.PrettySerializer != nil {
		enc = info.PrettySerializer
	}
	w.Header().Set("Content-Type", info.MediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if err := enc.Encode(out, w); err != nil {
		s.log.Debug("encoding response failed", "err", err)
	}
}
