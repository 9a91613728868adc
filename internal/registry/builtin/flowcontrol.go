package builtin

import (
	"fmt"
	"math"
	"slices"
	"strings"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	flowcontrolv1beta3 "k8s.io/api/flowcontrol/v1beta3"
	"k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/flowcontrol"
	"github.com/skiff-dev/skiff/internal/registry"
)

// flowcontrolResources returns flowcontrol.apiserver.k8s.io/v1
// flowschemas and prioritylevelconfigurations: the objects of API priority
// and fairness. skiff stores and keeps them (package flowcontrol) but does
// not queue requests by them.
func flowcontrolResources() []*registry.Resource {
	gv := flowcontrolv1.SchemeGroupVersion
	return []*registry.Resource{
		{
			GVR: gv.WithResource("flowschemas"), Kind: "FlowSchema", ListKind: "FlowSchemaList",
			Singular: "flowschema", Status: true,
			Strategy: flowSchemaStrategy(),
		},
		{
			GVR: gv.WithResource("prioritylevelconfigurations"), Kind: "PriorityLevelConfiguration",
			ListKind: "PriorityLevelConfigurationList", Singular: "prioritylevelconfiguration", Status: true,
			Strategy: priorityLevelStrategy(),
		},
	}
}

// Upstream's v1 defaults and limits.
const (
	flowDefaultMatchingPrecedence     int32 = 1000
	plDefaultNominalConcurrencyShares int32 = 30
	plDefaultQueues                   int32 = 64
	plDefaultHandSize                 int32 = 8
	plDefaultQueueLengthLimit         int32 = 50
	plMaxQueues                       int32 = 10 * 1000 * 1000
	// plMaxHashBits is the entropy shuffle sharding may use (upstream's
	// shufflesharding.MaxHashBits).
	plMaxHashBits = 60
)

// The values upstream accepts, sorted as its NotSupported errors list them.
var (
	flowSubjectKinds      = []string{string(flowcontrolv1.SubjectKindGroup), string(flowcontrolv1.SubjectKindServiceAccount), string(flowcontrolv1.SubjectKindUser)}
	flowVerbs             = []string{"create", "delete", "deletecollection", "get", "list", "patch", "proxy", "update", "watch"}
	flowDistinguishers    = []string{string(flowcontrolv1.FlowDistinguisherMethodByNamespaceType), string(flowcontrolv1.FlowDistinguisherMethodByUserType)}
	priorityLevelTypes    = []string{string(flowcontrolv1.PriorityLevelEnablementExempt), string(flowcontrolv1.PriorityLevelEnablementLimited)}
	limitResponseTypes    = []string{string(flowcontrolv1.LimitResponseTypeQueue), string(flowcontrolv1.LimitResponseTypeReject)}
	flowNamespaceErrIntro = "each member of this list must be '*' or a DNS-1123 label; "
)

// --- FlowSchema -----------------------------------------------------------

func flowSchemaStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*flowcontrolv1.FlowSchema, *flowcontrolv1.FlowSchemaList]{
		New:     func() *flowcontrolv1.FlowSchema { return &flowcontrolv1.FlowSchema{} },
		NewList: func() *flowcontrolv1.FlowSchemaList { return &flowcontrolv1.FlowSchemaList{} },
		PrepareForCreate: func(fs *flowcontrolv1.FlowSchema) {
			fs.Status = flowcontrolv1.FlowSchemaStatus{}
		},
		Default: func(fs *flowcontrolv1.FlowSchema) {
			if fs.Spec.MatchingPrecedence == 0 {
				fs.Spec.MatchingPrecedence = flowDefaultMatchingPrecedence
			}
		},
		Validate: validateFlowSchema,
		ValidateStatusUpdate: func(fs, _ *flowcontrolv1.FlowSchema) field.ErrorList {
			return validateFlowSchemaConditions(fs.Status.Conditions, field.NewPath("status"))
		},
		Table: &registry.TypedTable[*flowcontrolv1.FlowSchema]{
			// Upstream's printer lists FlowSchemas in the order they are
			// matched: by matchingPrecedence, then name.
			Less: func(a, b *flowcontrolv1.FlowSchema) bool {
				if a.Spec.MatchingPrecedence != b.Spec.MatchingPrecedence {
					return a.Spec.MatchingPrecedence < b.Spec.MatchingPrecedence
				}
				return a.Name < b.Name
			},
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("PriorityLevel", flowcontrolv1.PriorityLevelConfigurationReference{}.SwaggerDoc()["name"], 0),
				columnString("MatchingPrecedence", flowcontrolv1.FlowSchemaSpec{}.SwaggerDoc()["matchingPrecedence"], 0),
				columnString("DistinguisherMethod", flowcontrolv1.FlowSchemaSpec{}.SwaggerDoc()["distinguisherMethod"], 0),
				columnAge(),
				columnString("MissingPL", "references a broken or non-existent PriorityLevelConfiguration", 0),
			},
			Row: func(fs *flowcontrolv1.FlowSchema) []any {
				distinguisher := "<none>"
				if fs.Spec.DistinguisherMethod != nil {
					distinguisher = string(fs.Spec.DistinguisherMethod.Type)
				}
				missing := "?"
				for _, c := range fs.Status.Conditions {
					if c.Type == flowcontrolv1.FlowSchemaConditionDangling {
						missing = string(c.Status)
						break
					}
				}
				return []any{fs.Name, fs.Spec.PriorityLevelConfiguration.Name, int64(fs.Spec.MatchingPrecedence),
					distinguisher, cellAge(&fs.ObjectMeta), missing}
			},
		},
	})
}

// validateFlowSchema is upstream's ValidateFlowSchema (metadata aside,
// which the store validates); updates are validated the same way.
func validateFlowSchema(fs *flowcontrolv1.FlowSchema) field.ErrorList {
	specPath := field.NewPath("spec")
	allErrs := validateFlowSchemaSpec(fs.Name, &fs.Spec, specPath)
	if mand := flowcontrol.MandatoryFlowSchema(fs.Name); mand != nil && !equality.Semantic.DeepEqual(fs.Spec, mand.Spec) {
		allErrs = append(allErrs, field.Invalid(specPath, fs.Spec, fmt.Sprintf("spec of '%s' must equal the fixed value", fs.Name)))
	}
	return append(allErrs, validateFlowSchemaConditions(fs.Status.Conditions, field.NewPath("status"))...)
}

func validateFlowSchemaSpec(name string, spec *flowcontrolv1.FlowSchemaSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	precPath := fldPath.Child("matchingPrecedence")
	if spec.MatchingPrecedence <= 0 {
		allErrs = append(allErrs, field.Invalid(precPath, spec.MatchingPrecedence, "must be a positive value"))
	}
	if spec.MatchingPrecedence > flowcontrolv1.FlowSchemaMaxMatchingPrecedence {
		allErrs = append(allErrs, field.Invalid(precPath, spec.MatchingPrecedence, fmt.Sprintf("must not be greater than %v", flowcontrolv1.FlowSchemaMaxMatchingPrecedence)))
	}
	if spec.MatchingPrecedence == 1 && name != flowcontrolv1.FlowSchemaNameExempt {
		allErrs = append(allErrs, field.Invalid(precPath, spec.MatchingPrecedence, "only the schema named 'exempt' may have matchingPrecedence 1"))
	}
	if dm := spec.DistinguisherMethod; dm != nil && !slices.Contains(flowDistinguishers, string(dm.Type)) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("distinguisherMethod", "type"), dm, flowDistinguishers))
	}
	plPath := fldPath.Child("priorityLevelConfiguration", "name")
	if plName := spec.PriorityLevelConfiguration.Name; plName != "" {
		for _, msg := range registry.NameIsDNSSubdomain(plName, false) {
			allErrs = append(allErrs, field.Invalid(plPath, plName, msg))
		}
	} else {
		allErrs = append(allErrs, field.Required(plPath, "must reference a priority level"))
	}
	for i := range spec.Rules {
		allErrs = append(allErrs, validateFlowRules(&spec.Rules[i], fldPath.Child("rules").Index(i))...)
	}
	return allErrs
}

