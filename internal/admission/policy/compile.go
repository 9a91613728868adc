package policy

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	celast "github.com/google/cel-go/common/ast"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	skiffcel "github.com/skiff-dev/skiff/internal/apiextensions/cel"
)

// The variables of a policy's expressions, as upstream names them.
// authorizer is deliberately not declared (see the package documentation).
const (
	objectVar          = "object"
	oldObjectVar       = "oldObject"
	requestVar         = "request"
	paramsVar          = "params"
	namespaceObjectVar = "namespaceObject"
	variablesVar       = "variables"
	authorizerVar      = "authorizer"
)

// Upstream's cost limits (k8s.io/apiserver pkg/apis/cel).
const (
	// runtimeCostBudget is what the validations (with the variables they
	// evaluate and the messageExpressions) of one policy may spend on one
	// binding and param; the auditAnnotations get a budget of their own.
	runtimeCostBudget = skiffcel.RuntimeCostBudget
	// maxAuditAnnotationValueLen bounds an audit annotation's value.
	maxAuditAnnotationValueLen = 10 * 1024
)

// envKind selects one of the four environments: whether params is
// declared (the policy has a paramKind) and whether variables is (every
// expression but matchConditions, as upstream validates them).
type envKind struct{ params, variables bool }

// envs are the environments, built on first use and immutable after.
var envs = map[envKind]func() (*cel.Env, error){
	{false, false}: sync.OnceValues(func() (*cel.Env, error) { return newEnv(envKind{false, false}) }),
	{false, true}:  sync.OnceValues(func() (*cel.Env, error) { return newEnv(envKind{false, true}) }),
	{true, false}:  sync.OnceValues(func() (*cel.Env, error) { return newEnv(envKind{true, false}) }),
	{true, true}:   sync.OnceValues(func() (*cel.Env, error) { return newEnv(envKind{true, true}) }),
}

// newEnv is the CEL of CRD rules (standard CEL, extensions, the
// Kubernetes library, the per-call cost limit) with the policy variables,
// all dyn.
func newEnv(k envKind) (*cel.Env, error) {
	opts := []cel.EnvOption{
		skiffcel.Library(),
		cel.Variable(objectVar, cel.DynType),
		cel.Variable(oldObjectVar, cel.DynType),
		cel.Variable(requestVar, cel.DynType),
		cel.Variable(namespaceObjectVar, cel.DynType),
	}
	if k.params {
		opts = append(opts, cel.Variable(paramsVar, cel.DynType))
	}
	if k.variables {
		opts = append(opts, cel.Variable(variablesVar, cel.DynType))
	}
	return cel.NewEnv(opts...)
}

// returnKind is what an expression must evaluate to.
type returnKind uint8

const (
	returnsBool returnKind = iota
	returnsString
	returnsStringOrNull
	returnsAny
)

// check reports whether the checked type t is acceptable for k. dyn is
// accepted for every kind: it is checked when evaluated.
func (k returnKind) check(t *cel.Type) error {
	if t.IsExactType(cel.DynType) || k == returnsAny {
		return nil
	}
	switch k {
	case returnsBool:
		if !t.IsExactType(cel.BoolType) {
			return fmt.Errorf("must evaluate to %v but got %v", cel.BoolType, t)
		}
	case returnsString:
		if !t.IsExactType(cel.StringType) {
			return fmt.Errorf("must evaluate to %v but got %v", cel.StringType, t)
		}
	case returnsStringOrNull:
		if !t.IsExactType(cel.StringType) && !t.IsExactType(cel.NullType) {
			return fmt.Errorf("must evaluate to one of %v but got %v", []*cel.Type{cel.StringType, cel.NullType}, t)
		}
	}
	return nil
}

// expression is one compiled CEL expression of a policy. It is immutable
// once built and safe for concurrent use.
type expression struct {
	src string
	// prog is the program; nil when err is set.
	prog cel.Program
	// err is upstream's compilation error detail ("compilation failed:
	// ERROR: <input>:1:..." or "must evaluate to bool but got int"); the
	// expression fails every evaluation with "compilation error: <err>".
	err error
	// internal marks err as not the expression's fault (the environment
	// did not build).
	internal bool
}

