package cel

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/skiff-dev/skiff/internal/apiextensions/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	// PerCallLimit is the cost limit of one evaluation of one rule (or
	// messageExpression), upstream's celconfig.PerCallLimit.
	PerCallLimit = 1_000_000
	// RuntimeCostBudget is the cost budget of all rules of one custom
	// resource, upstream's celconfig.RuntimeCELCostBudget.
	RuntimeCostBudget = 10_000_000
	// MatchConditionsCostBudget is the cost budget of all matchConditions
	// of one admission webhook or policy, upstream's
	// RuntimeCELCostBudgetMatchConditions.
	MatchConditionsCostBudget = 2_500_000
	// MaxMessageLen bounds an evaluated messageExpression, upstream's
	// MaxEvaluatedMessageExpressionSizeBytes.
	MaxMessageLen = 5 * 1024
	// checkFrequency is how many comprehension steps pass between checks
	// of the cost limit.
	checkFrequency = 100

	selfVar    = "self"
	oldSelfVar = "oldSelf"
)

// Validator holds the compiled rules of one CRD version's schema. It is
// built once by Compile, is immutable, and is safe for concurrent use. A nil
// *Validator, or one of a schema without rules, accepts everything.
type Validator struct {
	// root is the schema tree; nil without a schema.
	root *node
	// skipped describes the rules that are never enforced (see Skipped).
	skipped []string
}

// node is one schema of the tree, with what converting values and
// evaluating rules need of it.
type node struct {
	typ, format string
	nullable    bool
	intOrString bool
	embedded    bool // x-kubernetes-embedded-resource
	// props are the properties; celNames their escaped CEL names where
	// those differ from the property name ("" when unescapable).
	props    map[string]*node
	celNames map[string]string
	addl     *node // additionalProperties
	items    *node
	listType string
	mapKeys  []string

	rules []*rule
	// hasRules: some rule is at this node or below it.
	hasRules bool
	// converts: toCEL changes values of this node or below it (numbers,
	// formatted strings, set and map lists, escaped property names,
	// embedded resources).
	converts bool
}

// rule is one compiled x-kubernetes-validations rule.
type rule struct {
	src         apiextensionsv1.ValidationRule
	prog        cel.Program
	msgProg     cel.Program // nil without (or with a skipped) messageExpression
	usesOldSelf bool
	optional    bool // optionalOldSelf: oldSelf is an optional, and the rule also runs on create
	// fieldPath is the normalized fieldPath ("spec.foo", "foo[bar]"), or "".
	fieldPath string
}

// baseEnv is the environment of every rule. It is immutable once built.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(append([]cel.EnvOption{
		cel.Variable(selfVar, cel.DynType),
		cel.Variable(oldSelfVar, cel.DynType),
	}, compileOptions()...)...)
})

// Compile compiles every x-kubernetes-validations rule of a version's
// openAPIV3Schema s (nil: no schema) once. Rules that do not compile are
// returned as field errors at their schema path, relative to the schema
// ("properties[spec].x-kubernetes-validations[0].rule"), with upstream's
// messages ("compilation failed: ..."); they are not enforced. Rules that
// call functions this package lacks are skipped (see Skipped). The Validator
// keeps nothing of s.
func Compile(s *apiextensionsv1.JSONSchemaProps) (*Validator, field.ErrorList) {
	return CompileAt(nil, s)
}

// CompileAt is Compile with the errors' paths under fldPath, the path of s
// ("spec.versions[0].schema.openAPIV3Schema").
func CompileAt(fldPath *field.Path, s *apiextensionsv1.JSONSchemaProps) (*Validator, field.ErrorList) {
	v := &Validator{}
	if s == nil {
		return v, nil
	}
	env, err := baseEnv()
	if err != nil {
		return v, field.ErrorList{field.InternalError(fldPath, fmt.Errorf("building CEL environment: %w", err))}
	}
	c := compiler{env: env}
	v.root = c.build(fldPath, s, nil)
	v.skipped = c.skipped
	return v, c.errs
}

