package builtin

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

const (
	validatingWebhooks = "validatingwebhookconfigurations"
	mutatingWebhooks   = "mutatingwebhookconfigurations"
	admissionGroup     = "admissionregistration.k8s.io"
)

// testValidatingWebhook is a valid webhook (named name) calling a service,
// with nothing left to default.
func testValidatingWebhook(name string) admissionregistrationv1.ValidatingWebhook {
	return admissionregistrationv1.ValidatingWebhook{
		Name: name,
		ClientConfig: admissionregistrationv1.WebhookClientConfig{
			Service:  &admissionregistrationv1.ServiceReference{Namespace: "webhooks", Name: "policy", Path: ptr.To("/validate")},
			CABundle: []byte("not checked"),
		},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods", "pods/status"}},
		}},
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		AdmissionReviewVersions: []string{"v1", "v1beta1"},
		MatchConditions:         []admissionregistrationv1.MatchCondition{{Name: "not-system", Expression: "!request.userInfo.username.startsWith('system:')"}},
	}
}

func testValidatingConfig() *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "policy"},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{testValidatingWebhook("pods.policy.example.com")},
	}
}

// testMutatingConfig is testValidatingConfig's webhook as a mutating one.
func testMutatingConfig() *admissionregistrationv1.MutatingWebhookConfiguration {
	v := testValidatingWebhook("pods.inject.example.com")
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "inject"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: v.Name, ClientConfig: v.ClientConfig, Rules: v.Rules, SideEffects: v.SideEffects,
			AdmissionReviewVersions: v.AdmissionReviewVersions, MatchConditions: v.MatchConditions,
		}},
	}
}

func TestWebhookConfigurationResources(t *testing.T) {
	tests := []struct{ resource, kind string }{
		{validatingWebhooks, "ValidatingWebhookConfiguration"},
		{mutatingWebhooks, "MutatingWebhookConfiguration"},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			r := groupResource(t, admissionGroup, tt.resource)
			if r.GVR.Version != "v1" || r.Kind != tt.kind || r.Namespaced || r.Status || r.Scale != nil || len(r.ShortNames) != 0 {
				t.Errorf("description: %+v", r)
			}
			if diff := cmp.Diff([]string{"api-extensions"}, r.Categories); diff != "" {
				t.Errorf("categories (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWebhookDefaults(t *testing.T) {
	bare := admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "ns", Name: "svc"}}
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*"}},
	}}
	wantRules := []admissionregistrationv1.RuleWithOperations{{
		Operations: rules[0].Operations,
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*"}, Scope: ptr.To(admissionregistrationv1.AllScopes)},
	}}
	wantConfig := admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "ns", Name: "svc", Port: ptr.To[int32](443)}}
	explicit := admissionregistrationv1.MutatingWebhook{
		Name: "explicit.example.com",
		ClientConfig: admissionregistrationv1.WebhookClientConfig{
			Service: &admissionregistrationv1.ServiceReference{Namespace: "ns", Name: "svc", Port: ptr.To[int32](8443)},
		},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}, Scope: ptr.To(admissionregistrationv1.NamespacedScope)},
		}},
		FailurePolicy:      ptr.To(admissionregistrationv1.Ignore),
		MatchPolicy:        ptr.To(admissionregistrationv1.Exact),
		NamespaceSelector:  &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
		ObjectSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{"c": "d"}},
		TimeoutSeconds:     ptr.To[int32](3),
		ReinvocationPolicy: ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
	}

	t.Run("validating", func(t *testing.T) {
		r := groupResource(t, admissionGroup, validatingWebhooks)
		c := &admissionregistrationv1.ValidatingWebhookConfiguration{Webhooks: []admissionregistrationv1.ValidatingWebhook{
			{Name: "a.example.com", ClientConfig: *bare.DeepCopy(), Rules: rules},
			{Name: "b.example.com", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://example.com/x")}},
		}}
		checkDefaultIdempotent(t, r, c)
		r.Strategy.Default(c)
		want := []admissionregistrationv1.ValidatingWebhook{
			{
				Name: "a.example.com", ClientConfig: wantConfig, Rules: wantRules,
				FailurePolicy: ptr.To(admissionregistrationv1.Fail), MatchPolicy: ptr.To(admissionregistrationv1.Equivalent),
				NamespaceSelector: &metav1.LabelSelector{}, ObjectSelector: &metav1.LabelSelector{}, TimeoutSeconds: ptr.To[int32](10),
			},
			{
				Name: "b.example.com", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://example.com/x")},
				FailurePolicy: ptr.To(admissionregistrationv1.Fail), MatchPolicy: ptr.To(admissionregistrationv1.Equivalent),
				NamespaceSelector: &metav1.LabelSelector{}, ObjectSelector: &metav1.LabelSelector{}, TimeoutSeconds: ptr.To[int32](10),
			},
		}
		if diff := cmp.Diff(want, c.Webhooks); diff != "" {
			t.Errorf("defaulted webhooks (-want +got):\n%s", diff)
		}
	})
	t.Run("mutating", func(t *testing.T) {
		r := groupResource(t, admissionGroup, mutatingWebhooks)
		c := &admissionregistrationv1.MutatingWebhookConfiguration{Webhooks: []admissionregistrationv1.MutatingWebhook{
			{Name: "a.example.com", ClientConfig: *bare.DeepCopy(), Rules: rules},
			*explicit.DeepCopy(),
		}}
		checkDefaultIdempotent(t, r, c)
		r.Strategy.Default(c)
		want := []admissionregistrationv1.MutatingWebhook{
			{
				Name: "a.example.com", ClientConfig: wantConfig, Rules: wantRules,
				FailurePolicy: ptr.To(admissionregistrationv1.Fail), MatchPolicy: ptr.To(admissionregistrationv1.Equivalent),
				NamespaceSelector: &metav1.LabelSelector{}, ObjectSelector: &metav1.LabelSelector{}, TimeoutSeconds: ptr.To[int32](10),
				ReinvocationPolicy: ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
			},
			explicit, // explicit values are kept
		}
		if diff := cmp.Diff(want, c.Webhooks); diff != "" {
			t.Errorf("defaulted webhooks (-want +got):\n%s", diff)
		}
	})
}