func validateFlowRules(rule *flowcontrolv1.PolicyRulesWithSubjects, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(rule.Subjects) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("subjects"), "subjects must contain at least one value"))
	}
	for i := range rule.Subjects {
		allErrs = append(allErrs, validateFlowSubject(&rule.Subjects[i], fldPath.Child("subjects").Index(i))...)
	}
	if len(rule.ResourceRules) == 0 && len(rule.NonResourceRules) == 0 {
		allErrs = append(allErrs, field.Required(fldPath, "at least one of resourceRules and nonResourceRules has to be non-empty"))
	}
	for i := range rule.ResourceRules {
		allErrs = append(allErrs, validateFlowResourceRule(&rule.ResourceRules[i], fldPath.Child("resourceRules").Index(i))...)
	}
	for i := range rule.NonResourceRules {
		allErrs = append(allErrs, validateFlowNonResourceRule(&rule.NonResourceRules[i], fldPath.Child("nonResourceRules").Index(i))...)
	}
	return allErrs
}

// validateFlowSubject checks the subject union: the member its kind names
// is required and the others are forbidden.
func validateFlowSubject(s *flowcontrolv1.Subject, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	forbidUser := func() {
		if s.User != nil {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("user"), "user is forbidden when subject kind is not 'User'"))
		}
	}
	forbidGroup := func() {
		if s.Group != nil {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("group"), "group is forbidden when subject kind is not 'Group'"))
		}
	}
	forbidServiceAccount := func() {
		if s.ServiceAccount != nil {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("serviceAccount"), "serviceAccount is forbidden when subject kind is not 'ServiceAccount'"))
		}
	}
	switch s.Kind {
	case flowcontrolv1.SubjectKindServiceAccount:
		allErrs = append(allErrs, validateFlowServiceAccount(s.ServiceAccount, fldPath.Child("serviceAccount"))...)
		forbidUser()
		forbidGroup()
	case flowcontrolv1.SubjectKindUser:
		p := fldPath.Child("user")
		switch {
		case s.User == nil:
			allErrs = append(allErrs, field.Required(p, "user is required when subject kind is 'User'"))
		case s.User.Name == "":
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
		}
		forbidServiceAccount()
		forbidGroup()
	case flowcontrolv1.SubjectKindGroup:
		p := fldPath.Child("group")
		switch {
		case s.Group == nil:
			allErrs = append(allErrs, field.Required(p, "group is required when subject kind is 'Group'"))
		case s.Group.Name == "":
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
		}
		forbidServiceAccount()
		forbidUser()
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("kind"), s.Kind, flowSubjectKinds))
	}
	return allErrs
}

func validateFlowServiceAccount(sa *flowcontrolv1.ServiceAccountSubject, fldPath *field.Path) field.ErrorList {
	if sa == nil {
		return field.ErrorList{field.Required(fldPath, "serviceAccount is required when subject kind is 'ServiceAccount'")}
	}
	var allErrs field.ErrorList
	if sa.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	} else if sa.Name != flowcontrolv1.NameAll {
		for _, msg := range apivalidation.ValidateServiceAccountName(sa.Name, false) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("name"), sa.Name, msg))
		}
	}
	if sa.Namespace == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("namespace"), "must specify namespace for service account"))
	} else {
		for _, msg := range apivalidation.ValidateNamespaceName(sa.Namespace, false) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("namespace"), sa.Namespace, msg))
		}
	}
	return allErrs
}

// validateFlowVerbs checks a rule's verbs: required, "*" alone, or
// supported verbs only.
func validateFlowVerbs(verbs []string, fldPath *field.Path) field.ErrorList {
	switch {
	case len(verbs) == 0:
		return field.ErrorList{field.Required(fldPath, "verbs must contain at least one value")}
	case slices.Contains(verbs, "*"):
		if len(verbs) > 1 {
			return field.ErrorList{field.Invalid(fldPath, verbs, "if '*' is present, must not specify other verbs")}
		}
	default:
		for _, v := range verbs {
			if !slices.Contains(flowVerbs, v) {
				return field.ErrorList{field.NotSupported(fldPath, verbs, flowVerbs)}
			}
		}
	}
	return nil
}