// Skipped returns the rules that are never enforced because they call a
// function this package does not provide, one line each naming the rule's
// schema path and the function ("properties[spec].x-kubernetes-validations[0].rule:
// unsupported function \"ip\" in rule ..."), for the server's warnings.
func (v *Validator) Skipped() []string {
	if v == nil {
		return nil
	}
	return append([]string(nil), v.skipped...)
}

type compiler struct {
	env     *cel.Env
	errs    field.ErrorList
	skipped []string
}

// build returns the node of s at fldPath, compiling its rules.
// uncorrelatable is the path of the highest list above s whose items are
// not correlated on update (not a list-type map list), or nil: rules there
// may not use oldSelf.
func (c *compiler) build(fldPath *field.Path, s *apiextensionsv1.JSONSchemaProps, uncorrelatable *field.Path) *node {
	n := &node{
		typ:         s.Type,
		format:      s.Format,
		nullable:    s.Nullable,
		intOrString: s.XIntOrString,
		embedded:    s.XEmbeddedResource,
	}
	if s.XListType != nil {
		n.listType = *s.XListType
	}
	n.mapKeys = s.XListMapKeys
	if len(s.Properties) > 0 {
		n.props = make(map[string]*node, len(s.Properties))
		keys := make([]string, 0, len(s.Properties))
		for k := range s.Properties {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := s.Properties[k]
			child := c.build(fldPath.Child("properties").Key(k), &p, uncorrelatable)
			n.props[k] = child
			n.hasRules = n.hasRules || child.hasRules
			if e, ok := escape(k); !ok || e != k {
				if n.celNames == nil {
					n.celNames = map[string]string{}
				}
				n.celNames[k] = e
			}
		}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		n.addl = c.build(fldPath.Child("additionalProperties"), s.AdditionalProperties.Schema, uncorrelatable)
		n.hasRules = n.hasRules || n.addl.hasRules
	}
	if s.Items != nil && s.Items.Schema != nil {
		itemsUncorrelatable := uncorrelatable
		if itemsUncorrelatable == nil && n.listType != "map" {
			itemsUncorrelatable = fldPath
		}
		n.items = c.build(fldPath.Child("items"), s.Items.Schema, itemsUncorrelatable)
		n.hasRules = n.hasRules || n.items.hasRules
	}
	for i, r := range s.XValidations {
		if cr := c.compileRule(fldPath.Child("x-kubernetes-validations").Index(i), r, s, uncorrelatable); cr != nil {
			n.rules = append(n.rules, cr)
		}
	}
	n.hasRules = n.hasRules || len(n.rules) > 0
	n.converts = n.typ == "number" || n.embedded || len(n.celNames) > 0 || n.listType == "set" || n.listType == "map" ||
		(n.typ == "string" && (n.format == "duration" || n.format == "date" || n.format == "date-time" || n.format == "byte")) ||
		(n.addl != nil && n.addl.converts) || (n.items != nil && n.items.converts)
	for _, p := range n.props {
		n.converts = n.converts || p.converts
	}
	return n
}

