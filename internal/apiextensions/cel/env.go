package cel

import (
	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/ext"
)

// Library returns, as one environment option, what the environment of CRD
// rules offers apart from its variables: standard CEL with the same
// options, extensions and Kubernetes library functions (see the package
// documentation), and program options that make every program of the
// environment track its cost, stop at PerCallLimit (charging the
// library's list and regex functions by the size of their input) and
// check for interruption (ctx of ContextEval) every checkFrequency
// comprehension steps.
//
// It is for other users of CEL in skiff that want these functions with
// their own variables, e.g. admission webhooks' matchConditions:
//
//	env, err := cel.NewEnv(skiffcel.Library(), cel.Variable("object", cel.DynType))
//
// The option holds no state; building an environment is costly, so callers
// build theirs once and share it (a *cel.Env is safe for concurrent use).
func Library() cel.EnvOption {
	return cel.Lib(envLib{})
}

// envLib is Library's cel.Library.
type envLib struct{}

func (envLib) CompileOptions() []cel.EnvOption { return compileOptions() }

// compileOptions are the options of every environment: rules' and
// Library's.
func compileOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		cel.ASTValidators(
			cel.ValidateDurationLiterals(),
			cel.ValidateTimestampLiterals(),
			cel.ValidateRegexLiterals(),
			cel.ValidateHomogeneousAggregateLiterals(),
		),
		ext.Strings(ext.StringsVersion(2)),
		ext.Sets(),
		ext.TwoVarComprehensions(),
		ext.Lists(ext.ListsVersion(3)),
		kubernetesLibrary(),
	}
}

func (envLib) ProgramOptions() []cel.ProgramOption { return programOptions() }

// RefersTo reports whether the expression of ast (parsed or checked)
// refers to the variable name, e.g. whether an admission expression uses
// authorizer.
func RefersTo(ast *cel.Ast, name string) bool {
	found := false
	celast.PreOrderVisit(ast.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if !found && e.Kind() == celast.IdentKind && e.AsIdent() == name {
			found = true
		}
	}))
	return found
}
