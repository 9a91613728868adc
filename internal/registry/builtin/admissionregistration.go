package builtin

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apipath "k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/util/jsonpath"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/admission/policy"
	"github.com/skiff-dev/skiff/internal/admission/webhook"
	"github.com/skiff-dev/skiff/internal/registry"
)

// admissionregistrationResources returns admissionregistration.k8s.io/v1
// validatingwebhookconfigurations and mutatingwebhookconfigurations, and
// validatingadmissionpolicies (with /status) and
// validatingadmissionpolicybindings. They only describe webhooks and
// policies; calling the webhooks is package admission/webhook's job,
// evaluating the policies package admission/policy's.
func admissionregistrationResources() []*registry.Resource {
	gv := admissionregistrationv1.SchemeGroupVersion
	return []*registry.Resource{
		{
			GVR: gv.WithResource("mutatingwebhookconfigurations"), Kind: "MutatingWebhookConfiguration",
			ListKind: "MutatingWebhookConfigurationList", Singular: "mutatingwebhookconfiguration",
			Categories: []string{"api-extensions"},
			Strategy:   mutatingWebhookConfigurationStrategy(),
		},
		{
			GVR: gv.WithResource("validatingwebhookconfigurations"), Kind: "ValidatingWebhookConfiguration",
			ListKind: "ValidatingWebhookConfigurationList", Singular: "validatingwebhookconfiguration",
			Categories: []string{"api-extensions"},
			Strategy:   validatingWebhookConfigurationStrategy(),
		},
		{
			GVR: gv.WithResource("validatingadmissionpolicies"), Kind: "ValidatingAdmissionPolicy",
			ListKind: "ValidatingAdmissionPolicyList", Singular: "validatingadmissionpolicy",
			Categories: []string{"api-extensions"}, Status: true,
			Strategy: validatingAdmissionPolicyStrategy(),
		},
		{
			GVR: gv.WithResource("validatingadmissionpolicybindings"), Kind: "ValidatingAdmissionPolicyBinding",
			ListKind: "ValidatingAdmissionPolicyBindingList", Singular: "validatingadmissionpolicybinding",
			Categories: []string{"api-extensions"},
			Strategy:   validatingAdmissionPolicyBindingStrategy(),
		},
	}
}

// webhookColumns are upstream's NAME, WEBHOOKS, AGE.
func webhookColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		columnName(),
		columnInt("Webhooks", "Webhooks indicates the number of webhooks registered in this configuration", 0),
		columnAge(),
	}
}

// metadata.generation starts at 1 and follows changes to the webhooks, as
// upstream's: the store treats a Webhooks field as the spec.

func validatingWebhookConfigurationStrategy() registry.Strategy {
	type (
		obj  = *admissionregistrationv1.ValidatingWebhookConfiguration
		list = *admissionregistrationv1.ValidatingWebhookConfigurationList
	)
	return registry.Define(registry.Typed[obj, list]{
		New:     func() obj { return &admissionregistrationv1.ValidatingWebhookConfiguration{} },
		NewList: func() list { return &admissionregistrationv1.ValidatingWebhookConfigurationList{} },
		Default: func(c obj) {
			for i := range c.Webhooks {
				defaultValidatingWebhook(&c.Webhooks[i])
			}
		},
		Validate: func(c obj) field.ErrorList {
			return validateWebhooks(validatingWebhookViews(c.Webhooks), webhookCreateOptions())
		},
		ValidateUpdate: func(c, old obj) field.ErrorList {
			return validateWebhooks(validatingWebhookViews(c.Webhooks), webhookUpdateOptions(validatingWebhookViews(c.Webhooks), validatingWebhookViews(old.Webhooks)))
		},
		Table: &registry.TypedTable[obj]{
			Columns: webhookColumns(),
			Row: func(c obj) []any {
				return []any{c.Name, int64(len(c.Webhooks)), cellAge(&c.ObjectMeta)}
			},
		},
	})
}

func mutatingWebhookConfigurationStrategy() registry.Strategy {
	type (
		obj  = *admissionregistrationv1.MutatingWebhookConfiguration
		list = *admissionregistrationv1.MutatingWebhookConfigurationList
	)
	return registry.Define(registry.Typed[obj, list]{
		New:     func() obj { return &admissionregistrationv1.MutatingWebhookConfiguration{} },
		NewList: func() list { return &admissionregistrationv1.MutatingWebhookConfigurationList{} },
		Default: func(c obj) {
			for i := range c.Webhooks {
				defaultMutatingWebhook(&c.Webhooks[i])
			}
		},
		Validate: func(c obj) field.ErrorList {
			return validateWebhooks(mutatingWebhookViews(c.Webhooks), webhookCreateOptions())
		},
		ValidateUpdate: func(c, old obj) field.ErrorList {
			return validateWebhooks(mutatingWebhookViews(c.Webhooks), webhookUpdateOptions(mutatingWebhookViews(c.Webhooks), mutatingWebhookViews(old.Webhooks)))
		},
		Table: &registry.TypedTable[obj]{
			Columns: webhookColumns(),
			Row: func(c obj) []any {
				return []any{c.Name, int64(len(c.Webhooks)), cellAge(&c.ObjectMeta)}
			},
		},
	})
}

// --- Defaults -------------------------------------------------------------

// defaultValidatingWebhook applies upstream's v1 SetDefaults_ValidatingWebhook
// (and those of its rules and service reference).
func defaultValidatingWebhook(w *admissionregistrationv1.ValidatingWebhook) {
	defaultWebhookCommon(&w.FailurePolicy, &w.MatchPolicy, &w.NamespaceSelector, &w.ObjectSelector, &w.TimeoutSeconds, w.Rules, &w.ClientConfig)
}

