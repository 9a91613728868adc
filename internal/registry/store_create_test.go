package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestCreate(t *testing.T) {
	e := newTestEnv(t)
	cms := e.store(configMapsResource(), e.namespaces)
	deploys := e.store(deploymentsResource(), e.namespaces)
	if _, err := cms.Create(e.ctx, "ns1", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "taken"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		store      *Store
		namespace  string
		obj        runtime.Object
		opts       metav1.CreateOptions
		wantCode   int32
		wantFields []string // causes of a 422
		check      func(t *testing.T, got runtime.Object)
	}{
		{
			name:      "system fields",
			store:     cms,
			namespace: "ns1",
			obj: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
				Name: "plain", Generation: 7, ResourceVersion: "",
				DeletionTimestamp: &metav1.Time{Time: time.Unix(1, 0)},
			}},
			check: func(t *testing.T, got runtime.Object) {
				m := mustMeta(t, got)
				if m.UID == "" || m.ResourceVersion == "" {
					t.Errorf("uid %q, resourceVersion %q: want both set", m.UID, m.ResourceVersion)
				}
				if want := e.now.Truncate(time.Second); !m.CreationTimestamp.Time.Equal(want) {
					t.Errorf("creationTimestamp %v, want %v", m.CreationTimestamp, want)
				}
				if m.Namespace != "ns1" || m.Generation != 0 || m.DeletionTimestamp != nil {
					t.Errorf("namespace %q generation %d deletionTimestamp %v: want ns1, 0, nil", m.Namespace, m.Generation, m.DeletionTimestamp)
				}
				if gvk := got.GetObjectKind().GroupVersionKind(); gvk.Kind != "ConfigMap" || gvk.Version != "v1" {
					t.Errorf("kind %v, want v1 ConfigMap", gvk)
				}
			},
		},
		{
			name:      "generateName",
			store:     cms,
			namespace: "ns1",
			obj:       &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "gen-"}},
			check: func(t *testing.T, got runtime.Object) {
				m := mustMeta(t, got)
				if !hasPrefix(m.Name, "gen-") || len(m.Name) != len("gen-")+5 {
					t.Errorf("name %q, want gen- and 5 random characters", m.Name)
				}
			},
		},
		{
			name:      "generation 1 for kinds with spec, defaults applied",
			store:     deploys,
			namespace: "ns1",
			obj:       &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Status: appsv1.DeploymentStatus{Replicas: 9}},
			check: func(t *testing.T, got runtime.Object) {
				d := got.(*appsv1.Deployment)
				if d.Generation != 1 || d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Status.Replicas != 0 {
					t.Errorf("generation %d replicas %v status.replicas %d: want 1, 1, 0", d.Generation, d.Spec.Replicas, d.Status.Replicas)
				}
			},
		},
		{
			name:      "namespace from object when request has the same",
			store:     cms,
			namespace: "ns1",
			obj:       &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "same", Namespace: "ns1"}},
		},
		{
			name:      "namespace mismatch",
			store:     cms,
			namespace: "ns1",
			obj:       &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"}},
			wantCode:  400,
		},
		{
			name:      "resourceVersion set",
			store:     cms,
			namespace: "ns1",
			obj:       &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", ResourceVersion: "5"}},
			wantCode:  400,
		},
		{
			name:      "already exists",
			store:     cms,
			namespace: "ns1",
			obj:       &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "taken"}},
			wantCode:  409,
		},
		{
			name:      "invalid metadata and data",
			store:     cms,
			namespace: "ns1",
			obj: &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: "Bad_Name", Labels: map[string]string{"a b": "c"}},
				Data:       map[string]string{"no/slash": "v"},
			},
			wantCode:   422,
			wantFields: []string{"metadata.name", "metadata.labels", "data[no/slash]"},
		},
		{
			name:       "name or generateName required",
			store:      cms,
			namespace:  "ns1",
			obj:        &corev1.ConfigMap{},
			wantCode:   422,
			wantFields: []string{"metadata.name"},
		},
		{
			name:       "strategy validation",
			store:      deploys,
			namespace:  "ns1",
			obj:        &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "neg"}, Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(-1))}},
			wantCode:   422,
			wantFields: []string{"spec.replicas"},
		},
		{
			name:      "namespace missing",
			store:     cms,
			namespace: "nope",
			obj:       &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}},
			wantCode:  404,
		},
		{
			name:      "cluster-scoped object loses its namespace",
			store:     e.namespaces,
			namespace: "",
			obj:       &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh", Namespace: "ns1"}},
			check: func(t *testing.T, got runtime.Object) {
				ns := got.(*corev1.Namespace)
				if ns.Namespace != "" || ns.Status.Phase != corev1.NamespaceActive {
					t.Errorf("namespace %q phase %q: want empty, Active", ns.Namespace, ns.Status.Phase)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.obj.DeepCopyObject()
			got, err := tc.store.Create(e.ctx, tc.namespace, tc.obj, tc.opts)
			wantCode(t, err, tc.wantCode)
			if diff := cmp.Diff(in, tc.obj); diff != "" {
				t.Errorf("Create modified its input (-before +after):\n%s", diff)
			}
			if tc.wantFields != nil {
				if diff := cmp.Diff(tc.wantFields, causeFields(err)); diff != "" {
					t.Errorf("422 causes (-want +got):\n%s\n%v", diff, err)
				}
			}
			if err == nil && tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

func TestCreateDryRunWritesNothing(t *testing.T) {
	e := newTestEnv(t)
	cms := e.store(configMapsResource(), e.namespaces)
	got, err := cms.Create(e.ctx, "ns1", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dry"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatal(err)
	}
	if m := mustMeta(t, got); m.UID == "" || m.ResourceVersion != "" {
		t.Errorf("dry-run result uid %q resourceVersion %q: want uid set, no resourceVersion", m.UID, m.ResourceVersion)
	}
	_, err = cms.Get(e.ctx, "ns1", "dry")
	wantCode(t, err, 404)
}

func TestCreateInTerminatingNamespace(t *testing.T) {
	e := newTestEnv(t)
	cms := e.store(configMapsResource(), e.namespaces)
	if _, deleted, err := e.namespaces.Delete(e.ctx, "", "ns1", metav1.DeleteOptions{}); err != nil || deleted {
		t.Fatalf("deleting ns1: deleted %v, err %v", deleted, err)
	}
	_, err := cms.Create(e.ctx, "ns1", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{})
	wantCode(t, err, 403)
	st := statusOf(err)
	if want := `configmaps "late" is forbidden: unable to create new content in namespace ns1 because it is being terminated`; st.Message != want {
		t.Errorf("message %q, want %q", st.Message, want)
	}
	var causes []metav1.CauseType
	for _, c := range st.Details.Causes {
		causes = append(causes, c.Type)
	}
	if diff := cmp.Diff([]metav1.CauseType{corev1.NamespaceTerminatingCause}, causes); diff != "" {
		t.Errorf("causes (-want +got):\n%s", diff)
	}

	_, err = cms.Create(e.ctx, "gone", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	if !apierrors.IsNotFound(err) || statusOf(err).Message != `namespaces "gone" not found` {
		t.Errorf("create in missing namespace: %v, want namespaces \"gone\" not found", err)
	}
}

func ptr[T any](v T) *T { return &v }
