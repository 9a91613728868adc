package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// The v2 document of custom resources is the built-in one with their
// paths, definitions and shared parameters added. Rather than keep the
// built-in spec in memory and marshal it again on every change, New
// records where the built-in JSON's "paths", "definitions" and
// "parameters" objects end, and SetCustomResources splices the members
// it adds in there; the protobuf form is the built-in one followed by
// the protobuf of the additions alone (protobuf appends repeated fields
// of concatenated messages, and gnostic's paths, definitions and
// parameters are repeated named entries).

// v2Sections are the top-level members of the v2 document custom
// resources add to.
var v2Sections = []string{"paths", "definitions", "parameters"}

// builtinV2 is the built-in v2 document and what merging into it needs.
type builtinV2 struct {
	doc *document
	// ends maps each of v2Sections to the offset of the closing brace of
	// its object in doc's JSON; a section the document lacks is absent.
	ends map[string]int
	// empty tells which of those objects have no members.
	empty map[string]bool
	// end is the offset of the document's closing brace.
	end int
	// names holds the member names of each section.
	names map[string]map[string]bool
}

func newBuiltinV2(sw *spec.Swagger, modified time.Time) (builtinV2, error) {
	b, err := json.Marshal(sw)
	if err != nil {
		return builtinV2{}, fmt.Errorf("marshalling OpenAPI v2: %w", err)
	}
	members, end, err := objectMembers(b)
	if err != nil {
		return builtinV2{}, fmt.Errorf("indexing OpenAPI v2: %w", err)
	}
	out := builtinV2{doc: newDocumentJSON(b, modified, v2ToProto), ends: map[string]int{}, empty: map[string]bool{},
		end: end, names: map[string]map[string]bool{}}
	for _, sec := range v2Sections {
		out.names[sec] = map[string]bool{}
		v, ok := members[sec]
		if !ok {
			continue
		}
		if b[v.start] != '{' || b[v.end-1] != '}' {
			return builtinV2{}, fmt.Errorf("indexing OpenAPI v2: %s is not an object", sec)
		}
		out.ends[sec] = v.end - 1
		out.empty[sec] = len(bytes.TrimSpace(b[v.start+1:v.end-1])) == 0
	}
	if sw.Paths != nil {
		for k := range sw.Paths.Paths {
			out.names["paths"][k] = true
		}
	}
	for k := range sw.Definitions {
		out.names["definitions"][k] = true
	}
	for k := range sw.Parameters {
		out.names["parameters"][k] = true
	}
	return out, nil
}

// additions are the members to add to the built-in v2 document, by
// section, each marshalled as `"name":value`.
type additions map[string][][]byte

// members returns what sw has that the built-in document lacks: each
// such path, definition and shared parameter, by section and name.
func (b *builtinV2) members(sw *spec.Swagger) (map[string]map[string]v2Member, error) {
	values := map[string]map[string]any{"paths": {}, "definitions": {}, "parameters": {}}
	if sw.Paths != nil {
		for k, v := range sw.Paths.Paths {
			values["paths"][k] = v
		}
	}
	for k, v := range sw.Definitions {
		values["definitions"][k] = v
	}
	for k, v := range sw.Parameters {
		values["parameters"][k] = v
	}
	out := map[string]map[string]v2Member{}
	for _, sec := range v2Sections {
		out[sec] = map[string]v2Member{}
		for name, v := range values[sec] {
			if b.names[sec][name] {
				continue
			}
			k, err := json.Marshal(name)
			if err != nil {
				return nil, err
			}
			val, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("marshalling %s %s: %w", sec, name, err)
			}
			out[sec][name] = v2Member{json: append(append(k, ':'), val...)}
		}
	}

	// The protobuf of each member is a gnostic Document holding only it;
	// gnostic converts a whole document, made here of the members alone.
	js := []byte(`{"swagger":"2.0","info":{"title":"","version":""}`)
	for _, sec := range v2Sections {
		js = append(js, `,"`+sec+`":{`...)
		first := true
		for _, name := range sortedKeys(out[sec]) {
			if !first {
				js = append(js, ',')
			}
			first = false
			js = append(js, out[sec][name].json...)
		}
		js = append(js, '}')
	}
	js = append(js, '}')
	doc, err := openapiv2.ParseDocument(js)
	if err != nil {
		return nil, fmt.Errorf("converting to protobuf: %w", err)
	}
	setPB := func(sec, name string, d *openapiv2.Document) error {
		m, ok := out[sec][name]
		if !ok {
			return nil
		}
		pb, err := proto.Marshal(d)
		if err != nil {
			return fmt.Errorf("converting %s %s to protobuf: %w", sec, name, err)
		}
		m.pb = pb
		out[sec][name] = m
		return nil
	}
	for _, p := range doc.GetPaths().GetPath() {
		if err := setPB("paths", p.GetName(), &openapiv2.Document{Paths: &openapiv2.Paths{Path: []*openapiv2.NamedPathItem{p}}}); err != nil {
			return nil, err
		}
	}
	for _, d := range doc.GetDefinitions().GetAdditionalProperties() {
		if err := setPB("definitions", d.GetName(), &openapiv2.Document{Definitions: &openapiv2.Definitions{AdditionalProperties: []*openapiv2.NamedSchema{d}}}); err != nil {
			return nil, err
		}
	}
	for _, p := range doc.GetParameters().GetAdditionalProperties() {
		if err := setPB("parameters", p.GetName(), &openapiv2.Document{Parameters: &openapiv2.ParameterDefinitions{AdditionalProperties: []*openapiv2.NamedParameter{p}}}); err != nil {
			return nil, err
		}
	}
	for _, sec := range v2Sections {
		for name, m := range out[sec] {
			if m.pb == nil {
				return nil, fmt.Errorf("%s %s has no protobuf form", sec, name)
			}
		}
	}
	return out, nil
}

