package cel

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ErrOutOfBudget is upstream's message when the rules of one object exceed
// RuntimeCostBudget.
const ErrOutOfBudget = "validation failed due to running out of cost budget, no further validation rules will be run"

// Validate evaluates the rules against obj, a decoded custom resource
// (after pruning, defaulting and schema validation), and, for transition
// rules (those using oldSelf), against old: nil on create, where transition
// rules are skipped (unless optionalOldSelf); on update they run only where
// the old value exists (object fields by name, items of
// x-kubernetes-list-type map lists by their keys). Rules apply to non-null
// values only, and a rule on items or additionalProperties to every item or
// value.
//
// Errors are at the value's path ("spec.items[1].name", plus the rule's
// fieldPath), with the rule's reason and message (message, else
// messageExpression's result, else "failed rule: <rule>"), as upstream
// words them. On update, an error of a rule that does not use oldSelf, at a
// value unchanged from old, is not reported (ratcheting; upstream warns).
// Evaluation stops at the first rule over PerCallLimit or when the object's
// rules together exceed RuntimeCostBudget. Neither object is modified.
func (v *Validator) Validate(obj, old map[string]any) field.ErrorList {
	if v == nil || v.root == nil || !v.root.hasRules || obj == nil {
		return nil
	}
	e := evaluation{budget: RuntimeCostBudget}
	var oldV any
	var eq *lazyEqual
	if old != nil {
		oldV = old
		eq = &lazyEqual{a: obj, b: old, n: v.root}
	}
	e.walk(v.root, nil, obj, oldV, old != nil, eq, true)
	return e.errs
}

// evaluation is the state of one Validate call.
type evaluation struct {
	budget int64
	errs   field.ErrorList
	stop   bool // the budget or a call limit is exhausted
}

// lazyEqual caches whether a value equals its old counterpart.
type lazyEqual struct {
	a, b any
	n    *node // the values' schema
	done bool
	eq   bool
}

func (l *lazyEqual) equal() bool {
	if l == nil {
		return false
	}
	if !l.done {
		l.eq, l.done = deepEqual(l.a, l.b, l.n), true
	}
	return l.eq
}