func validateFlowResourceRule(rule *flowcontrolv1.ResourcePolicyRule, fldPath *field.Path) field.ErrorList {
	allErrs := validateFlowVerbs(rule.Verbs, fldPath.Child("verbs"))
	if len(rule.APIGroups) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("apiGroups"), "resource rules must supply at least one api group"))
	} else if len(rule.APIGroups) > 1 && slices.Contains(rule.APIGroups, "*") {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("apiGroups"), rule.APIGroups, "if '*' is present, must not specify other api groups"))
	}
	if len(rule.Resources) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("resources"), "resource rules must supply at least one resource"))
	} else if len(rule.Resources) > 1 && slices.Contains(rule.Resources, "*") {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("resources"), rule.Resources, "if '*' is present, must not specify other resources"))
	}
	nsPath := fldPath.Child("namespaces")
	switch {
	case len(rule.Namespaces) == 0 && !rule.ClusterScope:
		allErrs = append(allErrs, field.Required(nsPath, "resource rules that are not cluster scoped must supply at least one namespace"))
	case slices.Contains(rule.Namespaces, flowcontrolv1.NamespaceEvery):
		if len(rule.Namespaces) > 1 {
			allErrs = append(allErrs, field.Invalid(nsPath, rule.Namespaces, "if '*' is present, must not specify other namespaces"))
		}
	default:
		for i, ns := range rule.Namespaces {
			for _, msg := range apivalidation.ValidateNamespaceName(ns, false) {
				allErrs = append(allErrs, field.Invalid(nsPath.Index(i), ns, flowNamespaceErrIntro+msg))
			}
		}
	}
	return allErrs
}

func validateFlowNonResourceRule(rule *flowcontrolv1.NonResourcePolicyRule, fldPath *field.Path) field.ErrorList {
	allErrs := validateFlowVerbs(rule.Verbs, fldPath.Child("verbs"))
	urlPath := fldPath.Child("nonResourceURLs")
	switch {
	case len(rule.NonResourceURLs) == 0:
		allErrs = append(allErrs, field.Required(urlPath, "nonResourceURLs must contain at least one value"))
	case slices.Contains(rule.NonResourceURLs, "*"):
		if len(rule.NonResourceURLs) > 1 {
			allErrs = append(allErrs, field.Invalid(urlPath, rule.NonResourceURLs, "if '*' is present, must not specify other non-resource URLs"))
		}
	default:
		for i, u := range rule.NonResourceURLs {
			if err := validateFlowNonResourceURL(u, urlPath.Index(i)); err != nil {
				allErrs = append(allErrs, err)
			}
		}
	}
	return allErrs
}

// validateFlowNonResourceURL checks one non-resource URL: "/" or a path
// that starts with a slash, has no white space and no double slash, and
// uses "*" only as a final "/*".
func validateFlowNonResourceURL(path string, fldPath *field.Path) *field.Error {
	switch {
	case path == "":
		return field.Invalid(fldPath, path, "must not be empty")
	case path == "/":
		return nil
	case !strings.HasPrefix(path, "/"):
		return field.Invalid(fldPath, path, "must start with slash")
	case strings.Contains(path, " "):
		return field.Invalid(fldPath, path, "must not contain white-space")
	case strings.Contains(path, "//"):
		return field.Invalid(fldPath, path, "must not contain double slash")
	}
	if n := strings.Count(path, "*"); n > 1 || (n == 1 && !strings.HasSuffix(path, "/*")) {
		return field.Invalid(fldPath, path, "wildcard can only do suffix matching")
	}
	return nil
}

func validateFlowSchemaConditions(conds []flowcontrolv1.FlowSchemaCondition, fldPath *field.Path) field.ErrorList {
	types := make([]string, len(conds))
	for i, c := range conds {
		types[i] = string(c.Type)
	}
	return validateFlowConditionTypes(types, fldPath)
}

