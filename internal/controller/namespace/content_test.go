package namespace

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestDeletableResources(t *testing.T) {
	all := []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	tests := []struct {
		name       string
		lists      []*metav1.APIResourceList
		want       []deletable
		wantParses int
	}{
		{
			name: "collections, one by one, subresources and read-only resources",
			lists: []*metav1.APIResourceList{
				{GroupVersion: "v1", APIResources: []metav1.APIResource{
					{Name: "configmaps", Namespaced: true, Verbs: all},
					{Name: "pods", Namespaced: true, Verbs: all},
					{Name: "pods/status", Namespaced: true, Verbs: []string{"get", "patch", "update"}},
					{Name: "bindings", Namespaced: true, Verbs: []string{"create"}},
					{Name: "events", Namespaced: true, Verbs: []string{"list", "delete"}},
					{Name: "nodes", Namespaced: false, Verbs: all},
				}},
				{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
					{Name: "deployments", Namespaced: true, Verbs: all},
					{Name: "readonly", Namespaced: true, Verbs: []string{"get", "list", "watch"}},
				}},
			},
			want: []deletable{
				{gvr: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, collection: true},
				{gvr: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, collection: true},
				{gvr: schema.GroupVersionResource{Version: "v1", Resource: "events"}, collection: false},
				{gvr: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, collection: true},
			},
		},
		{
			name: "unparsable group version",
			lists: []*metav1.APIResourceList{
				{GroupVersion: "a/b/c", APIResources: []metav1.APIResource{{Name: "things", Namespaced: true, Verbs: all}}},
			},
			wantParses: 1,
		},
		{name: "nothing discovered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &deletion{}
			got := deletableResources(tt.lists, d)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(deletable{})); diff != "" {
				t.Errorf("deletableResources() mismatch (-want +got):\n%s", diff)
			}
			if len(d.parseErrs) != tt.wantParses {
				t.Errorf("parse errors: got %v, want %d", d.parseErrs, tt.wantParses)
			}
		})
	}
}

func TestConditions(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	type short struct {
		Type    corev1.NamespaceConditionType
		Status  corev1.ConditionStatus
		Reason  string
		Message string
	}
	allGood := []short{
		{corev1.NamespaceDeletionDiscoveryFailure, corev1.ConditionFalse, "ResourcesDiscovered", messageDiscovered},
		{corev1.NamespaceDeletionGVParsingFailure, corev1.ConditionFalse, "ParsedGroupVersions", messageParsed},
		{corev1.NamespaceDeletionContentFailure, corev1.ConditionFalse, "ContentDeleted", messageDeleted},
		{corev1.NamespaceContentRemaining, corev1.ConditionFalse, "ContentRemoved", messageRemoved},
		{corev1.NamespaceFinalizersRemaining, corev1.ConditionFalse, "ContentHasNoFinalizers", messageNoFinalizersLeft},
	}
	tests := []struct {
		name string
		d    deletion
		want []short
	}{
		{name: "everything gone", want: allGood},
		{
			name: "content and finalizers remaining",
			d: deletion{
				remaining:  map[string]int{"pods.": 2, "deployments.apps": 1},
				finalizers: map[string]int{"example.com/keep": 1},
			},
			want: []short{
				allGood[0], allGood[1], allGood[2],
				{corev1.NamespaceContentRemaining, corev1.ConditionTrue, "SomeResourcesRemain",
					"Some resources are remaining: deployments.apps has 1 resource instances, pods. has 2 resource instances"},
				{corev1.NamespaceFinalizersRemaining, corev1.ConditionTrue, "SomeFinalizersRemain",
					"Some content in the namespace has finalizers remaining: example.com/keep in 1 resource instances"},
			},
		},
		{
			name: "failures",
			d: deletion{
				discoveryErr: errors.New("group x unavailable"),
				parseErrs:    []error{errors.New("bad gv")},
				contentErrs:  []error{errors.New("boom")},
			},
			want: []short{
				{corev1.NamespaceDeletionDiscoveryFailure, corev1.ConditionTrue, "DiscoveryFailed", "group x unavailable"},
				{corev1.NamespaceDeletionGVParsingFailure, corev1.ConditionTrue, "GroupVersionParsingFailed", "bad gv"},
				{corev1.NamespaceDeletionContentFailure, corev1.ConditionTrue, "ContentDeletionFailed", "Failed to delete all resource types, 1 remaining: boom"},
				allGood[3], allGood[4],
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []short
			for _, c := range tt.d.conditions(now) {
				if !c.LastTransitionTime.Equal(&now) {
					t.Errorf("condition %s: LastTransitionTime %v, want %v", c.Type, c.LastTransitionTime, now)
				}
				got = append(got, short{c.Type, c.Status, c.Reason, c.Message})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("conditions() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMergeConditions(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Hour))
	cond := func(typ corev1.NamespaceConditionType, status corev1.ConditionStatus, msg string, at metav1.Time) corev1.NamespaceCondition {
		return corev1.NamespaceCondition{Type: typ, Status: status, Reason: "R", Message: msg, LastTransitionTime: at}
	}
	tests := []struct {
		name        string
		existing    []corev1.NamespaceCondition
		desired     []corev1.NamespaceCondition
		want        []corev1.NamespaceCondition
		wantChanged bool
	}{
		{
			name:        "added to empty",
			desired:     []corev1.NamespaceCondition{cond("A", "True", "m", t1)},
			want:        []corev1.NamespaceCondition{cond("A", "True", "m", t1)},
			wantChanged: true,
		},
		{
			name:     "unchanged keeps the old transition time",
			existing: []corev1.NamespaceCondition{cond("A", "True", "m", t0)},
			desired:  []corev1.NamespaceCondition{cond("A", "True", "m", t1)},
			want:     []corev1.NamespaceCondition{cond("A", "True", "m", t0)},
		},
		{
			name:        "changed message replaces, others kept",
			existing:    []corev1.NamespaceCondition{cond("Other", "True", "x", t0), cond("A", "True", "m", t0)},
			desired:     []corev1.NamespaceCondition{cond("A", "True", "n", t1)},
			want:        []corev1.NamespaceCondition{cond("Other", "True", "x", t0), cond("A", "True", "n", t1)},
			wantChanged: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := mergeConditions(tt.existing, tt.desired)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mergeConditions() mismatch (-want +got):\n%s", diff)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed: got %v, want %v", changed, tt.wantChanged)
			}
		})
	}
}

func TestWithoutFinalizer(t *testing.T) {
	tests := []struct {
		name string
		in   []corev1.FinalizerName
		want []corev1.FinalizerName
	}{
		{name: "only kubernetes", in: []corev1.FinalizerName{"kubernetes"}, want: []corev1.FinalizerName{}},
		{name: "kept others", in: []corev1.FinalizerName{"a", "kubernetes", "b"}, want: []corev1.FinalizerName{"a", "b"}},
		{name: "absent", in: []corev1.FinalizerName{"a"}, want: []corev1.FinalizerName{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]corev1.FinalizerName(nil), tt.in...)
			got := withoutFinalizer(in, FinalizerKubernetes)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("withoutFinalizer() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.in, in); diff != "" {
				t.Errorf("input was modified (-want +got):\n%s", diff)
			}
		})
	}
}