// defaultMutatingWebhook applies upstream's v1 SetDefaults_MutatingWebhook:
// the validating defaults plus reinvocationPolicy Never.
func defaultMutatingWebhook(w *admissionregistrationv1.MutatingWebhook) {
	defaultWebhookCommon(&w.FailurePolicy, &w.MatchPolicy, &w.NamespaceSelector, &w.ObjectSelector, &w.TimeoutSeconds, w.Rules, &w.ClientConfig)
	if w.ReinvocationPolicy == nil {
		w.ReinvocationPolicy = ptr.To(admissionregistrationv1.NeverReinvocationPolicy)
	}
}

// defaultWebhookCommon fills in what both webhook kinds default alike:
// failurePolicy Fail, matchPolicy Equivalent, empty (match-all) namespace
// and object selectors, timeoutSeconds 10, each rule's scope "*" and the
// service port 443.
func defaultWebhookCommon(failure **admissionregistrationv1.FailurePolicyType, match **admissionregistrationv1.MatchPolicyType,
	nsSel, objSel **metav1.LabelSelector, timeout **int32, rules []admissionregistrationv1.RuleWithOperations,
	cc *admissionregistrationv1.WebhookClientConfig) {
	if *failure == nil {
		*failure = ptr.To(admissionregistrationv1.Fail)
	}
	defaultMatchPolicyAndSelectors(match, nsSel, objSel)
	if *timeout == nil {
		*timeout = ptr.To[int32](10)
	}
	for i := range rules {
		if rules[i].Scope == nil {
			rules[i].Scope = ptr.To(admissionregistrationv1.AllScopes)
		}
	}
	if cc.Service != nil && cc.Service.Port == nil {
		cc.Service.Port = ptr.To[int32](443)
	}
}

// defaultMatchPolicyAndSelectors: matchPolicy Equivalent and empty
// (match-all) namespace and object selectors, for webhooks and for
// policies' matchConstraints and bindings' matchResources alike.
func defaultMatchPolicyAndSelectors(match **admissionregistrationv1.MatchPolicyType, nsSel, objSel **metav1.LabelSelector) {
	if *match == nil {
		*match = ptr.To(admissionregistrationv1.Equivalent)
	}
	if *nsSel == nil {
		*nsSel = &metav1.LabelSelector{}
	}
	if *objSel == nil {
		*objSel = &metav1.LabelSelector{}
	}
}

// --- Validation -----------------------------------------------------------

// webhookView is what validation reads of a ValidatingWebhook or a
// MutatingWebhook (mutating is true for the latter, which alone has a
// reinvocationPolicy). It points into the webhook; validation never writes.
type webhookView struct {
	name                    string
	clientConfig            *admissionregistrationv1.WebhookClientConfig
	rules                   []admissionregistrationv1.RuleWithOperations
	failurePolicy           *admissionregistrationv1.FailurePolicyType
	matchPolicy             *admissionregistrationv1.MatchPolicyType
	namespaceSelector       *metav1.LabelSelector
	objectSelector          *metav1.LabelSelector
	sideEffects             *admissionregistrationv1.SideEffectClass
	timeoutSeconds          *int32
	admissionReviewVersions []string
	matchConditions         []admissionregistrationv1.MatchCondition
	mutating                bool
	reinvocationPolicy      *admissionregistrationv1.ReinvocationPolicyType
}

func validatingWebhookViews(hooks []admissionregistrationv1.ValidatingWebhook) []webhookView {
	out := make([]webhookView, len(hooks))
	for i := range hooks {
		w := &hooks[i]
		out[i] = webhookView{
			name: w.Name, clientConfig: &w.ClientConfig, rules: w.Rules, failurePolicy: w.FailurePolicy,
			matchPolicy: w.MatchPolicy, namespaceSelector: w.NamespaceSelector, objectSelector: w.ObjectSelector,
			sideEffects: w.SideEffects, timeoutSeconds: w.TimeoutSeconds, admissionReviewVersions: w.AdmissionReviewVersions,
			matchConditions: w.MatchConditions,
		}
	}
	return out
}

func mutatingWebhookViews(hooks []admissionregistrationv1.MutatingWebhook) []webhookView {
	out := make([]webhookView, len(hooks))
	for i := range hooks {
		w := &hooks[i]
		out[i] = webhookView{
			name: w.Name, clientConfig: &w.ClientConfig, rules: w.Rules, failurePolicy: w.FailurePolicy,
			matchPolicy: w.MatchPolicy, namespaceSelector: w.NamespaceSelector, objectSelector: w.ObjectSelector,
			sideEffects: w.SideEffects, timeoutSeconds: w.TimeoutSeconds, admissionReviewVersions: w.AdmissionReviewVersions,
			matchConditions: w.MatchConditions, mutating: true, reinvocationPolicy: w.ReinvocationPolicy,
		}
	}
	return out
}

// webhookValidationOptions are the checks upstream relaxes on update for
// configurations stored before a rule tightened: each is strict on create,
// and on update strict only when the stored object passes it already.
type webhookValidationOptions struct {
	ignoreMatchConditions            bool // matchConditions unchanged: not validated again
	requireNoSideEffects             bool // sideEffects must be None or NoneOnDryRun
	requireRecognizedReviewVersion   bool // admissionReviewVersions must hold v1 or v1beta1
	requireUniqueWebhookNames        bool
	allowInvalidLabelValueInSelector bool
}

func webhookCreateOptions() webhookValidationOptions {
	return webhookValidationOptions{
		requireNoSideEffects:           true,
		requireRecognizedReviewVersion: true,
		requireUniqueWebhookNames:      true,
	}
}