// validateFlowConditionTypes checks status.conditions: each type set and
// listed once.
func validateFlowConditionTypes(types []string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	seen := map[string]bool{}
	for i, t := range types {
		p := fldPath.Child("conditions").Index(i)
		if seen[t] {
			allErrs = append(allErrs, field.Duplicate(p.Child("type"), t))
		}
		seen[t] = true
		if t == "" {
			allErrs = append(allErrs, field.Required(p.Child("type"), "must not be empty"))
		}
	}
	return allErrs
}

// --- PriorityLevelConfiguration -----------------------------------------------

func priorityLevelStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*flowcontrolv1.PriorityLevelConfiguration, *flowcontrolv1.PriorityLevelConfigurationList]{
		New: func() *flowcontrolv1.PriorityLevelConfiguration { return &flowcontrolv1.PriorityLevelConfiguration{} },
		NewList: func() *flowcontrolv1.PriorityLevelConfigurationList {
			return &flowcontrolv1.PriorityLevelConfigurationList{}
		},
		PrepareForCreate: func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Status = flowcontrolv1.PriorityLevelConfigurationStatus{}
		},
		Default:  defaultPriorityLevel,
		Validate: validatePriorityLevel,
		ValidateStatusUpdate: func(pl, _ *flowcontrolv1.PriorityLevelConfiguration) field.ErrorList {
			return validatePriorityLevelConditions(pl.Status.Conditions, field.NewPath("status"))
		},
		Table: &registry.TypedTable[*flowcontrolv1.PriorityLevelConfiguration]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Type", flowcontrolv1.PriorityLevelConfigurationSpec{}.SwaggerDoc()["type"], 0),
				columnString("NominalConcurrencyShares", flowcontrolv1.LimitedPriorityLevelConfiguration{}.SwaggerDoc()["nominalConcurrencyShares"], 0),
				columnString("Queues", flowcontrolv1.QueuingConfiguration{}.SwaggerDoc()["queues"], 0),
				columnString("HandSize", flowcontrolv1.QueuingConfiguration{}.SwaggerDoc()["handSize"], 0),
				columnString("QueueLengthLimit", flowcontrolv1.QueuingConfiguration{}.SwaggerDoc()["queueLengthLimit"], 0),
				columnAge(),
			},
			Row: func(pl *flowcontrolv1.PriorityLevelConfiguration) []any {
				var shares, queues, handSize, queueLength any = "<none>", "<none>", "<none>", "<none>"
				if l := pl.Spec.Limited; l != nil {
					shares = int64(ptr.Deref(l.NominalConcurrencyShares, 0))
					if q := l.LimitResponse.Queuing; q != nil {
						queues, handSize, queueLength = int64(q.Queues), int64(q.HandSize), int64(q.QueueLengthLimit)
					}
				}
				return []any{pl.Name, string(pl.Spec.Type), shares, queues, handSize, queueLength, cellAge(&pl.ObjectMeta)}
			},
		},
	})
}

// defaultPriorityLevel applies upstream's v1 defaults: a limited level's
// nominalConcurrencyShares is 30 when unset (an explicit 0 stays) and its
// lendablePercent 0; queuing defaults to 64 queues, hand size 8 and queue
// length limit 50 (each when 0); an exempt level's shares and
// lendablePercent are 0 when unset.
func defaultPriorityLevel(pl *flowcontrolv1.PriorityLevelConfiguration) {
	if l := pl.Spec.Limited; l != nil {
		if l.NominalConcurrencyShares == nil {
			l.NominalConcurrencyShares = ptr.To(plDefaultNominalConcurrencyShares)
		}
		if l.LendablePercent == nil {
			l.LendablePercent = ptr.To[int32](0)
		}
		if q := l.LimitResponse.Queuing; q != nil {
			if q.HandSize == 0 {
				q.HandSize = plDefaultHandSize
			}
			if q.Queues == 0 {
				q.Queues = plDefaultQueues
			}
			if q.QueueLengthLimit == 0 {
				q.QueueLengthLimit = plDefaultQueueLengthLimit
			}
		}
	}
	if e := pl.Spec.Exempt; e != nil {
		if e.NominalConcurrencyShares == nil {
			e.NominalConcurrencyShares = ptr.To[int32](0)
		}
		if e.LendablePercent == nil {
			e.LendablePercent = ptr.To[int32](0)
		}
	}
}

