// Package policy is skiff's ValidatingAdmissionPolicy admission plugin:
// it evaluates the CEL validations of admissionregistration.k8s.io/v1
// ValidatingAdmissionPolicies on the writes their
// ValidatingAdmissionPolicyBindings match, and denies, warns or audits as
// the bindings' validationActions say, with upstream's (kube-apiserver
// 1.33) semantics and texts.
//
// Responsibility, for one admission.Request (create, update, delete,
// connect; never the admission policies and bindings themselves nor the
// virtual review resources):
//
//   - every policy named by at least one binding (spec.policyName) is
//     matched: its matchConstraints (namespaceSelector, objectSelector,
//     excludeResourceRules, resourceRules with resourceNames and
//     subresources as webhooks' rules; matchPolicy is not consulted, skiff
//     serves one version per resource), then each binding's
//     matchResources, which restrict further;
//   - params: without paramKind or paramRef, params is null; otherwise
//     the param named (namespace: paramRef.namespace, else the request's,
//     for a namespaced kind) or every param selected, the policy being
//     evaluated once per param; none found is nothing with
//     parameterNotFoundAction Allow and a configuration error with Deny;
//   - matchConditions (all true, or the policy is skipped; an error
//     follows failurePolicy), then validations in order, each false one a
//     violation with its message (messageExpression, message, or `failed
//     expression: <expr>`) and reason (Invalid 422 by default; Unauthorized
//     401, Forbidden 403, RequestEntityTooLarge 413), then auditAnnotations
//     (added as `<policy>/<key>`);
//   - each violation is, per validationActions, a refusal (`<resource>
//     "<name>" is forbidden: ValidatingAdmissionPolicy '<p>' with binding
//     '<b>' denied request: <message>`, the first one wins), a warning
//     (`Validation failed for ValidatingAdmissionPolicy '<p>' with binding
//     '<b>': <message>`) or an entry of the
//     validation.policy.admission.k8s.io/validation_failure audit
//     annotation;
//   - errors (an expression that does not compile or fails, the cost
//     budget, configuration errors such as a param that cannot be read)
//     follow failurePolicy: Fail refuses (422), Ignore admits.
//
// CEL: the environment of CRD rules (package apiextensions/cel's Library:
// standard CEL, extensions, Kubernetes library, per-call cost limit) with
// the variables object, oldObject (null on create; on delete object is
// null), request (upstream's AdmissionRequest: kind, resource,
// subResource, requestKind, requestResource, requestSubResource, name,
// namespace, operation, userInfo, dryRun, options; empty fields absent),
// params (declared only with a paramKind), namespaceObject (the
// namespace of a namespaced request, null otherwise and, as upstream, in
// matchConditions) and variables (spec.variables, each evaluated when
// first read and kept, each seeing the ones before it). Values come from
// the objects' unstructured (JSON) form. Each policy, binding and param
// may spend upstream's budget (10,000,000 for validations, the same again
// for auditAnnotations, 2,500,000 for matchConditions).
//
// Known differences from upstream, on purpose:
//
//   - authorizer is not supported: an expression using it does not
//     compile (ValidatePolicyExpressions reports it; at evaluation it is a
//     compilation error, handled per failurePolicy);
//   - evaluation is untyped (dyn), as upstream's write-time compilation;
//     type errors against the matched kinds' schemas (an int compared
//     with a string, a misspelled field) are reported, as upstream, in
//     status.typeChecking.expressionWarnings by RunStatus with
//     WithSchemaResolver (typecheck.go: request, namespaceObject and
//     variables stay dyn there, so fewer warnings than upstream's);
//   - without a ParamScoper, a paramKind is taken as namespaced when a
//     namespace is at hand (see ParamScoper).
//
// Reads: the policy and binding listers (every request lists the
// bindings; a write with no bindings costs one empty list), the namespace
// lister (client on a miss), the ParamSource. Writes: nothing but the
// request's warnings and audit annotations; RunStatus writes the
// policies' status subresource. Never changes an object read from a
// cache. Policies are compiled once per uid and resourceVersion.
//
// # Usage
//
//	f := informers.NewSharedInformerFactory(client, 0)
//	vap := f.Admissionregistration().V1().ValidatingAdmissionPolicies()
//	plugin := policy.New(policy.Config{
//	    Policies:   vap.Lister(),
//	    Bindings:   f.Admissionregistration().V1().ValidatingAdmissionPolicyBindings().Lister(),
//	    Namespaces: f.Core().V1().Namespaces().Lister(),
//	    Client:     client,
//	    Params:     policy.NewDynamicParams(ctx, dyn, client.Discovery()),
//	})
//	go policy.RunStatus(ctx, client, vap.Lister(), vap.Informer(), log)
//	f.StartWithContext(ctx)
//	// then, as a Validator and DeleteValidator of the admission chain.
package policy