// webhookUpdateOptions derives the options of an update from the stored
// webhooks, as upstream's Validate…WebhookConfigurationUpdate does.
func webhookUpdateOptions(hooks, old []webhookView) webhookValidationOptions {
	opts := webhookValidationOptions{
		ignoreMatchConditions:          len(hooks) == len(old),
		requireNoSideEffects:           true,
		requireRecognizedReviewVersion: true,
		requireUniqueWebhookNames:      true,
	}
	names := sets.New[string]()
	for i, o := range old {
		if opts.ignoreMatchConditions && !apiequality.Semantic.DeepEqual(hooks[i].matchConditions, o.matchConditions) {
			opts.ignoreMatchConditions = false
		}
		if o.sideEffects == nil || !slices.Contains(noSideEffectClasses, *o.sideEffects) {
			opts.requireNoSideEffects = false
		}
		if !hasAcceptedReviewVersionOrEmpty(o.admissionReviewVersions) {
			opts.requireRecognizedReviewVersion = false
		}
		if names.Has(o.name) {
			opts.requireUniqueWebhookNames = false
		}
		names.Insert(o.name)
		for _, sel := range []*metav1.LabelSelector{o.namespaceSelector, o.objectSelector} {
			if sel != nil && len(metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, nil)) > 0 {
				opts.allowInvalidLabelValueInSelector = true
			}
		}
	}
	return opts
}

// The values upstream accepts, in its (sorted) order for NotSupported.
var (
	supportedFailurePolicies = []admissionregistrationv1.FailurePolicyType{admissionregistrationv1.Fail, admissionregistrationv1.Ignore}
	supportedMatchPolicies   = []admissionregistrationv1.MatchPolicyType{admissionregistrationv1.Equivalent, admissionregistrationv1.Exact}
	supportedSideEffects     = []admissionregistrationv1.SideEffectClass{
		admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.SideEffectClassNoneOnDryRun,
		admissionregistrationv1.SideEffectClassSome, admissionregistrationv1.SideEffectClassUnknown,
	}
	noSideEffectClasses = []admissionregistrationv1.SideEffectClass{
		admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.SideEffectClassNoneOnDryRun,
	}
	supportedOperations = []admissionregistrationv1.OperationType{
		admissionregistrationv1.OperationAll, admissionregistrationv1.Connect, admissionregistrationv1.Create,
		admissionregistrationv1.Delete, admissionregistrationv1.Update,
	}
	supportedReinvocationPolicies = []admissionregistrationv1.ReinvocationPolicyType{
		admissionregistrationv1.IfNeededReinvocationPolicy, admissionregistrationv1.NeverReinvocationPolicy,
	}
	supportedScopes = []admissionregistrationv1.ScopeType{
		admissionregistrationv1.AllScopes, admissionregistrationv1.ClusterScope, admissionregistrationv1.NamespacedScope,
	}
)

// maxMatchConditions is upstream's limit on matchConditions per webhook.
const maxMatchConditions = 64

// validateWebhooks validates the webhooks of a configuration at
// webhooks[i], as upstream's validate{Validating,Mutating}WebhookConfiguration
// (metadata is the store's). matchConditions' CEL expressions are not
// compiled: skiff does not evaluate them, so only their presence is checked.
func validateWebhooks(hooks []webhookView, opts webhookValidationOptions) field.ErrorList {
	var allErrs field.ErrorList
	names := sets.New[string]()
	for i := range hooks {
		fldPath := field.NewPath("webhooks").Index(i)
		allErrs = append(allErrs, validateWebhook(&hooks[i], opts, fldPath)...)
		allErrs = append(allErrs, validateAdmissionReviewVersions(hooks[i].admissionReviewVersions, opts.requireRecognizedReviewVersion, fldPath.Child("admissionReviewVersions"))...)
		if name := hooks[i].name; opts.requireUniqueWebhookNames && name != "" {
			if names.Has(name) {
				allErrs = append(allErrs, field.Duplicate(fldPath.Child("name"), name))
			}
			names.Insert(name)
		}
	}
	return allErrs
}

func validateWebhook(w *webhookView, opts webhookValidationOptions, fldPath *field.Path) field.ErrorList {
	allErrs := validation.IsFullyQualifiedName(fldPath.Child("name"), w.name)
	for i := range w.rules {
		allErrs = append(allErrs, validateRuleWithOperations(&w.rules[i], fldPath.Child("rules").Index(i))...)
	}
	if w.failurePolicy != nil && !slices.Contains(supportedFailurePolicies, *w.failurePolicy) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("failurePolicy"), *w.failurePolicy, supportedFailurePolicies))
	}
	if w.matchPolicy != nil && !slices.Contains(supportedMatchPolicies, *w.matchPolicy) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("matchPolicy"), *w.matchPolicy, supportedMatchPolicies))
	}
	allowedSideEffects := supportedSideEffects
	if opts.requireNoSideEffects {
		allowedSideEffects = noSideEffectClasses
	}
	switch {
	case w.sideEffects == nil:
		allowed := make([]string, len(allowedSideEffects))
		for i, s := range allowedSideEffects {
			allowed[i] = string(s)
		}
		allErrs = append(allErrs, field.Required(fldPath.Child("sideEffects"), "must specify one of "+strings.Join(allowed, ", ")))
	case !slices.Contains(allowedSideEffects, *w.sideEffects):
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("sideEffects"), *w.sideEffects, allowedSideEffects))
	}
	if t := w.timeoutSeconds; t != nil && (*t > 30 || *t < 1) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("timeoutSeconds"), *t, "the timeout value must be between 1 and 30 seconds"))
	}
	selOpts := metav1validation.LabelSelectorValidationOptions{AllowInvalidLabelValueInSelector: opts.allowInvalidLabelValueInSelector}
	if w.namespaceSelector != nil {
		allErrs = append(allErrs, metav1validation.ValidateLabelSelector(w.namespaceSelector, selOpts, fldPath.Child("namespaceSelector"))...)
	}
	if w.objectSelector != nil {
		allErrs = append(allErrs, metav1validation.ValidateLabelSelector(w.objectSelector, selOpts, fldPath.Child("objectSelector"))...)
	}
	if w.mutating && w.reinvocationPolicy != nil && !slices.Contains(supportedReinvocationPolicies, *w.reinvocationPolicy) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("reinvocationPolicy"), *w.reinvocationPolicy, supportedReinvocationPolicies))
	}
	allErrs = append(allErrs, validateWebhookClientConfig(w.clientConfig, fldPath.Child("clientConfig"))...)
	if !opts.ignoreMatchConditions {
		allErrs = append(allErrs, validateMatchConditions(w.matchConditions, fldPath.Child("matchConditions"))...)
	}
	return allErrs
}

