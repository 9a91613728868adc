package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"

	"github.com/skiff-dev/skiff/internal/admission"
	skiffcel "github.com/skiff-dev/skiff/internal/apiextensions/cel"
)

// The variables of matchConditions, as upstream declares them for
// webhooks. namespaceObject is declared and always null for webhooks, as
// upstream's; authorizer is not supported (see compileCondition).
const (
	objectVar          = "object"
	oldObjectVar       = "oldObject"
	requestVar         = "request"
	namespaceObjectVar = "namespaceObject"
	authorizerVar      = "authorizer"
)

// errOutOfBudget is upstream's error when a webhook's conditions spend
// more than skiffcel.MatchConditionsCostBudget on one request (each
// evaluation is also bounded by skiffcel.PerCallLimit).
var errOutOfBudget = errors.New(skiffcel.ErrOutOfBudget)

// conditionEnv is the environment of every matchCondition: the CEL of CRD
// rules (standard CEL, its extensions, the Kubernetes library, the
// per-call cost limit) with upstream's variables, all dyn. It is built at
// the first webhook with conditions and immutable after.
var conditionEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		skiffcel.Library(),
		cel.Variable(objectVar, cel.DynType),
		cel.Variable(oldObjectVar, cel.DynType),
		cel.Variable(requestVar, cel.DynType),
		cel.Variable(namespaceObjectVar, cel.DynType),
	)
})

// varSet is a set of the variables a condition reads.
type varSet uint8

const (
	usesObject varSet = 1 << iota
	usesOldObject
	usesRequest
	// usesOptions: request.options, which costs encoding and decoding the
	// options; set with usesRequest for an expression that mentions
	// "options" anywhere.
	usesOptions
)

// matchCondition is one compiled matchCondition of a hook. It is
// immutable once built and safe for concurrent use.
type matchCondition struct {
	name, expr string
	// prog is the checked program; nil when err is set.
	prog cel.Program
	// err is the condition's error at every evaluation: it did not
	// compile, does not return a bool, or reads the authorizer.
	err  error
	uses varSet
}

// compileConditions compiles a webhook's matchConditions, in order; nil
// without conditions. A condition that does not compile is kept with its
// error: it is an evaluation error for every request, as upstream's.
func compileConditions(mcs []admissionregistrationv1.MatchCondition) []*matchCondition {
	if len(mcs) == 0 {
		return nil
	}
	env, envErr := conditionEnv()
	out := make([]*matchCondition, len(mcs))
	for i, mc := range mcs {
		out[i] = compileCondition(env, envErr, mc)
	}
	return out
}

// compileCondition compiles one condition, with upstream's error texts
// ("compilation error: compilation failed: ERROR: <input>:1:..."; "...
// must evaluate to bool but got string"). An expression that refers to the
// authorizer compiles to an evaluation error instead: skiff evaluates no
// authorization checks in CEL.
func compileCondition(env *cel.Env, envErr error, mc admissionregistrationv1.MatchCondition) *matchCondition {
	c := &matchCondition{name: mc.Name, expr: mc.Expression}
	if envErr != nil {
		c.err = fmt.Errorf("compilation error: unexpected error loading CEL environment: %w", envErr)
		return c
	}
	if parsed, iss := env.Parse(mc.Expression); iss.Err() == nil && skiffcel.RefersTo(parsed, authorizerVar) {
		c.err = fmt.Errorf("expression '%s' resulted in error: %s is not supported: skiff does not evaluate authorization checks in CEL", mc.Expression, authorizerVar)
		return c
	}
	ast, iss := env.Compile(mc.Expression)
	if iss.Err() != nil {
		c.err = errors.New("compilation error: compilation failed: " + iss.String())
		return c
	}
	// Upstream types request, so that request.dryRun is a bool; here it is
	// dyn, and a dyn result is checked when evaluated instead.
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		c.err = fmt.Errorf("compilation error: must evaluate to %v but got %v", cel.BoolType, t)
		return c
	}
	prog, err := env.Program(ast)
	if err != nil {
		c.err = fmt.Errorf("compilation error: program instantiation failed: %w", err)
		return c
	}
	c.prog = prog
	for name, bit := range map[string]varSet{objectVar: usesObject, oldObjectVar: usesOldObject, requestVar: usesRequest} {
		if skiffcel.RefersTo(ast, name) {
			c.uses |= bit
		}
	}
	if c.uses&usesRequest != 0 && strings.Contains(mc.Expression, "options") {
		c.uses |= usesOptions
	}
	return c
}