// validatePriorityLevel is upstream's ValidatePriorityLevelConfiguration
// for a v1 request (zero nominalConcurrencyShares allowed), metadata
// aside; updates are validated the same way.
func validatePriorityLevel(pl *flowcontrolv1.PriorityLevelConfiguration) field.ErrorList {
	var allErrs field.ErrorList
	// The v1beta3 round-trip annotation never belongs on a stored object.
	if _, ok := pl.Annotations[flowcontrolv1beta3.PriorityLevelPreserveZeroConcurrencySharesKey]; ok {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("metadata", "annotations"),
			fmt.Sprintf("annotation '%s' is forbidden", flowcontrolv1beta3.PriorityLevelPreserveZeroConcurrencySharesKey)))
	}
	specPath := field.NewPath("spec")
	allErrs = append(allErrs, validatePriorityLevelSpec(&pl.Spec, pl.Name, specPath)...)
	allErrs = append(allErrs, validateMandatoryPriorityLevel(pl, specPath)...)
	return append(allErrs, validatePriorityLevelConditions(pl.Status.Conditions, field.NewPath("status"))...)
}

func validatePriorityLevelSpec(spec *flowcontrolv1.PriorityLevelConfigurationSpec, name string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if (name == flowcontrolv1.PriorityLevelConfigurationNameExempt) != (spec.Type == flowcontrolv1.PriorityLevelEnablementExempt) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("type"), spec.Type, "type must be 'Exempt' if and only if name is 'exempt'"))
	}
	switch spec.Type {
	case flowcontrolv1.PriorityLevelEnablementExempt:
		if spec.Limited != nil {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("limited"), "must be nil if the type is not Limited"))
		}
		if e := spec.Exempt; e != nil {
			p := fldPath.Child("exempt")
			if e.NominalConcurrencyShares != nil && *e.NominalConcurrencyShares < 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("nominalConcurrencyShares"), *e.NominalConcurrencyShares, "must be a non-negative integer"))
			}
			allErrs = append(allErrs, validatePLLendablePercent(e.LendablePercent, p.Child("lendablePercent"))...)
		}
	case flowcontrolv1.PriorityLevelEnablementLimited:
		if spec.Exempt != nil {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child("exempt"), "must be nil if the type is Limited"))
		}
		if spec.Limited == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("limited"), "must not be empty when type is Limited"))
		} else {
			allErrs = append(allErrs, validateLimitedPriorityLevel(spec.Limited, fldPath.Child("limited"))...)
		}
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("type"), spec.Type, priorityLevelTypes))
	}
	return allErrs
}

func validateLimitedPriorityLevel(l *flowcontrolv1.LimitedPriorityLevelConfiguration, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if shares := ptr.Deref(l.NominalConcurrencyShares, 0); shares < 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("nominalConcurrencyShares"), shares, "must be a non-negative integer"))
	}
	allErrs = append(allErrs, validatePLLimitResponse(&l.LimitResponse, fldPath.Child("limitResponse"))...)
	allErrs = append(allErrs, validatePLLendablePercent(l.LendablePercent, fldPath.Child("lendablePercent"))...)
	if b := l.BorrowingLimitPercent; b != nil && *b < 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("borrowingLimitPercent"), *b, "if specified, must be a non-negative integer"))
	}
	return allErrs
}

func validatePLLendablePercent(p *int32, fldPath *field.Path) field.ErrorList {
	if p != nil && (*p < 0 || *p > 100) {
		return field.ErrorList{field.Invalid(fldPath, *p, "must be between 0 and 100, inclusive")}
	}
	return nil
}

