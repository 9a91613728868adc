package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/kubernetes/scheme"
	sigsjson "sigs.k8s.io/json"

	"github.com/skiff-dev/skiff/internal/admission"
	skiffcel "github.com/skiff-dev/skiff/internal/apiextensions/cel"
)

// requestState is what one request's evaluation reads, each part built
// once, when first needed: the namespace, and the CEL values of object,
// oldObject, request and namespaceObject. It belongs to one goroutine.
type requestState struct {
	p *plugin
	r *admission.Request

	nsRead bool
	nsName string
	ns     *corev1.Namespace
	nsErr  error

	object, oldObject, request, namespaceObject ref.Val
}

func (s *requestState) kind() schema.GroupVersionKind {
	if !s.r.Kind.Empty() {
		return s.r.Kind
	}
	for _, obj := range []runtime.Object{s.r.Object, s.r.OldObject} {
		if obj == nil {
			continue
		}
		if gvk := obj.GetObjectKind().GroupVersionKind(); !gvk.Empty() {
			return gvk
		}
		if kinds, _, err := scheme.Scheme.ObjectKinds(obj); err == nil && len(kinds) > 0 {
			return kinds[0]
		}
	}
	return schema.GroupVersionKind{}
}

func (s *requestState) objectValue() ref.Val {
	if s.object == nil {
		s.object = objectValue(s.r.Object, s.kind())
	}
	return s.object
}

func (s *requestState) oldObjectValue() ref.Val {
	if s.oldObject == nil {
		s.oldObject = objectValue(s.r.OldObject, s.kind())
	}
	return s.oldObject
}

// objectValue is obj as CEL sees it: its JSON (unstructured) content with
// apiVersion and kind (from kind when it carries none); null for nil; an
// error value when it does not convert.
func objectValue(obj runtime.Object, kind schema.GroupVersionKind) ref.Val {
	if obj == nil || (reflect.ValueOf(obj).Kind() == reflect.Pointer && reflect.ValueOf(obj).IsNil()) {
		return types.NullValue
	}
	var m map[string]any
	if u, ok := obj.(*unstructured.Unstructured); ok {
		m = u.Object
	} else {
		// JSON, as webhooks are sent: faster here than the reflective
		// runtime.DefaultUnstructuredConverter.
		b, err := json.Marshal(obj)
		if err == nil {
			err = sigsjson.UnmarshalCaseSensitivePreserveInts(b, &m)
		}
		if err != nil {
			return types.NewErr("failed to prepare object variable for evaluation: %v", err)
		}
	}
	if _, ok := m["kind"]; !ok && kind.Kind != "" {
		// Not the caller's map: a shallow copy with the type's fields.
		c := make(map[string]any, len(m)+2)
		for k, v := range m {
			c[k] = v
		}
		c["apiVersion"], c["kind"] = kind.GroupVersion().String(), kind.Kind
		m = c
	}
	return types.DefaultTypeAdapter.NativeToValue(m)
}

// requestValue is the request variable: upstream's AdmissionRequest as
// its CEL sees it (fields that are empty are absent), without uid,
// object and oldObject.
func (s *requestState) requestValue() ref.Val {
	if s.request != nil {
		return s.request
	}
	r := s.r
	req := admission.RequestCELValue(r, s.kind())
	if opts, err := optionsValue(r); err != nil {
		s.request = types.NewErr("failed to prepare request variable for evaluation: %v", err)
		return s.request
	} else if opts != nil {
		req["options"] = opts
	}
	s.request = types.DefaultTypeAdapter.NativeToValue(req)
	return s.request
}

// optionsValue is the write's options as meta.k8s.io/v1 JSON values;
// when the caller did not give them, the zero options of the operation
// with its dry run, as upstream always has options.
func optionsValue(r *admission.Request) (any, error) {
	opts := admission.WriteOptions(r)
	if opts == nil {
		return nil, nil
	}
	b, err := json.Marshal(opts)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(b, &m); err != nil {
		return nil, err
	}
	if _, ok := m["kind"]; !ok {
		t := reflect.TypeOf(opts)
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		m["kind"], m["apiVersion"] = t.Name(), metav1.SchemeGroupVersion.String()
	}
	return m, nil
}

