package builtin

import (
	"context"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	flowcontrolv1beta3 "k8s.io/api/flowcontrol/v1beta3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/flowcontrol"
	"github.com/skiff-dev/skiff/internal/registry"
)

const flowGroup = "flowcontrol.apiserver.k8s.io"

// errDetails renders field errors as "<type> <field>: <detail>".
func errDetails(errs field.ErrorList) []string {
	out := []string{}
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field+": "+e.Detail)
	}
	return out
}

func testFlowSchema() *flowcontrolv1.FlowSchema {
	return &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: "system-foo"},
		Spec: flowcontrolv1.FlowSchemaSpec{
			MatchingPrecedence:         50,
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "system-bar"},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: "noxu"}}},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{
					Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}, Namespaces: []string{"*"},
				}},
			}},
		},
	}
}

func testPriorityLevel() *flowcontrolv1.PriorityLevelConfiguration {
	return &flowcontrolv1.PriorityLevelConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "system-foo"},
		Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementLimited,
			Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: ptr.To[int32](100),
				LimitResponse: flowcontrolv1.LimitResponse{
					Type:    flowcontrolv1.LimitResponseTypeQueue,
					Queuing: &flowcontrolv1.QueuingConfiguration{Queues: 512, HandSize: 4, QueueLengthLimit: 100},
				},
			},
		},
	}
}

// The bootstrap configuration must pass validation and be already
// defaulted: the ensurer compares it with stored objects as it is.
func TestFlowcontrolBootstrapValidAndDefaulted(t *testing.T) {
	mandatory, suggested := flowcontrol.Bootstrap()
	for _, obj := range append(mandatory, suggested...) {
		var r = groupResource(t, flowGroup, "flowschemas")
		if _, ok := obj.(*flowcontrolv1.PriorityLevelConfiguration); ok {
			r = groupResource(t, flowGroup, "prioritylevelconfigurations")
		}
		defaulted := obj.DeepCopyObject()
		r.Strategy.Default(defaulted)
		if diff := cmp.Diff(obj, defaulted); diff != "" {
			t.Errorf("%T is not defaulted (-bootstrap +defaulted):\n%s", obj, diff)
		}
		if errs := create(t, r, obj.DeepCopyObject()); len(errs) != 0 {
			t.Errorf("%T: %v", obj, errs)
		}
	}
}

func TestFlowSchemaDefaults(t *testing.T) {
	r := groupResource(t, flowGroup, "flowschemas")
	fs := testFlowSchema()
	fs.Spec.MatchingPrecedence = 0
	checkDefaultIdempotent(t, r, fs)
	r.Strategy.Default(fs)
	if fs.Spec.MatchingPrecedence != 1000 {
		t.Errorf("matchingPrecedence = %d, want 1000", fs.Spec.MatchingPrecedence)
	}
}