// validateWebhookClientConfig: exactly one of url (https, a host, no user
// information, fragment or query) and service (name, namespace, port, path
// of DNS-1123 segments). As upstream, caBundle is not checked here: a bad
// one fails the webhook's calls.
func validateWebhookClientConfig(cc *admissionregistrationv1.WebhookClientConfig, fldPath *field.Path) field.ErrorList {
	switch {
	case (cc.URL == nil) == (cc.Service == nil):
		return field.ErrorList{field.Required(fldPath, "exactly one of url or service is required")}
	case cc.URL != nil:
		return validateWebhookURL(fldPath.Child("url"), *cc.URL)
	default:
		// The checks are upstream's shared webhook ones, which the CRD
		// conversion webhook uses too.
		s := cc.Service
		return validateWebhookService(fldPath.Child("service"), &apiextensionsv1.ServiceReference{
			Namespace: s.Namespace, Name: s.Name, Path: s.Path, Port: s.Port,
		})
	}
}

// validateAdmissionReviewVersions: required, no duplicates, DNS-1035
// labels, and (unless relaxed for an update) one of v1 and v1beta1.
func validateAdmissionReviewVersions(versions []string, requireRecognized bool, fldPath *field.Path) field.ErrorList {
	if len(versions) == 0 {
		return field.ErrorList{field.Required(fldPath, "must specify one of "+strings.Join(acceptedReviewVersions, ", "))}
	}
	return validateReviewVersions(versions, requireRecognized, fldPath)
}

func validateRuleWithOperations(r *admissionregistrationv1.RuleWithOperations, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	opsPath := fldPath.Child("operations")
	if len(r.Operations) == 0 {
		allErrs = append(allErrs, field.Required(opsPath, ""))
	}
	if len(r.Operations) > 1 && slices.Contains(r.Operations, admissionregistrationv1.OperationAll) {
		allErrs = append(allErrs, field.Invalid(opsPath, r.Operations, "if '*' is present, must not specify other operations"))
	}
	for i, op := range r.Operations {
		if !slices.Contains(supportedOperations, op) {
			allErrs = append(allErrs, field.NotSupported(opsPath.Index(i), op, supportedOperations))
		}
	}
	return append(allErrs, validateWebhookRule(&r.Rule, fldPath)...)
}

// validateWebhookRule checks apiGroups, apiVersions, resources (with
// subresources) and scope of a rule.
func validateWebhookRule(r *admissionregistrationv1.Rule, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(r.APIGroups) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("apiGroups"), ""))
	}
	if len(r.APIGroups) > 1 && slices.Contains(r.APIGroups, "*") {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("apiGroups"), r.APIGroups, "if '*' is present, must not specify other API groups"))
	}
	// The group may be empty (the core group); versions may not.
	if len(r.APIVersions) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("apiVersions"), ""))
	}
	if len(r.APIVersions) > 1 && slices.Contains(r.APIVersions, "*") {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("apiVersions"), r.APIVersions, "if '*' is present, must not specify other API versions"))
	}
	for i, v := range r.APIVersions {
		if v == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("apiVersions").Index(i), ""))
		}
	}
	allErrs = append(allErrs, validateRuleResources(r.Resources, fldPath.Child("resources"))...)
	if r.Scope != nil && !slices.Contains(supportedScopes, *r.Scope) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("scope"), *r.Scope, supportedScopes))
	}
	return allErrs
}

// validateRuleResources checks a rule's resources: "x", "x/y", "x/*", "*/y",
// "*" and "*/*", where a wildcard excludes what it already covers.
func validateRuleResources(resources []string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(resources) == 0 {
		allErrs = append(allErrs, field.Required(fldPath, ""))
	}
	wildSub := sets.New[string]() // x of "x/*"
	wildRes := sets.New[string]() // y of "*/y"
	var doubleWildcard, singleWildcard, plainResource bool
	for i, rs := range resources {
		if rs == "" {
			allErrs = append(allErrs, field.Required(fldPath.Index(i), ""))
			continue
		}
		doubleWildcard = doubleWildcard || rs == "*/*"
		singleWildcard = singleWildcard || rs == "*"
		res, sub, hasSub := strings.Cut(rs, "/")
		if !hasSub {
			// As upstream: whether the last such entry is a plain resource.
			plainResource = rs != "*"
			continue
		}
		if wildSub.Has(res) {
			allErrs = append(allErrs, field.Invalid(fldPath.Index(i), rs, fmt.Sprintf("if '%s/*' is present, must not specify %s", res, rs)))
		}
		if wildRes.Has(sub) {
			allErrs = append(allErrs, field.Invalid(fldPath.Index(i), rs, fmt.Sprintf("if '*/%s' is present, must not specify %s", sub, rs)))
		}
		if sub == "*" {
			wildSub.Insert(res)
		}
		if res == "*" {
			wildRes.Insert(sub)
		}
	}
	if len(resources) > 1 && doubleWildcard {
		allErrs = append(allErrs, field.Invalid(fldPath, resources, "if '*/*' is present, must not specify other resources"))
	}
	if singleWildcard && plainResource {
		allErrs = append(allErrs, field.Invalid(fldPath, resources, "if '*' is present, must not specify other resources without subresources"))
	}
	return allErrs
}

// validateMatchConditions: at most 64, names unique qualified names,
// expressions not blank. The expressions are CEL, which skiff neither
// compiles nor evaluates (the dispatcher calls such webhooks as if their
// conditions matched).
func validateMatchConditions(conds []admissionregistrationv1.MatchCondition, fldPath *field.Path) field.ErrorList {
	allErrs := validateMatchConditionFields(conds, fldPath)
	// Expressions must compile (CEL), as upstream checks on write.
	return append(allErrs, webhook.ValidateMatchConditions(fldPath, conds)...)
}

