package garbagecollector

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func ref(uid string, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "owner-" + uid, UID: types.UID(uid), BlockOwnerDeletion: &block}
}

func TestDecide(t *testing.T) {
	a, b := ref("a", true), ref("b", false)
	tests := []struct {
		name   string
		refs   []metav1.OwnerReference
		states []ownerState
		facts  facts
		want   verdict
	}{
		{name: "no owners", want: verdict{Action: keep}},
		{
			name: "all owners solid", refs: []metav1.OwnerReference{a, b}, states: []ownerState{solid, solid},
			want: verdict{Action: keep},
		},
		{
			name: "one owner dangling, one solid", refs: []metav1.OwnerReference{a, b}, states: []ownerState{dangling, solid},
			want: verdict{Action: removeRefs, RemoveUIDs: []types.UID{"a"}},
		},
		{
			name: "one owner waiting, one solid", refs: []metav1.OwnerReference{a, b}, states: []ownerState{solid, waiting},
			want: verdict{Action: removeRefs, RemoveUIDs: []types.UID{"b"}},
		},
		{
			name: "all dangling: background", refs: []metav1.OwnerReference{a, b}, states: []ownerState{dangling, dangling},
			want: verdict{Action: deleteObject, Policy: metav1.DeletePropagationBackground},
		},
		{
			name: "all dangling, orphan finalizer", refs: []metav1.OwnerReference{a}, states: []ownerState{dangling},
			facts: facts{Finalizers: []string{"x", metav1.FinalizerOrphanDependents}},
			want:  verdict{Action: deleteObject, Policy: metav1.DeletePropagationOrphan},
		},
		{
			name: "all dangling, foreground finalizer", refs: []metav1.OwnerReference{a}, states: []ownerState{dangling},
			facts: facts{Finalizers: []string{metav1.FinalizerDeleteDependents}},
			want:  verdict{Action: deleteObject, Policy: metav1.DeletePropagationForeground},
		},
		{
			name: "owner waiting, no dependents: background", refs: []metav1.OwnerReference{a}, states: []ownerState{waiting},
			want: verdict{Action: deleteObject, Policy: metav1.DeletePropagationBackground},
		},
		{
			name: "owner waiting, with dependents: foreground", refs: []metav1.OwnerReference{a}, states: []ownerState{waiting},
			facts: facts{HasDependents: true},
			want:  verdict{Action: deleteObject, Policy: metav1.DeletePropagationForeground},
		},
		{
			name: "owner waiting, dependent deleting its own: unblock", refs: []metav1.OwnerReference{a, b}, states: []ownerState{waiting, dangling},
			facts: facts{HasDependents: true, DependentDeletingDependents: true},
			want:  verdict{Action: deleteObject, Policy: metav1.DeletePropagationForeground, Unblock: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decide(tt.refs, tt.states, tt.facts)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decide (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefEdits(t *testing.T) {
	a, b := ref("a", true), ref("b", false)
	if diff := cmp.Diff([]metav1.OwnerReference{b}, withoutRefs([]metav1.OwnerReference{a, b}, []types.UID{"a"})); diff != "" {
		t.Errorf("withoutRefs (-want +got):\n%s", diff)
	}
	refs := []metav1.OwnerReference{a, b}
	got := unblocked(refs, []types.UID{"a", "b"})
	if diff := cmp.Diff([]metav1.OwnerReference{ref("a", false), b}, got); diff != "" {
		t.Errorf("unblocked (-want +got):\n%s", diff)
	}
	if !blocks(refs[0]) {
		t.Errorf("unblocked changed its input")
	}
}
