package builtin

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// testCRD is a valid one-version CRD with status and scale subresources,
// a printer column and a selectable field.
func testCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com",
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "widgets", Kind: "Widget", ShortNames: []string{"wd"}, Categories: []string{"all"},
			},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{testVersion("v1", true)},
		},
	}
}

// testVersion is a valid version (storage when storage is true).
func testVersion(name string, storage bool) apiextensionsv1.CustomResourceDefinitionVersion {
	return apiextensionsv1.CustomResourceDefinitionVersion{
		Name: name, Served: true, Storage: storage,
		Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
			Type: "object",
			Properties: map[string]apiextensionsv1.JSONSchemaProps{
				"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"replicas": {Type: "integer"},
					"color":    {Type: "string"},
					"size":     {Type: "object"},
				}},
				"status": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"replicas": {Type: "integer"},
				}},
			},
		}},
		Subresources: &apiextensionsv1.CustomResourceSubresources{
			Status: &apiextensionsv1.CustomResourceSubresourceStatus{},
			Scale:  &apiextensionsv1.CustomResourceSubresourceScale{SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.replicas"},
		},
		AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{{Name: "Color", Type: "string", JSONPath: ".spec.color"}},
		SelectableFields:         []apiextensionsv1.SelectableField{{JSONPath: ".spec.color"}},
	}
}