// evalConditions evaluates a webhook's conditions in order, all of them,
// as upstream's matcher does: matched is false, with the name of the first
// false condition, when any is false (whatever errors others had); else
// err aggregates the conditions' errors, nil when all are true. Spending
// more than skiffcel.MatchConditionsCostBudget is an error whatever the results.
// vars must hold every variable the conditions use.
func evalConditions(ctx context.Context, conds []*matchCondition, vars *conditionVars) (matched bool, failed string, err error) {
	budget := uint64(skiffcel.MatchConditionsCostBudget)
	var errs []error
	for _, c := range conds {
		if c.err != nil {
			errs = append(errs, c.err)
			continue
		}
		val, det, evalErr := c.prog.ContextEval(ctx, vars)
		if det == nil || det.ActualCost() == nil {
			return false, "", fmt.Errorf("runtime cost could not be calculated for expression: %v, no further expression will be run", c.expr)
		}
		cost := *det.ActualCost()
		if cost > budget {
			return false, "", errOutOfBudget
		}
		budget -= cost
		switch {
		case evalErr != nil:
			errs = append(errs, fmt.Errorf("expression '%s' resulted in error: %w", c.expr, evalErr))
		case val.Type() != types.BoolType:
			errs = append(errs, fmt.Errorf("expression '%s' must evaluate to %v but got %v", c.expr, cel.BoolType, val.Type().TypeName()))
		case val == types.False && failed == "":
			failed = c.name
		}
	}
	if failed != "" {
		return false, failed, nil
	}
	if len(errs) > 0 {
		return false, "", utilerrors.NewAggregate(errs)
	}
	return true, "", nil
}

// conditionVars is the activation of one request's conditions: each
// variable is built once, when a condition first needs it (object again
// after a mutating webhook changed it). A conditionVars belongs to one
// matcher, hence one goroutine.
type conditionVars struct {
	object, oldObject, request ref.Val
	// requestMap is request's map, which gets "options" once a condition
	// needs it (usesOptions).
	requestMap map[string]any
	built      varSet
}

var _ cel.Activation = (*conditionVars)(nil)

func (v *conditionVars) ResolveName(name string) (any, bool) {
	switch name {
	case objectVar:
		return v.object, v.built&usesObject != 0
	case oldObjectVar:
		return v.oldObject, v.built&usesOldObject != 0
	case requestVar:
		return v.request, v.built&usesRequest != 0
	case namespaceObjectVar:
		return types.NullValue, true
	}
	return nil, false
}

func (v *conditionVars) Parent() cel.Activation { return nil }

// matchConditions applies h's matchConditions, once its rules and
// selectors matched: false when a condition is false; an evaluation error
// is upstream's 403 (`<resource> "<name>" is forbidden: expression '...'
// resulted in error: ...`) with failurePolicy Fail and skips the webhook
// with Ignore.
func (m *matcher) matchConditions(ctx context.Context, h *hook) (bool, *apierrors.StatusError) {
	var need varSet
	for _, c := range h.conditions {
		need |= c.uses
	}
	vars, serr := m.conditionVars(need)
	if serr != nil {
		return false, serr
	}
	matched, failed, err := evalConditions(ctx, h.conditions, vars)
	switch {
	case err != nil && h.failOpen:
		m.log.Debug("failed evaluating match conditions, skipping the webhook", "webhook", h.name, "err", err)
		return false, nil
	case err != nil:
		m.log.Info("failed evaluating match conditions, failing closed", "webhook", h.name, "err", err)
		return false, apierrors.NewForbidden(m.r.Resource.GroupResource(), m.r.Name, err)
	case !matched:
		m.log.Debug("match condition not met, skipping the webhook", "webhook", h.name, "condition", failed)
		return false, nil
	}
	return true, nil
}

