package audit

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// appendJSON appends the JSON of ev to b, byte for byte what
// json.Marshal(ev) writes. Every request of the API server logs one
// Event, and encoding/json's reflection was the larger part of what
// auditing a request cost; this writes the fields directly and leaves to
// encoding/json only what is rare: request and response bodies (which it
// validates and compacts) and failure statuses. An error is
// json.Marshal's (an invalid body).
func appendJSON(b []byte, ev *Event) ([]byte, error) {
	e := object{b: append(b, '{')}
	e.str("kind", ev.Kind, true)
	e.str("apiVersion", ev.APIVersion, true)
	e.str("level", string(ev.Level), false)
	e.str("auditID", ev.AuditID, false)
	e.str("stage", string(ev.Stage), false)
	e.str("requestURI", ev.RequestURI, false)
	e.str("verb", ev.Verb, false)
	e.field("user")
	e.b = appendUser(e.b, &ev.User)
	if ev.ImpersonatedUser != nil {
		e.field("impersonatedUser")
		e.b = appendUser(e.b, ev.ImpersonatedUser)
	}
	if len(ev.SourceIPs) > 0 {
		e.field("sourceIPs")
		e.b = appendStrings(e.b, ev.SourceIPs)
	}
	e.str("userAgent", ev.UserAgent, true)
	if ev.ObjectRef != nil {
		e.field("objectRef")
		e.b = appendObjectRef(e.b, ev.ObjectRef)
	}
	var err error
	if ev.ResponseStatus != nil {
		e.field("responseStatus")
		if e.b, err = appendStatus(e.b, ev.ResponseStatus); err != nil {
			return nil, err
		}
	}
	if len(ev.RequestObject) > 0 {
		e.field("requestObject")
		if e.b, err = appendMarshal(e.b, ev.RequestObject); err != nil {
			return nil, err
		}
	}
	if len(ev.ResponseObject) > 0 {
		e.field("responseObject")
		if e.b, err = appendMarshal(e.b, ev.ResponseObject); err != nil {
			return nil, err
		}
	}
	e.field("requestReceivedTimestamp")
	e.b = appendMicroTime(e.b, ev.RequestReceivedTimestamp)
	e.field("stageTimestamp")
	e.b = appendMicroTime(e.b, ev.StageTimestamp)
	if len(ev.Annotations) > 0 {
		e.field("annotations")
		e.b = appendMap(e.b, ev.Annotations, appendString)
	}
	return append(e.b, '}'), nil
}

// object writes the members of one JSON object.
type object struct {
	b    []byte
	more bool // a member was written: the next needs a comma
}

// field writes the name of the next member. Names here need no escaping.
func (o *object) field(name string) {
	if o.more {
		o.b = append(o.b, ',')
	}
	o.more = true
	o.b = append(o.b, '"')
	o.b = append(o.b, name...)
	o.b = append(o.b, '"', ':')
}

// str writes a string member, or nothing for "" when omitEmpty.
func (o *object) str(name, v string, omitEmpty bool) {
	if omitEmpty && v == "" {
		return
	}
	o.field(name)
	o.b = appendString(o.b, v)
}

func appendUser(b []byte, u *UserInfo) []byte {
	o := object{b: append(b, '{')}
	o.str("username", u.Username, true)
	o.str("uid", u.UID, true)
	if len(u.Groups) > 0 {
		o.field("groups")
		o.b = appendStrings(o.b, u.Groups)
	}
	if len(u.Extra) > 0 {
		o.field("extra")
		o.b = appendMap(o.b, u.Extra, func(b []byte, v []string) []byte {
			if v == nil {
				return append(b, "null"...)
			}
			return appendStrings(b, v)
		})
	}
	return append(o.b, '}')
}

func appendObjectRef(b []byte, r *ObjectReference) []byte {
	o := object{b: append(b, '{')}
	o.str("resource", r.Resource, true)
	o.str("namespace", r.Namespace, true)
	o.str("name", r.Name, true)
	o.str("uid", r.UID, true)
	o.str("apiGroup", r.APIGroup, true)
	o.str("apiVersion", r.APIVersion, true)
	o.str("resourceVersion", r.ResourceVersion, true)
	o.str("subresource", r.Subresource, true)
	return append(o.b, '}')
}

// appendStatus writes the common status, a bare code, directly, and
// anything more through encoding/json.
func appendStatus(b []byte, st *metav1.Status) ([]byte, error) {
	if st.TypeMeta != (metav1.TypeMeta{}) || st.ListMeta.SelfLink != "" || st.ListMeta.ResourceVersion != "" ||
		st.ListMeta.Continue != "" || st.ListMeta.RemainingItemCount != nil ||
		st.Status != "" || st.Message != "" || st.Reason != "" || st.Details != nil {
		return appendMarshal(b, st)
	}
	b = append(b, `{"metadata":{}`...)
	if st.Code != 0 {
		b = append(b, `,"code":`...)
		b = strconv.AppendInt(b, int64(st.Code), 10)
	}
	return append(b, '}'), nil
}

func appendMarshal(b []byte, v any) ([]byte, error) {
	m, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, m...), nil
}

// appendMicroTime writes t as metav1.MicroTime's MarshalJSON does.
func appendMicroTime(b []byte, t metav1.MicroTime) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, metav1.RFC3339Micro)
	return append(b, '"')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendMap writes m with its keys in order, as encoding/json does, and
// each value by appendValue.
func appendMap[V any](b []byte, m map[string]V, appendValue func([]byte, V) []byte) []byte {
	b = append(b, '{')
	var buf [8]string
	for i, k := range sortedKeys(m, buf[:]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, m[k])
	}
	return append(b, '}')
}

// plain marks the ASCII bytes a JSON string holds as they are.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// sortedKeys returns the keys of m in order, in keys when they fit.
func sortedKeys[V any](m map[string]V, keys []string) []string {
	keys = keys[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendString quotes s as encoding/json does (with its default HTML
// escaping): '"' and '\\' escaped, control characters as \n, \r, \t,
// \b, \f or \u00XX, '<', '>' and '&' as \u003c, \u003e and \u0026,
// U+2028 and U+2029 escaped, and invalid UTF-8 as \ufffd.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
