package cel

import (
	"reflect"
	"regexp"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"k8s.io/apimachinery/pkg/api/resource"
)

// kubernetesLibrary declares the Kubernetes CEL library functions this
// package provides, after the behavior upstream documents for
// k8s.io/apiserver's pkg/cel/library: lists (isSorted, sum, min, max,
// indexOf, lastIndexOf), regex (find, findAll), quantity, IP, CIDR, URL
// and named formats.
func kubernetesLibrary() cel.EnvOption {
	listT := cel.ListType(cel.TypeParamType("T"))
	paramT := cel.TypeParamType("T")
	opts := append(append(netLibrary(), urlLibrary()...), formatLibrary()...)
	return cel.Lib(lib{opts: append(opts,
		cel.Function("isSorted", cel.MemberOverload("list_is_sorted", []*cel.Type{listT}, cel.BoolType, cel.UnaryBinding(isSorted))),
		cel.Function("sum", cel.MemberOverload("list_sum", []*cel.Type{listT}, paramT, cel.UnaryBinding(sum))),
		cel.Function("min", cel.MemberOverload("list_min", []*cel.Type{listT}, paramT, cel.UnaryBinding(extremum(-1, "min")))),
		cel.Function("max", cel.MemberOverload("list_max", []*cel.Type{listT}, paramT, cel.UnaryBinding(extremum(1, "max")))),
		cel.Function("indexOf", cel.MemberOverload("list_index_of", []*cel.Type{listT, paramT}, cel.IntType, cel.BinaryBinding(indexOf(false)))),
		cel.Function("lastIndexOf", cel.MemberOverload("list_last_index_of", []*cel.Type{listT, paramT}, cel.IntType, cel.BinaryBinding(indexOf(true)))),
		cel.Function("find", cel.MemberOverload("string_find_string", []*cel.Type{cel.StringType, cel.StringType}, cel.StringType, cel.BinaryBinding(find))),
		cel.Function("findAll",
			cel.MemberOverload("string_find_all_string", []*cel.Type{cel.StringType, cel.StringType}, cel.ListType(cel.StringType),
				cel.BinaryBinding(func(s, re ref.Val) ref.Val { return findAll(s, re, types.Int(-1)) })),
			cel.MemberOverload("string_find_all_string_int", []*cel.Type{cel.StringType, cel.StringType, cel.IntType}, cel.ListType(cel.StringType),
				cel.FunctionBinding(func(args ...ref.Val) ref.Val { return findAll(args[0], args[1], args[2]) }))),
		cel.Function("quantity", cel.Overload("string_to_quantity", []*cel.Type{cel.StringType}, quantityType, cel.UnaryBinding(toQuantity))),
		cel.Function("isQuantity", cel.Overload("is_quantity_string", []*cel.Type{cel.StringType}, cel.BoolType, cel.UnaryBinding(isQuantity))),
		cel.Function("isInteger", cel.MemberOverload("quantity_is_integer", []*cel.Type{quantityType}, cel.BoolType, cel.UnaryBinding(quantityIsInteger))),
		cel.Function("asInteger", cel.MemberOverload("quantity_as_integer", []*cel.Type{quantityType}, cel.IntType, cel.UnaryBinding(quantityAsInteger))),
		cel.Function("asApproximateFloat", cel.MemberOverload("quantity_as_float", []*cel.Type{quantityType}, cel.DoubleType, cel.UnaryBinding(quantityAsFloat))),
		cel.Function("sign", cel.MemberOverload("quantity_sign", []*cel.Type{quantityType}, cel.IntType, cel.UnaryBinding(quantitySign))),
		cel.Function("add",
			cel.MemberOverload("quantity_add", []*cel.Type{quantityType, quantityType}, quantityType, cel.BinaryBinding(quantityArith(1))),
			cel.MemberOverload("quantity_add_int", []*cel.Type{quantityType, cel.IntType}, quantityType, cel.BinaryBinding(quantityArith(1)))),
		cel.Function("sub",
			cel.MemberOverload("quantity_sub", []*cel.Type{quantityType, quantityType}, quantityType, cel.BinaryBinding(quantityArith(-1))),
			cel.MemberOverload("quantity_sub_int", []*cel.Type{quantityType, cel.IntType}, quantityType, cel.BinaryBinding(quantityArith(-1)))),
		cel.Function("isGreaterThan", cel.MemberOverload("quantity_is_greater_than", []*cel.Type{quantityType, quantityType}, cel.BoolType,
			cel.BinaryBinding(quantityCompare(func(c int) ref.Val { return types.Bool(c > 0) })))),
		cel.Function("isLessThan", cel.MemberOverload("quantity_is_less_than", []*cel.Type{quantityType, quantityType}, cel.BoolType,
			cel.BinaryBinding(quantityCompare(func(c int) ref.Val { return types.Bool(c < 0) })))),
		cel.Function("compareTo", cel.MemberOverload("quantity_compare_to", []*cel.Type{quantityType, quantityType}, cel.IntType,
			cel.BinaryBinding(quantityCompare(func(c int) ref.Val { return types.Int(c) })))),
	)})
}

