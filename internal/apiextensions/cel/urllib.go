package cel

import (
	"net/url"
	"reflect"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// The Kubernetes URL library (upstream's library.URLs, as documented): url
// and isURL accept an absolute URI or an absolute path (net/url's
// ParseRequestURI, as the OpenAPI uri format); getScheme, getHost,
// getHostname, getPort, getEscapedPath and getQuery read its parts.

var urlType = cel.ObjectType("kubernetes.URL")

func urlLibrary() []cel.EnvOption {
	part := func(name string, f func(*url.URL) ref.Val) cel.EnvOption {
		return cel.Function(name, cel.MemberOverload("url_"+name, []*cel.Type{urlType}, cel.StringType, cel.UnaryBinding(func(v ref.Val) ref.Val {
			u, ok := v.(urlVal)
			if !ok {
				return types.MaybeNoSuchOverloadErr(v)
			}
			return f(u.u)
		})))
	}
	return []cel.EnvOption{
		cel.Function("url", cel.Overload("string_to_url", []*cel.Type{cel.StringType}, urlType, cel.UnaryBinding(func(v ref.Val) ref.Val {
			s, ok := v.(types.String)
			if !ok {
				return types.MaybeNoSuchOverloadErr(v)
			}
			if _, err := url.ParseRequestURI(string(s)); err != nil {
				return types.NewErr("URL parse error during conversion from string: %v", err)
			}
			// Parse again: ParseRequestURI folds a fragment into the
			// path or query.
			u, err := url.Parse(string(s))
			if err != nil {
				return types.NewErr("URL parse error during conversion from string: %v", err)
			}
			return urlVal{u}
		}))),
		cel.Function("isURL", cel.Overload("is_url_string", []*cel.Type{cel.StringType}, cel.BoolType, cel.UnaryBinding(func(v ref.Val) ref.Val {
			s, ok := v.(types.String)
			if !ok {
				return types.MaybeNoSuchOverloadErr(v)
			}
			_, err := url.ParseRequestURI(string(s))
			return types.Bool(err == nil)
		}))),
		part("getScheme", func(u *url.URL) ref.Val { return types.String(u.Scheme) }),
		part("getHost", func(u *url.URL) ref.Val { return types.String(u.Host) }),
		part("getHostname", func(u *url.URL) ref.Val { return types.String(u.Hostname()) }),
		part("getPort", func(u *url.URL) ref.Val { return types.String(u.Port()) }),
		part("getEscapedPath", func(u *url.URL) ref.Val { return types.String(u.EscapedPath()) }),
		cel.Function("getQuery", cel.MemberOverload("url_getQuery", []*cel.Type{urlType},
			cel.MapType(cel.StringType, cel.ListType(cel.StringType)), cel.UnaryBinding(func(v ref.Val) ref.Val {
				u, ok := v.(urlVal)
				if !ok {
					return types.MaybeNoSuchOverloadErr(v)
				}
				return types.DefaultTypeAdapter.NativeToValue(map[string][]string(u.u.Query()))
			}))),
	}
}

// urlVal is a CEL value holding a parsed URL.
type urlVal struct{ u *url.URL }

func (u urlVal) ConvertToNative(t reflect.Type) (any, error) {
	return opaqueToNative(u.u, u.u.String, "URL", t)
}

func (u urlVal) ConvertToType(t ref.Type) ref.Val {
	return opaqueToType(u, urlType, u.u.String, t)
}

func (u urlVal) Equal(o ref.Val) ref.Val {
	v, ok := o.(urlVal)
	return types.Bool(ok && *u.u == *v.u)
}

func (u urlVal) Type() ref.Type { return urlType }
func (u urlVal) Value() any     { return u.u }