func validatePLLimitResponse(lr *flowcontrolv1.LimitResponse, fldPath *field.Path) field.ErrorList {
	switch lr.Type {
	case flowcontrolv1.LimitResponseTypeReject:
		if lr.Queuing != nil {
			return field.ErrorList{field.Forbidden(fldPath.Child("queuing"), "must be nil if limited.limitResponse.type is not Limited")}
		}
	case flowcontrolv1.LimitResponseTypeQueue:
		if lr.Queuing == nil {
			return field.ErrorList{field.Required(fldPath.Child("queuing"), "must not be empty if limited.limitResponse.type is Limited")}
		}
		return validatePLQueuing(lr.Queuing, fldPath.Child("queuing"))
	default:
		return field.ErrorList{field.NotSupported(fldPath.Child("type"), lr.Type, limitResponseTypes)}
	}
	return nil
}

// validatePLQueuing checks the queuing parameters, including that shuffle
// sharding of queues by handSize needs at most 60 bits of hash.
func validatePLQueuing(q *flowcontrolv1.QueuingConfiguration, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if q.QueueLengthLimit <= 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("queueLengthLimit"), q.QueueLengthLimit, "must be positive"))
	}
	if q.Queues <= 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("queues"), q.Queues, "must be positive"))
	} else if q.Queues > plMaxQueues {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("queues"), q.Queues, fmt.Sprintf("must not be greater than %d", plMaxQueues)))
	}
	handPath := fldPath.Child("handSize")
	switch {
	case q.HandSize <= 0:
		allErrs = append(allErrs, field.Invalid(handPath, q.HandSize, "must be positive"))
	case q.HandSize > q.Queues:
		allErrs = append(allErrs, field.Invalid(handPath, q.HandSize, fmt.Sprintf("should not be greater than queues (%d)", q.Queues)))
	case plRequiredEntropyBits(q.Queues, q.HandSize) > plMaxHashBits:
		allErrs = append(allErrs, field.Invalid(handPath, q.HandSize,
			fmt.Sprintf("required entropy bits of deckSize %d and handSize %d should not be greater than %d", q.Queues, q.HandSize, plMaxHashBits)))
	}
	return allErrs
}

// plRequiredEntropyBits is upstream's estimate of the hash bits shuffle
// sharding a deck of deckSize into hands of handSize consumes.
func plRequiredEntropyBits(deckSize, handSize int32) int {
	return int(math.Ceil(math.Log2(float64(deckSize)) * float64(handSize)))
}

// validateMandatoryPriorityLevel refuses a spec of "exempt" or "catch-all"
// other than the bootstrap one; the values of spec.exempt of "exempt" are
// the administrator's to change.
func validateMandatoryPriorityLevel(pl *flowcontrolv1.PriorityLevelConfiguration, fldPath *field.Path) field.ErrorList {
	mand := flowcontrol.MandatoryPriorityLevelConfiguration(pl.Name)
	if mand == nil {
		return nil
	}
	if pl.Name == flowcontrolv1.PriorityLevelConfigurationNameExempt {
		have := pl.Spec.DeepCopy()
		have.Exempt = mand.Spec.Exempt
		if !equality.Semantic.DeepEqual(&mand.Spec, have) {
			return field.ErrorList{field.Invalid(fldPath, pl.Spec, fmt.Sprintf("spec of '%s' except the 'spec.exempt' field must equal the fixed value", pl.Name))}
		}
		return nil
	}
	if !equality.Semantic.DeepEqual(pl.Spec, mand.Spec) {
		return field.ErrorList{field.Invalid(fldPath, pl.Spec, fmt.Sprintf("spec of '%s' must equal the fixed value", pl.Name))}
	}
	return nil
}

func validatePriorityLevelConditions(conds []flowcontrolv1.PriorityLevelConfigurationCondition, fldPath *field.Path) field.ErrorList {
	types := make([]string, len(conds))
	for i, c := range conds {
		types[i] = string(c.Type)
	}
	return validateFlowConditionTypes(types, fldPath)
}