// namespaceObjectValue is the namespaceObject variable: for a namespaced
// request (not a Namespace itself), its namespace reduced as upstream
// does (name, generateName, namespace, uid, resourceVersion, generation,
// creationTimestamp, deletionTimestamp, deletionGracePeriodSeconds,
// labels, annotations, finalizers; spec; status); null otherwise. The
// namespace is read by loadNamespace before.
func (s *requestState) namespaceObjectValue() ref.Val {
	if s.namespaceObject != nil {
		return s.namespaceObject
	}
	if s.ns == nil || s.namespaceName() == "" {
		s.namespaceObject = types.NullValue
		return s.namespaceObject
	}
	ns := s.ns
	trimmed := &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{
			Name: ns.Name, GenerateName: ns.GenerateName, Namespace: ns.Namespace, UID: ns.UID,
			ResourceVersion: ns.ResourceVersion, Generation: ns.Generation, CreationTimestamp: ns.CreationTimestamp,
			DeletionTimestamp: ns.DeletionTimestamp, DeletionGracePeriodSeconds: ns.DeletionGracePeriodSeconds,
			Labels: ns.Labels, Annotations: ns.Annotations, Finalizers: ns.Finalizers,
		},
		Spec:   ns.Spec,
		Status: ns.Status,
	}
	s.namespaceObject = objectValue(trimmed, schema.GroupVersionKind{})
	return s.namespaceObject
}

// namespaceName is the namespace namespaceObject is: the request's,
// except for a Namespace itself (upstream's special case).
func (s *requestState) namespaceName() string {
	if k := s.kind(); k.Kind == "Namespace" && k.Group == "" && k.Version == "v1" {
		return ""
	}
	return s.r.Namespace
}

// loadNamespace reads the namespace namespaceObject needs; its error
// fails the request as upstream's (a 404 for a namespace that does not
// exist).
func (s *requestState) loadNamespace(ctx context.Context) error {
	name := s.namespaceName()
	if name == "" {
		return nil
	}
	_, err := s.getNamespace(ctx, name)
	return err
}

// activation is the variables of one evaluation of a policy for one
// binding and param. It belongs to one goroutine.
type activation struct {
	s      *requestState
	params ref.Val
	// vars is the variables map; nil in matchConditions, which do not see
	// it.
	vars *lazyVariables
	// nullNamespace: namespaceObject is null (matchConditions, as
	// upstream's).
	nullNamespace bool
}

var _ cel.Activation = (*activation)(nil)

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case objectVar:
		return a.s.objectValue(), true
	case oldObjectVar:
		return a.s.oldObjectValue(), true
	case requestVar:
		return a.s.requestValue(), true
	case paramsVar:
		return a.params, true
	case namespaceObjectVar:
		if a.nullNamespace {
			return types.NullValue, true
		}
		return a.s.namespaceObjectValue(), true
	case variablesVar:
		if a.vars == nil {
			return nil, false
		}
		return a.vars, true
	}
	return nil, false
}

func (a *activation) Parent() cel.Activation { return nil }

// lazyVariables is the variables variable: a map whose values are the
// policy's variables, each evaluated when first read and kept; the cost
// of evaluating them is collected in cost for the budget of the
// expression that read them. It belongs to one activation.
type lazyVariables struct {
	ctx    context.Context
	act    *activation
	defs   []namedExpression
	index  map[string]int
	values []ref.Val // nil until evaluated
	busy   []bool
	cost   int64
}

func newLazyVariables(ctx context.Context, act *activation, defs []namedExpression) *lazyVariables {
	v := &lazyVariables{ctx: ctx, act: act, defs: defs, index: make(map[string]int, len(defs)), values: make([]ref.Val, len(defs)), busy: make([]bool, len(defs))}
	for i, d := range defs {
		v.index[d.name] = i
	}
	return v
}

// takeCost returns the cost collected since the last call.
func (v *lazyVariables) takeCost() int64 {
	if v == nil {
		return 0
	}
	c := v.cost
	v.cost = 0
	return c
}

func (v *lazyVariables) value(i int) ref.Val {
	if v.values[i] != nil {
		return v.values[i]
	}
	d := v.defs[i]
	if d.expr.err != nil {
		v.values[i] = types.NewErr("composited variable %q fails to compile: %v", d.name, d.expr.err)
		return v.values[i]
	}
	if v.busy[i] {
		return types.NewErr("composited variable %q refers to itself", d.name)
	}
	v.busy[i] = true
	out, det, err := d.expr.prog.ContextEval(v.ctx, v.act)
	v.busy[i] = false
	if det == nil || det.ActualCost() == nil {
		v.values[i] = types.NewErr("unable to calculate cost of variable %q", d.name)
		return v.values[i]
	}
	c := *det.ActualCost()
	if c > math.MaxInt64 {
		c = math.MaxInt64
	}
	v.cost += int64(c)
	if err != nil {
		v.values[i] = types.NewErr("composited variable %q fails to evaluate: %v", d.name, err)
	} else {
		v.values[i] = out
	}
	return v.values[i]
}