// deepEqual reports whether a and b (of schema n) are equal, as upstream's
// ratcheting compares: items of map lists by their keys, in any order.
func deepEqual(a, b any, n *node) bool {
	if n == nil {
		return reflect.DeepEqual(a, b)
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok {
				return false
			}
			child, named := n.props[k]
			if !named {
				child = n.addl
			}
			if !deepEqual(xv, yv, child) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		if n.listType != "map" {
			for i := range x {
				if !deepEqual(x[i], y[i], n.items) {
					return false
				}
			}
			return true
		}
		byKey := make(map[string]any, len(y))
		for _, it := range y {
			byKey[mapListKey(it, n.mapKeys)] = it
		}
		for _, it := range x {
			o, ok := byKey[mapListKey(it, n.mapKeys)]
			if !ok || !deepEqual(it, o, n.items) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// walk evaluates the rules of n on val and below. old is the correlated
// old value (hasOld says whether there is one); eq is the equality of the
// nearest correlated value at or above val (nil: none), for ratcheting.
func (e *evaluation) walk(n *node, path *field.Path, val, old any, hasOld bool, eq *lazyEqual, resourceRoot bool) {
	if val == nil || e.stop || !n.hasRules {
		return
	}
	if len(n.rules) > 0 {
		e.evalRules(n, path, val, old, hasOld, eq, resourceRoot || n.embedded)
		if e.stop {
			return
		}
	}
	switch x := val.(type) {
	case map[string]any:
		oldMap, _ := old.(map[string]any)
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			child, named := n.props[k]
			if !named {
				child = n.addl
			}
			if child == nil || !child.hasRules {
				continue
			}
			oldChild, ok := oldMap[k]
			ok = ok && hasOld
			childEq := eq
			switch {
			case resourceRoot && (k == "apiVersion" || k == "kind"):
				childEq = nil // not correlatable
			case ok:
				childEq = &lazyEqual{a: x[k], b: oldChild, n: child}
			}
			p := path.Key(k)
			if named {
				p = path.Child(k)
			}
			e.walk(child, p, x[k], oldChild, ok, childEq, false)
			if e.stop {
				return
			}
		}
	case []any:
		if n.items == nil || !n.items.hasRules {
			return
		}
		var oldItems map[string]any
		if oldList, ok := old.([]any); ok && hasOld && n.listType == "map" {
			oldItems = make(map[string]any, len(oldList))
			for _, it := range oldList {
				oldItems[mapListKey(it, n.mapKeys)] = it
			}
		}
		for i, item := range x {
			oldItem, ok := oldItems[mapListKey(item, n.mapKeys)]
			itemEq := eq
			if ok {
				itemEq = &lazyEqual{a: item, b: oldItem, n: n.items}
			}
			e.walk(n.items, path.Index(i), item, oldItem, ok, itemEq, false)
			if e.stop {
				return
			}
		}
	}
}

// mapListKey is the identity of an item of a map list: its key fields.
func mapListKey(item any, keys []string) string {
	m, _ := item.(map[string]any)
	vals := make([]any, len(keys))
	for i, k := range keys {
		vals[i] = m[k]
	}
	return fmt.Sprintf("%#v", vals)
}

// activation resolves self and oldSelf.
type activation struct {
	self, oldSelf ref.Val
	hasOldSelf    bool
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case selfVar:
		return a.self, true
	case oldSelfVar:
		return a.oldSelf, a.hasOldSelf
	}
	return nil, false
}

func (a *activation) Parent() cel.Activation { return nil }

func (e *evaluation) evalRules(n *node, path *field.Path, val, old any, hasOld bool, eq *lazyEqual, resourceRoot bool) {
	adapter := types.DefaultTypeAdapter
	var act, optAct *activation
	for _, r := range n.rules {
		if r.usesOldSelf && !hasOld && !r.optional {
			continue
		}
		if act == nil {
			act = &activation{self: adapter.NativeToValue(toCEL(val, n, resourceRoot))}
			optAct = &activation{self: act.self, hasOldSelf: true, oldSelf: types.OptionalNone}
			if hasOld && old != nil {
				act.oldSelf, act.hasOldSelf = adapter.NativeToValue(toCEL(old, n, resourceRoot)), true
				optAct.oldSelf = types.OptionalOf(act.oldSelf)
			}
		}
		if e.budget <= 0 {
			e.errs = append(e.errs, field.Invalid(path, n.typ, ErrOutOfBudget))
			e.stop = true
			return
		}
		a := act
		if r.optional {
			a = optAct
		}
		out, det, err := r.prog.Eval(a)
		if !e.charge(det) {
			e.errs = append(e.errs, field.Invalid(path, n.typ, ErrOutOfBudget))
			e.stop = true
			return
		}
		ruleStr := ruleErrorString(r.src)
		if err != nil {
			switch msg := err.Error(); {
			case strings.HasPrefix(msg, "no such overload"):
				e.errs = append(e.errs, field.Invalid(path, n.typ, fmt.Sprintf("'%v': call arguments did not match a supported operator, function or macro signature for rule: %v", err, ruleStr)))
			case strings.HasPrefix(msg, "operation cancelled: actual cost limit exceeded"):
				e.errs = append(e.errs, field.Invalid(path, n.typ, fmt.Sprintf("'%v': no further validation rules will be run due to call cost exceeds limit for rule: %v", err, ruleStr)))
				e.stop = true
				return
			default:
				e.errs = append(e.errs, field.Invalid(path, n.typ, fmt.Sprintf("%v evaluating rule: %v", err, ruleStr)))
			}
			continue
		}
		if out == types.True {
			continue
		}
		if _, ok := out.(types.Bool); !ok {
			e.errs = append(e.errs, field.Invalid(path, n.typ, fmt.Sprintf("rule evaluated to %s, not bool, evaluating rule: %v", out.Type().TypeName(), ruleStr)))
			continue
		}
		if !r.usesOldSelf && eq.equal() {
			continue // ratcheting: the value is unchanged
		}
		fldPath := path
		if r.fieldPath != "" {
			fldPath = fldPath.Child(r.fieldPath)
		}
		detail := ""
		if r.msgProg != nil {
			var stop bool
			detail, stop = e.evalMessage(r, act)
			if stop {
				e.errs = append(e.errs, field.Invalid(fldPath, n.typ, detail))
				e.stop = true
				return
			}
		}
		if detail == "" {
			detail = "failed rule: " + ruleStr
			if m := strings.TrimSpace(r.src.Message); m != "" {
				detail = m
			}
		}
		value := val
		if n.typ == "object" || n.typ == "array" {
			value = field.OmitValueType{}
		}
		e.errs = append(e.errs, fieldErrorForReason(fldPath, value, detail, r.src.Reason))
	}
}

// charge takes the cost of an evaluation from the budget; false if the
// budget does not cover it.
func (e *evaluation) charge(det *cel.EvalDetails) bool {
	if det == nil || det.ActualCost() == nil {
		return true // cost tracking is always on; nothing to charge otherwise
	}
	c := *det.ActualCost()
	if c > math.MaxInt64 || int64(c) > e.budget {
		e.budget = -1
		return false
	}
	e.budget -= int64(c)
	return true
}

// evalMessage evaluates r's messageExpression. It returns the message, or
// "" to fall back to the rule's message; with stop, the returned string is
// the error detail and evaluation ends (budget or call limit exhausted), as
// upstream does.
func (e *evaluation) evalMessage(r *rule, act *activation) (string, bool) {
	out, det, err := r.msgProg.Eval(act)
	if !e.charge(det) {
		return "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run", true
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "operation cancelled: actual cost limit exceeded") {
			return fmt.Sprintf("no further validation rules will be run due to call cost exceeds limit for messageExpression: %q", r.src.MessageExpression), true
		}
		return "", false
	}
	s, ok := out.Value().(string)
	if !ok {
		return "", false
	}
	s = strings.TrimSpace(s)
	if len(s) > MaxMessageLen || strings.Contains(s, "\n") {
		return "", false
	}
	return s, false
}

// ruleErrorString names a rule in errors: its message, else its source.
func ruleErrorString(r apiextensionsv1.ValidationRule) string {
	if m := strings.TrimSpace(r.Message); m != "" {
		return m
	}
	return strings.TrimSpace(r.Rule)
}

// fieldErrorForReason builds the error of a failed rule with its reason
// (FieldValueInvalid when unset).
func fieldErrorForReason(fldPath *field.Path, value any, detail string, reason *apiextensionsv1.FieldValueErrorReason) *field.Error {
	if reason == nil {
		return field.Invalid(fldPath, value, detail)
	}
	switch *reason {
	case apiextensionsv1.FieldValueForbidden:
		return field.Forbidden(fldPath, detail)
	case apiextensionsv1.FieldValueRequired:
		return field.Required(fldPath, detail)
	case apiextensionsv1.FieldValueDuplicate:
		return field.Duplicate(fldPath, value)
	}
	return field.Invalid(fldPath, value, detail)
}
