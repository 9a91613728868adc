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

const (
	admissionPolicies       = "validatingadmissionpolicies"
	admissionPolicyBindings = "validatingadmissionpolicybindings"
)

// testPolicy is a valid policy using everything a policy may have, with
// nothing left to default.
func testPolicy() *admissionregistrationv1.ValidatingAdmissionPolicy {
	return &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "replicas.example.com"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			ParamKind: &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
			MatchConstraints: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpIn, Values: []string{"test"}}}},
				ObjectSelector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
						Rule: admissionregistrationv1.Rule{
							APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments", "deployments/scale"},
							Scope: ptr.To(admissionregistrationv1.NamespacedScope),
						},
					},
				}},
				ExcludeResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					ResourceNames: []string{"system-deployment"},
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
						Rule: admissionregistrationv1.Rule{
							APIGroups: []string{"apps"}, APIVersions: []string{"*"}, Resources: []string{"deployments"},
							Scope: ptr.To(admissionregistrationv1.AllScopes),
						},
					},
				}},
				MatchPolicy: ptr.To(admissionregistrationv1.Exact),
			},
			FailurePolicy:   ptr.To(admissionregistrationv1.Ignore),
			MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "not-system", Expression: "!request.userInfo.username.startsWith('system:')"}},
			Variables:       []admissionregistrationv1.Variable{{Name: "replicas", Expression: "object.spec.replicas"}},
			Validations: []admissionregistrationv1.Validation{{
				Expression:        "variables.replicas <= params.data.maxReplicas",
				Message:           "too many replicas",
				MessageExpression: "'at most ' + params.data.maxReplicas + ' replicas'",
				Reason:            ptr.To(metav1.StatusReasonInvalid),
			}},
			AuditAnnotations: []admissionregistrationv1.AuditAnnotation{{Key: "high-replica-count", ValueExpression: "'replicas: ' + string(variables.replicas)"}},
		},
	}
}

// testBinding is a valid binding of testPolicy, with nothing left to
// default.
func testBinding() *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "replicas-test"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: "replicas.example.com",
			ParamRef: &admissionregistrationv1.ParamRef{
				Name: "limits", Namespace: "default", ParameterNotFoundAction: ptr.To(admissionregistrationv1.DenyAction),
			},
			MatchResources: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "test"}},
				ObjectSelector:    &metav1.LabelSelector{},
				MatchPolicy:       ptr.To(admissionregistrationv1.Equivalent),
			},
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny, admissionregistrationv1.Audit},
		},
	}
}