// compileExpression compiles src in env k. vars are the names of the
// policy variables it may use (variables.<name> with another name is
// upstream's "undefined field" compile error).
func compileExpression(src string, k envKind, ret returnKind, vars map[string]bool) *expression {
	e := &expression{src: src}
	env, err := envs[k]()
	if err != nil {
		e.err, e.internal = fmt.Errorf("unexpected error loading CEL environment: %w", err), true
		return e
	}
	if parsed, iss := env.Parse(src); iss.Err() == nil && skiffcel.RefersTo(parsed, authorizerVar) {
		e.err = errors.New("compilation failed: authorizer is not supported: skiff does not evaluate authorization checks in CEL")
		return e
	}
	ast, iss := env.Compile(src)
	if iss.Err() == nil && k.variables {
		iss = undefinedVariables(ast, vars)
	}
	if iss.Err() != nil {
		e.err = errors.New("compilation failed: " + iss.String())
		return e
	}
	if err := ret.check(ast.OutputType()); err != nil {
		e.err = err
		return e
	}
	prog, err := env.Program(ast)
	if err != nil {
		e.err, e.internal = fmt.Errorf("program instantiation failed: %w", err), true
		return e
	}
	e.prog = prog
	return e
}

// undefinedVariables reports each variables.<name> of ast whose name is
// not in vars, as upstream's type checker does with its typed variables
// object ("undefined field '<name>'").
func undefinedVariables(ast *cel.Ast, vars map[string]bool) *cel.Issues {
	errs := common.NewErrors(ast.Source())
	iss := cel.NewIssuesWithSourceInfo(errs, ast.NativeRep().SourceInfo())
	celast.PreOrderVisit(ast.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.SelectKind {
			return
		}
		sel := e.AsSelect()
		op := sel.Operand()
		if op.Kind() == celast.IdentKind && op.AsIdent() == variablesVar && !vars[sel.FieldName()] {
			iss.ReportErrorAtID(e.ID(), "undefined field '%s'", sel.FieldName())
		}
	}))
	return iss
}

// compiledPolicy is one version of a policy, compiled: its selectors
// parsed and every expression compiled. It is immutable once built and
// safe for concurrent use.
type compiledPolicy struct {
	name            string
	uid             types.UID
	resourceVersion string

	failOpen bool // failurePolicy Ignore
	match    *matchSpec
	// matchErr is a configuration error found before matching (no
	// matchConstraints, a nil selector): every request gets it.
	matchErr error

	paramKind *admissionregistrationv1.ParamKind
	paramGVK  *schema.GroupVersionKind
	// skip: the paramKind's apiVersion does not parse; upstream ignores
	// the policy.
	skip bool

	conditions  []namedExpression
	variables   []namedExpression
	validations []validation
	audits      []auditAnnotation
}

type namedExpression struct {
	name string
	expr *expression
}

type validation struct {
	expr    *expression
	msgExpr *expression // nil without messageExpression
	message string      // trimmed
	reason  metav1.StatusReason
}

type auditAnnotation struct {
	key  string
	expr *expression
}

// compilePolicy compiles p. It never fails: an expression that does not
// compile is kept with its error, which is an evaluation error.
func compilePolicy(p *admissionregistrationv1.ValidatingAdmissionPolicy) *compiledPolicy {
	c := &compiledPolicy{name: p.Name, uid: p.UID, resourceVersion: p.ResourceVersion}
	spec := &p.Spec
	c.failOpen = spec.FailurePolicy != nil && *spec.FailurePolicy == admissionregistrationv1.Ignore
	if spec.MatchConstraints == nil {
		c.matchErr = errors.New("policy contained no match constraints, a required field")
	} else {
		c.match, c.matchErr = newMatchSpec(spec.MatchConstraints)
	}
	if pk := spec.ParamKind; pk != nil {
		c.paramKind = pk
		if gvk, ok := policyParamGVK(p); ok {
			c.paramGVK = &gvk
		} else {
			c.skip = true
		}
	}
	withParams := spec.ParamKind != nil
	for _, mc := range spec.MatchConditions {
		c.conditions = append(c.conditions, namedExpression{mc.Name, compileExpression(mc.Expression, envKind{withParams, false}, returnsBool, nil)})
	}
	names := make(map[string]bool, len(spec.Variables))
	for _, v := range spec.Variables {
		c.variables = append(c.variables, namedExpression{v.Name, compileExpression(v.Expression, envKind{withParams, true}, returnsAny, names)})
		names[v.Name] = true
	}
	k := envKind{withParams, true}
	for _, v := range spec.Validations {
		val := validation{
			expr:    compileExpression(v.Expression, k, returnsBool, names),
			message: strings.TrimSpace(v.Message),
			reason:  metav1.StatusReasonInvalid,
		}
		if v.Reason != nil && *v.Reason != "" {
			val.reason = *v.Reason
		}
		if strings.TrimSpace(v.MessageExpression) != "" {
			val.msgExpr = compileExpression(v.MessageExpression, k, returnsString, names)
		}
		c.validations = append(c.validations, val)
	}
	for _, a := range spec.AuditAnnotations {
		c.audits = append(c.audits, auditAnnotation{a.Key, compileExpression(strings.TrimSpace(a.ValueExpression), k, returnsStringOrNull, names)})
	}
	return c
}