func TestValidatingWebhookConfigurationValidate(t *testing.T) {
	r := groupResource(t, admissionGroup, validatingWebhooks)
	type hook = admissionregistrationv1.ValidatingWebhook
	tests := []struct {
		name   string
		mutate func(h *hook)
		want   []string
	}{
		{"valid", func(*hook) {}, []string{}},
		{"url", func(h *hook) {
			h.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://webhook.example.com:8443/validate")}
		}, []string{}},
		{"no rules, v1beta1 only, NoneOnDryRun, Ignore, Exact, selectors", func(h *hook) {
			h.Rules = nil
			h.AdmissionReviewVersions = []string{"v1beta1"}
			h.SideEffects = ptr.To(admissionregistrationv1.SideEffectClassNoneOnDryRun)
			h.FailurePolicy = ptr.To(admissionregistrationv1.Ignore)
			h.MatchPolicy = ptr.To(admissionregistrationv1.Exact)
			h.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpIn, Values: []string{"prod"}}}}
			h.ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
			h.TimeoutSeconds = ptr.To[int32](30)
		}, []string{}},
		{"wildcard rules", func(h *hook) {
			h.Rules[0].Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll}
			h.Rules[0].Rule = admissionregistrationv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*/*"}, Scope: ptr.To(admissionregistrationv1.ClusterScope)}
		}, []string{}},
		{"resource wildcards that do not overlap", func(h *hook) {
			h.Rules[0].Resources = []string{"*", "pods/status", "*/scale"}
		}, []string{}},

		// name
		{"no name", func(h *hook) { h.Name = "" }, []string{"FieldValueRequired webhooks[0].name"}},
		{"name not fully qualified", func(h *hook) { h.Name = "example.com" }, []string{"FieldValueInvalid webhooks[0].name"}},
		{"name not a DNS subdomain", func(h *hook) { h.Name = "Policy.example.com" }, []string{"FieldValueInvalid webhooks[0].name"}},

		// rules
		{"rule without anything", func(h *hook) { h.Rules[0] = admissionregistrationv1.RuleWithOperations{} }, []string{
			"FieldValueRequired webhooks[0].rules[0].apiGroups", "FieldValueRequired webhooks[0].rules[0].apiVersions",
			"FieldValueRequired webhooks[0].rules[0].operations", "FieldValueRequired webhooks[0].rules[0].resources",
		}},
		{"operation", func(h *hook) { h.Rules[0].Operations = []admissionregistrationv1.OperationType{"PATCH"} },
			[]string{"FieldValueNotSupported webhooks[0].rules[0].operations[0]"}},
		{"operation wildcard and others", func(h *hook) {
			h.Rules[0].Operations = []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll, admissionregistrationv1.Create}
		}, []string{"FieldValueInvalid webhooks[0].rules[0].operations"}},
		{"group and version wildcards and others", func(h *hook) {
			h.Rules[0].APIGroups = []string{"*", "apps"}
			h.Rules[0].APIVersions = []string{"v1", "*", ""}
		}, []string{"FieldValueInvalid webhooks[0].rules[0].apiGroups", "FieldValueInvalid webhooks[0].rules[0].apiVersions", "FieldValueRequired webhooks[0].rules[0].apiVersions[2]"}},
		{"empty resource", func(h *hook) { h.Rules[0].Resources = []string{"pods", ""} },
			[]string{"FieldValueRequired webhooks[0].rules[0].resources[1]"}},
		{"*/* and others", func(h *hook) { h.Rules[0].Resources = []string{"*/*", "pods"} },
			[]string{"FieldValueInvalid webhooks[0].rules[0].resources"}},
		{"* and a resource", func(h *hook) { h.Rules[0].Resources = []string{"*", "pods"} },
			[]string{"FieldValueInvalid webhooks[0].rules[0].resources"}},
		{"x/* and x/y", func(h *hook) { h.Rules[0].Resources = []string{"pods/*", "pods/status"} },
			[]string{"FieldValueInvalid webhooks[0].rules[0].resources[1]"}},
		{"*/y and x/y", func(h *hook) { h.Rules[0].Resources = []string{"*/status", "pods/status"} },
			[]string{"FieldValueInvalid webhooks[0].rules[0].resources[1]"}},
		{"scope", func(h *hook) { h.Rules[0].Scope = ptr.To[admissionregistrationv1.ScopeType]("Global") },
			[]string{"FieldValueNotSupported webhooks[0].rules[0].scope"}},

		// policies
		{"failurePolicy", func(h *hook) { h.FailurePolicy = ptr.To[admissionregistrationv1.FailurePolicyType]("Retry") },
			[]string{"FieldValueNotSupported webhooks[0].failurePolicy"}},
		{"matchPolicy", func(h *hook) { h.MatchPolicy = ptr.To[admissionregistrationv1.MatchPolicyType]("Loose") },
			[]string{"FieldValueNotSupported webhooks[0].matchPolicy"}},
		{"no sideEffects", func(h *hook) { h.SideEffects = nil }, []string{"FieldValueRequired webhooks[0].sideEffects"}},
		{"sideEffects Some", func(h *hook) { h.SideEffects = ptr.To(admissionregistrationv1.SideEffectClassSome) },
			[]string{"FieldValueNotSupported webhooks[0].sideEffects"}},
		{"sideEffects Unknown", func(h *hook) { h.SideEffects = ptr.To(admissionregistrationv1.SideEffectClassUnknown) },
			[]string{"FieldValueNotSupported webhooks[0].sideEffects"}},
		{"timeout 0", func(h *hook) { h.TimeoutSeconds = ptr.To[int32](0) }, []string{"FieldValueInvalid webhooks[0].timeoutSeconds"}},
		{"timeout 31", func(h *hook) { h.TimeoutSeconds = ptr.To[int32](31) }, []string{"FieldValueInvalid webhooks[0].timeoutSeconds"}},

		// selectors
		{"namespaceSelector", func(h *hook) {
			h.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "Is"}}}
		}, []string{"FieldValueInvalid webhooks[0].namespaceSelector.matchExpressions[0].operator"}},
		{"objectSelector", func(h *hook) {
			h.ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "not valid"}}
		}, []string{"FieldValueInvalid webhooks[0].objectSelector.matchLabels"}},

		// admissionReviewVersions
		{"no admissionReviewVersions", func(h *hook) { h.AdmissionReviewVersions = nil },
			[]string{"FieldValueRequired webhooks[0].admissionReviewVersions"}},
		{"no known admissionReviewVersion", func(h *hook) { h.AdmissionReviewVersions = []string{"v2"} },
			[]string{"FieldValueInvalid webhooks[0].admissionReviewVersions"}},
		{"duplicate and malformed admissionReviewVersions", func(h *hook) { h.AdmissionReviewVersions = []string{"v1", "v1", "V2"} },
			[]string{"FieldValueInvalid webhooks[0].admissionReviewVersions[1]", "FieldValueInvalid webhooks[0].admissionReviewVersions[2]"}},

		// clientConfig
		{"neither url nor service", func(h *hook) { h.ClientConfig = admissionregistrationv1.WebhookClientConfig{} },
			[]string{"FieldValueRequired webhooks[0].clientConfig"}},
		{"both url and service", func(h *hook) { h.ClientConfig.URL = ptr.To("https://example.com") },
			[]string{"FieldValueRequired webhooks[0].clientConfig"}},
		{"http url", func(h *hook) {
			h.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr.To("http://example.com/validate")}
		}, []string{"FieldValueInvalid webhooks[0].clientConfig.url"}},
		{"url without host", func(h *hook) {
			h.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https:///validate")}
		}, []string{"FieldValueInvalid webhooks[0].clientConfig.url"}},
		{"url with user, query and fragment", func(h *hook) {
			h.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://u:p@example.com/v?x=1#f")}
		}, []string{"FieldValueInvalid webhooks[0].clientConfig.url", "FieldValueInvalid webhooks[0].clientConfig.url", "FieldValueInvalid webhooks[0].clientConfig.url"}},
		{"unparsable url", func(h *hook) {
			h.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://example.com/%zz")}
		}, []string{"FieldValueRequired webhooks[0].clientConfig.url"}},
		{"service without name and namespace", func(h *hook) { h.ClientConfig.Service.Name, h.ClientConfig.Service.Namespace = "", "" },
			[]string{"FieldValueRequired webhooks[0].clientConfig.service.name", "FieldValueRequired webhooks[0].clientConfig.service.namespace"}},
		{"service port", func(h *hook) { h.ClientConfig.Service.Port = ptr.To[int32](70000) },
			[]string{"FieldValueInvalid webhooks[0].clientConfig.service.port"}},
		{"service path without slash", func(h *hook) { h.ClientConfig.Service.Path = ptr.To("validate") },
			[]string{"FieldValueInvalid webhooks[0].clientConfig.service.path"}},
		{"service path with an empty segment", func(h *hook) { h.ClientConfig.Service.Path = ptr.To("/a//b") },
			[]string{"FieldValueInvalid webhooks[0].clientConfig.service.path"}},
		{"service path segment", func(h *hook) { h.ClientConfig.Service.Path = ptr.To("/Validate_Pods") },
			[]string{"FieldValueInvalid webhooks[0].clientConfig.service.path"}},
		{"service path with a trailing slash", func(h *hook) { h.ClientConfig.Service.Path = ptr.To("/validate/pods/") }, []string{}},

		// matchConditions
		{"matchCondition without name or expression", func(h *hook) {
			h.MatchConditions = []admissionregistrationv1.MatchCondition{{Expression: "  "}}
		}, []string{"FieldValueRequired webhooks[0].matchConditions[0].expression", "FieldValueRequired webhooks[0].matchConditions[0].name"}},
		{"matchCondition name", func(h *hook) {
			h.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "not a name", Expression: "true"}}
		}, []string{"FieldValueInvalid webhooks[0].matchConditions[0].name"}},
		{"duplicate matchConditions", func(h *hook) {
			h.MatchConditions = append(h.MatchConditions, h.MatchConditions[0])
		}, []string{"FieldValueDuplicate webhooks[0].matchConditions[1].name"}},
		{"65 matchConditions", func(h *hook) {
			h.MatchConditions = nil
			for i := range 65 {
				h.MatchConditions = append(h.MatchConditions, admissionregistrationv1.MatchCondition{Name: fmt.Sprintf("c%d", i), Expression: "true"})
			}
		}, []string{"FieldValueTooMany webhooks[0].matchConditions"}},
		{"matchCondition expressions must compile", func(h *hook) {
			h.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "c", Expression: "this is not CEL ("}}
		}, []string{"FieldValueInvalid webhooks[0].matchConditions[0].expression"}},
		{"matchCondition expressions that compile", func(h *hook) {
			h.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "c", Expression: "request.userInfo.username != 'system:kube-scheduler'"}}
		}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testValidatingConfig()
			tt.mutate(&c.Webhooks[0])
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, c))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	t.Run("webhook names are unique", func(t *testing.T) {
		c := testValidatingConfig()
		c.Webhooks = append(c.Webhooks, testValidatingWebhook("other.policy.example.com"), c.Webhooks[0])
		want := []string{"FieldValueDuplicate webhooks[2].name"}
		if diff := cmp.Diff(want, errStrings(create(t, r, c))); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("no webhooks", func(t *testing.T) {
		c := testValidatingConfig()
		c.Webhooks = nil
		if errs := create(t, r, c); len(errs) != 0 {
			t.Errorf("empty configuration rejected: %v", errs)
		}
	})
}

func TestWebhookValidationMessages(t *testing.T) {
	r := groupResource(t, admissionGroup, validatingWebhooks)
	type hook = admissionregistrationv1.ValidatingWebhook
	tests := []struct {
		name   string
		mutate func(h *hook)
		want   string
	}{
		{"sideEffects", func(h *hook) { h.SideEffects = nil },
			"webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun"},
		{"sideEffects Some", func(h *hook) {
			h.SideEffects = ptr.To(admissionregistrationv1.SideEffectClassSome)
		},
			`webhooks[0].sideEffects: Unsupported value: "Some": supported values: "None", "NoneOnDryRun"`},
		{"admissionReviewVersions", func(h *hook) { h.AdmissionReviewVersions = nil },
			"webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1"},
		{"unknown admissionReviewVersions", func(h *hook) { h.AdmissionReviewVersions = []string{"v2"} },
			`webhooks[0].admissionReviewVersions: Invalid value: ["v2"]: must include at least one of v1, v1beta1`},
		{"timeout", func(h *hook) { h.TimeoutSeconds = ptr.To[int32](31) },
			"webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds"},
		{"clientConfig", func(h *hook) { h.ClientConfig.Service = nil },
			"webhooks[0].clientConfig: Required value: exactly one of url or service is required"},
		{"name", func(h *hook) { h.Name = "a.b" },
			`webhooks[0].name: Invalid value: "a.b": should be a domain with at least three segments separated by dots`},
		{"failurePolicy", func(h *hook) {
			h.FailurePolicy = ptr.To[admissionregistrationv1.FailurePolicyType]("x")
		},
			`webhooks[0].failurePolicy: Unsupported value: "x": supported values: "Fail", "Ignore"`},
		{"operations", func(h *hook) {
			h.Rules[0].Operations = []admissionregistrationv1.OperationType{"x"}
		},
			`webhooks[0].rules[0].operations[0]: Unsupported value: "x": supported values: "*", "CONNECT", "CREATE", "DELETE", "UPDATE"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testValidatingConfig()
			tt.mutate(&c.Webhooks[0])
			errs := create(t, r, c)
			if len(errs) != 1 || errs[0].Error() != tt.want {
				t.Errorf("got %v\nwant [%s]", errs, tt.want)
			}
		})
	}
}

func TestMutatingWebhookConfigurationValidate(t *testing.T) {
	r := groupResource(t, admissionGroup, mutatingWebhooks)
	type config = admissionregistrationv1.MutatingWebhookConfiguration
	tests := []struct {
		name   string
		mutate func(c *config)
		want   []string
	}{
		{"valid", func(*config) {}, []string{}},
		{"reinvocation IfNeeded", func(c *config) {
			c.Webhooks[0].ReinvocationPolicy = ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy)
		}, []string{}},
		{"reinvocationPolicy", func(c *config) {
			c.Webhooks[0].ReinvocationPolicy = ptr.To[admissionregistrationv1.ReinvocationPolicyType]("Always")
		},
			[]string{"FieldValueNotSupported webhooks[0].reinvocationPolicy"}},
		{"common checks", func(c *config) {
			h := &c.Webhooks[0]
			h.Name = "inject"
			h.SideEffects = nil
			h.AdmissionReviewVersions = nil
			h.TimeoutSeconds = ptr.To[int32](60)
			h.ClientConfig.Service.Namespace = ""
			h.Rules[0].Operations = nil
			h.MatchConditions[0].Expression = ""
		}, []string{
			"FieldValueInvalid webhooks[0].name", "FieldValueInvalid webhooks[0].timeoutSeconds",
			"FieldValueRequired webhooks[0].admissionReviewVersions", "FieldValueRequired webhooks[0].clientConfig.service.namespace",
			"FieldValueRequired webhooks[0].matchConditions[0].expression", "FieldValueRequired webhooks[0].rules[0].operations",
			"FieldValueRequired webhooks[0].sideEffects",
		}},
		{"duplicate names", func(c *config) { c.Webhooks = append(c.Webhooks, c.Webhooks[0]) }, []string{"FieldValueDuplicate webhooks[1].name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testMutatingConfig()
			tt.mutate(c)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, c))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestWebhookConfigurationUpdate covers upstream's update rules: what the
// stored object already breaks (side effects, review versions, duplicate
// names, selector values, matchConditions) stays allowed, everything else is
// validated as on create.
func TestWebhookConfigurationUpdate(t *testing.T) {
	r := groupResource(t, admissionGroup, validatingWebhooks)
	badSelector := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpIn, Values: []string{"not valid"}}}}
	tests := []struct {
		name   string
		stored func(c *admissionregistrationv1.ValidatingWebhookConfiguration) // makes the stored object (bypassing validation)
		mutate func(c *admissionregistrationv1.ValidatingWebhookConfiguration)
		want   []string
	}{
		{"labels", nil, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Labels = map[string]string{"a": "b"}
		}, []string{}},
		{"valid change", nil, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].TimeoutSeconds = ptr.To[int32](5)
		}, []string{}},
		{"invalid change", nil, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].TimeoutSeconds = ptr.To[int32](50)
		},
			[]string{"FieldValueInvalid webhooks[0].timeoutSeconds"}},
		{"sideEffects Some on a valid object", nil, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].SideEffects = ptr.To(admissionregistrationv1.SideEffectClassSome)
		}, []string{"FieldValueNotSupported webhooks[0].sideEffects"}},
		{"stored sideEffects Unknown", func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].SideEffects = ptr.To(admissionregistrationv1.SideEffectClassUnknown)
		}, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Labels = map[string]string{"a": "b"}
			c.Webhooks = append(c.Webhooks, testValidatingWebhook("second.example.com"))
			c.Webhooks[1].SideEffects = ptr.To(admissionregistrationv1.SideEffectClassSome)
		}, []string{}},
		{"stored sideEffects Unknown, still not anything", func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].SideEffects = ptr.To(admissionregistrationv1.SideEffectClassUnknown)
		}, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].SideEffects = ptr.To[admissionregistrationv1.SideEffectClass]("Many")
		}, []string{"FieldValueNotSupported webhooks[0].sideEffects"}},
		{"stored unknown admissionReviewVersions", func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].AdmissionReviewVersions = []string{"v0"}
		}, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Labels = map[string]string{"a": "b"}
		}, []string{}},
		{"admissionReviewVersions still required", func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].AdmissionReviewVersions = []string{"v0"}
		}, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].AdmissionReviewVersions = nil
		},
			[]string{"FieldValueRequired webhooks[0].admissionReviewVersions"}},
		{"stored duplicate names", func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks = append(c.Webhooks, c.Webhooks[0])
		}, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Labels = map[string]string{"a": "b"}
		}, []string{}},
		{"new duplicate names", nil, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks = append(c.Webhooks, c.Webhooks[0])
		}, []string{"FieldValueDuplicate webhooks[1].name"}},
		{"stored invalid selector value", func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].NamespaceSelector = badSelector.DeepCopy()
		}, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].ObjectSelector = badSelector.DeepCopy()
		}, []string{}},
		{"new invalid selector value", nil, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].ObjectSelector = badSelector.DeepCopy()
		}, []string{"FieldValueInvalid webhooks[0].objectSelector.matchExpressions[0].values[0]"}},
		{"unchanged invalid matchConditions", func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].MatchConditions[0].Name = "not a name"
		}, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].TimeoutSeconds = ptr.To[int32](5)
		}, []string{}},
		{"changed matchConditions are validated", func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].MatchConditions[0].Name = "not a name"
		}, func(c *admissionregistrationv1.ValidatingWebhookConfiguration) {
			c.Webhooks[0].MatchConditions[0].Expression = "false"
		},
			[]string{"FieldValueInvalid webhooks[0].matchConditions[0].name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := testValidatingConfig()
			if tt.stored != nil {
				tt.stored(old)
			}
			r.Strategy.PrepareForCreate(t.Context(), old)
			r.Strategy.Default(old)
			old.ResourceVersion = "5"
			c := old.DeepCopy()
			tt.mutate(c)
			if diff := cmp.Diff(tt.want, errStrings(update(t, r, c, old))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	t.Run("mutating", func(t *testing.T) {
		r := groupResource(t, admissionGroup, mutatingWebhooks)
		old := testMutatingConfig()
		old.Webhooks[0].SideEffects = ptr.To(admissionregistrationv1.SideEffectClassSome)
		r.Strategy.Default(old)
		c := old.DeepCopy()
		c.Webhooks[0].ReinvocationPolicy = ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy)
		if errs := update(t, r, c, old); len(errs) != 0 {
			t.Errorf("update of a stored Some webhook rejected: %v", errs)
		}
		c.Webhooks[0].ReinvocationPolicy = ptr.To[admissionregistrationv1.ReinvocationPolicyType]("Twice")
		if diff := cmp.Diff([]string{"FieldValueNotSupported webhooks[0].reinvocationPolicy"}, errStrings(update(t, r, c, old))); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

func TestWebhookConfigurationTable(t *testing.T) {
	created := metav1.NewTime(time.Now().Add(-72*time.Hour - 10*time.Minute))
	v := testValidatingConfig()
	v.CreationTimestamp = created
	v.Webhooks = append(v.Webhooks, testValidatingWebhook("second.example.com"))
	m := testMutatingConfig()
	m.CreationTimestamp = created
	tests := []struct {
		resource string
		obj      runtime.Object
		want     []any
	}{
		{validatingWebhooks, v, []any{"policy", int64(2), "3d"}},
		{mutatingWebhooks, m, []any{"inject", int64(1), "3d"}},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			tbl := groupResource(t, admissionGroup, tt.resource).Strategy.Table()
			var names []string
			for _, c := range tbl.Columns {
				names = append(names, c.Name)
			}
			if diff := cmp.Diff([]string{"Name", "Webhooks", "Age"}, names); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
			if tbl.Columns[1].Type != "integer" || !strings.Contains(tbl.Columns[1].Description, "number of webhooks") {
				t.Errorf("webhooks column: %+v", tbl.Columns[1])
			}
			if diff := cmp.Diff(tt.want, tbl.Row(tt.obj)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}
