package nsindex

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestList(t *testing.T) {
	svc := func(ns, name string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	objs := []*corev1.Service{svc("a", "one"), svc("a", "two"), svc("b", "three")}
	withIndex := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	without := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, o := range objs {
		for _, idx := range []cache.Indexer{withIndex, without} {
			if err := idx.Add(o); err != nil {
				t.Fatal(err)
			}
		}
	}
	names := func(svcs []*corev1.Service) []string {
		var out []string
		for _, s := range svcs {
			out = append(out, s.Name)
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		name    string
		indexer cache.Indexer
	}{{"namespace index", withIndex}, {"no index", without}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(List[*corev1.Service](tc.indexer, "a")); !slices.Equal(got, []string{"one", "two"}) {
				t.Errorf("namespace a: got %v, want [one two]", got)
			}
			if got := List[*corev1.Service](tc.indexer, "c"); got != nil {
				t.Errorf("empty namespace: got %v, want nil", got)
			}
			if got := List[*corev1.Pod](tc.indexer, "a"); len(got) != 0 {
				t.Errorf("other type: got %v, want none", got)
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() { List[*corev1.Service](withIndex, "c") }); n != 0 {
		t.Errorf("an empty namespace cost %v allocations, want 0", n)
	}
}