var (
	_ ref.Val       = (*lazyVariables)(nil)
	_ traits.Mapper = (*lazyVariables)(nil)
)

func (v *lazyVariables) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return nil, false
	}
	i, ok := v.index[string(k)]
	if !ok {
		return nil, false
	}
	return v.value(i), true
}

func (v *lazyVariables) Get(key ref.Val) ref.Val {
	val, found := v.Find(key)
	if !found {
		return types.NewErr("no such key: %v", key)
	}
	return val
}

func (v *lazyVariables) Contains(key ref.Val) ref.Val {
	val, found := v.Find(key)
	if found && types.IsError(val) {
		return val
	}
	return types.Bool(found)
}

func (v *lazyVariables) Iterator() traits.Iterator {
	names := make([]string, len(v.defs))
	for i, d := range v.defs {
		names[i] = d.name
	}
	return types.NewStringList(types.DefaultTypeAdapter, names).Iterator()
}

func (v *lazyVariables) Size() ref.Val { return types.Int(len(v.defs)) }

func (v *lazyVariables) ConvertToNative(reflect.Type) (any, error) {
	return nil, fmt.Errorf("variables cannot be converted to a native value")
}

func (v *lazyVariables) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return v
	case types.TypeType:
		return types.MapType
	}
	return types.NewErr("type conversion error from map to '%s'", t)
}

func (v *lazyVariables) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(v)) }
func (v *lazyVariables) Type() ref.Type              { return types.MapType }
func (v *lazyVariables) Value() any                  { return v }

// decision is the outcome of one validation (or of an error standing for
// all of them).
type decision struct {
	deny    bool // a failed validation, or an error with failurePolicy Fail
	message string
	reason  metav1.StatusReason // "" for errors: Invalid
	index   int                 // the validation's index
}

// auditResult is one auditAnnotation's outcome.
type auditResult struct {
	key, value string // value "" : excluded
	err        string // with failurePolicy Fail: refuses the request
}

// evaluate runs c's matchConditions, validations (with their
// messageExpressions) and auditAnnotations for one binding and param
// (null without), as upstream's validator does.
func (s *requestState) evaluate(ctx context.Context, c *compiledPolicy, params ref.Val) ([]decision, []auditResult) {
	errDecision := func(msg string) []decision {
		if c.failOpen {
			return nil
		}
		return []decision{{deny: true, message: msg}}
	}
	if len(c.conditions) > 0 {
		act := &activation{s: s, params: params, nullNamespace: true}
		matched, err := evalConditions(ctx, c.conditions, act)
		if err != nil {
			return errDecision(err.Error()), nil
		}
		if !matched {
			return nil, nil
		}
	}

	act := &activation{s: s, params: params}
	act.vars = newLazyVariables(ctx, act, c.variables)
	budget := int64(runtimeCostBudget)
	decisions := make([]decision, 0, len(c.validations))
	for i := range c.validations {
		v := &c.validations[i]
		val, err, outOfBudget := evalExpression(ctx, v.expr, act, &budget)
		if outOfBudget {
			return errDecision(err.Error()), nil
		}
		switch {
		case err != nil:
			if !c.failOpen {
				decisions = append(decisions, decision{deny: true, message: err.Error(), index: i})
			}
			continue
		case val == types.True:
			continue
		case val.Type() != types.BoolType:
			if !c.failOpen {
				decisions = append(decisions, decision{deny: true, index: i,
					message: fmt.Sprintf("expression '%s' must evaluate to %v but got %v", v.expr.src, cel.BoolType, val.Type().TypeName())})
			}
			continue
		}
		d := decision{deny: true, reason: v.reason, index: i}
		var msg string
		if v.msgExpr != nil {
			var stop bool
			msg, stop = evalMessage(ctx, v.msgExpr, act, &budget)
			if stop {
				if !c.failOpen {
					decisions = append(decisions, decision{deny: true, index: i,
						message: "failed messageExpression: " + errOutOfBudget})
				}
				continue
			}
		}
		if msg == "" {
			msg = v.message
		}
		if msg == "" {
			msg = "failed expression: " + strings.TrimSpace(v.expr.src)
		}
		d.message = msg
		decisions = append(decisions, d)
	}

	if len(c.audits) == 0 {
		return decisions, nil
	}
	budget = runtimeCostBudget
	audits := make([]auditResult, 0, len(c.audits))
	for _, a := range c.audits {
		val, err, outOfBudget := evalExpression(ctx, a.expr, act, &budget)
		if outOfBudget {
			return append(decisions, errDecision(err.Error())...), audits
		}
		res := auditResult{key: a.key}
		switch {
		case err != nil:
			if !c.failOpen {
				res.err = err.Error()
			}
		case val.Type() == types.StringType:
			res.value = strings.TrimSpace(string(val.(types.String)))
			if len(res.value) > maxAuditAnnotationValueLen {
				res.value = res.value[:maxAuditAnnotationValueLen]
			}
		case val.Type() == types.NullType:
		default:
			res.err = fmt.Sprintf("valueExpression '%v' resulted in unsupported return type: %v. Return type must be either string or null.", a.expr.src, val.Type().TypeName())
		}
		if res.value != "" || res.err != "" {
			audits = append(audits, res)
		}
	}
	return decisions, audits
}