func TestFlowSchemaValidation(t *testing.T) {
	r := groupResource(t, flowGroup, "flowschemas")
	rule := func(fs *flowcontrolv1.FlowSchema) *flowcontrolv1.PolicyRulesWithSubjects { return &fs.Spec.Rules[0] }
	tests := []struct {
		name   string
		mutate func(fs *flowcontrolv1.FlowSchema)
		want   []string
	}{
		{"valid", func(*flowcontrolv1.FlowSchema) {}, []string{}},
		{"no rules at all", func(fs *flowcontrolv1.FlowSchema) {
			rule(fs).ResourceRules = nil
		}, []string{"FieldValueRequired spec.rules[0]: at least one of resourceRules and nonResourceRules has to be non-empty"}},
		{"no subjects", func(fs *flowcontrolv1.FlowSchema) { rule(fs).Subjects = nil },
			[]string{"FieldValueRequired spec.rules[0].subjects: subjects must contain at least one value"}},
		{"malformed service account union", func(fs *flowcontrolv1.FlowSchema) {
			rule(fs).Subjects[0] = flowcontrolv1.Subject{Kind: flowcontrolv1.SubjectKindServiceAccount,
				User: &flowcontrolv1.UserSubject{Name: "fred"}, Group: &flowcontrolv1.GroupSubject{Name: "fred"}}
		}, []string{
			"FieldValueRequired spec.rules[0].subjects[0].serviceAccount: serviceAccount is required when subject kind is 'ServiceAccount'",
			"FieldValueForbidden spec.rules[0].subjects[0].user: user is forbidden when subject kind is not 'User'",
			"FieldValueForbidden spec.rules[0].subjects[0].group: group is forbidden when subject kind is not 'Group'",
		}},
		{"service account without namespace", func(fs *flowcontrolv1.FlowSchema) {
			rule(fs).Subjects[0] = flowcontrolv1.Subject{Kind: flowcontrolv1.SubjectKindServiceAccount,
				ServiceAccount: &flowcontrolv1.ServiceAccountSubject{Name: "noxu"}}
		}, []string{"FieldValueRequired spec.rules[0].subjects[0].serviceAccount.namespace: must specify namespace for service account"}},
		{"user without name", func(fs *flowcontrolv1.FlowSchema) { rule(fs).Subjects[0].User.Name = "" },
			[]string{"FieldValueRequired spec.rules[0].subjects[0].user.name: "}},
		{"unknown subject kind", func(fs *flowcontrolv1.FlowSchema) { rule(fs).Subjects[0].Kind = "FooKind" },
			[]string{`FieldValueNotSupported spec.rules[0].subjects[0].kind: supported values: "Group", "ServiceAccount", "User"`}},
		{"mixed wildcards", func(fs *flowcontrolv1.FlowSchema) {
			rr := &rule(fs).ResourceRules[0]
			rr.Verbs, rr.APIGroups, rr.Resources = []string{"*", "create"}, []string{"*", "tak"}, []string{"*", "tok"}
		}, []string{
			"FieldValueInvalid spec.rules[0].resourceRules[0].verbs: if '*' is present, must not specify other verbs",
			"FieldValueInvalid spec.rules[0].resourceRules[0].apiGroups: if '*' is present, must not specify other api groups",
			"FieldValueInvalid spec.rules[0].resourceRules[0].resources: if '*' is present, must not specify other resources",
		}},
		{"unsupported verb", func(fs *flowcontrolv1.FlowSchema) { rule(fs).ResourceRules[0].Verbs = []string{"feed"} },
			[]string{`FieldValueNotSupported spec.rules[0].resourceRules[0].verbs: supported values: "create", "delete", "deletecollection", "get", "list", "patch", "proxy", "update", "watch"`}},
		{"no namespaces, not cluster scoped", func(fs *flowcontrolv1.FlowSchema) { rule(fs).ResourceRules[0].Namespaces = nil },
			[]string{"FieldValueRequired spec.rules[0].resourceRules[0].namespaces: resource rules that are not cluster scoped must supply at least one namespace"}},
		{"cluster scope without namespaces", func(fs *flowcontrolv1.FlowSchema) {
			rule(fs).ResourceRules[0].Namespaces, rule(fs).ResourceRules[0].ClusterScope = nil, true
		}, []string{}},
		{"every namespace and a particular one", func(fs *flowcontrolv1.FlowSchema) {
			rule(fs).ResourceRules[0].Namespaces = []string{"foo", "*"}
		}, []string{"FieldValueInvalid spec.rules[0].resourceRules[0].namespaces: if '*' is present, must not specify other namespaces"}},
		{"bad namespace", func(fs *flowcontrolv1.FlowSchema) { rule(fs).ResourceRules[0].Namespaces = []string{"-foo"} },
			[]string{"FieldValueInvalid spec.rules[0].resourceRules[0].namespaces[0]: each member of this list must be '*' or a DNS-1123 label; " +
				"a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"}},
		{"non-resource URLs", func(fs *flowcontrolv1.FlowSchema) {
			rule(fs).NonResourceRules = []flowcontrolv1.NonResourcePolicyRule{
				{Verbs: []string{"*"}, NonResourceURLs: []string{"*", "tik"}},
				{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz/*", "/", "foo", "/a b", "//", "/health*", "/*/*", ""}},
			}
		}, []string{
			"FieldValueInvalid spec.rules[0].nonResourceRules[0].nonResourceURLs: if '*' is present, must not specify other non-resource URLs",
			"FieldValueInvalid spec.rules[0].nonResourceRules[1].nonResourceURLs[2]: must start with slash",
			"FieldValueInvalid spec.rules[0].nonResourceRules[1].nonResourceURLs[3]: must not contain white-space",
			"FieldValueInvalid spec.rules[0].nonResourceRules[1].nonResourceURLs[4]: must not contain double slash",
			"FieldValueInvalid spec.rules[0].nonResourceRules[1].nonResourceURLs[5]: wildcard can only do suffix matching",
			"FieldValueInvalid spec.rules[0].nonResourceRules[1].nonResourceURLs[6]: wildcard can only do suffix matching",
			"FieldValueInvalid spec.rules[0].nonResourceRules[1].nonResourceURLs[7]: must not be empty",
		}},
		{"bad priority level name", func(fs *flowcontrolv1.FlowSchema) { fs.Spec.PriorityLevelConfiguration.Name = "system+++$$" },
			[]string{"FieldValueInvalid spec.priorityLevelConfiguration.name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"}},
		{"no priority level", func(fs *flowcontrolv1.FlowSchema) { fs.Spec.PriorityLevelConfiguration.Name = "" },
			[]string{"FieldValueRequired spec.priorityLevelConfiguration.name: must reference a priority level"}},
		{"precedence above 10000", func(fs *flowcontrolv1.FlowSchema) { fs.Spec.MatchingPrecedence = 10001 },
			[]string{"FieldValueInvalid spec.matchingPrecedence: must not be greater than 10000"}},
		{"negative precedence", func(fs *flowcontrolv1.FlowSchema) { fs.Spec.MatchingPrecedence = -1 },
			[]string{"FieldValueInvalid spec.matchingPrecedence: must be a positive value"}},
		{"precedence 1 is exempt's", func(fs *flowcontrolv1.FlowSchema) { fs.Spec.MatchingPrecedence = 1 },
			[]string{"FieldValueInvalid spec.matchingPrecedence: only the schema named 'exempt' may have matchingPrecedence 1"}},
		{"unknown distinguisher", func(fs *flowcontrolv1.FlowSchema) {
			fs.Spec.DistinguisherMethod = &flowcontrolv1.FlowDistinguisherMethod{Type: "ByColor"}
		}, []string{`FieldValueNotSupported spec.distinguisherMethod.type: supported values: "ByNamespace", "ByUser"`}},
		{"mandatory exempt changed", func(fs *flowcontrolv1.FlowSchema) {
			*fs = *flowcontrol.MandatoryFlowSchema("exempt")
			fs.Spec.Rules[0].NonResourceRules[0].NonResourceURLs = []string{"/"}
		}, []string{"FieldValueInvalid spec: spec of 'exempt' must equal the fixed value"}},
		{"mandatory catch-all changed", func(fs *flowcontrolv1.FlowSchema) {
			*fs = *flowcontrol.MandatoryFlowSchema("catch-all")
			fs.Spec.DistinguisherMethod = nil
		}, []string{"FieldValueInvalid spec: spec of 'catch-all' must equal the fixed value"}},
		{"mandatory catch-all as bootstrapped", func(fs *flowcontrolv1.FlowSchema) {
			*fs = *flowcontrol.MandatoryFlowSchema("catch-all")
		}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := testFlowSchema()
			tt.mutate(fs)
			if diff := cmp.Diff(tt.want, errDetails(create(t, r, fs))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFlowSchemaStatus(t *testing.T) {
	r := groupResource(t, flowGroup, "flowschemas")
	fs := testFlowSchema()
	fs.Status.Conditions = []flowcontrolv1.FlowSchemaCondition{{Type: "Dangling", Status: "True"}}
	r.Strategy.PrepareForCreate(context.Background(), fs)
	if len(fs.Status.Conditions) != 0 {
		t.Errorf("create kept status %+v", fs.Status)
	}
	tests := []struct {
		name  string
		conds []flowcontrolv1.FlowSchemaCondition
		want  []string
	}{
		{"none", nil, []string{}},
		{"two types", []flowcontrolv1.FlowSchemaCondition{{Type: "Dangling"}, {Type: "Other"}}, []string{}},
		{"duplicate", []flowcontrolv1.FlowSchemaCondition{{Type: "1"}, {Type: "1"}},
			[]string{`FieldValueDuplicate status.conditions[1].type: `}},
		{"empty type", []flowcontrolv1.FlowSchemaCondition{{Type: ""}},
			[]string{"FieldValueRequired status.conditions[0].type: must not be empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := testFlowSchema()
			fs := old.DeepCopy()
			fs.Status.Conditions = tt.conds
			if diff := cmp.Diff(tt.want, errDetails(r.Strategy.ValidateStatusUpdate(context.Background(), fs, old))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPriorityLevelDefaults(t *testing.T) {
	r := groupResource(t, flowGroup, "prioritylevelconfigurations")
	tests := []struct {
		name string
		spec flowcontrolv1.PriorityLevelConfigurationSpec
		want flowcontrolv1.PriorityLevelConfigurationSpec
	}{
		{
			name: "limited, unset shares and queuing",
			spec: flowcontrolv1.PriorityLevelConfigurationSpec{Type: "Limited", Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				LimitResponse: flowcontrolv1.LimitResponse{Type: "Queue", Queuing: &flowcontrolv1.QueuingConfiguration{}},
			}},
			want: flowcontrolv1.PriorityLevelConfigurationSpec{Type: "Limited", Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: ptr.To[int32](30), LendablePercent: ptr.To[int32](0),
				LimitResponse: flowcontrolv1.LimitResponse{Type: "Queue", Queuing: &flowcontrolv1.QueuingConfiguration{Queues: 64, HandSize: 8, QueueLengthLimit: 50}},
			}},
		},
		{
			name: "limited, explicit zero shares stay zero",
			spec: flowcontrolv1.PriorityLevelConfigurationSpec{Type: "Limited", Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: ptr.To[int32](0), LendablePercent: ptr.To[int32](10),
				LimitResponse: flowcontrolv1.LimitResponse{Type: "Reject"},
			}},
			want: flowcontrolv1.PriorityLevelConfigurationSpec{Type: "Limited", Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: ptr.To[int32](0), LendablePercent: ptr.To[int32](10),
				LimitResponse: flowcontrolv1.LimitResponse{Type: "Reject"},
			}},
		},
		{
			name: "limited, partial queuing",
			spec: flowcontrolv1.PriorityLevelConfigurationSpec{Type: "Limited", Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: ptr.To[int32](5),
				LimitResponse:            flowcontrolv1.LimitResponse{Type: "Queue", Queuing: &flowcontrolv1.QueuingConfiguration{Queues: 16}},
			}},
			want: flowcontrolv1.PriorityLevelConfigurationSpec{Type: "Limited", Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: ptr.To[int32](5), LendablePercent: ptr.To[int32](0),
				LimitResponse: flowcontrolv1.LimitResponse{Type: "Queue", Queuing: &flowcontrolv1.QueuingConfiguration{Queues: 16, HandSize: 8, QueueLengthLimit: 50}},
			}},
		},
		{
			name: "exempt",
			spec: flowcontrolv1.PriorityLevelConfigurationSpec{Type: "Exempt", Exempt: &flowcontrolv1.ExemptPriorityLevelConfiguration{}},
			want: flowcontrolv1.PriorityLevelConfigurationSpec{Type: "Exempt", Exempt: &flowcontrolv1.ExemptPriorityLevelConfiguration{
				NominalConcurrencyShares: ptr.To[int32](0), LendablePercent: ptr.To[int32](0),
			}},
		},
		{
			name: "exempt without exempt section",
			spec: flowcontrolv1.PriorityLevelConfigurationSpec{Type: "Exempt"},
			want: flowcontrolv1.PriorityLevelConfigurationSpec{Type: "Exempt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := &flowcontrolv1.PriorityLevelConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: tt.spec}
			checkDefaultIdempotent(t, r, pl)
			r.Strategy.Default(pl)
			if diff := cmp.Diff(tt.want, pl.Spec); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPriorityLevelValidation(t *testing.T) {
	r := groupResource(t, flowGroup, "prioritylevelconfigurations")
	limited := func(pl *flowcontrolv1.PriorityLevelConfiguration) *flowcontrolv1.LimitedPriorityLevelConfiguration {
		return pl.Spec.Limited
	}
	queuing := func(pl *flowcontrolv1.PriorityLevelConfiguration) *flowcontrolv1.QueuingConfiguration {
		return pl.Spec.Limited.LimitResponse.Queuing
	}
	mandatory := func(name string, mutate func(*flowcontrolv1.PriorityLevelConfiguration)) func(*flowcontrolv1.PriorityLevelConfiguration) {
		return func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			*pl = *flowcontrol.MandatoryPriorityLevelConfiguration(name)
			mutate(pl)
		}
	}
	reject := flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeReject}
	tests := []struct {
		name   string
		mutate func(pl *flowcontrolv1.PriorityLevelConfiguration)
		want   []string
	}{
		{"valid", func(*flowcontrolv1.PriorityLevelConfiguration) {}, []string{}},
		{"zero shares", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			limited(pl).NominalConcurrencyShares = ptr.To[int32](0)
		}, []string{}},
		{"negative shares", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			limited(pl).NominalConcurrencyShares = ptr.To[int32](-1)
		},
			[]string{"FieldValueInvalid spec.limited.nominalConcurrencyShares: must be a non-negative integer"}},
		{"lendable and borrowing percents", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			limited(pl).LendablePercent, limited(pl).BorrowingLimitPercent = ptr.To[int32](101), ptr.To[int32](-1)
		}, []string{
			"FieldValueInvalid spec.limited.lendablePercent: must be between 0 and 100, inclusive",
			"FieldValueInvalid spec.limited.borrowingLimitPercent: if specified, must be a non-negative integer",
		}},
		{"limited needs details", func(pl *flowcontrolv1.PriorityLevelConfiguration) { pl.Spec.Limited = nil },
			[]string{"FieldValueRequired spec.limited: must not be empty when type is Limited"}},
		{"limited with exempt section", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Spec.Exempt = &flowcontrolv1.ExemptPriorityLevelConfiguration{}
		}, []string{"FieldValueForbidden spec.exempt: must be nil if the type is Limited"}},
		{"only exempt may be Exempt", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Spec = flowcontrolv1.PriorityLevelConfigurationSpec{Type: flowcontrolv1.PriorityLevelEnablementExempt}
		}, []string{"FieldValueInvalid spec.type: type must be 'Exempt' if and only if name is 'exempt'"}},
		{"unknown type", func(pl *flowcontrolv1.PriorityLevelConfiguration) { pl.Spec.Type = "Bogus" }, []string{
			"FieldValueNotSupported spec.type: supported values: \"Exempt\", \"Limited\"",
		}},
		{"queuing with reject", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			limited(pl).LimitResponse.Type = flowcontrolv1.LimitResponseTypeReject
		}, []string{"FieldValueForbidden spec.limited.limitResponse.queuing: must be nil if limited.limitResponse.type is not Limited"}},
		{"queue without queuing", func(pl *flowcontrolv1.PriorityLevelConfiguration) { limited(pl).LimitResponse.Queuing = nil },
			[]string{"FieldValueRequired spec.limited.limitResponse.queuing: must not be empty if limited.limitResponse.type is Limited"}},
		{"unknown limit response", func(pl *flowcontrolv1.PriorityLevelConfiguration) { limited(pl).LimitResponse.Type = "Drop" },
			[]string{"FieldValueNotSupported spec.limited.limitResponse.type: supported values: \"Queue\", \"Reject\""}},
		{"too much entropy 512/8", func(pl *flowcontrolv1.PriorityLevelConfiguration) { queuing(pl).HandSize = 8 },
			[]string{"FieldValueInvalid spec.limited.limitResponse.queuing.handSize: required entropy bits of deckSize 512 and handSize 8 should not be greater than 60"}},
		{"too many queues", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			queuing(pl).Queues, queuing(pl).HandSize = math.MaxInt32, 3
		},
			[]string{
				"FieldValueInvalid spec.limited.limitResponse.queuing.queues: must not be greater than 10000000",
				"FieldValueInvalid spec.limited.limitResponse.queuing.handSize: required entropy bits of deckSize 2147483647 and handSize 3 should not be greater than 60",
			}},
		{"10^7 queues, hand of 2", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			queuing(pl).Queues, queuing(pl).HandSize = 10000000, 2
		}, []string{}},
		{"hand larger than deck", func(pl *flowcontrolv1.PriorityLevelConfiguration) { queuing(pl).Queues, queuing(pl).HandSize = 7, 8 },
			[]string{"FieldValueInvalid spec.limited.limitResponse.queuing.handSize: should not be greater than queues (7)"}},
		{"negative queue length", func(pl *flowcontrolv1.PriorityLevelConfiguration) { queuing(pl).QueueLengthLimit = -1 },
			[]string{"FieldValueInvalid spec.limited.limitResponse.queuing.queueLengthLimit: must be positive"}},
		{"round-trip annotation", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Annotations = map[string]string{flowcontrolv1beta3.PriorityLevelPreserveZeroConcurrencySharesKey: ""}
		}, []string{"FieldValueForbidden metadata.annotations: annotation 'flowcontrol.k8s.io/v1beta3-preserve-zero-concurrency-shares' is forbidden"}},
		{"exempt as bootstrapped", mandatory("exempt", func(*flowcontrolv1.PriorityLevelConfiguration) {}), []string{}},
		{"exempt without exempt section", mandatory("exempt", func(pl *flowcontrolv1.PriorityLevelConfiguration) { pl.Spec.Exempt = nil }), []string{}},
		{"exempt with other exempt values", mandatory("exempt", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Spec.Exempt.NominalConcurrencyShares, pl.Spec.Exempt.LendablePercent = ptr.To[int32](10), ptr.To[int32](10)
		}), []string{}},
		{"exempt with bad exempt values", mandatory("exempt", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Spec.Exempt.NominalConcurrencyShares, pl.Spec.Exempt.LendablePercent = ptr.To[int32](-1), ptr.To[int32](101)
		}), []string{
			"FieldValueInvalid spec.exempt.nominalConcurrencyShares: must be a non-negative integer",
			"FieldValueInvalid spec.exempt.lendablePercent: must be between 0 and 100, inclusive",
		}},
		{"exempt repurposed as limited", mandatory("exempt", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Spec.Type = flowcontrolv1.PriorityLevelEnablementLimited
			pl.Spec.Limited = &flowcontrolv1.LimitedPriorityLevelConfiguration{NominalConcurrencyShares: ptr.To[int32](42), LimitResponse: reject}
		}), []string{
			"FieldValueInvalid spec.type: type must be 'Exempt' if and only if name is 'exempt'",
			"FieldValueForbidden spec.exempt: must be nil if the type is Limited",
			"FieldValueInvalid spec: spec of 'exempt' except the 'spec.exempt' field must equal the fixed value",
		}},
		{"exempt with a limited section", mandatory("exempt", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Spec.Limited = &flowcontrolv1.LimitedPriorityLevelConfiguration{NominalConcurrencyShares: ptr.To[int32](42), LimitResponse: reject}
		}), []string{
			"FieldValueForbidden spec.limited: must be nil if the type is not Limited",
			"FieldValueInvalid spec: spec of 'exempt' except the 'spec.exempt' field must equal the fixed value",
		}},
		{"catch-all as bootstrapped", mandatory("catch-all", func(*flowcontrolv1.PriorityLevelConfiguration) {}), []string{}},
		{"catch-all with defaulted lendablePercent", mandatory("catch-all", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Spec.Limited.LendablePercent = nil
		}), []string{}},
		{"catch-all changed", mandatory("catch-all", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Spec.Limited.NominalConcurrencyShares = ptr.To[int32](42)
		}), []string{"FieldValueInvalid spec: spec of 'catch-all' must equal the fixed value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := testPriorityLevel()
			tt.mutate(pl)
			if diff := cmp.Diff(tt.want, errDetails(create(t, r, pl))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPriorityLevelStatus(t *testing.T) {
	r := groupResource(t, flowGroup, "prioritylevelconfigurations")
	pl := testPriorityLevel()
	pl.Status.Conditions = []flowcontrolv1.PriorityLevelConfigurationCondition{{Type: "A"}}
	r.Strategy.PrepareForCreate(context.Background(), pl)
	if len(pl.Status.Conditions) != 0 {
		t.Errorf("create kept status %+v", pl.Status)
	}
	old := testPriorityLevel()
	pl = old.DeepCopy()
	pl.Status.Conditions = []flowcontrolv1.PriorityLevelConfigurationCondition{{Type: "A"}, {Type: "A"}, {Type: ""}}
	want := []string{"FieldValueDuplicate status.conditions[1].type: ", "FieldValueRequired status.conditions[2].type: must not be empty"}
	if diff := cmp.Diff(want, errDetails(r.Strategy.ValidateStatusUpdate(context.Background(), pl, old))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestFlowcontrolTables(t *testing.T) {
	fsRes := groupResource(t, flowGroup, "flowschemas")
	plRes := groupResource(t, flowGroup, "prioritylevelconfigurations")
	cols := func(r *registry.Table) []string {
		var out []string
		for _, c := range r.Columns {
			out = append(out, c.Name)
		}
		return out
	}
	if diff := cmp.Diff([]string{"Name", "PriorityLevel", "MatchingPrecedence", "DistinguisherMethod", "Age", "MissingPL"}, cols(fsRes.Strategy.Table())); diff != "" {
		t.Errorf("flow schema columns (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Name", "Type", "NominalConcurrencyShares", "Queues", "HandSize", "QueueLengthLimit", "Age"}, cols(plRes.Strategy.Table())); diff != "" {
		t.Errorf("priority level columns (-want +got):\n%s", diff)
	}

	dangling := flowcontrol.MandatoryFlowSchema("catch-all")
	dangling.Status.Conditions = []flowcontrolv1.FlowSchemaCondition{{Type: "Other", Status: "True"}, {Type: "Dangling", Status: "False"}}
	fsTests := []struct {
		name string
		obj  *flowcontrolv1.FlowSchema
		want []any
	}{
		{"catch-all, condition known", dangling, []any{"catch-all", "catch-all", int64(10000), "ByUser", "False"}},
		{"exempt, no condition yet", flowcontrol.MandatoryFlowSchema("exempt"), []any{"exempt", "exempt", int64(1), "<none>", "?"}},
	}
	for _, tt := range fsTests {
		t.Run(tt.name, func(t *testing.T) {
			row := fsRes.Strategy.Table().Row(tt.obj)
			got := append(append([]any{}, row[:4]...), row[5])
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	plTests := []struct {
		name string
		obj  runtime.Object
		want []any
	}{
		{"exempt", flowcontrol.MandatoryPriorityLevelConfiguration("exempt"), []any{"exempt", "Exempt", "<none>", "<none>", "<none>", "<none>"}},
		{"catch-all rejects", flowcontrol.MandatoryPriorityLevelConfiguration("catch-all"), []any{"catch-all", "Limited", int64(5), "<none>", "<none>", "<none>"}},
		{"queuing", testPriorityLevel(), []any{"system-foo", "Limited", int64(100), int64(512), int64(4), int64(100)}},
	}
	for _, tt := range plTests {
		t.Run(tt.name, func(t *testing.T) {
			row := plRes.Strategy.Table().Row(tt.obj)
			if diff := cmp.Diff(tt.want, row[:6]); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFlowSchemaTableOrder(t *testing.T) {
	fsRes := groupResource(t, flowGroup, "flowschemas")
	less := fsRes.Strategy.Table().Less
	if less == nil {
		t.Fatal("FlowSchemas' table has no order")
	}
	fs := func(name string, prec int32) *flowcontrolv1.FlowSchema {
		return &flowcontrolv1.FlowSchema{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: flowcontrolv1.FlowSchemaSpec{MatchingPrecedence: prec}}
	}
	for _, tt := range []struct {
		a, b *flowcontrolv1.FlowSchema
		want bool
	}{
		{fs("z", 1), fs("a", 2), true},
		{fs("a", 2), fs("z", 1), false},
		{fs("a", 5), fs("b", 5), true},
		{fs("b", 5), fs("a", 5), false},
	} {
		if got := less(tt.a, tt.b); got != tt.want {
			t.Errorf("less(%s/%d, %s/%d) = %v, want %v", tt.a.Name, tt.a.Spec.MatchingPrecedence, tt.b.Name, tt.b.Spec.MatchingPrecedence, got, tt.want)
		}
	}
}