// matchSpec is a parsed MatchResources. Immutable.
type matchSpec struct {
	rules, exclude []admissionregistrationv1.NamedRuleWithOperations
	nsSelector     labels.Selector
	objSelector    labels.Selector
	selectorErr    error // a selector that does not parse (an error when the rules match)
}

// newMatchSpec parses m; err is upstream's configuration error for a nil
// selector (the defaults set both).
func newMatchSpec(m *admissionregistrationv1.MatchResources) (*matchSpec, error) {
	if m.NamespaceSelector == nil {
		return nil, errors.New("a nil namespace selector was passed, please ensure selectors are initialized properly")
	}
	if m.ObjectSelector == nil {
		return nil, errors.New("a nil object selector was passed, please ensure selectors are initialized properly")
	}
	s := &matchSpec{rules: m.ResourceRules, exclude: m.ExcludeResourceRules}
	var err error
	if s.nsSelector, err = metav1.LabelSelectorAsSelector(m.NamespaceSelector); err != nil {
		s.nsSelector, s.selectorErr = labels.Nothing(), fmt.Errorf("parsing namespaceSelector: %w", err)
	}
	if s.objSelector, err = metav1.LabelSelectorAsSelector(m.ObjectSelector); err != nil {
		s.objSelector = labels.Nothing()
		if s.selectorErr == nil {
			s.selectorErr = fmt.Errorf("parsing objectSelector: %w", err)
		}
	}
	return s, nil
}

// ValidatePolicyExpressions compiles every CEL expression of p in its
// environment (params declared when p has a paramKind; variables for all
// but matchConditions, each variable seeing only the ones before it) and
// returns a field.Invalid for each that does not compile, with upstream's
// detail ("compilation failed: ERROR: <input>:1:..."; "must evaluate to
// bool but got int"), at spec.matchConditions[i].expression,
// spec.variables[i].expression, spec.validations[i].expression and
// .messageExpression, spec.auditAnnotations[i].valueExpression.
// Empty expressions are skipped: requiring them is the caller's check.
// An expression that uses authorizer is reported: skiff does not declare
// it. With ignoreMatchConditions the matchConditions are not reported (an
// update that leaves them as stored). Safe for concurrent use; p is not
// changed.
func ValidatePolicyExpressions(p *admissionregistrationv1.ValidatingAdmissionPolicy, ignoreMatchConditions bool) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	c := compilePolicy(p)
	report := func(path *field.Path, src string, e *expression) {
		if e == nil || e.err == nil || strings.TrimSpace(src) == "" {
			return
		}
		if e.internal {
			errs = append(errs, field.InternalError(path, e.err))
			return
		}
		errs = append(errs, field.Invalid(path, src, e.err.Error()))
	}
	if !ignoreMatchConditions {
		for i, mc := range p.Spec.MatchConditions {
			report(spec.Child("matchConditions").Index(i).Child("expression"), mc.Expression, c.conditions[i].expr)
		}
	}
	for i, v := range p.Spec.Variables {
		report(spec.Child("variables").Index(i).Child("expression"), v.Expression, c.variables[i].expr)
	}
	for i, v := range p.Spec.Validations {
		report(spec.Child("validations").Index(i).Child("expression"), v.Expression, c.validations[i].expr)
		report(spec.Child("validations").Index(i).Child("messageExpression"), v.MessageExpression, c.validations[i].msgExpr)
	}
	for i, a := range p.Spec.AuditAnnotations {
		report(spec.Child("auditAnnotations").Index(i).Child("valueExpression"), a.ValueExpression, c.audits[i].expr)
	}
	return errs
}