// splice returns the built-in JSON (plain) with add's members appended
// to their sections.
func (b *builtinV2) splice(plain []byte, add additions) []byte {
	type insertion struct {
		at   int
		text []byte
	}
	var ins []insertion
	size := len(plain)
	for _, sec := range v2Sections {
		members := add[sec]
		if len(members) == 0 {
			continue
		}
		var text []byte
		end, ok := b.ends[sec]
		switch {
		case !ok:
			end = b.end
			text = append(text, `,"`+sec+`":{`...)
		case !b.empty[sec]:
			text = append(text, ',')
		}
		text = append(text, bytes.Join(members, []byte{','})...)
		if !ok {
			text = append(text, '}')
		}
		ins = append(ins, insertion{end, text})
		size += len(text)
	}
	sort.Slice(ins, func(i, j int) bool { return ins[i].at < ins[j].at })
	out := make([]byte, 0, size)
	last := 0
	for _, in := range ins {
		out = append(out, plain[last:in.at]...)
		out = append(out, in.text...)
		last = in.at
	}
	return append(out, plain[last:]...)
}

// span is the byte range of a JSON value.
type span struct{ start, end int }

// objectMembers returns where the value of each member of the JSON
// object b lies, and the offset of the object's closing brace.
func objectMembers(b []byte) (map[string]span, int, error) {
	out := map[string]span{}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, 0, errors.New("not a JSON object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return out, i, nil
	}
	for i < len(b) {
		kEnd, err := skipString(b, i)
		if err != nil {
			return nil, 0, err
		}
		var key string
		if err := json.Unmarshal(b[i:kEnd], &key); err != nil {
			return nil, 0, fmt.Errorf("member name at %d: %w", i, err)
		}
		i = skipSpace(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return nil, 0, fmt.Errorf("no ':' after member %q", key)
		}
		start := skipSpace(b, i+1)
		end, err := skipValue(b, start)
		if err != nil {
			return nil, 0, err
		}
		out[key] = span{start, end}
		i = skipSpace(b, end)
		if i >= len(b) {
			break
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return out, i, nil
		default:
			return nil, 0, fmt.Errorf("unexpected %q at %d", b[i], i)
		}
	}
	return nil, 0, errors.New("unterminated JSON object")
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the offset just past the JSON string starting at i.
func skipString(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, fmt.Errorf("expected a string at %d", i)
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errors.New("unterminated JSON string")
}

// skipValue returns the offset just past the JSON value starting at i.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("expected a JSON value")
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errors.New("unterminated JSON object or array")
	default:
		start := i
		for i < len(b) && !bytes.ContainsRune([]byte(",}] \t\r\n"), rune(b[i])) {
			i++
		}
		if i == start {
			return 0, fmt.Errorf("unexpected %q at %d", b[i], i)
		}
		return i, nil
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