// errOutOfBudget is upstream's error when a policy's expressions spend
// more than their budget.
const errOutOfBudget = skiffcel.ErrOutOfBudget

// evalExpression evaluates e and charges its cost (and that of the
// variables it read) to budget. err is upstream's text: "compilation
// error: ...", "expression '<e>' resulted in error: ..."; outOfBudget
// means evaluation must stop (err says why).
func evalExpression(ctx context.Context, e *expression, act *activation, budget *int64) (val ref.Val, err error, outOfBudget bool) {
	if e.err != nil {
		return nil, fmt.Errorf("compilation error: %w", e.err), false
	}
	out, det, evalErr := e.prog.ContextEval(ctx, act)
	if vc := act.vars.takeCost(); vc > *budget {
		return nil, fmt.Errorf("%s", errOutOfBudget), true
	} else {
		*budget -= vc
	}
	if det == nil || det.ActualCost() == nil {
		return nil, fmt.Errorf("runtime cost could not be calculated for expression: %v, no further expression will be run", e.src), true
	}
	if c := *det.ActualCost(); c > math.MaxInt64 || int64(c) > *budget {
		return nil, fmt.Errorf("%s", errOutOfBudget), true
	} else {
		*budget -= int64(c)
	}
	if evalErr != nil {
		return nil, fmt.Errorf("expression '%v' resulted in error: %v", e.src, evalErr), false
	}
	return out, nil, false
}

// evalMessage evaluates a messageExpression: its trimmed string, or ""
// to fall back to the message (an error, a non-string, an empty, too long
// or multi-line result); stop when the budget is exhausted.
func evalMessage(ctx context.Context, e *expression, act *activation, budget *int64) (string, bool) {
	val, err, outOfBudget := evalExpression(ctx, e, act, budget)
	if outOfBudget {
		return "", true
	}
	if err != nil {
		return "", false
	}
	str, ok := val.(types.String)
	if !ok {
		return "", false
	}
	msg := strings.TrimSpace(string(str))
	if len(msg) > skiffcel.MaxMessageLen || strings.ContainsAny(msg, "\n") {
		return "", false
	}
	return msg, false
}

// evalConditions evaluates a policy's matchConditions in order, all of
// them, as upstream's matcher: matched is false when any is false
// (whatever errors others had); else err aggregates the errors, nil when
// all are true.
func evalConditions(ctx context.Context, conds []namedExpression, act *activation) (bool, error) {
	budget := int64(skiffcel.MatchConditionsCostBudget)
	var errs []error
	for _, c := range conds {
		val, err, outOfBudget := evalExpression(ctx, c.expr, act, &budget)
		switch {
		case outOfBudget:
			return false, err
		case err != nil:
			errs = append(errs, err)
		case val == types.False:
			return false, nil
		case val.Type() != types.BoolType:
			errs = append(errs, fmt.Errorf("expression '%s' must evaluate to %v but got %v", c.expr.src, cel.BoolType, val.Type().TypeName()))
		}
	}
	if len(errs) > 0 {
		return false, utilerrors.NewAggregate(errs)
	}
	return true, nil
}
