package policy

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/admission"
)

type spec = admissionregistrationv1.ValidatingAdmissionPolicySpec
type bspec = admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec

const (
	deny  = admissionregistrationv1.Deny
	warn  = admissionregistrationv1.Warn
	audit = admissionregistrationv1.Audit
)

func web(replicas int32) *appsv1.Deployment {
	return deployment("web", "ns", replicas, map[string]string{"app": "web"})
}

func cmParamKind(s *spec) {
	s.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"}
}

func paramByName(name string, action admissionregistrationv1.ParameterNotFoundActionType) func(*bspec) {
	return func(b *bspec) {
		b.ParamRef = &admissionregistrationv1.ParamRef{Name: name, ParameterNotFoundAction: ptr.To(action)}
	}
}

func ignore(s *spec) { s.FailurePolicy = ptr.To(admissionregistrationv1.Ignore) }

func TestValidate(t *testing.T) {
	t.Parallel()
	const replicasDenied = `deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'replicas' with binding 'replicas-b' denied request: `
	maxReplicas := configMap("ns", "limits", map[string]string{"tier": "a"}, map[string]any{"maxReplicas": "3"})
	otherLimits := configMap("ns", "other", map[string]string{"tier": "a"}, map[string]any{"maxReplicas": "8"})
	cmKinds := map[schema.GroupVersionKind]bool{configMapGVK: true}
	cases := []struct {
		name            string
		f               fixture
		req             *admission.Request
		wantCode        int32 // 0: admitted
		wantReason      metav1.StatusReason
		wantMsg         string
		wantWarnings    []string
		wantAnnotations map[string]string
	}{
		{
			name: "no binding, no evaluation",
			f:    fixture{policies: []*admissionregistrationv1.ValidatingAdmissionPolicy{vap("replicas", "false")}},
			req:  createReq(web(10)),
		},
		{
			name:       "deny on create (conformance: Deployment replicas)",
			f:          fixture{policies: pols(vap("replicas", "object.spec.replicas <= 5")), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(10)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed expression: object.spec.replicas <= 5",
		},
		{
			name: "admit on create",
			f:    fixture{policies: pols(vap("replicas", "object.spec.replicas <= 5")), bindings: binds(vapb("replicas-b", "replicas"))},
			req:  createReq(web(3)),
		},
		{
			name:       "deny on update with oldObject",
			f:          fixture{policies: pols(vap("replicas", "object.spec.replicas >= oldObject.spec.replicas")), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        updateReq(web(2), web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed expression: object.spec.replicas >= oldObject.spec.replicas",
		},
		{
			name: "deny on delete: object null, oldObject the object",
			f: fixture{policies: pols(withPolicy(vap("replicas", "object == null && oldObject.metadata.name != 'web'"), func(s *spec) {
				s.MatchConstraints.ResourceRules[0].Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.Delete}
			})), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        deleteReq(web(1)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed expression: object == null && oldObject.metadata.name != 'web'",
		},
		{
			name: "delete not matched by a CREATE/UPDATE policy",
			f:    fixture{policies: pols(vap("replicas", "false")), bindings: binds(vapb("replicas-b", "replicas"))},
			req:  deleteReq(web(1)),
		},
		{
			name:         "warn",
			f:            fixture{policies: pols(vap("replicas", "object.spec.replicas <= 5")), bindings: binds(vapb("replicas-b", "replicas", warn))},
			req:          createReq(web(10)),
			wantWarnings: []string{"Validation failed for ValidatingAdmissionPolicy 'replicas' with binding 'replicas-b': failed expression: object.spec.replicas <= 5"},
		},
		{
			name: "audit",
			f:    fixture{policies: pols(vap("replicas", "true", "object.spec.replicas <= 5")), bindings: binds(vapb("replicas-b", "replicas", audit))},
			req:  createReq(web(10)),
			wantAnnotations: map[string]string{validationFailureKey: `[{"message":"failed expression: object.spec.replicas \u003c= 5",` +
				`"policy":"replicas","binding":"replicas-b","expressionIndex":1,"validationActions":["Audit"]}]`},
		},
		{
			name: "deny and audit",
			f:    fixture{policies: pols(vap("replicas", "object.spec.replicas <= 5")), bindings: binds(vapb("replicas-b", "replicas", deny, audit))},
			req:  createReq(web(10)),
			wantAnnotations: map[string]string{validationFailureKey: `[{"message":"failed expression: object.spec.replicas \u003c= 5",` +
				`"policy":"replicas","binding":"replicas-b","expressionIndex":0,"validationActions":["Deny","Audit"]}]`},
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed expression: object.spec.replicas <= 5",
		},
		{
			name: "message and messageExpression",
			f: fixture{policies: pols(withPolicy(vap("replicas"), func(s *spec) {
				s.Validations = []admissionregistrationv1.Validation{{
					Expression: "object.spec.replicas <= 5", Message: "too many",
					MessageExpression: "'wants at most 5 replicas, got ' + string(object.spec.replicas)",
				}}
			})), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(10)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "wants at most 5 replicas, got 10",
		},
		{
			name: "messageExpression failing falls back to message",
			f: fixture{policies: pols(withPolicy(vap("replicas"), func(s *spec) {
				s.Validations = []admissionregistrationv1.Validation{{
					Expression: "object.spec.replicas <= 5", Message: " too many ", MessageExpression: "object.nosuch",
				}}
			})), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(10)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "too many",
		},
		{
			name:       "reason Forbidden",
			f:          fixture{policies: pols(withReason(vap("replicas", "false"), metav1.StatusReasonForbidden)), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(1)),
			wantCode:   403,
			wantReason: metav1.StatusReasonForbidden,
			wantMsg:    replicasDenied + "failed expression: false",
		},
		{
			name:       "reason Unauthorized",
			f:          fixture{policies: pols(withReason(vap("replicas", "false"), metav1.StatusReasonUnauthorized)), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(1)),
			wantCode:   401,
			wantReason: metav1.StatusReasonUnauthorized,
			wantMsg:    replicasDenied + "failed expression: false",
		},
		{
			name:       "reason RequestEntityTooLarge",
			f:          fixture{policies: pols(withReason(vap("replicas", "false"), metav1.StatusReasonRequestEntityTooLarge)), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(1)),
			wantCode:   413,
			wantReason: metav1.StatusReasonRequestEntityTooLarge,
			wantMsg:    replicasDenied + "failed expression: false",
		},
		{
			name:       "variables (conformance), even replicas denied",
			f:          fixture{policies: pols(withVariables(vap("replicas", "variables.replicas > 1", "variables.oddReplicas"))), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed expression: variables.oddReplicas",
		},
		{
			name: "variables (conformance), odd replicas admitted",
			f:    fixture{policies: pols(withVariables(vap("replicas", "variables.replicas > 1", "variables.oddReplicas"))), bindings: binds(vapb("replicas-b", "replicas"))},
			req:  createReq(web(3)),
		},
		{
			name: "variable failing to evaluate",
			f: fixture{policies: pols(withPolicy(vap("replicas", "variables.bad > 1"), func(s *spec) {
				s.Variables = []admissionregistrationv1.Variable{{Name: "bad", Expression: "object.spec.nosuch"}}
			})), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(3)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + `expression 'variables.bad > 1' resulted in error: composited variable "bad" fails to evaluate: no such key: nosuch`,
		},
		{
			name: "matchCondition false skips the policy",
			f: fixture{policies: pols(withConditions(vap("replicas", "false"), "request.namespace == 'other'")),
				bindings: binds(vapb("replicas-b", "replicas"))},
			req: createReq(web(3)),
		},
		{
			name: "matchConditions true evaluate the policy",
			f: fixture{policies: pols(withConditions(vap("replicas", "false"), "request.namespace == 'ns'", "object.metadata.name == 'web'")),
				bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(3)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed expression: false",
		},
		{
			name: "matchCondition error, failurePolicy Fail",
			f: fixture{policies: pols(withConditions(vap("replicas", "true"), "object.nosuch == 1")),
				bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(3)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "expression 'object.nosuch == 1' resulted in error: no such key: nosuch",
		},
		{
			name: "matchCondition error, failurePolicy Ignore",
			f: fixture{policies: pols(withPolicy(withConditions(vap("replicas", "false"), "object.nosuch == 1"), ignore)),
				bindings: binds(vapb("replicas-b", "replicas"))},
			req: createReq(web(3)),
		},
		{
			name: "params by name",
			f: fixture{policies: pols(withPolicy(vap("replicas", "object.spec.replicas <= int(params.data.maxReplicas)"), cmParamKind)),
				bindings: binds(withBinding(vapb("replicas-b", "replicas"), paramByName("limits", admissionregistrationv1.DenyAction))),
				params:   &fakeParams{objs: unstructuredList(maxReplicas), namespaced: cmKinds}},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed expression: object.spec.replicas <= int(params.data.maxReplicas)",
		},
		{
			name: "params by name in another namespace",
			f: fixture{policies: pols(withPolicy(vap("replicas", "object.spec.replicas <= int(params.data.maxReplicas)"), cmParamKind)),
				bindings: binds(withBinding(vapb("replicas-b", "replicas"), func(b *bspec) {
					paramByName("limits", admissionregistrationv1.DenyAction)(b)
					b.ParamRef.Namespace = "elsewhere"
				})),
				params: &fakeParams{objs: unstructuredList(configMap("elsewhere", "limits", nil, map[string]any{"maxReplicas": "9"})), namespaced: cmKinds}},
			req: createReq(web(4)),
		},
		{
			name: "params by selector: evaluated once per param",
			f: fixture{policies: pols(withPolicy(withMessage(vap("replicas", "object.spec.replicas <= int(params.data.maxReplicas)"),
				"'limit ' + params.metadata.name"), cmParamKind)),
				bindings: binds(withBinding(vapb("replicas-b", "replicas", warn), func(b *bspec) {
					b.ParamRef = &admissionregistrationv1.ParamRef{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "a"}},
						ParameterNotFoundAction: ptr.To(admissionregistrationv1.DenyAction)}
				})),
				params: &fakeParams{objs: unstructuredList(maxReplicas, otherLimits), namespaced: cmKinds}},
			req:          createReq(web(4)),
			wantWarnings: []string{"Validation failed for ValidatingAdmissionPolicy 'replicas' with binding 'replicas-b': limit limits"},
		},
		{
			name: "param not found, Allow",
			f: fixture{policies: pols(withPolicy(vap("replicas", "false"), cmParamKind)),
				bindings: binds(withBinding(vapb("replicas-b", "replicas"), paramByName("none", admissionregistrationv1.AllowAction))),
				params:   &fakeParams{namespaced: cmKinds}},
			req: createReq(web(4)),
		},
		{
			name: "param not found, Deny",
			f: fixture{policies: pols(withPolicy(vap("replicas", "true"), cmParamKind)),
				bindings: binds(withBinding(vapb("replicas-b", "replicas"), paramByName("none", admissionregistrationv1.DenyAction))),
				params:   &fakeParams{namespaced: cmKinds}},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction",
		},
		{
			name: "param source error, failurePolicy Fail",
			f: fixture{policies: pols(withPolicy(vap("replicas", "true"), cmParamKind)),
				bindings: binds(withBinding(vapb("replicas-b", "replicas"), paramByName("limits", admissionregistrationv1.AllowAction))),
				params:   &fakeParams{namespaced: cmKinds, err: errors.New("boom")}},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed to configure binding: boom",
		},
		{
			name: "param source error, failurePolicy Ignore",
			f: fixture{policies: pols(withPolicy(withPolicy(vap("replicas", "false"), cmParamKind), ignore)),
				bindings: binds(withBinding(vapb("replicas-b", "replicas"), paramByName("limits", admissionregistrationv1.AllowAction))),
				params:   &fakeParams{namespaced: cmKinds, err: errors.New("boom")}},
			req: createReq(web(4)),
		},
		{
			name: "paramKind not served",
			f: fixture{policies: pols(withPolicy(vap("replicas", "true"), cmParamKind)),
				bindings: binds(withBinding(vapb("replicas-b", "replicas"), paramByName("limits", admissionregistrationv1.AllowAction))),
				params:   &fakeParams{}},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    `deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'replicas' denied request: failed to configure policy: failed to find resource referenced by paramKind: '/v1, Kind=ConfigMap'`,
		},
		{
			name: "no ParamSource",
			f: fixture{policies: pols(withPolicy(vap("replicas", "true"), cmParamKind)),
				bindings: binds(withBinding(vapb("replicas-b", "replicas"), paramByName("limits", admissionregistrationv1.AllowAction)))},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed to configure binding: paramKind kind `&ParamKind{APIVersion:v1,Kind:ConfigMap,}` not known",
		},
		{
			name: "paramKind without paramRef: params null",
			f: fixture{policies: pols(withPolicy(vap("replicas", "params == null"), cmParamKind)),
				bindings: binds(vapb("replicas-b", "replicas"))},
			req: createReq(web(4)),
		},
		{
			name: "namespaceObject",
			f: fixture{policies: pols(vap("replicas", "namespaceObject.metadata.labels.env == 'prod'", "namespaceObject.status.phase == 'Active'")),
				bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(deployment("web", "dev", 1, nil)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed expression: namespaceObject.metadata.labels.env == 'prod'",
		},
		{
			name: "excludeResourceRules",
			f: fixture{policies: pols(withPolicy(vap("replicas", "false"), func(s *spec) {
				ex := s.MatchConstraints.ResourceRules[0]
				ex.ResourceNames = []string{"web"}
				s.MatchConstraints.ExcludeResourceRules = []admissionregistrationv1.NamedRuleWithOperations{ex}
			})), bindings: binds(vapb("replicas-b", "replicas"))},
			req: createReq(web(4)),
		},
		{
			name: "objectSelector not matching",
			f: fixture{policies: pols(withPolicy(vap("replicas", "false"), func(s *spec) {
				s.MatchConstraints.ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
			})), bindings: binds(vapb("replicas-b", "replicas"))},
			req: createReq(web(4)),
		},
		{
			name: "objectSelector matching",
			f: fixture{policies: pols(withPolicy(vap("replicas", "false"), func(s *spec) {
				s.MatchConstraints.ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
			})), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed expression: false",
		},
		{
			name: "namespaceSelector not matching",
			f: fixture{policies: pols(withPolicy(vap("replicas", "false"), func(s *spec) {
				s.MatchConstraints.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}
			})), bindings: binds(vapb("replicas-b", "replicas"))},
			req: createReq(web(4)),
		},
		{
			name: "binding matchResources restrict",
			f: fixture{policies: pols(vap("replicas", "false")), bindings: binds(withBinding(vapb("replicas-b", "replicas"), func(b *bspec) {
				b.MatchResources = &admissionregistrationv1.MatchResources{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}},
					ObjectSelector:    &metav1.LabelSelector{},
				}
			}))},
			req: createReq(web(4)),
		},
		{
			name: "binding matchResources match",
			f: fixture{policies: pols(vap("replicas", "false")), bindings: binds(withBinding(vapb("replicas-b", "replicas"), func(b *bspec) {
				b.MatchResources = &admissionregistrationv1.MatchResources{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}},
					ObjectSelector:    &metav1.LabelSelector{},
				}
			}))},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed expression: false",
		},
		{
			name:       "evaluation error, failurePolicy Fail",
			f:          fixture{policies: pols(vap("replicas", "object.spec.nosuch > 1")), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "expression 'object.spec.nosuch > 1' resulted in error: no such key: nosuch",
		},
		{
			name: "evaluation error, failurePolicy Ignore",
			f:    fixture{policies: pols(withPolicy(vap("replicas", "object.spec.nosuch > 1", "true"), ignore)), bindings: binds(vapb("replicas-b", "replicas"))},
			req:  createReq(web(4)),
		},
		{
			name:       "compile error, failurePolicy Fail",
			f:          fixture{policies: pols(vap("replicas", "object.spec.replicas <")), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg: replicasDenied + "compilation error: compilation failed: ERROR: <input>:1:23: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n" +
				" | object.spec.replicas <\n | ......................^",
		},
		{
			name: "compile error, failurePolicy Ignore",
			f:    fixture{policies: pols(withPolicy(vap("replicas", "object.spec.replicas <", "false"), ignore)), bindings: binds(vapb("replicas-b", "replicas"))},
			req:  createReq(web(4)),
			// the second validation still denies
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed expression: false",
		},
		{
			name:       "authorizer is not supported",
			f:          fixture{policies: pols(vap("replicas", "authorizer.group('apps').resource('deployments').check('create').allowed()")), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "compilation error: compilation failed: authorizer is not supported: skiff does not evaluate authorization checks in CEL",
		},
		{
			name: "auditAnnotations",
			f: fixture{policies: pols(withPolicy(vap("replicas"), func(s *spec) {
				s.AuditAnnotations = []admissionregistrationv1.AuditAnnotation{
					{Key: "replicas", ValueExpression: "'replicas: ' + string(object.spec.replicas)"},
					{Key: "none", ValueExpression: "null"},
					{Key: "empty", ValueExpression: "'  '"},
				}
			})), bindings: binds(vapb("replicas-b", "replicas"), vapb("replicas-c", "replicas"))},
			req:             createReq(web(4)),
			wantAnnotations: map[string]string{"replicas/replicas": "replicas: 4"},
		},
		{
			name: "request variable",
			f: fixture{policies: pols(vap("replicas", "request.operation == 'CREATE' && request.userInfo.username == 'alice' && request.kind.kind == 'Deployment' && request.resource.resource == 'deployments' && !request.dryRun",
				"request.userInfo.username == 'bob'")), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "failed expression: request.userInfo.username == 'bob'",
		},
		{
			name: "subresource rule",
			f: fixture{policies: pols(withPolicy(vap("replicas", "false"), func(s *spec) {
				s.MatchConstraints.ResourceRules[0].Resources = []string{"deployments/scale"}
			})), bindings: binds(vapb("replicas-b", "replicas"))},
			req: createReq(web(4)),
		},
		{
			name: "the policies themselves are exempt",
			f: fixture{policies: pols(withPolicy(vap("replicas", "false"), func(s *spec) {
				s.MatchConstraints.ResourceRules[0].APIGroups = []string{"*"}
				s.MatchConstraints.ResourceRules[0].Resources = []string{"*"}
			})), bindings: binds(vapb("replicas-b", "replicas"))},
			req: &admission.Request{Operation: admission.Create, Name: "x",
				Resource: admissionregistrationv1.SchemeGroupVersion.WithResource("validatingadmissionpolicies"),
				Kind:     admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicy"),
				Object:   vap("x", "true")},
		},
		{
			name: "a Namespace has no namespaceObject but matches its own labels",
			f: fixture{policies: pols(withPolicy(vap("replicas", "namespaceObject == null && object.metadata.name != 'dev'"), func(s *spec) {
				s.MatchConstraints.ResourceRules[0].APIGroups = []string{""}
				s.MatchConstraints.ResourceRules[0].Resources = []string{"namespaces"}
				s.MatchConstraints.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "dev"}}
			})), bindings: binds(vapb("replicas-b", "replicas"))},
			req: &admission.Request{Operation: admission.Update, Name: "dev",
				Resource: schema.GroupVersionResource{Version: "v1", Resource: "namespaces"},
				Kind:     schema.GroupVersionKind{Version: "v1", Kind: "Namespace"},
				Object:   namespace("dev", map[string]string{"env": "dev"}), OldObject: namespace("dev", nil)},
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    `namespaces "dev" is forbidden: ValidatingAdmissionPolicy 'replicas' with binding 'replicas-b' denied request: failed expression: namespaceObject == null && object.metadata.name != 'dev'`,
		},
		{
			name:       "per-call cost limit",
			f:          fixture{policies: pols(vap("replicas", "lists.range(2000).all(i, lists.range(2000).all(j, i + j >= 0))")), bindings: binds(vapb("replicas-b", "replicas"))},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    replicasDenied + "expression 'lists.range(2000).all(i, lists.range(2000).all(j, i + j >= 0))' resulted in error: operation cancelled: actual cost limit exceeded",
		},
		{
			name: "binding naming no policy",
			f:    fixture{bindings: binds(vapb("replicas-b", "missing"))},
			req:  createReq(web(4)),
		},
		{
			name: "first denial wins, in policy order",
			f: fixture{policies: pols(vap("a", "false"), vap("b", "false")),
				bindings: binds(vapb("b-b", "b"), vapb("a-b", "a"))},
			req:        createReq(web(4)),
			wantCode:   422,
			wantReason: metav1.StatusReasonInvalid,
			wantMsg:    `deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'a' with binding 'a-b' denied request: failed expression: false`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPlugin(t, tc.f)
			var err error
			if tc.req.Operation == admission.Delete {
				err = p.ValidateDelete(context.Background(), tc.req)
			} else {
				err = p.Validate(context.Background(), tc.req)
			}
			checkResult(t, err, tc.wantCode, tc.wantReason, tc.wantMsg)
			if diff := cmp.Diff(tc.wantWarnings, tc.req.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantAnnotations, tc.req.AuditAnnotations); diff != "" {
				t.Errorf("audit annotations (-want +got):\n%s", diff)
			}
		})
	}
}

func checkResult(t *testing.T, err error, code int32, reason metav1.StatusReason, msg string) {
	t.Helper()
	if code == 0 {
		if err != nil {
			t.Fatalf("got %v, want admitted", err)
		}
		return
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a StatusError %d", err, code)
	}
	got := se.ErrStatus
	if got.Code != code || got.Reason != reason {
		t.Errorf("got code %d reason %q, want %d %q", got.Code, got.Reason, code, reason)
	}
	if got.Message != msg {
		t.Errorf("message:\ngot  %q\nwant %q", got.Message, msg)
	}
}

func pols(ps ...*admissionregistrationv1.ValidatingAdmissionPolicy) []*admissionregistrationv1.ValidatingAdmissionPolicy {
	return ps
}

func binds(bs ...*admissionregistrationv1.ValidatingAdmissionPolicyBinding) []*admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	return bs
}

func unstructuredList(us ...*unstructured.Unstructured) []*unstructured.Unstructured { return us }

func withReason(p *admissionregistrationv1.ValidatingAdmissionPolicy, r metav1.StatusReason) *admissionregistrationv1.ValidatingAdmissionPolicy {
	for i := range p.Spec.Validations {
		p.Spec.Validations[i].Reason = ptr.To(r)
	}
	return p
}

func withMessage(p *admissionregistrationv1.ValidatingAdmissionPolicy, msgExpr string) *admissionregistrationv1.ValidatingAdmissionPolicy {
	for i := range p.Spec.Validations {
		p.Spec.Validations[i].MessageExpression = msgExpr
	}
	return p
}

// withVariables adds the variables of upstream's conformance test.
func withVariables(p *admissionregistrationv1.ValidatingAdmissionPolicy) *admissionregistrationv1.ValidatingAdmissionPolicy {
	p.Spec.Variables = []admissionregistrationv1.Variable{
		{Name: "replicas", Expression: "object.spec.replicas"},
		{Name: "oddReplicas", Expression: "variables.replicas % 2 == 1"},
	}
	return p
}

func withConditions(p *admissionregistrationv1.ValidatingAdmissionPolicy, exprs ...string) *admissionregistrationv1.ValidatingAdmissionPolicy {
	for i, e := range exprs {
		p.Spec.MatchConditions = append(p.Spec.MatchConditions, admissionregistrationv1.MatchCondition{Name: string(rune('a' + i)), Expression: e})
	}
	return p
}

// TestCompiledOnce checks that a policy is compiled once per version.
func TestCompiledOnce(t *testing.T) {
	t.Parallel()
	p := newTestPlugin(t, fixture{policies: pols(vap("replicas", "true")), bindings: binds(vapb("replicas-b", "replicas"))})
	for range 3 {
		if err := p.Validate(context.Background(), createReq(web(1))); err != nil {
			t.Fatal(err)
		}
	}
	pol, err := p.cfg.Policies.Get("replicas")
	if err != nil {
		t.Fatal(err)
	}
	first := p.compiledPolicy(pol)
	if again := p.compiledPolicy(pol); again != first {
		t.Errorf("policy compiled again for the same resourceVersion")
	}
	changed := pol.DeepCopy()
	changed.ResourceVersion = "2"
	if again := p.compiledPolicy(changed); again == first {
		t.Errorf("policy not compiled again for a new resourceVersion")
	}
}

// TestValidateConcurrent runs requests in parallel (for the race
// detector): the compiled caches are shared.
func TestValidateConcurrent(t *testing.T) {
	t.Parallel()
	p := newTestPlugin(t, fixture{policies: pols(withVariables(vap("replicas", "variables.oddReplicas"))), bindings: binds(vapb("replicas-b", "replicas"))})
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			var err error
			for range 20 {
				if err = p.Validate(context.Background(), createReq(web(int32(2*i+1)))); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