func TestValidatingAdmissionPolicyResources(t *testing.T) {
	tests := []struct {
		resource, kind string
		status         bool
	}{
		{admissionPolicies, "ValidatingAdmissionPolicy", true},
		{admissionPolicyBindings, "ValidatingAdmissionPolicyBinding", false},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			r := groupResource(t, admissionGroup, tt.resource)
			if r.GVR.Version != "v1" || r.Kind != tt.kind || r.Namespaced || r.Status != tt.status || r.Scale != nil || len(r.ShortNames) != 0 || r.Verbs != nil {
				t.Errorf("description: %+v", r)
			}
			if diff := cmp.Diff([]string{"api-extensions"}, r.Categories); diff != "" {
				t.Errorf("categories (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidatingAdmissionPolicyDefaults(t *testing.T) {
	rule := admissionregistrationv1.NamedRuleWithOperations{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}}
	defaultedRule := *rule.DeepCopy()
	defaultedRule.Scope = ptr.To(admissionregistrationv1.AllScopes)
	defaultedMatch := &admissionregistrationv1.MatchResources{
		NamespaceSelector: &metav1.LabelSelector{}, ObjectSelector: &metav1.LabelSelector{},
		MatchPolicy:   ptr.To(admissionregistrationv1.Equivalent),
		ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{defaultedRule}, ExcludeResourceRules: []admissionregistrationv1.NamedRuleWithOperations{defaultedRule},
	}

	t.Run("policy", func(t *testing.T) {
		r := groupResource(t, admissionGroup, admissionPolicies)
		tests := []struct {
			name     string
			spec     admissionregistrationv1.ValidatingAdmissionPolicySpec
			wantSpec admissionregistrationv1.ValidatingAdmissionPolicySpec
		}{
			{"empty", admissionregistrationv1.ValidatingAdmissionPolicySpec{},
				admissionregistrationv1.ValidatingAdmissionPolicySpec{FailurePolicy: ptr.To(admissionregistrationv1.Fail)}},
			{"bare matchConstraints", admissionregistrationv1.ValidatingAdmissionPolicySpec{
				MatchConstraints: &admissionregistrationv1.MatchResources{
					ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{rule}, ExcludeResourceRules: []admissionregistrationv1.NamedRuleWithOperations{rule},
				},
			}, admissionregistrationv1.ValidatingAdmissionPolicySpec{FailurePolicy: ptr.To(admissionregistrationv1.Fail), MatchConstraints: defaultedMatch}},
			{"explicit values are kept", testPolicy().Spec, testPolicy().Spec},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := &admissionregistrationv1.ValidatingAdmissionPolicy{Spec: *tt.spec.DeepCopy()}
				checkDefaultIdempotent(t, r, p)
				r.Strategy.Default(p)
				if diff := cmp.Diff(tt.wantSpec, p.Spec); diff != "" {
					t.Errorf("defaulted spec (-want +got):\n%s", diff)
				}
			})
		}
	})
	t.Run("binding", func(t *testing.T) {
		r := groupResource(t, admissionGroup, admissionPolicyBindings)
		// v1 has no default for parameterNotFoundAction: it is required.
		paramRef := &admissionregistrationv1.ParamRef{Name: "limits"}
		tests := []struct {
			name     string
			spec     admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec
			wantSpec admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec
		}{
			{"no matchResources", admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: "p", ParamRef: paramRef},
				admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: "p", ParamRef: paramRef}},
			{"bare matchResources", admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				MatchResources: &admissionregistrationv1.MatchResources{
					ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{rule}, ExcludeResourceRules: []admissionregistrationv1.NamedRuleWithOperations{rule},
				},
			}, admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{MatchResources: defaultedMatch}},
			{"explicit values are kept", testBinding().Spec, testBinding().Spec},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{Spec: *tt.spec.DeepCopy()}
				checkDefaultIdempotent(t, r, b)
				r.Strategy.Default(b)
				if diff := cmp.Diff(tt.wantSpec, b.Spec); diff != "" {
					t.Errorf("defaulted spec (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestValidatingAdmissionPolicyValidate(t *testing.T) {
	r := groupResource(t, admissionGroup, admissionPolicies)
	type policy = admissionregistrationv1.ValidatingAdmissionPolicy
	rules := func(p *policy) *admissionregistrationv1.RuleWithOperations {
		return &p.Spec.MatchConstraints.ResourceRules[0].RuleWithOperations
	}
	tests := []struct {
		name   string
		mutate func(p *policy)
		want   []string
	}{
		{"valid", func(*policy) {}, []string{}},
		{"minimal", func(p *policy) {
			p.Spec = admissionregistrationv1.ValidatingAdmissionPolicySpec{
				MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: p.Spec.MatchConstraints.ResourceRules},
				Validations:      []admissionregistrationv1.Validation{{Expression: "true"}},
			}
		}, []string{}},
		{"auditAnnotations only", func(p *policy) { p.Spec.Validations = nil }, []string{}},
		{"validations only", func(p *policy) { p.Spec.AuditAnnotations = nil }, []string{}},
		{"expressions must compile: no params without a paramKind", func(p *policy) {
			p.Spec.ParamKind = nil
			p.Spec.MatchConditions[0].Expression = "params.enabled"
		}, []string{"FieldValueInvalid spec.matchConditions[0].expression",
			"FieldValueInvalid spec.validations[0].expression", "FieldValueInvalid spec.validations[0].messageExpression"}},
		{"reasons", func(p *policy) {
			p.Spec.Validations = append(p.Spec.Validations,
				admissionregistrationv1.Validation{Expression: "true", Reason: ptr.To(metav1.StatusReasonForbidden)},
				admissionregistrationv1.Validation{Expression: "true", Reason: ptr.To(metav1.StatusReasonRequestEntityTooLarge)})
		}, []string{}},
		{"paramKind with a group", func(p *policy) {
			p.Spec.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "rules.example.com/v1beta1", Kind: "ReplicaLimit"}
		}, []string{}},

		{"failurePolicy", func(p *policy) { p.Spec.FailurePolicy = ptr.To[admissionregistrationv1.FailurePolicyType]("Retry") },
			[]string{"FieldValueNotSupported spec.failurePolicy"}},

		// paramKind
		{"paramKind without anything", func(p *policy) { p.Spec.ParamKind = &admissionregistrationv1.ParamKind{} },
			[]string{"FieldValueRequired spec.paramKind.apiVersion", "FieldValueRequired spec.paramKind.kind"}},
		{"paramKind apiVersion with two slashes", func(p *policy) { p.Spec.ParamKind.APIVersion = "a/b/v1" },
			[]string{"FieldValueInvalid spec.paramKind.apiVersion"}},
		{"paramKind group", func(p *policy) { p.Spec.ParamKind.APIVersion = "Example.com/v1" },
			[]string{"FieldValueInvalid spec.paramKind.apiVersion"}},
		{"paramKind without version", func(p *policy) { p.Spec.ParamKind.APIVersion = "example.com/" },
			[]string{"FieldValueInvalid spec.paramKind.apiVersion"}},
		{"paramKind slash", func(p *policy) { p.Spec.ParamKind.APIVersion = "/" },
			[]string{"FieldValueInvalid spec.paramKind.apiVersion"}},
		{"paramKind version", func(p *policy) { p.Spec.ParamKind.APIVersion = "example.com/V1" },
			[]string{"FieldValueInvalid spec.paramKind.apiVersion"}},
		{"paramKind kind", func(p *policy) { p.Spec.ParamKind.Kind = "Config_Map" },
			[]string{"FieldValueInvalid spec.paramKind.kind"}},

		// matchConstraints
		{"no matchConstraints", func(p *policy) { p.Spec.MatchConstraints = nil }, []string{"FieldValueRequired spec.matchConstraints"}},
		{"no resourceRules", func(p *policy) { p.Spec.MatchConstraints.ResourceRules = nil },
			[]string{"FieldValueRequired spec.matchConstraints.resourceRules"}},
		{"matchPolicy", func(p *policy) {
			p.Spec.MatchConstraints.MatchPolicy = ptr.To[admissionregistrationv1.MatchPolicyType]("Loose")
		}, []string{"FieldValueNotSupported spec.matchConstraints.matchPolicy"}},
		{"namespaceSelector", func(p *policy) { p.Spec.MatchConstraints.NamespaceSelector.MatchExpressions[0].Operator = "Is" },
			[]string{"FieldValueInvalid spec.matchConstraints.namespaceSelector.matchExpressions[0].operator"}},
		{"objectSelector label values are strict", func(p *policy) { p.Spec.MatchConstraints.ObjectSelector.MatchLabels["app"] = "not valid" },
			[]string{"FieldValueInvalid spec.matchConstraints.objectSelector.matchLabels"}},
		{"rule without anything", func(p *policy) { *rules(p) = admissionregistrationv1.RuleWithOperations{} }, []string{
			"FieldValueRequired spec.matchConstraints.resourceRules[0].apiGroups", "FieldValueRequired spec.matchConstraints.resourceRules[0].apiVersions",
			"FieldValueRequired spec.matchConstraints.resourceRules[0].operations", "FieldValueRequired spec.matchConstraints.resourceRules[0].resources",
		}},
		{"rule operation, scope and resources", func(p *policy) {
			rules(p).Operations = []admissionregistrationv1.OperationType{"PATCH"}
			rules(p).Scope = ptr.To[admissionregistrationv1.ScopeType]("Global")
			rules(p).Resources = []string{"*/*", "pods"}
		}, []string{
			"FieldValueInvalid spec.matchConstraints.resourceRules[0].resources",
			"FieldValueNotSupported spec.matchConstraints.resourceRules[0].operations[0]",
			"FieldValueNotSupported spec.matchConstraints.resourceRules[0].scope",
		}},
		{"excludeResourceRules", func(p *policy) {
			p.Spec.MatchConstraints.ExcludeResourceRules[0].APIGroups = []string{"*", "apps"}
		}, []string{"FieldValueInvalid spec.matchConstraints.excludeResourceRules[0].apiGroups"}},
		{"resourceNames", func(p *policy) {
			p.Spec.MatchConstraints.ExcludeResourceRules[0].ResourceNames = []string{"a", "b/c", "..", "a"}
		}, []string{
			"FieldValueDuplicate spec.matchConstraints.excludeResourceRules[0].resourceNames[3]",
			"FieldValueInvalid spec.matchConstraints.excludeResourceRules[0].resourceNames[1]",
			"FieldValueInvalid spec.matchConstraints.excludeResourceRules[0].resourceNames[2]",
		}},

		// matchConditions
		{"matchCondition without name or expression", func(p *policy) {
			p.Spec.MatchConditions = []admissionregistrationv1.MatchCondition{{Expression: " "}}
		}, []string{"FieldValueRequired spec.matchConditions[0].expression", "FieldValueRequired spec.matchConditions[0].name"}},
		{"matchCondition name", func(p *policy) { p.Spec.MatchConditions[0].Name = "not a name" },
			[]string{"FieldValueInvalid spec.matchConditions[0].name"}},
		{"duplicate matchConditions", func(p *policy) { p.Spec.MatchConditions = append(p.Spec.MatchConditions, p.Spec.MatchConditions[0]) },
			[]string{"FieldValueDuplicate spec.matchConditions[1].name"}},
		{"65 matchConditions", func(p *policy) {
			p.Spec.MatchConditions = nil
			for i := range 65 {
				p.Spec.MatchConditions = append(p.Spec.MatchConditions, admissionregistrationv1.MatchCondition{Name: fmt.Sprintf("c%d", i), Expression: "true"})
			}
		}, []string{"FieldValueTooMany spec.matchConditions"}},

		// variables
		{"variable without name or expression", func(p *policy) {
			p.Spec.Variables = []admissionregistrationv1.Variable{{Name: " ", Expression: " "}}
			// The expressions reading variables.replicas no longer compile.
		}, []string{"FieldValueInvalid spec.auditAnnotations[0].valueExpression", "FieldValueInvalid spec.validations[0].expression",
			"FieldValueRequired spec.variables[0].expression", "FieldValueRequired spec.variables[0].name"}},
		{"variable names are CEL identifiers", func(p *policy) {
			p.Spec.Variables = []admissionregistrationv1.Variable{
				{Name: "_ok1", Expression: "1"}, {Name: "1x", Expression: "1"}, {Name: "a-b", Expression: "1"}, {Name: "namespace", Expression: "1"},
			}
		}, []string{"FieldValueInvalid spec.auditAnnotations[0].valueExpression", "FieldValueInvalid spec.validations[0].expression",
			"FieldValueInvalid spec.variables[1].name", "FieldValueInvalid spec.variables[2].name", "FieldValueInvalid spec.variables[3].name"}},
		{"repeated variable names are allowed, as upstream", func(p *policy) { p.Spec.Variables = append(p.Spec.Variables, p.Spec.Variables[0]) },
			[]string{}},

		// validations
		{"neither validations nor auditAnnotations", func(p *policy) { p.Spec.Validations, p.Spec.AuditAnnotations = nil, nil },
			[]string{"FieldValueRequired spec.auditAnnotations", "FieldValueRequired spec.validations"}},
		{"validation without expression", func(p *policy) { p.Spec.Validations[0].Expression = " \n" },
			[]string{"FieldValueRequired spec.validations[0].expression"}},
		{"blank messageExpression and message", func(p *policy) {
			p.Spec.Validations[0].MessageExpression = "  "
			p.Spec.Validations[0].Message = "\t"
		}, []string{"FieldValueInvalid spec.validations[0].message", "FieldValueInvalid spec.validations[0].messageExpression"}},
		{"message with a line break", func(p *policy) { p.Spec.Validations[0].Message = "too many\nreplicas" },
			[]string{"FieldValueInvalid spec.validations[0].message"}},
		{"message with trailing line breaks", func(p *policy) { p.Spec.Validations[0].Message = "too many replicas\r\n" }, []string{}},
		{"reason", func(p *policy) { p.Spec.Validations[0].Reason = ptr.To(metav1.StatusReasonConflict) },
			[]string{"FieldValueNotSupported spec.validations[0].reason"}},

		// auditAnnotations
		{"auditAnnotation key", func(p *policy) { p.Spec.AuditAnnotations[0].Key = "not a key" },
			[]string{"FieldValueInvalid spec.auditAnnotations[0].key"}},
		{"auditAnnotation key too long with the policy name", func(p *policy) { p.Spec.AuditAnnotations[0].Key = strings.Repeat("k", 64) },
			[]string{"FieldValueInvalid spec.auditAnnotations[0].key"}},
		{"auditAnnotation without a policy name", func(p *policy) { p.Name = "" },
			[]string{"FieldValueInvalid spec.auditAnnotations[0].key"}},
		{"duplicate auditAnnotation keys", func(p *policy) { p.Spec.AuditAnnotations = append(p.Spec.AuditAnnotations, p.Spec.AuditAnnotations[0]) },
			[]string{"FieldValueDuplicate spec.auditAnnotations[1].key"}},
		{"auditAnnotation without valueExpression", func(p *policy) { p.Spec.AuditAnnotations[0].ValueExpression = " " },
			[]string{"FieldValueRequired spec.auditAnnotations[0].valueExpression"}},
		{"auditAnnotation valueExpression of 5KiB", func(p *policy) {
			p.Spec.AuditAnnotations[0].ValueExpression = "'" + strings.Repeat("x", 5*1024-2) + "'"
		}, []string{}},
		{"auditAnnotation valueExpression over 5KiB", func(p *policy) {
			p.Spec.AuditAnnotations[0].ValueExpression = "'" + strings.Repeat("x", 5*1024-1) + "'"
		}, []string{"FieldValueRequired spec.auditAnnotations[0].valueExpression"}},
		{"21 auditAnnotations", func(p *policy) {
			p.Spec.AuditAnnotations = nil
			for i := range 21 {
				p.Spec.AuditAnnotations = append(p.Spec.AuditAnnotations, admissionregistrationv1.AuditAnnotation{Key: fmt.Sprintf("k%d", i), ValueExpression: "'v'"})
			}
		}, []string{"FieldValueInvalid spec.auditAnnotations"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			tt.mutate(p)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, p))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	// What defaulting fills in is still required, as upstream.
	t.Run("undefaulted", func(t *testing.T) {
		p := &admissionregistrationv1.ValidatingAdmissionPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "p"},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: testPolicy().Spec.MatchConstraints.ResourceRules},
				Validations:      []admissionregistrationv1.Validation{{Expression: "true"}},
			},
		}
		want := []string{
			"FieldValueRequired spec.failurePolicy", "FieldValueRequired spec.matchConstraints.matchPolicy",
			"FieldValueRequired spec.matchConstraints.namespaceSelector", "FieldValueRequired spec.matchConstraints.objectSelector",
		}
		if diff := cmp.Diff(want, errStrings(r.Strategy.Validate(t.Context(), p))); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

