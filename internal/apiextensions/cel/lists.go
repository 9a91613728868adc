package cel

import (
	"fmt"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// typedList is a list of x-kubernetes-list-type set or map as upstream
// shows it to rules: equality ignores order (set: same elements; map: same
// items by key), and + merges (set: the union, in order; map: right-hand
// items replace left-hand ones with the same keys, new ones follow).
type typedList struct {
	traits.Lister
	set  bool     // a set list; else a map list
	keys []string // the map list's keys
}

func newTypedList(items []any, set bool, keys []string) typedList {
	return typedList{Lister: types.DefaultTypeAdapter.NativeToValue(items).(traits.Lister), set: set, keys: keys}
}

// key returns the identity of a map list item.
func (l typedList) key(v ref.Val) string {
	m, ok := v.(traits.Mapper)
	if !ok {
		return fmt.Sprintf("%v", v.Value())
	}
	parts := make([]any, len(l.keys))
	for i, k := range l.keys {
		if e, found := m.Find(types.String(k)); found {
			parts[i] = e.Value()
		}
	}
	return fmt.Sprintf("%#v", parts)
}

func elements(l traits.Lister) []ref.Val {
	var out []ref.Val
	for it := l.Iterator(); it.HasNext() == types.True; {
		out = append(out, it.Next())
	}
	return out
}

func (l typedList) Equal(o ref.Val) ref.Val {
	other, ok := o.(traits.Lister)
	if !ok {
		return types.False
	}
	if l.Size().Equal(other.Size()) != types.True {
		return types.False
	}
	if l.set {
		for _, e := range elements(l) {
			if other.Contains(e) != types.True {
				return types.False
			}
		}
		return types.True
	}
	byKey := map[string]ref.Val{}
	for _, e := range elements(other) {
		byKey[l.key(e)] = e
	}
	for _, e := range elements(l) {
		m, ok := byKey[l.key(e)]
		if !ok || e.Equal(m) != types.True {
			return types.False
		}
	}
	return types.True
}

func (l typedList) Add(o ref.Val) ref.Val {
	other, ok := o.(traits.Lister)
	if !ok {
		return types.MaybeNoSuchOverloadErr(o)
	}
	left, right := elements(l), elements(other)
	var out []ref.Val
	if l.set {
		out = append(out, left...)
	next:
		for _, e := range right {
			for _, o := range out {
				if o.Equal(e) == types.True {
					continue next
				}
			}
			out = append(out, e)
		}
	} else {
		pos := map[string]int{}
		for _, e := range left {
			pos[l.key(e)] = len(out)
			out = append(out, e)
		}
		for _, e := range right {
			if i, ok := pos[l.key(e)]; ok {
				out[i] = e
				continue
			}
			pos[l.key(e)] = len(out)
			out = append(out, e)
		}
	}
	return typedList{Lister: types.NewRefValList(types.DefaultTypeAdapter, out).(traits.Lister), set: l.set, keys: l.keys}
}