// compileRule compiles r, recording its errors or its skipping; nil means
// the rule is not enforced.
func (c *compiler) compileRule(fldPath *field.Path, r apiextensionsv1.ValidationRule, s *apiextensionsv1.JSONSchemaProps, uncorrelatable *field.Path) *rule {
	if strings.TrimSpace(r.Rule) == "" {
		return nil // ValidateCRDSchema reports it
	}
	rulePath := fldPath.Child("rule")
	ast, iss := c.env.Compile(r.Rule)
	if iss.Err() != nil {
		if fn := c.unknownFunction(r.Rule); fn != "" {
			c.skipped = append(c.skipped, fmt.Sprintf("%s: unsupported function %q in rule %q, not enforced", rulePath, fn, r.Rule))
			return nil
		}
		c.errs = append(c.errs, field.Invalid(rulePath, r, "compilation failed: "+iss.String()))
		return nil
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		c.errs = append(c.errs, field.Invalid(rulePath, r, "cel expression must evaluate to a bool"))
		return nil
	}
	prog, err := c.env.Program(ast, programOptions()...)
	if err != nil {
		c.errs = append(c.errs, field.Invalid(rulePath, r, "program instantiation failed: "+err.Error()))
		return nil
	}
	cr := &rule{
		src:         r,
		prog:        prog,
		usesOldSelf: RefersTo(ast, oldSelfVar),
		optional:    r.OptionalOldSelf != nil && *r.OptionalOldSelf,
	}
	switch {
	case cr.usesOldSelf && uncorrelatable != nil:
		c.errs = append(c.errs, field.Invalid(rulePath, r.Rule, fmt.Sprintf("oldSelf cannot be used on the uncorrelatable portion of the schema within %v", uncorrelatable)))
		return nil
	case !cr.usesOldSelf && r.OptionalOldSelf != nil:
		c.errs = append(c.errs, field.Invalid(fldPath.Child("optionalOldSelf"), *r.OptionalOldSelf, "may not be set if oldSelf is not used in rule"))
		return nil
	}
	if r.MessageExpression != "" {
		msgPath := fldPath.Child("messageExpression")
		ast, iss := c.env.Compile(r.MessageExpression)
		switch {
		case iss.Err() != nil:
			if fn := c.unknownFunction(r.MessageExpression); fn != "" {
				c.skipped = append(c.skipped, fmt.Sprintf("%s: unsupported function %q in messageExpression %q, message used instead", msgPath, fn, r.MessageExpression))
				break
			}
			c.errs = append(c.errs, field.Invalid(msgPath, r, "messageExpression compilation failed: "+iss.String()))
		case !ast.OutputType().IsExactType(cel.StringType) && !ast.OutputType().IsExactType(cel.DynType):
			c.errs = append(c.errs, field.Invalid(msgPath, r, "messageExpression must evaluate to a string"))
		default:
			p, err := c.env.Program(ast, programOptions()...)
			if err != nil {
				c.errs = append(c.errs, field.Invalid(msgPath, r, "messageExpression instantiation failed: "+err.Error()))
				break
			}
			cr.msgProg = p
		}
	}
	if r.FieldPath != "" {
		if p, ok := schema.FieldPath(r.FieldPath, s); ok {
			cr.fieldPath = p.String()
		}
	}
	return cr
}

func programOptions() []cel.ProgramOption {
	return []cel.ProgramOption{
		cel.EvalOptions(cel.OptOptimize, cel.OptTrackCost),
		cel.CostLimit(PerCallLimit),
		cel.CostTracking(costEstimator{}),
		cel.InterruptCheckFrequency(checkFrequency),
	}
}

// unknownFunction returns the name of a function that expr calls and the
// environment does not declare, or "" if it parses with none (or does not
// parse: a syntax error is the rule's own).
func (c *compiler) unknownFunction(expr string) string {
	ast, iss := c.env.Parse(expr)
	if iss.Err() != nil {
		return ""
	}
	var unknown string
	// Post-order: an inner unknown call (semver(x) in semver(x).major())
	// is the one to name.
	celast.PostOrderVisit(ast.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if unknown != "" || e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		name := call.FunctionName()
		if c.env.HasFunction(name) {
			return
		}
		if call.IsMemberFunction() {
			q := qualifiedName(call.Target())
			if q != "" && c.env.HasFunction(q+"."+name) {
				return // a namespaced function: format.named(...)
			}
			if t := call.Target(); t.Kind() == celast.IdentKind && q != selfVar && q != oldSelfVar {
				name = q + "." + name // likely a namespace: semver.parse(...)
			}
		}
		unknown = name
	}))
	return unknown
}

// qualifiedName returns the dotted name of an identifier or a selection of
// one ("a.b"), else "".
func qualifiedName(e celast.Expr) string {
	switch e.Kind() {
	case celast.IdentKind:
		return e.AsIdent()
	case celast.SelectKind:
		s := e.AsSelect()
		if s.IsTestOnly() {
			return ""
		}
		if q := qualifiedName(s.Operand()); q != "" {
			return q + "." + s.FieldName()
		}
	}
	return ""
}