func TestValidatingAdmissionPolicyBindingValidate(t *testing.T) {
	r := groupResource(t, admissionGroup, admissionPolicyBindings)
	type binding = admissionregistrationv1.ValidatingAdmissionPolicyBinding
	tests := []struct {
		name   string
		mutate func(b *binding)
		want   []string
	}{
		{"valid", func(*binding) {}, []string{}},
		{"minimal", func(b *binding) {
			b.Spec = admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName: "p", ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			}
		}, []string{}},
		{"paramRef by selector, Allow", func(b *binding) {
			b.Spec.ParamRef = &admissionregistrationv1.ParamRef{
				Selector:                &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "limits"}},
				ParameterNotFoundAction: ptr.To(admissionregistrationv1.AllowAction),
			}
		}, []string{}},
		{"Warn and Audit", func(b *binding) {
			b.Spec.ValidationActions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn, admissionregistrationv1.Audit}
		}, []string{}},

		{"no policyName", func(b *binding) { b.Spec.PolicyName = "" }, []string{"FieldValueRequired spec.policyName"}},
		{"policyName", func(b *binding) { b.Spec.PolicyName = "Not_A_Name" }, []string{"FieldValueInvalid spec.policyName"}},

		// paramRef
		{"paramRef without name or selector", func(b *binding) { b.Spec.ParamRef.Name = "" }, []string{"FieldValueRequired spec.paramRef"}},
		{"paramRef with name and selector", func(b *binding) { b.Spec.ParamRef.Selector = &metav1.LabelSelector{} },
			[]string{"FieldValueForbidden spec.paramRef.name", "FieldValueForbidden spec.paramRef.selector"}},
		{"paramRef name", func(b *binding) { b.Spec.ParamRef.Name = "a/b" }, []string{"FieldValueInvalid spec.paramRef.name"}},
		{"paramRef selector", func(b *binding) {
			b.Spec.ParamRef.Name = ""
			b.Spec.ParamRef.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "not valid"}}
		}, []string{"FieldValueInvalid spec.paramRef.selector.matchLabels"}},
		{"no parameterNotFoundAction", func(b *binding) { b.Spec.ParamRef.ParameterNotFoundAction = nil },
			[]string{"FieldValueRequired spec.paramRef.parameterNotFoundAction"}},
		{"empty parameterNotFoundAction", func(b *binding) {
			b.Spec.ParamRef.ParameterNotFoundAction = ptr.To[admissionregistrationv1.ParameterNotFoundActionType]("")
		}, []string{"FieldValueRequired spec.paramRef.parameterNotFoundAction"}},
		{"parameterNotFoundAction", func(b *binding) {
			b.Spec.ParamRef.ParameterNotFoundAction = ptr.To[admissionregistrationv1.ParameterNotFoundActionType]("Ignore")
		}, []string{"FieldValueNotSupported spec.paramRef.parameterNotFoundAction"}},

		// matchResources
		{"matchResources", func(b *binding) {
			b.Spec.MatchResources.MatchPolicy = ptr.To[admissionregistrationv1.MatchPolicyType]("Loose")
			b.Spec.MatchResources.ResourceRules = []admissionregistrationv1.NamedRuleWithOperations{{}}
		}, []string{
			"FieldValueNotSupported spec.matchResources.matchPolicy",
			"FieldValueRequired spec.matchResources.resourceRules[0].apiGroups", "FieldValueRequired spec.matchResources.resourceRules[0].apiVersions",
			"FieldValueRequired spec.matchResources.resourceRules[0].operations", "FieldValueRequired spec.matchResources.resourceRules[0].resources",
		}},

		// validationActions
		{"no validationActions", func(b *binding) { b.Spec.ValidationActions = nil }, []string{"FieldValueRequired spec.validationActions"}},
		{"unknown validationAction", func(b *binding) {
			b.Spec.ValidationActions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Audit, "Block"}
		}, []string{"FieldValueNotSupported spec.validationActions[1]"}},
		{"duplicate validationActions", func(b *binding) {
			b.Spec.ValidationActions = append(b.Spec.ValidationActions, admissionregistrationv1.Audit)
		}, []string{"FieldValueDuplicate spec.validationActions[2]"}},
		{"Deny and Warn", func(b *binding) {
			b.Spec.ValidationActions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn, admissionregistrationv1.Deny}
		}, []string{"FieldValueInvalid spec.validationActions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBinding()
			tt.mutate(b)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, b))); diff != "" {
				t.Errorf("create (-want +got):\n%s", diff)
			}
			// An update is validated as a create.
			old := testBinding()
			old.ResourceVersion = "5"
			b.ResourceVersion = "5"
			if diff := cmp.Diff(tt.want, errStrings(update(t, r, b, old))); diff != "" {
				t.Errorf("update (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidatingAdmissionPolicyUpdate covers upstream's one relaxation:
// stored matchConditions are not validated again while neither they nor
// paramKind change.
func TestValidatingAdmissionPolicyUpdate(t *testing.T) {
	r := groupResource(t, admissionGroup, admissionPolicies)
	type policy = admissionregistrationv1.ValidatingAdmissionPolicy
	tests := []struct {
		name   string
		stored func(p *policy) // makes the stored object (bypassing validation)
		mutate func(p *policy)
		want   []string
	}{
		{"valid change", nil, func(p *policy) { p.Spec.Validations[0].Expression = "variables.replicas < 10" }, []string{}},
		{"invalid change", nil, func(p *policy) { p.Spec.Validations[0].Reason = ptr.To(metav1.StatusReasonConflict) },
			[]string{"FieldValueNotSupported spec.validations[0].reason"}},
		{"new invalid matchCondition", nil, func(p *policy) { p.Spec.MatchConditions[0].Name = "not a name" },
			[]string{"FieldValueInvalid spec.matchConditions[0].name"}},
		{"unchanged invalid matchConditions", func(p *policy) { p.Spec.MatchConditions[0].Name = "not a name" },
			func(p *policy) { p.Spec.Validations[0].Expression = "false" }, []string{}},
		{"changed matchConditions are validated", func(p *policy) { p.Spec.MatchConditions[0].Name = "not a name" },
			func(p *policy) { p.Spec.MatchConditions[0].Expression = "false" }, []string{"FieldValueInvalid spec.matchConditions[0].name"}},
		{"a paramKind change validates matchConditions", func(p *policy) { p.Spec.MatchConditions[0].Name = "not a name" },
			func(p *policy) { p.Spec.ParamKind = nil }, []string{"FieldValueInvalid spec.matchConditions[0].name",
				// and the expressions reading params no longer compile
				"FieldValueInvalid spec.validations[0].expression", "FieldValueInvalid spec.validations[0].messageExpression"}},
		{"other stored errors are not kept", func(p *policy) { p.Spec.Validations[0].Reason = ptr.To(metav1.StatusReasonConflict) },
			func(p *policy) { p.Labels = map[string]string{"a": "b"} }, []string{"FieldValueNotSupported spec.validations[0].reason"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := testPolicy()
			if tt.stored != nil {
				tt.stored(old)
			}
			r.Strategy.PrepareForCreate(t.Context(), old)
			r.Strategy.Default(old)
			old.ResourceVersion = "5"
			p := old.DeepCopy()
			tt.mutate(p)
			if diff := cmp.Diff(tt.want, errStrings(update(t, r, p, old))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidatingAdmissionPolicyStatus covers the strategy's part of the
// status subresource: a create drops the status, and a status write is
// validated on its status alone. (Carrying spec over on status writes and
// status over on spec writes is the store's, for every resource with
// Status set.)
func TestValidatingAdmissionPolicyStatus(t *testing.T) {
	r := groupResource(t, admissionGroup, admissionPolicies)
	t.Run("create drops status", func(t *testing.T) {
		p := testPolicy()
		p.Status = admissionregistrationv1.ValidatingAdmissionPolicyStatus{ObservedGeneration: 3, TypeChecking: &admissionregistrationv1.TypeChecking{}}
		if errs := create(t, r, p); len(errs) != 0 {
			t.Fatalf("create: %v", errs)
		}
		if diff := cmp.Diff(admissionregistrationv1.ValidatingAdmissionPolicyStatus{}, p.Status); diff != "" {
			t.Errorf("status after create (-want +got):\n%s", diff)
		}
	})

	condition := metav1.Condition{
		Type: "Ready", Status: metav1.ConditionTrue, Reason: "TypeChecked", ObservedGeneration: 1,
		LastTransitionTime: metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
	}
	warning := admissionregistrationv1.ExpressionWarning{FieldRef: "spec.validations[0].expression", Warning: "no such field"}
	type status = admissionregistrationv1.ValidatingAdmissionPolicyStatus
	tests := []struct {
		name   string
		status status
		want   []string
	}{
		{"empty", status{}, []string{}},
		{"typeChecking and conditions", status{
			ObservedGeneration: 1,
			TypeChecking:       &admissionregistrationv1.TypeChecking{ExpressionWarnings: []admissionregistrationv1.ExpressionWarning{warning}},
			Conditions:         []metav1.Condition{condition},
		}, []string{}},
		{"warning without text or fieldRef", status{
			TypeChecking: &admissionregistrationv1.TypeChecking{ExpressionWarnings: []admissionregistrationv1.ExpressionWarning{{FieldRef: " "}}},
		}, []string{"FieldValueRequired status.typeChecking.expressionWarnings[0].fieldRef", "FieldValueRequired status.typeChecking.expressionWarnings[0].warning"}},
		{"fieldRef that is not JSONPath", status{
			TypeChecking: &admissionregistrationv1.TypeChecking{ExpressionWarnings: []admissionregistrationv1.ExpressionWarning{
				warning, {FieldRef: "spec.validations[0", Warning: "w"},
			}},
		}, []string{"FieldValueInvalid status.typeChecking.expressionWarnings[1].fieldRef"}},
		{"condition", status{Conditions: []metav1.Condition{func() metav1.Condition {
			c := condition
			c.Status = "Maybe"
			return c
		}()}}, []string{"FieldValueNotSupported status.conditions[0].status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := testPolicy()
			r.Strategy.Default(old)
			p := old.DeepCopy()
			p.Status = tt.status
			r.Strategy.PrepareForStatusUpdate(t.Context(), p, old)
			r.Strategy.Default(p)
			if diff := cmp.Diff(tt.want, errStrings(r.Strategy.ValidateStatusUpdate(t.Context(), p, old))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	// A status write does not validate the spec (which the store takes
	// from the stored object).
	t.Run("spec not validated", func(t *testing.T) {
		old := testPolicy()
		old.Spec.Validations[0].Reason = ptr.To(metav1.StatusReasonConflict)
		p := old.DeepCopy()
		p.Status.ObservedGeneration = 1
		if errs := r.Strategy.ValidateStatusUpdate(t.Context(), p, old); len(errs) != 0 {
			t.Errorf("status update: %v", errs)
		}
	})
}

func TestValidatingAdmissionPolicyTables(t *testing.T) {
	created := metav1.NewTime(time.Now().Add(-50 * time.Hour))
	policyWith := func(mutate func(p *admissionregistrationv1.ValidatingAdmissionPolicy)) runtime.Object {
		p := testPolicy()
		p.CreationTimestamp = created
		mutate(p)
		return p
	}
	bindingWith := func(ref *admissionregistrationv1.ParamRef) runtime.Object {
		b := testBinding()
		b.CreationTimestamp = created
		b.Spec.ParamRef = ref
		return b
	}
	tests := []struct {
		name     string
		resource string
		obj      runtime.Object
		want     []any
	}{
		{"policy", admissionPolicies, policyWith(func(*admissionregistrationv1.ValidatingAdmissionPolicy) {}),
			[]any{"replicas.example.com", int64(1), "v1/ConfigMap", "2d2h"}},
		{"policy with a grouped paramKind", admissionPolicies, policyWith(func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "rules.example.com/v1", Kind: "ReplicaLimit"}
			p.Spec.Validations = append(p.Spec.Validations, p.Spec.Validations[0])
		}), []any{"replicas.example.com", int64(2), "rules.example.com/v1/ReplicaLimit", "2d2h"}},
		{"policy without paramKind", admissionPolicies, policyWith(func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.ParamKind = nil
			p.Spec.Validations = nil
		}), []any{"replicas.example.com", int64(0), "<unset>", "2d2h"}},
		{"binding", admissionPolicyBindings, bindingWith(testBinding().Spec.ParamRef),
			[]any{"replicas-test", "replicas.example.com", "default/limits", "2d2h"}},
		{"binding to a param in any namespace", admissionPolicyBindings, bindingWith(&admissionregistrationv1.ParamRef{Name: "limits"}),
			[]any{"replicas-test", "replicas.example.com", "*/limits", "2d2h"}},
		{"binding by selector", admissionPolicyBindings, bindingWith(&admissionregistrationv1.ParamRef{
			Namespace: "default", Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "limits"}},
		}), []any{"replicas-test", "replicas.example.com", "&LabelSelector{MatchLabels:map[string]string{tier: limits,},MatchExpressions:[]LabelSelectorRequirement{},}", "2d2h"}},
		{"binding without paramRef", admissionPolicyBindings, bindingWith(nil),
			[]any{"replicas-test", "replicas.example.com", "<unset>", "2d2h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl := groupResource(t, admissionGroup, tt.resource).Strategy.Table()
			var names, types []string
			for _, c := range tbl.Columns {
				names = append(names, c.Name)
				types = append(types, c.Type)
			}
			wantNames, wantTypes := []string{"Name", "Validations", "ParamKind", "Age"}, []string{"string", "integer", "string", "string"}
			if tt.resource == admissionPolicyBindings {
				wantNames, wantTypes = []string{"Name", "PolicyName", "ParamRef", "Age"}, []string{"string", "string", "string", "string"}
			}
			if diff := cmp.Diff(wantNames, names); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantTypes, types); diff != "" {
				t.Errorf("column types (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, tbl.Row(tt.obj)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}
