package cel

import (
	"net/url"
	"reflect"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
)

// The Kubernetes format library (upstream's library.Format, as documented):
// format.named(name) is an optional format, format.<name>() the format
// itself, and <format>.validate(s) none if s is valid, else the list of
// its errors.

var formatType = cel.ObjectType("kubernetes.NamedFormat")

// formats returns the named formats and their validation, after upstream.
func formats() map[string]func(string) []string {
	strfmtCheck := func(name, msg string) func(string) []string {
		return func(s string) []string {
			if !strfmt.Default.Validates(name, s) {
				return []string{msg}
			}
			return nil
		}
	}
	return map[string]func(string) []string{
		"dns1123Label":           func(s string) []string { return apimachineryvalidation.NameIsDNSLabel(s, false) },
		"dns1123Subdomain":       func(s string) []string { return apimachineryvalidation.NameIsDNSSubdomain(s, false) },
		"dns1035Label":           func(s string) []string { return apimachineryvalidation.NameIsDNS1035Label(s, false) },
		"qualifiedName":          validation.IsQualifiedName,
		"dns1123LabelPrefix":     func(s string) []string { return apimachineryvalidation.NameIsDNSLabel(s, true) },
		"dns1123SubdomainPrefix": func(s string) []string { return apimachineryvalidation.NameIsDNSSubdomain(s, true) },
		"dns1035LabelPrefix":     func(s string) []string { return apimachineryvalidation.NameIsDNS1035Label(s, true) },
		"labelValue":             validation.IsValidLabelValue,
		"uri": func(s string) []string {
			if _, err := url.ParseRequestURI(s); err != nil {
				return []string{err.Error()}
			}
			return nil
		},
		"uuid":     strfmtCheck("uuid", "does not match the UUID format"),
		"byte":     strfmtCheck("byte", "invalid base64"),
		"date":     strfmtCheck("date", "invalid date"),
		"datetime": strfmtCheck("datetime", "invalid datetime"),
	}
}

func formatLibrary() []cel.EnvOption {
	all := formats()
	opts := []cel.EnvOption{
		cel.Function("format.named", cel.Overload("format_named", []*cel.Type{cel.StringType}, cel.OptionalType(formatType),
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				s, ok := v.(types.String)
				if !ok {
					return types.MaybeNoSuchOverloadErr(v)
				}
				f, ok := all[string(s)]
				if !ok {
					return types.OptionalNone
				}
				return types.OptionalOf(formatVal{name: string(s), validate: f})
			}))),
		cel.Function("validate", cel.MemberOverload("format_validate", []*cel.Type{formatType, cel.StringType}, cel.OptionalType(cel.ListType(cel.StringType)),
			cel.BinaryBinding(func(f, s ref.Val) ref.Val {
				fv, ok1 := f.(formatVal)
				str, ok2 := s.(types.String)
				if !ok1 || !ok2 {
					return types.MaybeNoSuchOverloadErr(f)
				}
				if errs := fv.validate(string(str)); len(errs) > 0 {
					return types.OptionalOf(types.NewStringList(types.DefaultTypeAdapter, errs))
				}
				return types.OptionalNone
			}))),
	}
	for name, f := range all {
		fv := formatVal{name: name, validate: f}
		opts = append(opts, cel.Function("format."+name, cel.Overload("format_"+name, nil, formatType,
			cel.FunctionBinding(func(...ref.Val) ref.Val { return fv }))))
	}
	return opts
}

// formatVal is a CEL value holding a named format.
type formatVal struct {
	name     string
	validate func(string) []string
}

func (f formatVal) ConvertToNative(t reflect.Type) (any, error) {
	return opaqueToNative(nil, nil, "Format", t)
}

func (f formatVal) ConvertToType(t ref.Type) ref.Val {
	return opaqueToType(f, formatType, nil, t)
}

func (f formatVal) Equal(o ref.Val) ref.Val {
	g, ok := o.(formatVal)
	return types.Bool(ok && f.name == g.name)
}

func (f formatVal) Type() ref.Type { return formatType }
func (f formatVal) Value() any     { return f }