// validateMatchConditionFields is validateMatchConditions without the
// compilation: the count, names and non-blank expressions. Policies use it
// alone, since their conditions compile in the policy's environment (with
// params), which package admission/policy checks.
func validateMatchConditionFields(conds []admissionregistrationv1.MatchCondition, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(conds) > maxMatchConditions {
		allErrs = append(allErrs, field.TooMany(fldPath, len(conds), maxMatchConditions))
	}
	names := sets.New[string]()
	for i, c := range conds {
		p := fldPath.Index(i)
		if strings.TrimSpace(c.Expression) == "" {
			allErrs = append(allErrs, field.Required(p.Child("expression"), ""))
		}
		if c.Name == "" {
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
			continue
		}
		allErrs = append(allErrs, validateQualifiedName(c.Name, p.Child("name"))...)
		if names.Has(c.Name) {
			allErrs = append(allErrs, field.Duplicate(p.Child("name"), c.Name))
		}
		names.Insert(c.Name)
	}
	return allErrs
}

// --- ValidatingAdmissionPolicy and its bindings ---------------------------

// A policy has a /status subresource: the store keeps status on writes to
// the main resource and everything but status on writes to /status, and
// metadata.generation follows spec (starting at 1). A binding has no status;
// its generation follows its spec too.
//
// Validation is upstream's validation.go: the structure here, and the
// CEL compilation of the policy's expressions (validations,
// messageExpressions, matchConditions, auditAnnotations, variables) in the
// policy's environment by package admission/policy's
// ValidatePolicyExpressions.
// Not done either: upstream's strategies also authorize the writer for the
// paramKind (policies) and for the policy and params (bindings).

func validatingAdmissionPolicyStrategy() registry.Strategy {
	type (
		obj  = *admissionregistrationv1.ValidatingAdmissionPolicy
		list = *admissionregistrationv1.ValidatingAdmissionPolicyList
	)
	return registry.Define(registry.Typed[obj, list]{
		New:     func() obj { return &admissionregistrationv1.ValidatingAdmissionPolicy{} },
		NewList: func() list { return &admissionregistrationv1.ValidatingAdmissionPolicyList{} },
		PrepareForCreate: func(p obj) {
			p.Status = admissionregistrationv1.ValidatingAdmissionPolicyStatus{}
		},
		Default: defaultValidatingAdmissionPolicy,
		Validate: func(p obj) field.ErrorList {
			return validateValidatingAdmissionPolicy(p, policyValidationOptions{})
		},
		ValidateUpdate: func(p, old obj) field.ErrorList {
			return validateValidatingAdmissionPolicy(p, policyUpdateOptions(p, old))
		},
		ValidateStatusUpdate: func(p, _ obj) field.ErrorList {
			return validatePolicyStatus(&p.Status, field.NewPath("status"))
		},
		Table: &registry.TypedTable[obj]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnInt("Validations", "Validations indicates the number of validation rules defined in this configuration", 0),
				columnString("ParamKind", "ParamKind specifies the kind of resources used to parameterize this policy", 0),
				columnAge(),
			},
			Row: func(p obj) []any {
				paramKind := "<unset>"
				if pk := p.Spec.ParamKind; pk != nil {
					paramKind = pk.APIVersion + "/" + pk.Kind
				}
				return []any{p.Name, int64(len(p.Spec.Validations)), paramKind, cellAge(&p.ObjectMeta)}
			},
		},
	})
}

func validatingAdmissionPolicyBindingStrategy() registry.Strategy {
	type (
		obj  = *admissionregistrationv1.ValidatingAdmissionPolicyBinding
		list = *admissionregistrationv1.ValidatingAdmissionPolicyBindingList
	)
	return registry.Define(registry.Typed[obj, list]{
		New:     func() obj { return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{} },
		NewList: func() list { return &admissionregistrationv1.ValidatingAdmissionPolicyBindingList{} },
		Default: func(b obj) { defaultMatchResources(b.Spec.MatchResources) },
		// Upstream validates an update exactly as a create.
		Validate: validateValidatingAdmissionPolicyBinding,
		Table: &registry.TypedTable[obj]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("PolicyName", "PolicyName indicates the policy definition which the policy binding binded to", 0),
				columnString("ParamRef", "ParamRef indicates the param resource which sets the configration param", 0),
				columnAge(),
			},
			Row: func(b obj) []any {
				return []any{b.Name, b.Spec.PolicyName, paramRefCell(b.Spec.ParamRef), cellAge(&b.ObjectMeta)}
			},
		},
	})
}

// paramRefCell prints a binding's paramRef as upstream: <namespace>/<name>,
// */<name> when the namespace is not set (the param may be cluster-scoped
// or in the request's namespace), the selector's Go form, or <unset>.
func paramRefCell(pr *admissionregistrationv1.ParamRef) string {
	switch {
	case pr == nil:
		return "<unset>"
	case pr.Name != "" && pr.Namespace != "":
		return pr.Namespace + "/" + pr.Name
	case pr.Name != "":
		return "*/" + pr.Name
	case pr.Selector != nil:
		return pr.Selector.String()
	default:
		return "<unset>"
	}
}

// defaultValidatingAdmissionPolicy applies upstream's v1 defaults:
// failurePolicy Fail, and those of matchConstraints.
func defaultValidatingAdmissionPolicy(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
	if p.Spec.FailurePolicy == nil {
		p.Spec.FailurePolicy = ptr.To(admissionregistrationv1.Fail)
	}
	defaultMatchResources(p.Spec.MatchConstraints)
}

