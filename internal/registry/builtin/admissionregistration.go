package builtin

import (
	"fmt"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/admission/webhook"
	"github.com/skiff-dev/skiff/internal/registry"
)

// admissionregistrationResources returns admissionregistration.k8s.io/v1
// validatingwebhookconfigurations and mutatingwebhookconfigurations. They
// only describe webhooks; calling them on writes is package
// admission/webhook's job.
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
	if *match == nil {
		*match = ptr.To(admissionregistrationv1.Equivalent)
	}
	if *nsSel == nil {
		*nsSel = &metav1.LabelSelector{}
	}
	if *objSel == nil {
		*objSel = &metav1.LabelSelector{}
	}
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
	// Expressions must compile (CEL), as upstream checks on write.
	return append(allErrs, webhook.ValidateMatchConditions(fldPath, conds)...)
}
