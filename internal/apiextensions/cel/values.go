package cel

import (
	"encoding/base64"
	"strings"
	"time"

	"k8s.io/kube-openapi/pkg/validation/strfmt"
)

// reservedSymbols are the CEL keywords and reserved words that a property
// name is escaped from as __name__ (upstream's list).
var reservedSymbols = map[string]bool{
	"true": true, "false": true, "null": true, "in": true,
	"as": true, "break": true, "const": true, "continue": true, "else": true,
	"for": true, "function": true, "if": true, "import": true, "let": true,
	"loop": true, "package": true, "namespace": true, "return": true,
	"var": true, "void": true, "while": true,
}

// escape returns the CEL name of a property as upstream escapes it: a
// reserved word w becomes __w__; "__", ".", "-" and "/" become
// __underscores__, __dot__, __dash__ and __slash__. ok is false for a name
// that cannot be a CEL identifier (empty, leading digit, other characters);
// such a property is not accessible as a field.
func escape(name string) (string, bool) {
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		return "", false
	}
	if reservedSymbols[name] {
		return "__" + name + "__", true
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' && i+1 < len(name) && name[i+1] == '_':
			b.WriteString("__underscores__")
			i++
		case c == '.':
			b.WriteString("__dot__")
		case c == '-':
			b.WriteString("__dash__")
		case c == '/':
			b.WriteString("__slash__")
		case c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'):
			b.WriteByte(c)
		default:
			return "", false
		}
	}
	return b.String(), true
}

// toCEL converts the decoded JSON value v of schema n into the native value
// CEL sees, as upstream's conversion does: integers of number schemas
// become float64; date, date-time, duration and byte strings become
// time.Time, time.Duration and []byte; lists of list-type set and map
// compare and concatenate as such (typedList); property names are escaped; a
// resource root (the object root, an x-kubernetes-embedded-resource) shows
// apiVersion, kind and, of its metadata, name and generateName only. Values
// without a schema (x-kubernetes-preserve-unknown-fields) are passed as
// they are. v is not modified; unchanged subtrees may be shared.
func toCEL(v any, n *node, resourceRoot bool) any {
	if v == nil || n == nil || n.intOrString || (!n.converts && !resourceRoot) {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		resourceRoot = resourceRoot || n.embedded
		if n.props == nil && n.addl == nil && !resourceRoot {
			return x
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			if resourceRoot {
				switch k {
				case "apiVersion", "kind":
					out[k] = e
					continue
				case "metadata":
					out[k] = objectMetaView(e)
					continue
				}
			}
			if p, ok := n.props[k]; ok {
				name := k
				if c, ok := n.celNames[k]; ok {
					if c == "" {
						continue // not accessible from CEL
					}
					name = c
				}
				out[name] = toCEL(e, p, false)
				continue
			}
			if n.addl != nil {
				out[k] = toCEL(e, n.addl, false)
				continue
			}
			out[k] = e
		}
		return out
	case []any:
		if n.items == nil {
			return x
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toCEL(e, n.items, false)
		}
		switch n.listType {
		case "set":
			return newTypedList(out, true, nil)
		case "map":
			return newTypedList(out, false, n.mapKeys)
		}
		return out
	case string:
		if n.typ != "string" {
			return x
		}
		switch n.format {
		case "duration":
			if d, err := strfmt.ParseDuration(x); err == nil {
				return d
			}
		case "date":
			if t, err := time.Parse(strfmt.RFC3339FullDate, x); err == nil {
				return t
			}
		case "date-time":
			if t, err := strfmt.ParseDateTime(x); err == nil {
				return time.Time(t)
			}
		case "byte":
			if b, err := base64.StdEncoding.DecodeString(x); err == nil {
				return b
			}
		}
		return x
	case int64:
		if n.typ == "number" {
			return float64(x)
		}
	case int:
		if n.typ == "number" {
			return float64(x)
		}
		return int64(x)
	}
	return v
}

// objectMetaView is the metadata of a resource root as rules see it: name
// and generateName only.
func objectMetaView(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := map[string]any{}
	for _, k := range []string{"name", "generateName"} {
		if s, ok := m[k]; ok {
			out[k] = s
		}
	}
	return out
}