type lib struct{ opts []cel.EnvOption }

func (l lib) CompileOptions() []cel.EnvOption     { return l.opts }
func (l lib) ProgramOptions() []cel.ProgramOption { return nil }

func asLister(v ref.Val) (traits.Lister, ref.Val) {
	l, ok := v.(traits.Lister)
	if !ok {
		return nil, types.MaybeNoSuchOverloadErr(v)
	}
	return l, nil
}

func isSorted(v ref.Val) ref.Val {
	l, errV := asLister(v)
	if errV != nil {
		return errV
	}
	var prev ref.Val
	for it := l.Iterator(); it.HasNext() == types.True; {
		e := it.Next()
		if prev != nil {
			c, ok := prev.(traits.Comparer)
			if !ok {
				return types.MaybeNoSuchOverloadErr(prev)
			}
			r := c.Compare(e)
			if types.IsError(r) {
				return r
			}
			if r == types.IntOne {
				return types.False
			}
		}
		prev = e
	}
	return types.True
}

func sum(v ref.Val) ref.Val {
	l, errV := asLister(v)
	if errV != nil {
		return errV
	}
	var acc ref.Val
	for it := l.Iterator(); it.HasNext() == types.True; {
		e := it.Next()
		if acc == nil {
			acc = e
			continue
		}
		a, ok := acc.(traits.Adder)
		if !ok {
			return types.MaybeNoSuchOverloadErr(acc)
		}
		acc = a.Add(e)
		if types.IsError(acc) {
			return acc
		}
	}
	if acc == nil {
		return types.IntZero // the element type is not known here
	}
	return acc
}

// extremum returns min (sign -1) or max (sign 1) of a list.
func extremum(sign int64, name string) func(ref.Val) ref.Val {
	return func(v ref.Val) ref.Val {
		l, errV := asLister(v)
		if errV != nil {
			return errV
		}
		var best ref.Val
		for it := l.Iterator(); it.HasNext() == types.True; {
			e := it.Next()
			if best == nil {
				best = e
				continue
			}
			c, ok := e.(traits.Comparer)
			if !ok {
				return types.MaybeNoSuchOverloadErr(e)
			}
			r := c.Compare(best)
			if types.IsError(r) {
				return r
			}
			if r.(types.Int) == types.Int(sign) {
				best = e
			}
		}
		if best == nil {
			return types.NewErr("%s called on empty list", name)
		}
		return best
	}
}

func indexOf(last bool) func(ref.Val, ref.Val) ref.Val {
	return func(v, x ref.Val) ref.Val {
		l, errV := asLister(v)
		if errV != nil {
			return errV
		}
		n, _ := l.Size().(types.Int)
		found := types.Int(-1)
		for i := types.Int(0); i < n; i++ {
			if l.Get(i).Equal(x) == types.True {
				found = i
				if !last {
					break
				}
			}
		}
		return found
	}
}

func find(s, re ref.Val) ref.Val {
	str, ok1 := s.(types.String)
	pat, ok2 := re.(types.String)
	if !ok1 || !ok2 {
		return types.MaybeNoSuchOverloadErr(s)
	}
	r, err := regexp.Compile(string(pat))
	if err != nil {
		return types.WrapErr(err)
	}
	return types.String(r.FindString(string(str)))
}