// conditionVars returns the request's condition variables with at least
// need built. object and oldObject are the JSON webhooks are sent, decoded
// (null when absent); request is upstream's AdmissionRequest as its CEL
// sees it (see requestValue).
func (m *matcher) conditionVars(need varSet) (*conditionVars, *apierrors.StatusError) {
	if m.vars == nil {
		m.vars = &conditionVars{}
	}
	v := m.vars
	missing := need &^ v.built
	if missing == 0 {
		return v, nil
	}
	a := m.attributes()
	var err error
	if missing&usesObject != 0 {
		if a.obj == nil {
			if a.obj, err = encodeObject(a.r.Object, a.kind); err != nil {
				return nil, apierrors.NewInternalError(fmt.Errorf("encoding the object: %w", err))
			}
		}
		if v.object, err = decodeValue(a.obj); err != nil {
			return nil, apierrors.NewInternalError(fmt.Errorf("preparing the object variable: %w", err))
		}
	}
	if missing&usesOldObject != 0 {
		if a.old == nil {
			if a.old, err = encodeObject(a.r.OldObject, a.kind); err != nil {
				return nil, apierrors.NewInternalError(fmt.Errorf("encoding the old object: %w", err))
			}
		}
		if v.oldObject, err = decodeValue(a.old); err != nil {
			return nil, apierrors.NewInternalError(fmt.Errorf("preparing the oldObject variable: %w", err))
		}
	}
	if missing&usesRequest != 0 {
		v.requestMap = admission.RequestCELValue(a.r, a.kind)
		v.request = types.DefaultTypeAdapter.NativeToValue(v.requestMap)
	}
	if missing&usesOptions != 0 {
		if a.opts == nil {
			if a.opts, err = encodeOptions(a.r); err != nil {
				return nil, apierrors.NewInternalError(fmt.Errorf("encoding the options: %w", err))
			}
		}
		var opts any
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(a.opts, &opts); err != nil {
			return nil, apierrors.NewInternalError(fmt.Errorf("preparing the request variable: decoding the options: %w", err))
		}
		v.requestMap["options"] = opts // seen through v.request, which wraps the map
	}
	v.built |= missing
	return v, nil
}

// decodeValue is the CEL value of JSON data: maps, lists, strings, int64
// for integers, float64, bools and null.
func decodeValue(data []byte) (ref.Val, error) {
	var x any
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, &x); err != nil {
		return nil, err
	}
	return types.DefaultTypeAdapter.NativeToValue(x), nil
}

// ValidateMatchConditions reports the matchConditions (at fldPath) whose
// expressions do not compile, as upstream's validation of a webhook
// configuration does when it is written: field.Invalid at
// `<fldPath>[i].expression`. A condition reading the authorizer compiles
// (upstream supports it); skiff fails it when evaluated.
func ValidateMatchConditions(fldPath *field.Path, mcs []admissionregistrationv1.MatchCondition) field.ErrorList {
	var errs field.ErrorList
	for i, c := range compileConditions(mcs) {
		if strings.TrimSpace(c.expr) == "" {
			continue // required: the caller's check
		}
		if c.err == nil || c.prog == nil && strings.HasPrefix(c.err.Error(), "expression '") {
			continue // compiled, or only the authorizer is missing
		}
		errs = append(errs, field.Invalid(fldPath.Index(i).Child("expression"), c.expr, strings.TrimPrefix(c.err.Error(), "compilation error: ")))
	}
	return errs
}
