package crdcontroller

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// named is a CRD of group example.com asking for names (plural, singular,
// kind, listKind, short names) and holding accepted ones.
func named(requested, accepted apiextensionsv1.CustomResourceDefinitionNames) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: requested.Plural + ".example.com"},
		Spec:       apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Names: requested},
		Status:     apiextensionsv1.CustomResourceDefinitionStatus{AcceptedNames: accepted},
	}
}

func names(plural, singular, kind string, short ...string) apiextensionsv1.CustomResourceDefinitionNames {
	return apiextensionsv1.CustomResourceDefinitionNames{Plural: plural, Singular: singular, Kind: kind, ListKind: kind + "List", ShortNames: short}
}

func TestAcceptNames(t *testing.T) {
	widgets := names("widgets", "widget", "Widget", "wd")
	none := apiextensionsv1.CustomResourceDefinitionNames{}
	other := func(n apiextensionsv1.CustomResourceDefinitionNames) *apiextensionsv1.CustomResourceDefinition {
		return named(n, n)
	}
	tests := []struct {
		name        string
		crd         *apiextensionsv1.CustomResourceDefinition
		others      []*apiextensionsv1.CustomResourceDefinition
		wantNames   apiextensionsv1.CustomResourceDefinitionNames
		wantReason  string
		wantMessage string
		wantEst     string // Established reason
	}{
		{"fresh", named(widgets, none), nil, widgets, "NoConflicts", "no conflicts found", "Installing"},
		{"other group does not count", named(widgets, none),
			[]*apiextensionsv1.CustomResourceDefinition{{Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "other.com"}, Status: apiextensionsv1.CustomResourceDefinitionStatus{AcceptedNames: widgets}}},
			widgets, "NoConflicts", "no conflicts found", "Installing"},
		{"plural taken", named(widgets, none), []*apiextensionsv1.CustomResourceDefinition{other(names("gadgets", "widgets", "Gadget"))},
			names("", "widget", "Widget", "wd"), "PluralConflict", `"widgets" is already in use`, "NotAccepted"},
		{"singular taken by a short name", named(widgets, none), []*apiextensionsv1.CustomResourceDefinition{other(names("gadgets", "gadget", "Gadget", "widget"))},
			names("widgets", "", "Widget", "wd"), "SingularConflict", `"widget" is already in use`, "NotAccepted"},
		{"short names taken", named(names("widgets", "widget", "Widget", "wd", "g", "gg"), none), []*apiextensionsv1.CustomResourceDefinition{other(names("gadgets", "g", "Gadget", "gg"))},
			names("widgets", "widget", "Widget"), "ShortNamesConflict", `["g" is already in use, "gg" is already in use]`, "NotAccepted"},
		{"kind taken", named(widgets, none), []*apiextensionsv1.CustomResourceDefinition{other(names("gadgets", "gadget", "Widget"))},
			apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", ShortNames: []string{"wd"}},
			"ListKindConflict", `"WidgetList" is already in use`, "NotAccepted"},
		{"own names stay", named(widgets, widgets), nil, widgets, "NoConflicts", "no conflicts found", "Installing"},
		{"a renamed kind that is taken keeps the accepted one",
			named(names("widgets", "widget", "Gadget", "wd"), widgets), []*apiextensionsv1.CustomResourceDefinition{other(names("gadgets", "gadget", "Gadget"))},
			widgets, "ListKindConflict", `"GadgetList" is already in use`, "NotAccepted"},
		{"a renamed kind that is free", named(names("widgets", "widget", "Gadget", "wd"), widgets), nil,
			names("widgets", "widget", "Gadget", "wd"), "NoConflicts", "no conflicts found", "Installing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group := append([]*apiextensionsv1.CustomResourceDefinition{tt.crd}, tt.others...)
			gotNames, cond, est := acceptNames(tt.crd, group)
			if diff := cmp.Diff(tt.wantNames, gotNames); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			if cond.Reason != tt.wantReason || cond.Message != tt.wantMessage {
				t.Errorf("NamesAccepted = %s %q, want %s %q", cond.Reason, cond.Message, tt.wantReason, tt.wantMessage)
			}
			wantStatus := apiextensionsv1.ConditionFalse
			if tt.wantReason == "NoConflicts" {
				wantStatus = apiextensionsv1.ConditionTrue
			}
			if cond.Status != wantStatus {
				t.Errorf("NamesAccepted status = %s, want %s", cond.Status, wantStatus)
			}
			if est.Status != apiextensionsv1.ConditionFalse || est.Reason != tt.wantEst {
				t.Errorf("Established = %s %s, want False %s", est.Status, est.Reason, tt.wantEst)
			}
		})
	}
}

func TestAcceptNamesKeepsEstablished(t *testing.T) {
	crd := named(names("widgets", "widget", "Widget", "wd", "w"), names("widgets", "widget", "Widget", "wd"))
	crd.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{{
		Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue, Reason: "InitialNamesAccepted",
	}}
	_, cond, est := acceptNames(crd, []*apiextensionsv1.CustomResourceDefinition{crd})
	if cond.Status != apiextensionsv1.ConditionTrue || est.Status != apiextensionsv1.ConditionTrue || est.Reason != "InitialNamesAccepted" {
		t.Errorf("NamesAccepted %s, Established %s %s; want True, True InitialNamesAccepted", cond.Status, est.Status, est.Reason)
	}
}