// defaultMatchResources applies upstream's v1 SetDefaults_MatchResources
// (matchPolicy Equivalent, empty match-all selectors) and SetDefaults_Rule
// (scope "*") to each rule, included or excluded. A nil m stays nil. A
// binding's paramRef gets no default in v1: parameterNotFoundAction is
// required.
func defaultMatchResources(m *admissionregistrationv1.MatchResources) {
	if m == nil {
		return
	}
	defaultMatchPolicyAndSelectors(&m.MatchPolicy, &m.NamespaceSelector, &m.ObjectSelector)
	for _, rules := range [][]admissionregistrationv1.NamedRuleWithOperations{m.ResourceRules, m.ExcludeResourceRules} {
		for i := range rules {
			if rules[i].Scope == nil {
				rules[i].Scope = ptr.To(admissionregistrationv1.AllScopes)
			}
		}
	}
}

// Policy limits and values, as upstream's.
const (
	maxAuditAnnotations = 20
	// maxAuditAnnotationValueExpressionLength is less than the 10KiB an
	// audit annotation's value may have, since an expression that
	// concatenates strings usually produces a longer value than itself.
	maxAuditAnnotationValueExpressionLength = 5 * 1024
)

var (
	supportedValidationReasons = []metav1.StatusReason{
		metav1.StatusReasonForbidden, metav1.StatusReasonInvalid, metav1.StatusReasonRequestEntityTooLarge,
	}
	supportedValidationActions = []admissionregistrationv1.ValidationAction{
		admissionregistrationv1.Audit, admissionregistrationv1.Deny, admissionregistrationv1.Warn,
	}
	// In upstream's (unsorted) order.
	supportedParameterNotFoundActions = []admissionregistrationv1.ParameterNotFoundActionType{
		admissionregistrationv1.DenyAction, admissionregistrationv1.AllowAction,
	}
	// newlines are the line breaks of CEL's grammar, which a message may
	// not contain.
	newlines = regexp.MustCompile(`[\n\r]+`)
	// celIdentifier is CEL's IDENT; celReserved are the words it excludes.
	celIdentifier = regexp.MustCompile(`^[_a-zA-Z][_a-zA-Z0-9]*$`)
	celReserved   = sets.New("true", "false", "null", "in", "as", "break", "const", "continue", "else",
		"for", "function", "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while")
)

// policyValidationOptions are what upstream relaxes on update.
type policyValidationOptions struct {
	// ignoreMatchConditions: neither matchConditions nor paramKind changed,
	// so stored conditions are not validated again.
	ignoreMatchConditions bool
}

func policyUpdateOptions(p, old *admissionregistrationv1.ValidatingAdmissionPolicy) policyValidationOptions {
	return policyValidationOptions{
		ignoreMatchConditions: apiequality.Semantic.DeepEqual(p.Spec.ParamKind, old.Spec.ParamKind) &&
			apiequality.Semantic.DeepEqual(p.Spec.MatchConditions, old.Spec.MatchConditions),
	}
}

// validateValidatingAdmissionPolicy validates a policy's spec at spec, as
// upstream's validateValidatingAdmissionPolicySpec (metadata is the
// store's).
func validateValidatingAdmissionPolicy(p *admissionregistrationv1.ValidatingAdmissionPolicy, opts policyValidationOptions) field.ErrorList {
	var allErrs field.ErrorList
	spec := &p.Spec
	fldPath := field.NewPath("spec")
	switch {
	case spec.FailurePolicy == nil:
		allErrs = append(allErrs, field.Required(fldPath.Child("failurePolicy"), ""))
	case !slices.Contains(supportedFailurePolicies, *spec.FailurePolicy):
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("failurePolicy"), *spec.FailurePolicy, supportedFailurePolicies))
	}
	if spec.ParamKind != nil {
		allErrs = append(allErrs, validateParamKind(spec.ParamKind, fldPath.Child("paramKind"))...)
	}
	if spec.MatchConstraints == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("matchConstraints"), ""))
	} else {
		allErrs = append(allErrs, validateMatchResources(spec.MatchConstraints, fldPath.Child("matchConstraints"))...)
		// At least one rule: it gives the expressions their types.
		if len(spec.MatchConstraints.ResourceRules) == 0 {
			allErrs = append(allErrs, field.Required(fldPath.Child("matchConstraints", "resourceRules"), ""))
		}
	}
	if !opts.ignoreMatchConditions {
		allErrs = append(allErrs, validateMatchConditionFields(spec.MatchConditions, fldPath.Child("matchConditions"))...)
	}
	allErrs = append(allErrs, validatePolicyVariables(spec.Variables, fldPath.Child("variables"))...)
	if len(spec.Validations) == 0 && len(spec.AuditAnnotations) == 0 {
		const msg = "validations or auditAnnotations must contain at least one item"
		return append(allErrs, field.Required(fldPath.Child("validations"), msg), field.Required(fldPath.Child("auditAnnotations"), msg))
	}
	for i := range spec.Validations {
		allErrs = append(allErrs, validatePolicyValidation(&spec.Validations[i], fldPath.Child("validations").Index(i))...)
	}
	if len(spec.AuditAnnotations) > maxAuditAnnotations {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("auditAnnotations"), spec.AuditAnnotations,
			fmt.Sprintf("must not have more than %d auditAnnotations", maxAuditAnnotations)))
	}
	keys := sets.New[string]()
	for i := range spec.AuditAnnotations {
		a := &spec.AuditAnnotations[i]
		aPath := fldPath.Child("auditAnnotations").Index(i)
		allErrs = append(allErrs, validateAuditAnnotation(p.Name, a, aPath)...)
		if keys.Has(a.Key) {
			allErrs = append(allErrs, field.Duplicate(aPath.Child("key"), a.Key))
		}
		keys.Insert(a.Key)
	}
	// The expressions must compile in the policy's environment, as
	// upstream checks on write (stored matchConditions excepted, as above).
	return append(allErrs, policy.ValidatePolicyExpressions(p, opts.ignoreMatchConditions)...)
}