func TestCRDCreate(t *testing.T) {
	r := groupResource(t, "apiextensions.k8s.io", "customresourcedefinitions")
	if !r.Status || r.Namespaced || r.Kind != "CustomResourceDefinition" {
		t.Errorf("resource: status %v namespaced %v kind %s", r.Status, r.Namespaced, r.Kind)
	}
	if diff := cmp.Diff([]string{"crd", "crds"}, r.ShortNames); diff != "" {
		t.Errorf("short names (-want +got):\n%s", diff)
	}

	crd := testCRD()
	crd.Status.AcceptedNames.Plural = "set-by-client"
	checkDefaultIdempotent(t, r, crd)
	if errs := create(t, r, crd); len(errs) != 0 {
		t.Fatalf("valid CRD rejected: %v", errs)
	}
	want := apiextensionsv1.CustomResourceDefinitionNames{
		Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList",
		ShortNames: []string{"wd"}, Categories: []string{"all"},
	}
	if diff := cmp.Diff(want, crd.Spec.Names); diff != "" {
		t.Errorf("defaulted names (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.NoneConverter}, crd.Spec.Conversion); diff != "" {
		t.Errorf("conversion (-want +got):\n%s", diff)
	}
	wantStatus := apiextensionsv1.CustomResourceDefinitionStatus{StoredVersions: []string{"v1"}}
	if diff := cmp.Diff(wantStatus, crd.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestCRDValidate(t *testing.T) {
	r := groupResource(t, "apiextensions.k8s.io", "customresourcedefinitions")
	schemaOf := func(c *apiextensionsv1.CustomResourceDefinition) *apiextensionsv1.JSONSchemaProps {
		return c.Spec.Versions[0].Schema.OpenAPIV3Schema
	}
	tests := []struct {
		name   string
		mutate func(c *apiextensionsv1.CustomResourceDefinition)
		want   []string
	}{
		{"valid", func(*apiextensionsv1.CustomResourceDefinition) {}, []string{}},
		{"cluster scoped", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = apiextensionsv1.ClusterScoped }, []string{}},
		{"name not plural.group", func(c *apiextensionsv1.CustomResourceDefinition) { c.Name = "widget.example.com" },
			[]string{"FieldValueInvalid metadata.name"}},
		{"group without a dot", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Group = "example"
			c.Name = "widgets.example"
		},
			[]string{"FieldValueInvalid spec.group"}},
		{"group not a DNS name", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Group = "Ex_ample.com"
			c.Name = "widgets.Ex_ample.com"
		},
			[]string{"FieldValueInvalid spec.group"}},
		{"no group", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Group = "" },
			[]string{"FieldValueInvalid metadata.name", "FieldValueRequired spec.group"}},
		{"scope", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = "Global" },
			[]string{"FieldValueNotSupported spec.scope"}},
		{"no scope", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = "" },
			[]string{"FieldValueRequired spec.scope"}},
		{"no plural or kind", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Names.Plural = ""
			c.Spec.Names.Kind = ""
			c.Name = ".example.com"
		},
			[]string{"FieldValueRequired spec.names.kind", "FieldValueRequired spec.names.listKind", "FieldValueRequired spec.names.plural", "FieldValueRequired spec.names.singular"}},
		{"bad names", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Names.Singular = "Widget"
			c.Spec.Names.ListKind = "Widget"
			c.Spec.Names.ShortNames = []string{"w_d"}
			c.Spec.Names.Categories = []string{"All"}
		}, []string{"FieldValueInvalid spec.names.categories[0]", "FieldValueInvalid spec.names.listKind", "FieldValueInvalid spec.names.shortNames[0]", "FieldValueInvalid spec.names.singular"}},
		{"bad kind", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Names.Kind, c.Spec.Names.Singular, c.Spec.Names.ListKind = "Wid.get", "widget", "WidgetList"
		},
			[]string{"FieldValueInvalid spec.names.kind"}},
		{"no versions", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions = nil },
			[]string{"FieldValueInvalid spec.versions", "FieldValueInvalid status.storedVersions"}},
		{"bad version name", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Name = "V1" },
			[]string{"FieldValueInvalid spec.versions[0].name"}},
		{"duplicate versions", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions = append(c.Spec.Versions, testVersion("v1", false))
		}, []string{"FieldValueInvalid spec.versions"}},
		{"two storage versions", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions = append(c.Spec.Versions, testVersion("v2", true))
		}, []string{"FieldValueInvalid spec.versions", "FieldValueInvalid status.storedVersions"}},
		{"no storage version", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Storage = false },
			[]string{"FieldValueInvalid spec.versions", "FieldValueInvalid status.storedVersions"}},
		{"deprecation warning on a current version", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].DeprecationWarning = ptr.To("old")
		}, []string{"FieldValueInvalid spec.versions[0].deprecationWarning"}},
		{"no schema", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Schema = nil
			c.Spec.Versions[0].SelectableFields = nil
		},
			[]string{"FieldValueRequired spec.versions[0].schema.openAPIV3Schema"}},
		{"preserveUnknownFields", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.PreserveUnknownFields = true },
			[]string{"FieldValueInvalid spec.preserveUnknownFields"}},
		{"root schema field not allowed with status", func(c *apiextensionsv1.CustomResourceDefinition) { schemaOf(c).MaxProperties = ptr.To[int64](3) },
			[]string{"FieldValueInvalid spec.validation.openAPIV3Schema"}},
		{"nullable root", func(c *apiextensionsv1.CustomResourceDefinition) {
			schemaOf(c).Nullable = true
			c.Spec.Versions[0].Subresources.Status = nil
		}, []string{"FieldValueForbidden spec.validation.openAPIV3Schema.nullable"}},
		{"scale paths", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Subresources.Scale = &apiextensionsv1.CustomResourceSubresourceScale{
				SpecReplicasPath: ".status.replicas", StatusReplicasPath: "status.replicas", LabelSelectorPath: ptr.To(".metadata.labels"),
			}
		}, []string{"FieldValueInvalid spec.subresources.scale.labelSelectorPath", "FieldValueInvalid spec.subresources.scale.specReplicasPath", "FieldValueInvalid spec.subresources.scale.statusReplicasPath"}},
		{"scale paths missing", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Subresources.Scale = &apiextensionsv1.CustomResourceSubresourceScale{}
		}, []string{"FieldValueRequired spec.subresources.scale.specReplicasPath", "FieldValueRequired spec.subresources.scale.statusReplicasPath"}},
		{"printer columns", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].AdditionalPrinterColumns = []apiextensionsv1.CustomResourceColumnDefinition{
				{Name: "A", Type: "text", JSONPath: ".spec.color"},
				{Name: "", Type: "integer", Format: "int8", JSONPath: "spec.replicas"},
				{Name: "C", JSONPath: ""},
				{Name: "Age", Type: "date", Format: "date-time", JSONPath: ".metadata.creationTimestamp"},
			}
		}, []string{
			"FieldValueInvalid spec.additionalPrinterColumns[0].type",
			"FieldValueInvalid spec.additionalPrinterColumns[1].JSONPath",
			"FieldValueInvalid spec.additionalPrinterColumns[1].format",
			"FieldValueRequired spec.additionalPrinterColumns[1].name",
			"FieldValueRequired spec.additionalPrinterColumns[2].JSONPath",
			"FieldValueRequired spec.additionalPrinterColumns[2].type",
		}},
		{"selectable fields", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].SelectableFields = []apiextensionsv1.SelectableField{
				{JSONPath: ".spec.nope"}, {JSONPath: ".spec.size"}, {JSONPath: ""}, {JSONPath: ".spec.replicas"},
				{JSONPath: ".spec.replicas"}, {JSONPath: ".spec['color']"},
			}
		}, []string{
			"FieldValueDuplicate spec.selectableFields[4].jsonPath",
			"FieldValueInvalid spec.selectableFields[0].jsonPath",
			"FieldValueInvalid spec.selectableFields[1].jsonPath",
			"FieldValueInvalid spec.selectableFields[5].jsonPath",
			"FieldValueRequired spec.selectableFields[2].jsonPath",
		}},
		{"too many selectable fields", func(c *apiextensionsv1.CustomResourceDefinition) {
			spec := schemaOf(c).Properties["spec"]
			c.Spec.Versions[0].SelectableFields = nil
			for i := range 9 {
				name := fmt.Sprintf("f%d", i)
				spec.Properties[name] = apiextensionsv1.JSONSchemaProps{Type: "string"}
				c.Spec.Versions[0].SelectableFields = append(c.Spec.Versions[0].SelectableFields, apiextensionsv1.SelectableField{JSONPath: ".spec." + name})
			}
		}, []string{"FieldValueTooMany spec.selectableFields"}},
		{"webhook conversion without settings", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.WebhookConverter}
		}, []string{"FieldValueRequired spec.conversion.conversionReviewVersions", "FieldValueRequired spec.conversion.webhookClientConfig"}},
		{"webhook conversion", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{
				Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{
					ClientConfig:             &apiextensionsv1.WebhookClientConfig{Service: &apiextensionsv1.ServiceReference{Namespace: "ns", Name: "conv", Path: ptr.To("/convert")}},
					ConversionReviewVersions: []string{"v1"},
				},
			}
		}, []string{}},
		{"webhook conversion with bad settings", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{
				Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{
					ClientConfig:             &apiextensionsv1.WebhookClientConfig{URL: ptr.To("http://conv.example.com/x?y=1")},
					ConversionReviewVersions: []string{"v9", "v9"},
				},
			}
		}, []string{
			"FieldValueInvalid spec.conversion.conversionReviewVersions",
			"FieldValueInvalid spec.conversion.conversionReviewVersions[1]",
			"FieldValueInvalid spec.conversion.webhookClientConfig.url",
			"FieldValueInvalid spec.conversion.webhookClientConfig.url",
		}},
		{"webhook settings with strategy None", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{
				Strategy: apiextensionsv1.NoneConverter,
				Webhook:  &apiextensionsv1.WebhookConversion{ClientConfig: &apiextensionsv1.WebhookClientConfig{URL: ptr.To("https://x")}, ConversionReviewVersions: []string{"v1"}},
			}
		}, []string{"FieldValueForbidden spec.conversion.conversionReviewVersions", "FieldValueForbidden spec.conversion.webhookClientConfig"}},
		{"conversion strategy", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{Strategy: "Magic"}
		}, []string{"FieldValueNotSupported spec.conversion.strategy"}},
		{"protected group without approval", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Group = "things.k8s.io"
			c.Name = "widgets.things.k8s.io"
		}, []string{"FieldValueRequired metadata.annotations[api-approved.kubernetes.io]"}},
		{"protected group approved", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Group = "things.k8s.io"
			c.Name = "widgets.things.k8s.io"
			c.Annotations = map[string]string{"api-approved.kubernetes.io": "https://github.com/kubernetes/kubernetes/pull/1"}
		}, []string{}},
		{"per-version errors name the version", func(c *apiextensionsv1.CustomResourceDefinition) {
			v2 := testVersion("v2", false)
			v2.AdditionalPrinterColumns[0].Type = "text"
			v2.Subresources.Scale.SpecReplicasPath = ".status.replicas"
			c.Spec.Versions = append(c.Spec.Versions, v2)
		}, []string{"FieldValueInvalid spec.versions[1].additionalPrinterColumns[0].type", "FieldValueInvalid spec.versions[1].subresources.scale.specReplicasPath"}},
		{"shared settings are checked once", func(c *apiextensionsv1.CustomResourceDefinition) {
			v2 := testVersion("v2", false)
			c.Spec.Versions[0].AdditionalPrinterColumns[0].Type = "text"
			v2.AdditionalPrinterColumns[0].Type = "text"
			c.Spec.Versions = append(c.Spec.Versions, v2)
		}, []string{"FieldValueInvalid spec.additionalPrinterColumns[0].type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crd := testCRD()
			tt.mutate(crd)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, crd))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestCRDUpdate(t *testing.T) {
	r := groupResource(t, "apiextensions.k8s.io", "customresourcedefinitions")
	stored := func(established bool) *apiextensionsv1.CustomResourceDefinition {
		crd := testCRD()
		if errs := create(t, r, crd); len(errs) != 0 {
			t.Fatalf("valid CRD rejected: %v", errs)
		}
		crd.ResourceVersion = "5"
		if established {
			setCRDCondition(crd, apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}, time.Now())
		}
		return crd
	}
	tests := []struct {
		name        string
		established bool
		mutate      func(c *apiextensionsv1.CustomResourceDefinition)
		want        []string
	}{
		{"labels", true, func(c *apiextensionsv1.CustomResourceDefinition) { c.Labels = map[string]string{"a": "b"} }, []string{}},
		{"group", false, func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Group = "other.com" },
			[]string{"FieldValueInvalid spec.group"}},
		{"plural", false, func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Names.Plural = "gadgets" },
			[]string{"FieldValueInvalid spec.names.plural"}},
		{"scope before established", false, func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = apiextensionsv1.ClusterScoped }, []string{}},
		{"scope and kind once established", true, func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Scope = apiextensionsv1.ClusterScoped
			c.Spec.Names.Kind = "Gadget"
			c.Spec.Names.ListKind = "GadgetList"
		}, []string{"FieldValueInvalid spec.names.kind", "FieldValueInvalid spec.scope"}},
		{"new storage version", true, func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Storage = false
			c.Spec.Versions = append(c.Spec.Versions, testVersion("v2", true))
		}, []string{}},
		{"stored version removed", true, func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions = []apiextensionsv1.CustomResourceDefinitionVersion{testVersion("v2", true)}
		}, []string{"FieldValueInvalid status.storedVersions[0]"}},
		{"status is not changed through the main resource", true, func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Status.StoredVersions = nil
		}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := stored(tt.established)
			crd := old.DeepCopy()
			tt.mutate(crd)
			if diff := cmp.Diff(tt.want, errStrings(update(t, r, crd, old))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	t.Run("storage version is recorded", func(t *testing.T) {
		old := stored(true)
		crd := old.DeepCopy()
		crd.Spec.Versions[0].Storage = false
		crd.Spec.Versions = append(crd.Spec.Versions, testVersion("v2", true))
		update(t, r, crd, old)
		if diff := cmp.Diff([]string{"v1", "v2"}, crd.Status.StoredVersions); diff != "" {
			t.Errorf("storedVersions (-want +got):\n%s", diff)
		}
	})
	t.Run("an unchanged spec is not validated again", func(t *testing.T) {
		old := stored(true)
		old.Spec.Versions[0].AdditionalPrinterColumns[0].Type = "text" // stored before a rule tightened
		crd := old.DeepCopy()
		crd.Finalizers = nil
		if errs := update(t, r, crd, old); len(errs) != 0 {
			t.Errorf("update of metadata rejected: %v", errs)
		}
	})
	t.Run("status", func(t *testing.T) {
		old := stored(false)
		crd := old.DeepCopy()
		crd.Status.AcceptedNames = apiextensionsv1.CustomResourceDefinitionNames{Plural: "Widgets", Kind: "Widget", ListKind: "Widget"}
		got := errStrings(r.Strategy.ValidateStatusUpdate(t.Context(), crd, old))
		want := []string{"FieldValueInvalid status.acceptedNames.listKind", "FieldValueInvalid status.acceptedNames.plural"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

func TestCRDPrepareForDelete(t *testing.T) {
	r := groupResource(t, "apiextensions.k8s.io", "customresourcedefinitions")
	crd := testCRD()
	crd.Finalizers = []string{"example.com/keep"}
	r.PrepareForDelete(crd)
	r.PrepareForDelete(crd) // idempotent
	if diff := cmp.Diff([]string{"example.com/keep", apiextensionsv1.CustomResourceCleanupFinalizer}, crd.Finalizers); diff != "" {
		t.Errorf("finalizers (-want +got):\n%s", diff)
	}
	if len(crd.Status.Conditions) != 1 {
		t.Fatalf("conditions: %+v", crd.Status.Conditions)
	}
	got := crd.Status.Conditions[0]
	if got.LastTransitionTime.IsZero() {
		t.Error("no lastTransitionTime")
	}
	got.LastTransitionTime = metav1.Time{}
	want := apiextensionsv1.CustomResourceDefinitionCondition{
		Type: apiextensionsv1.Terminating, Status: apiextensionsv1.ConditionTrue, Reason: "InstanceDeletionPending",
		Message: "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("condition (-want +got):\n%s", diff)
	}
}

func TestCRDTable(t *testing.T) {
	r := groupResource(t, "apiextensions.k8s.io", "customresourcedefinitions")
	crd := testCRD()
	crd.CreationTimestamp = metav1.Date(2026, 11, 22, 17, 0, 0, 0, time.UTC)
	v0 := testVersion("v1alpha1", false)
	v0.Served = false
	crd.Spec.Versions = append(crd.Spec.Versions, testVersion("v1beta1", false), v0)
	setCRDCondition(crd, apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}, time.Now())
	tbl := r.Strategy.Table()
	var names []string
	for _, c := range tbl.Columns {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"Name", "Scope", "Versions", "Created At", "Group", "Kind", "ShortNames", "Established"}, names); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	want := []any{"widgets.example.com", "Namespaced", "v1(storage),v1beta1", "2026-11-22T17:00:00Z", "example.com", "Widget", "wd", true}
	if diff := cmp.Diff(want, tbl.Row(crd)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}
