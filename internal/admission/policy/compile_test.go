package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidatePolicyExpressions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		policy *admissionregistrationv1.ValidatingAdmissionPolicy
		want   field.ErrorList
	}{
		{
			name:   "all compile",
			policy: withConditions(withVariables(vap("p", "variables.oddReplicas", "request.operation == 'CREATE'", "namespaceObject == null")), "object != null"),
		},
		{
			name:   "syntax error",
			policy: vap("p", "true", "1 +"),
			want: field.ErrorList{field.Invalid(field.NewPath("spec", "validations").Index(1).Child("expression"), "1 +",
				"compilation failed: ERROR: <input>:1:4: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | 1 +\n | ...^")},
		},
		{
			name:   "wrong type",
			policy: vap("p", "1"),
			want:   field.ErrorList{field.Invalid(field.NewPath("spec", "validations").Index(0).Child("expression"), "1", "must evaluate to bool but got int")},
		},
		{
			name:   "params without paramKind",
			policy: vap("p", "params.x == 1"),
			want: field.ErrorList{field.Invalid(field.NewPath("spec", "validations").Index(0).Child("expression"), "params.x == 1",
				"compilation failed: ERROR: <input>:1:1: undeclared reference to 'params' (in container '')\n | params.x == 1\n | ^")},
		},
		{
			name:   "params with paramKind",
			policy: withPolicy(vap("p", "params.x == 1"), cmParamKind),
		},
		{
			name:   "undefined variable",
			policy: withVariables(vap("p", "variables.nosuch")),
			want: field.ErrorList{field.Invalid(field.NewPath("spec", "validations").Index(0).Child("expression"), "variables.nosuch",
				"compilation failed: ERROR: <input>:1:10: undefined field 'nosuch'\n | variables.nosuch\n | .........^")},
		},
		{
			name: "a variable sees only the ones before it",
			policy: withPolicy(vap("p", "true"), func(s *spec) {
				s.Variables = []admissionregistrationv1.Variable{{Name: "a", Expression: "variables.b"}, {Name: "b", Expression: "1"}}
			}),
			want: field.ErrorList{field.Invalid(field.NewPath("spec", "variables").Index(0).Child("expression"), "variables.b",
				"compilation failed: ERROR: <input>:1:10: undefined field 'b'\n | variables.b\n | .........^")},
		},
		{
			name: "matchConditions, messageExpression, auditAnnotations",
			policy: withPolicy(withConditions(vap("p"), "'x'"), func(s *spec) {
				s.Validations = []admissionregistrationv1.Validation{{Expression: "true", MessageExpression: "1"}}
				s.AuditAnnotations = []admissionregistrationv1.AuditAnnotation{{Key: "k", ValueExpression: "1"}, {Key: "ok", ValueExpression: "null"}}
			}),
			want: field.ErrorList{
				field.Invalid(field.NewPath("spec", "matchConditions").Index(0).Child("expression"), "'x'", "must evaluate to bool but got string"),
				field.Invalid(field.NewPath("spec", "validations").Index(0).Child("messageExpression"), "1", "must evaluate to string but got int"),
				field.Invalid(field.NewPath("spec", "auditAnnotations").Index(0).Child("valueExpression"), "1", "must evaluate to one of [string null_type] but got int"),
			},
		},
		{
			name:   "authorizer",
			policy: vap("p", "authorizer.serviceAccount('ns', 'sa').group('').resource('pods').check('get').allowed()"),
			want: field.ErrorList{field.Invalid(field.NewPath("spec", "validations").Index(0).Child("expression"),
				"authorizer.serviceAccount('ns', 'sa').group('').resource('pods').check('get').allowed()",
				"compilation failed: authorizer is not supported: skiff does not evaluate authorization checks in CEL")},
		},
		{
			name:   "empty expressions are the caller's",
			policy: withConditions(vap("p", " "), ""),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ValidatePolicyExpressions(tc.policy, false)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
