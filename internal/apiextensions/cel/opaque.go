package cel

import (
	"fmt"
	"reflect"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// The library's opaque values (IP, CIDR, URL, Quantity, Format) convert
// alike: to their Go value when the target type takes it, to their string
// form when they have one (str not nil), to themselves and to their type.

// opaqueToNative is ConvertToNative of an opaque value v (nil: none) of
// the CEL type named name.
func opaqueToNative(v any, str func() string, name string, t reflect.Type) (any, error) {
	if v != nil && reflect.TypeOf(v).AssignableTo(t) {
		return v, nil
	}
	if str != nil && t.Kind() == reflect.String {
		return str(), nil
	}
	return nil, fmt.Errorf("type conversion error from '%s' to '%v'", name, t)
}

// opaqueToType is ConvertToType of the opaque value self of type own.
func opaqueToType(self ref.Val, own *types.Type, str func() string, t ref.Type) ref.Val {
	switch {
	case t == own:
		return self
	case t == types.StringType && str != nil:
		return types.String(str())
	case t == types.TypeType:
		return own
	}
	return types.NewErr("type conversion error from '%s' to '%s'", own, t)
}
