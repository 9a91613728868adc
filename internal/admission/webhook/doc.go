// Package webhook is skiff's dynamic admission control: the
// MutatingAdmissionWebhook and ValidatingAdmissionWebhook admission plugins,
// which call the webhooks of admissionregistration.k8s.io/v1
// MutatingWebhookConfigurations and ValidatingWebhookConfigurations on the
// writes they match and apply their verdicts and JSON patches, as upstream's
// kube-apiserver does.
//
// Responsibility: for one admission.Request, find the webhooks that match it
// (rules: operations, apiGroups, apiVersions, resources with subresources,
// scope; namespaceSelector; objectSelector; then matchConditions), send
// each an AdmissionReview (v1, or v1beta1 when that is the first version a
// webhook lists) over HTTPS, and turn the answers into the request's
// verdict:
//
//   - mutating webhooks run one after another, configurations in name
//     order and webhooks in their order, each seeing the object patched by
//     the ones before; a JSONPatch is applied to the object's JSON and the
//     result decoded back into the same Go object in place. Webhooks with
//     reinvocationPolicy IfNeeded are called once more when a later webhook
//     changed the object. skiff's admission chain does not reinvoke
//     in-tree plugins, so reinvocation is among webhooks only;
//   - validating webhooks run in parallel; the first refusal (in webhook
//     order) is the verdict;
//   - a refusal is the webhook's status (code and message), by default 400
//     `admission webhook "<name>" denied the request: <message>`; a failed
//     call (connection, TLS, timeout, non-2xx, a malformed response) is a
//     500 `failed calling webhook "<name>": ...` with failurePolicy Fail and
//     is logged and ignored with Ignore;
//   - a dry-run request is refused (400) by a matching webhook whose
//     sideEffects are not None or NoneOnDryRun, and is sent with dryRun true;
//   - warnings are added to the request's warnings; auditAnnotations to its
//     audit annotations as "<webhook name>/<key>", plus upstream's
//     mutation.webhook.admission.k8s.io/round_R_index_I and failed-open
//     annotations;
//   - matchConditions (CEL) are evaluated once rules and selectors
//     matched, all of them, in order: a false one means the webhook is not
//     called (no error, whatever the others did); otherwise an error (a
//     condition that does not compile, fails to evaluate, exceeds the
//     per-expression cost limit or the webhook's budget of 2,500,000, or
//     uses authorizer) is, with failurePolicy Fail, upstream's 403
//     `<resource> "<name>" is forbidden: expression '<expr>' resulted in
//     error: ...` (several errors as "[..., ...]") and, with Ignore, skips
//     the webhook. The variables are object and oldObject (the JSON the
//     webhook would be sent, null when absent; for mutating webhooks, as
//     patched by the webhooks before), request (upstream's
//     AdmissionRequest as its CEL sees it: kind, resource, subResource,
//     requestKind, requestResource, requestSubResource, name, namespace,
//     operation, userInfo, dryRun, options; fields that are empty are
//     absent) and namespaceObject (null). The environment is that of CRD
//     rules (package apiextensions/cel's Library). Conditions are compiled
//     with their configuration's version, never per request.
//
// Known differences from upstream, on purpose:
//
//   - in matchConditions, authorizer is not supported (a condition using
//     it is an evaluation error, see above), nor are the library functions
//     package apiextensions/cel lacks (semver, ...: a compile error).
//     request is dyn rather than upstream's typed object, so a misspelled
//     field is an evaluation error rather than a compile error, and a
//     condition whose type is dyn is accepted and must evaluate to a bool.
//     The API server does not compile conditions when a configuration is
//     written (upstream refuses one that does not compile); such a
//     condition is an error at every matching request.
//   - matchPolicy Exact and Equivalent match alike: skiff serves one
//     version of each resource, so there is no equivalent resource to
//     convert to.
//   - the writes of admissionregistration.k8s.io's own resources never go
//     to webhooks (upstream exempts its webhook and policy kinds), so a
//     broken webhook cannot lock the cluster out of fixing it.
//   - calls go directly to the webhook, never through an HTTP proxy of the
//     server's environment.
//
// Reads: the two configuration listers, namespaces (namespaceSelector; a
// live read through Config.Client on a cache miss when a client is given),
// services and EndpointSlices (a `service` reference is sent to a random
// ready endpoint, with TLS server name <service>.<namespace>.svc and the
// Host header <service>.<namespace>.svc:<port>). Writes: nothing to the
// API; it changes only Request.Object (mutating), Request.Warnings and
// Request.AuditAnnotations. Never: changes an object read from a cache or
// Request.OldObject, calls a webhook for a request none of its rules match
// or one of its matchConditions is false for, or reads more than
// maxResponseBytes of a response.
//
// HTTP clients are cached per TLS identity (CA bundle and server name), so
// connections are reused across requests; a configuration's new caBundle
// gets a new client. Both plugins are safe for concurrent use.
//
// # Usage
//
//	f := informers.NewSharedInformerFactory(client, 0)
//	cfg := webhook.Config{
//		Validating: f.Admissionregistration().V1().ValidatingWebhookConfigurations().Lister(),
//		Mutating:   f.Admissionregistration().V1().MutatingWebhookConfigurations().Lister(),
//		Namespaces: f.Core().V1().Namespaces().Lister(),
//		Services:   f.Core().V1().Services().Lister(),
//		Slices:     f.Discovery().V1().EndpointSlices().Lister(),
//		Client:     client, // optional
//		Logger:     logger,
//	}
//	chain := admission.NewChain(..., webhook.NewMutating(cfg), webhook.NewValidating(cfg), ...)
//	f.StartWithContext(ctx) // the caller starts the factory and waits for its caches
package webhook