// validateParamKind: apiVersion is "version" or "group/version" (a DNS-1123
// subdomain and a DNS-1035 label), kind a DNS-1035 label in any case.
func validateParamKind(pk *admissionregistrationv1.ParamKind, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	avPath := fldPath.Child("apiVersion")
	switch group, version, n := splitParamKindAPIVersion(pk.APIVersion); {
	case pk.APIVersion == "":
		allErrs = append(allErrs, field.Required(avPath, ""))
	case n > 1:
		allErrs = append(allErrs, field.Invalid(avPath, pk.APIVersion, "unexpected GroupVersion string: "+pk.APIVersion))
	default:
		if group != "" {
			if errs := validation.IsDNS1123Subdomain(group); len(errs) > 0 {
				allErrs = append(allErrs, field.Invalid(avPath, group, strings.Join(errs, ",")))
			}
		}
		if version == "" {
			allErrs = append(allErrs, field.Invalid(avPath, pk.APIVersion, "version must be specified"))
		} else if errs := validation.IsDNS1035Label(version); len(errs) > 0 {
			allErrs = append(allErrs, field.Invalid(avPath, version, strings.Join(errs, ",")))
		}
	}
	if pk.Kind == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("kind"), ""))
	} else if errs := validation.IsDNS1035Label(strings.ToLower(pk.Kind)); len(errs) > 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("kind"), pk.Kind, "may have mixed case, but should otherwise match: "+strings.Join(errs, ",")))
	}
	return allErrs
}

// splitParamKindAPIVersion splits "group/version" or "version" as
// upstream does ("/" is neither); slashes is the number of "/" in it.
func splitParamKindAPIVersion(av string) (group, version string, slashes int) {
	slashes = strings.Count(av, "/")
	if av == "/" || slashes > 1 {
		return "", "", slashes
	}
	if g, v, ok := strings.Cut(av, "/"); ok {
		return g, v, slashes
	}
	return "", av, slashes
}

// validateMatchResources checks a policy's matchConstraints or a binding's
// matchResources (defaulted, so matchPolicy and the selectors are set
// unless a client cleared them in a way defaulting does not see).
// Selectors are strict: these types came after upstream's relaxation for
// stored webhooks.
func validateMatchResources(m *admissionregistrationv1.MatchResources, fldPath *field.Path) field.ErrorList {
	if m == nil {
		return nil
	}
	var allErrs field.ErrorList
	switch {
	case m.MatchPolicy == nil:
		allErrs = append(allErrs, field.Required(fldPath.Child("matchPolicy"), ""))
	case !slices.Contains(supportedMatchPolicies, *m.MatchPolicy):
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("matchPolicy"), *m.MatchPolicy, supportedMatchPolicies))
	}
	for _, sel := range []struct {
		name string
		sel  *metav1.LabelSelector
	}{{"namespaceSelector", m.NamespaceSelector}, {"objectSelector", m.ObjectSelector}} {
		if sel.sel == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child(sel.name), ""))
			continue
		}
		allErrs = append(allErrs, validateLabelSelector(sel.sel, fldPath.Child(sel.name))...)
	}
	for i := range m.ResourceRules {
		allErrs = append(allErrs, validateNamedRuleWithOperations(&m.ResourceRules[i], fldPath.Child("resourceRules").Index(i))...)
	}
	for i := range m.ExcludeResourceRules {
		allErrs = append(allErrs, validateNamedRuleWithOperations(&m.ExcludeResourceRules[i], fldPath.Child("excludeResourceRules").Index(i))...)
	}
	return allErrs
}

// validateNamedRuleWithOperations: a webhook rule plus resourceNames, each
// a unique path segment.
func validateNamedRuleWithOperations(r *admissionregistrationv1.NamedRuleWithOperations, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	seen := sets.New[string]()
	for i, name := range r.ResourceNames {
		p := fldPath.Child("resourceNames").Index(i)
		for _, msg := range apipath.ValidatePathSegmentName(name, false) {
			allErrs = append(allErrs, field.Invalid(p, name, msg))
		}
		if seen.Has(name) {
			allErrs = append(allErrs, field.Duplicate(p, name))
		}
		seen.Insert(name)
	}
	return append(allErrs, validateRuleWithOperations(&r.RuleWithOperations, fldPath)...)
}

// validatePolicyVariables: each a CEL identifier with an expression. As
// upstream, a repeated name is not refused (a later variable shadows an
// earlier one).
func validatePolicyVariables(vars []admissionregistrationv1.Variable, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	// Upstream does not refuse a repeated name (a later variable shadows
	// an earlier one); neither does skiff.
	for i, v := range vars {
		p := fldPath.Index(i)
		switch {
		case strings.TrimSpace(v.Name) == "":
			allErrs = append(allErrs, field.Required(p.Child("name"), "name is not specified"))
		case !isCELIdentifier(v.Name):
			allErrs = append(allErrs, field.Invalid(p.Child("name"), v.Name, "name is not a valid CEL identifier"))
		}
		if strings.TrimSpace(v.Expression) == "" {
			allErrs = append(allErrs, field.Required(p.Child("expression"), "expression is not specified"))
		}
	}
	return allErrs
}

// isCELIdentifier reports whether name is a CEL IDENT: [_a-zA-Z][_a-zA-Z0-9]*
// and not a reserved word.
func isCELIdentifier(name string) bool {
	return celIdentifier.MatchString(name) && !celReserved.Has(name)
}

