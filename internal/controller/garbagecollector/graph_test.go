package garbagecollector

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

var configmaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// obj builds an observed config map in namespace ns.
func obj(uid string, deleting bool, finalizers []string, owners ...metav1.OwnerReference) *node {
	m := &metav1.ObjectMeta{Namespace: "ns", Name: "owner-" + uid, UID: types.UID(uid), Finalizers: finalizers, OwnerReferences: owners}
	if deleting {
		ts := metav1.NewTime(time.Unix(0, 0))
		m.DeletionTimestamp = &ts
	}
	return newNode(configmaps, "ConfigMap", m)
}

// step is one event applied to the graph: observe n, or forget uid.
type step struct {
	observe *node
	forget  types.UID
}

func TestGraph(t *testing.T) {
	tests := []struct {
		name  string
		setup []step
		step  step
		want  work
	}{
		{
			name: "object without owners",
			step: step{observe: obj("a", false, nil)},
		},
		{
			name: "dependent of an unobserved owner is checked",
			step: step{observe: obj("d", false, nil, ref("a", false))},
			want: work{attemptToDelete: []types.UID{"d"}},
		},
		{
			name:  "dependent of an observed owner is not",
			setup: []step{{observe: obj("a", false, nil)}},
			step:  step{observe: obj("d", false, nil, ref("a", false))},
		},
		{
			name:  "dependent of an owner in another namespace is checked",
			setup: []step{{observe: newNode(configmaps, "ConfigMap", &metav1.ObjectMeta{Namespace: "other", Name: "owner-a", UID: "a"})}},
			step:  step{observe: obj("d", false, nil, ref("a", false))},
			want:  work{attemptToDelete: []types.UID{"d"}},
		},
		{
			name: "deleted owner: its dependents are checked",
			setup: []step{
				{observe: obj("a", false, nil)},
				{observe: obj("d1", false, nil, ref("a", false))},
				{observe: obj("d2", false, nil, ref("a", true))},
			},
			step: step{forget: "a"},
			want: work{attemptToDelete: []types.UID{"d1", "d2"}},
		},
		{
			name: "owner deleting its dependents: it and they are checked",
			setup: []step{
				{observe: obj("a", false, nil)},
				{observe: obj("d1", false, nil, ref("a", false))},
			},
			step: step{observe: obj("a", true, []string{metav1.FinalizerDeleteDependents})},
			want: work{attemptToDelete: []types.UID{"a", "d1"}},
		},
		{
			name: "owner orphaning its dependents",
			setup: []step{
				{observe: obj("a", false, nil)},
			},
			step: step{observe: obj("a", true, []string{metav1.FinalizerOrphanDependents})},
			want: work{orphan: []types.UID{"a"}},
		},
		{
			name: "blocking dependent gone: the waiting owner is checked",
			setup: []step{
				{observe: obj("a", true, []string{metav1.FinalizerDeleteDependents})},
				{observe: obj("d", false, nil, ref("a", true))},
			},
			step: step{forget: "d"},
			want: work{attemptToDelete: []types.UID{"a"}},
		},
		{
			name: "blocking dependent unblocks: the waiting owner is checked",
			setup: []step{
				{observe: obj("a", true, []string{metav1.FinalizerDeleteDependents})},
				{observe: obj("d", false, nil, ref("a", true))},
			},
			step: step{observe: obj("d", false, nil, ref("a", false))},
			want: work{attemptToDelete: []types.UID{"a", "d"}},
		},
		{
			name: "reference removed: the waiting owner is checked",
			setup: []step{
				{observe: obj("a", true, []string{metav1.FinalizerDeleteDependents})},
				{observe: obj("d", false, nil, ref("a", true))},
			},
			step: step{observe: obj("d", false, nil)},
			want: work{attemptToDelete: []types.UID{"a"}},
		},
		{
			name:  "forgetting an unknown object",
			setup: []step{{observe: obj("a", false, nil)}},
			step:  step{forget: "zz"},
		},
	}
	apply := func(g *graph, s step) work {
		if s.observe != nil {
			return g.observe(s.observe)
		}
		return g.forget(s.forget)
	}
	sortUIDs := cmpopts.SortSlices(func(a, b types.UID) bool { return a < b })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGraph()
			for _, s := range tt.setup {
				apply(g, s)
			}
			got := apply(g, tt.step)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(work{}), sortUIDs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("work (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGraphIndex(t *testing.T) {
	g := newGraph()
	g.observe(obj("a", false, nil))
	g.observe(obj("b", false, nil))
	g.observe(obj("d", false, nil, ref("a", false), ref("b", true)))
	names := func(ns []node) []types.UID {
		var out []types.UID
		for _, n := range ns {
			out = append(out, n.id.UID)
		}
		return out
	}
	if diff := cmp.Diff([]types.UID{"d"}, names(g.dependentsOf("b"))); diff != "" {
		t.Errorf("dependents of b (-want +got):\n%s", diff)
	}
	// d drops its reference to a.
	g.observe(obj("d", false, nil, ref("b", true)))
	if got := g.dependentsOf("a"); len(got) != 0 {
		t.Errorf("dependents of a after the reference was removed: %v", names(got))
	}
	g.forget("d")
	if g.hasDependents("b") {
		t.Errorf("b still has dependents after d is gone")
	}
	if got, want := g.size(), 2; got != want {
		t.Errorf("size = %d, want %d", got, want)
	}
	if _, ok := g.get("d"); ok {
		t.Errorf("d still in the graph")
	}
	if !slices.Equal(names(g.dependentsOf("zz")), nil) {
		t.Errorf("dependents of an unknown uid")
	}
}
