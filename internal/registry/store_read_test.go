package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-dev/skiff/internal/storage"
)

func TestReadPaths(t *testing.T) {
	e := newTestEnv(t)
	cms := e.store(configMapsResource(), e.namespaces)
	for _, ns := range []string{"ns1", "default"} {
		if _, err := cms.Create(e.ctx, ns, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name      string
		namespace string
		want      []string // namespace/name
	}{
		{name: "one namespace", namespace: "ns1", want: []string{"ns1/cm"}},
		{name: "all namespaces", namespace: "", want: []string{"default/cm", "ns1/cm"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list, err := cms.List(e.ctx, tc.namespace, storage.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if gvk := list.GetObjectKind().GroupVersionKind(); gvk.Kind != "ConfigMapList" {
				t.Errorf("list kind %v, want ConfigMapList", gvk)
			}
			var got []string
			for _, cm := range list.(*corev1.ConfigMapList).Items {
				got = append(got, cm.Namespace+"/"+cm.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("get", func(t *testing.T) {
		got, err := cms.Get(e.ctx, "ns1", "cm")
		if err != nil {
			t.Fatal(err)
		}
		if m := mustMeta(t, got); m.Namespace != "ns1" || got.GetObjectKind().GroupVersionKind().Kind != "ConfigMap" {
			t.Errorf("got %s kind %v", m.Namespace, got.GetObjectKind().GroupVersionKind())
		}
		_, err = cms.Get(e.ctx, "", "cm")
		wantCode(t, err, 400)
		_, err = cms.Get(e.ctx, "ns1", "a/b")
		wantCode(t, err, 400)
	})

	t.Run("watch one namespace", func(t *testing.T) {
		w, err := cms.Watch(e.ctx, "ns1", storage.WatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if _, err := cms.Create(e.ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cms.Create(e.ctx, "ns1", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "new"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var got []string
		deadline := time.After(10 * time.Second)
		for len(got) < 2 {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					t.Fatalf("watch closed after %v", got)
				}
				if ev.Type == watch.Bookmark {
					continue
				}
				m := mustMeta(t, ev.Object)
				got = append(got, string(ev.Type)+" "+m.Namespace+"/"+m.Name)
			case <-deadline:
				t.Fatalf("timed out; events so far: %v", got)
			}
		}
		if diff := cmp.Diff([]string{"ADDED ns1/cm", "ADDED ns1/new"}, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}