// validatePolicyValidation: an expression; a messageExpression and a
// message, when given, not blank; a message on one line; a known reason.
func validatePolicyValidation(v *admissionregistrationv1.Validation, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if strings.TrimSpace(v.Expression) == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("expression"), "expression is not specified"))
	}
	if v.MessageExpression != "" && strings.TrimSpace(v.MessageExpression) == "" {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("messageExpression"), v.MessageExpression, "must be non-empty if specified"))
	}
	msg := strings.TrimSpace(v.Message)
	switch {
	case v.Message != "" && msg == "":
		allErrs = append(allErrs, field.Invalid(fldPath.Child("message"), v.Message, "message must be non-empty if specified"))
	case newlines.MatchString(msg):
		allErrs = append(allErrs, field.Invalid(fldPath.Child("message"), v.Message, "message must not contain line breaks"))
	}
	if v.Reason != nil && !slices.Contains(supportedValidationReasons, *v.Reason) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("reason"), *v.Reason, supportedValidationReasons))
	}
	return allErrs
}

// validateAuditAnnotation: "<policy name>/<key>" is a qualified name (the
// audit annotation's key), and valueExpression is given and at most 5KiB.
func validateAuditAnnotation(policyName string, a *admissionregistrationv1.AuditAnnotation, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if policyName != "" {
		allErrs = append(allErrs, validateQualifiedName(policyName+"/"+a.Key, fldPath.Child("key"))...)
	} else {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("key"), a.Key, "requires metadata.name be non-empty"))
	}
	switch value := strings.TrimSpace(a.ValueExpression); {
	case value == "":
		allErrs = append(allErrs, field.Required(fldPath.Child("valueExpression"), "valueExpression is not specified"))
	case len(value) > maxAuditAnnotationValueExpressionLength:
		// Required, as upstream reports it.
		allErrs = append(allErrs, field.Required(fldPath.Child("valueExpression"),
			fmt.Sprintf("must not exceed %d bytes in length", maxAuditAnnotationValueExpressionLength)))
	}
	return allErrs
}

// validatePolicyStatus checks what a status writer may set:
// typeChecking's expression warnings (a warning, and a fieldRef that
// parses as JSONPath) and the conditions.
func validatePolicyStatus(st *admissionregistrationv1.ValidatingAdmissionPolicyStatus, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if st.TypeChecking != nil {
		for i, w := range st.TypeChecking.ExpressionWarnings {
			p := fldPath.Child("typeChecking", "expressionWarnings").Index(i)
			if w.Warning == "" {
				allErrs = append(allErrs, field.Required(p.Child("warning"), ""))
			}
			if ref := strings.TrimSpace(w.FieldRef); ref == "" {
				allErrs = append(allErrs, field.Required(p.Child("fieldRef"), ""))
			} else if err := jsonpath.New("spec").Parse("{" + ref + "}"); err != nil {
				allErrs = append(allErrs, field.Invalid(p.Child("fieldRef"), ref, fmt.Sprintf("invalid JSONPath: %v", err)))
			}
		}
	}
	return append(allErrs, metav1validation.ValidateConditions(st.Conditions, fldPath.Child("conditions"))...)
}

// validateValidatingAdmissionPolicyBinding validates a binding's spec, on
// create and update alike, as upstream: policyName (a DNS-1123 subdomain),
// paramRef, matchResources and validationActions.
func validateValidatingAdmissionPolicyBinding(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) field.ErrorList {
	var allErrs field.ErrorList
	spec := &b.Spec
	fldPath := field.NewPath("spec")
	if spec.PolicyName == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("policyName"), ""))
	} else {
		for _, msg := range registry.NameIsDNSSubdomain(spec.PolicyName, false) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("policyName"), spec.PolicyName, msg))
		}
	}
	allErrs = append(allErrs, validateParamRef(spec.ParamRef, fldPath.Child("paramRef"))...)
	allErrs = append(allErrs, validateMatchResources(spec.MatchResources, fldPath.Child("matchResources"))...)
	return append(allErrs, validateValidationActions(spec.ValidationActions, fldPath.Child("validationActions"))...)
}

// validateParamRef: exactly one of name (a path segment) and selector;
// parameterNotFoundAction Deny or Allow, required in v1.
func validateParamRef(pr *admissionregistrationv1.ParamRef, fldPath *field.Path) field.ErrorList {
	if pr == nil {
		return nil
	}
	var allErrs field.ErrorList
	const exclusive = "name and selector are mutually exclusive"
	if pr.Name != "" {
		for _, msg := range apipath.ValidatePathSegmentName(pr.Name, false) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("name"), pr.Name, msg))
		}
		if pr.Selector != nil {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("name"), exclusive))
		}
	}
	if pr.Selector != nil {
		allErrs = append(allErrs, validateLabelSelector(pr.Selector, fldPath.Child("selector"))...)
		if pr.Name != "" {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("selector"), exclusive))
		}
	}
	if pr.Name == "" && pr.Selector == nil {
		allErrs = append(allErrs, field.Required(fldPath, "one of name or selector must be specified"))
	}
	switch a := pr.ParameterNotFoundAction; {
	case a == nil || *a == "":
		allErrs = append(allErrs, field.Required(fldPath.Child("parameterNotFoundAction"), ""))
	case !slices.Contains(supportedParameterNotFoundActions, *a):
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("parameterNotFoundAction"), *a, supportedParameterNotFoundActions))
	}
	return allErrs
}

// validateValidationActions: at least one; each Deny, Warn or Audit, once;
// not Deny with Warn.
func validateValidationActions(actions []admissionregistrationv1.ValidationAction, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	seen := sets.New[admissionregistrationv1.ValidationAction]()
	for i, a := range actions {
		if !slices.Contains(supportedValidationActions, a) {
			allErrs = append(allErrs, field.NotSupported(fldPath.Index(i), a, supportedValidationActions))
		}
		if seen.Has(a) {
			allErrs = append(allErrs, field.Duplicate(fldPath.Index(i), a))
		}
		seen.Insert(a)
	}
	if seen.Has(admissionregistrationv1.Deny) && seen.Has(admissionregistrationv1.Warn) {
		allErrs = append(allErrs, field.Invalid(fldPath, actions,
			"must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"))
	}
	if seen.Len() == 0 {
		allErrs = append(allErrs, field.Required(fldPath, "at least one validation action is required"))
	}
	return allErrs
}
