package history

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

func template(image string) *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
	}
}

func TestTemplatePatchRoundTrip(t *testing.T) {
	for _, image := range []string{"nginx:1", "nginx:2"} {
		t.Run(image, func(t *testing.T) {
			data, err := TemplatePatch(template(image))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Template(&appsv1.ControllerRevision{Data: rawExtension(data)})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(*template(image), got); diff != "" {
				t.Errorf("template (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTemplatePatchBytes: the data is what Kubernetes 1.33's controllers
// write (and its DaemonSet conformance specs compare byte for byte), and a
// revision written without the null creationTimestamp is still equal.
func TestTemplatePatchBytes(t *testing.T) {
	data, err := TemplatePatch(template("nginx:1"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"web"}},` +
		`"spec":{"containers":[{"image":"nginx:1","name":"c","resources":{}}]}}}}`
	if string(data) != want {
		t.Errorf("TemplatePatch =\n%s\nwant\n%s", data, want)
	}
	older := `{"spec":{"template":{"$patch":"replace","metadata":{"labels":{"app":"web"}},` +
		`"spec":{"containers":[{"image":"nginx:1","name":"c","resources":{}}]}}}}`
	a := &appsv1.ControllerRevision{Data: rawExtension(data)}
	b := &appsv1.ControllerRevision{Data: rawExtension([]byte(older))}
	if !Equal(a, b) {
		t.Error("a revision without creationTimestamp is not equal to one with null")
	}
	other, _ := TemplatePatch(template("nginx:2"))
	if Equal(a, &appsv1.ControllerRevision{Data: rawExtension(other)}) {
		t.Error("revisions of different templates are equal")
	}
}

func TestHashAndNew(t *testing.T) {
	a, _ := TemplatePatch(template("nginx:1"))
	b, _ := TemplatePatch(template("nginx:2"))
	one := int32(1)
	tests := []struct {
		name     string
		x, y     string
		wantSame bool
	}{
		{"same data", Hash(a, nil), Hash(a, nil), true},
		{"other data", Hash(a, nil), Hash(b, nil), false},
		{"collision count changes the hash", Hash(a, nil), Hash(a, &one), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.x == tt.y; got != tt.wantSame {
				t.Errorf("hashes %q and %q: same = %v, want %v", tt.x, tt.y, got, tt.wantSame)
			}
		})
	}

	parent := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: types.UID("u1")}}
	rev := New(parent, appsv1.SchemeGroupVersion.WithKind("StatefulSet"), map[string]string{"app": "web"}, a, 3, nil)
	got := map[string]any{"name": rev.Name, "hash": rev.Labels[HashLabel], "app": rev.Labels["app"], "revision": rev.Revision, "owner": rev.OwnerReferences[0].Name}
	want := map[string]any{"name": "web-" + Hash(a, nil), "hash": Hash(a, nil), "app": "web", "revision": int64(3), "owner": "web"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("New (-want +got):\n%s", diff)
	}
	if !Equal(rev, New(parent, appsv1.SchemeGroupVersion.WithKind("StatefulSet"), nil, a, 1, nil)) {
		t.Errorf("revisions of the same data are not Equal")
	}
}

func TestNextAndSort(t *testing.T) {
	revs := []*appsv1.ControllerRevision{
		{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Revision: 3},
		{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Revision: 1},
		{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Revision: 2},
	}
	if got := Next(revs); got != 4 {
		t.Errorf("Next = %d, want 4", got)
	}
	if got := Next(nil); got != 1 {
		t.Errorf("Next(nil) = %d, want 1", got)
	}
	Sort(revs)
	var names []string
	for _, r := range revs {
		names = append(names, r.Name)
	}
	if diff := cmp.Diff([]string{"a", "c", "b"}, names); diff != "" {
		t.Errorf("Sort (-want +got):\n%s", diff)
	}
}

func rawExtension(data []byte) runtime.RawExtension { return runtime.RawExtension{Raw: data} }