func findAll(s, re, limit ref.Val) ref.Val {
	str, ok1 := s.(types.String)
	pat, ok2 := re.(types.String)
	n, ok3 := limit.(types.Int)
	if !ok1 || !ok2 || !ok3 {
		return types.MaybeNoSuchOverloadErr(s)
	}
	r, err := regexp.Compile(string(pat))
	if err != nil {
		return types.WrapErr(err)
	}
	return types.DefaultTypeAdapter.NativeToValue(r.FindAllString(string(str), int(n)))
}

// quantityType is the CEL type of a Kubernetes resource quantity.
var quantityType = cel.ObjectType("kubernetes.Quantity")

// quantity is a CEL value holding a resource.Quantity.
type quantity struct{ q resource.Quantity }

var _ ref.Val = quantity{}

func (q quantity) ConvertToNative(t reflect.Type) (any, error) {
	return opaqueToNative(q.q, nil, "Quantity", t)
}

func (q quantity) ConvertToType(t ref.Type) ref.Val {
	return opaqueToType(q, quantityType, nil, t)
}

func (q quantity) Equal(other ref.Val) ref.Val {
	o, ok := other.(quantity)
	if !ok {
		return types.False
	}
	return types.Bool(q.q.Equal(o.q))
}

func (q quantity) Type() ref.Type { return quantityType }
func (q quantity) Value() any     { return q.q }

func toQuantity(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	q, err := resource.ParseQuantity(string(s))
	if err != nil {
		return types.WrapErr(err)
	}
	return quantity{q: q}
}

func isQuantity(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	_, err := resource.ParseQuantity(string(s))
	return types.Bool(err == nil)
}

func quantityIsInteger(v ref.Val) ref.Val {
	q, ok := v.(quantity)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	_, ok = q.q.AsInt64()
	return types.Bool(ok)
}

func quantityAsInteger(v ref.Val) ref.Val {
	q, ok := v.(quantity)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	i, ok := q.q.AsInt64()
	if !ok {
		return types.NewErr("cannot convert value to integer")
	}
	return types.Int(i)
}

func quantityAsFloat(v ref.Val) ref.Val {
	q, ok := v.(quantity)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	return types.Double(q.q.AsApproximateFloat64())
}

func quantitySign(v ref.Val) ref.Val {
	q, ok := v.(quantity)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	return types.Int(q.q.Sign())
}

// quantityArith adds (sign 1) or subtracts (sign -1) a quantity or an int.
func quantityArith(sign int) func(ref.Val, ref.Val) ref.Val {
	return func(a, b ref.Val) ref.Val {
		q, ok := a.(quantity)
		if !ok {
			return types.MaybeNoSuchOverloadErr(a)
		}
		var o resource.Quantity
		switch x := b.(type) {
		case quantity:
			o = x.q
		case types.Int:
			o = *resource.NewQuantity(int64(x), resource.DecimalSI)
		default:
			return types.MaybeNoSuchOverloadErr(b)
		}
		res := q.q.DeepCopy()
		if sign > 0 {
			res.Add(o)
		} else {
			res.Sub(o)
		}
		return quantity{q: res}
	}
}

func quantityCompare(f func(int) ref.Val) func(ref.Val, ref.Val) ref.Val {
	return func(a, b ref.Val) ref.Val {
		q, ok1 := a.(quantity)
		o, ok2 := b.(quantity)
		if !ok1 || !ok2 {
			return types.MaybeNoSuchOverloadErr(b)
		}
		return f(q.q.Cmp(o.q))
	}
}

// costEstimator charges the library's list and regex functions by the
// size of their input, so that the cost limit bounds them as it bounds
// comprehensions.
type costEstimator struct{}

func (costEstimator) CallCost(function, overloadID string, args []ref.Val, result ref.Val) *uint64 {
	var c uint64
	switch overloadID {
	case "list_is_sorted", "list_sum", "list_min", "list_max", "list_index_of", "list_last_index_of":
		if s, ok := args[0].(traits.Sizer); ok {
			if n, ok := s.Size().(types.Int); ok {
				c = uint64(n) + 1
			}
		}
	case "string_find_string", "string_find_all_string", "string_find_all_string_int":
		if s, ok := args[0].(types.String); ok {
			c = uint64(len(s))/10 + 1
		}
	default:
		return nil
	}
	return &c
}
