package registry

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// TestStatusResetsMetadata: a resource whose status writes change only
// status keeps labels, annotations, finalizers and owner references.
func TestStatusResetsMetadata(t *testing.T) {
	e := newTestEnv(t)
	res := deploymentsResource()
	res.StatusResetsMetadata = true
	deploys := e.store(res, e.namespaces)
	obj, err := deploys.Create(e.ctx, "ns1", &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "d", Labels: map[string]string{"app": "d"}, Annotations: map[string]string{"a": "1"}},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr(int32(2))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := obj.(*appsv1.Deployment)
	obj, _, err = deploys.Update(e.ctx, "ns1", "d", StatusSub, mutate(func(d *appsv1.Deployment) {
		d.Labels = map[string]string{"other": "x"}
		d.Annotations = nil
		d.Finalizers = []string{"example.com/f"}
		d.Status.Replicas = 3
	}), metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := obj.(*appsv1.Deployment)
	if got.Status.Replicas != 3 {
		t.Errorf("status.replicas %d, want 3", got.Status.Replicas)
	}
	if diff := cmp.Diff(before.ObjectMeta.Labels, got.Labels); diff != "" {
		t.Errorf("labels changed through /status (-want +got):\n%s", diff)
	}
	if got.Annotations["a"] != "1" || len(got.Finalizers) != 0 {
		t.Errorf("annotations %v finalizers %v changed through /status", got.Annotations, got.Finalizers)
	}
}

func TestUpdate(t *testing.T) {
	e := newTestEnv(t)
	deploys := e.store(deploymentsResource(), e.namespaces)
	cms := e.store(configMapsResource(), e.namespaces)
	eps := e.store(endpointsResource(), e.namespaces)

	// fresh creates a deployment named name with 2 replicas and
	// status.replicas 5 (set through /status).
	fresh := func(t *testing.T, name string) *appsv1.Deployment {
		t.Helper()
		obj, err := deploys.Create(e.ctx, "ns1", &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr(int32(2))},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err = deploys.Update(e.ctx, "ns1", name, StatusSub, mutate(func(d *appsv1.Deployment) { d.Status.Replicas = 5 }), metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return obj.(*appsv1.Deployment)
	}

	tests := []struct {
		name     string
		sub      Subresource
		fn       func(d *appsv1.Deployment) // edits a copy of the stored object
		wantCode int32
		// want checks the result against the object before the update.
		want func(t *testing.T, got, before *appsv1.Deployment)
	}{
		{
			name: "no-op keeps resourceVersion",
			fn:   func(d *appsv1.Deployment) {},
			want: func(t *testing.T, got, before *appsv1.Deployment) {
				if got.ResourceVersion != before.ResourceVersion || got.Generation != before.Generation {
					t.Errorf("rv %s gen %d, want unchanged %s %d", got.ResourceVersion, got.Generation, before.ResourceVersion, before.Generation)
				}
			},
		},
		{
			name: "no-op without resourceVersion",
			fn:   func(d *appsv1.Deployment) { d.ResourceVersion = ""; d.Spec.Replicas = ptr(int32(2)) },
			want: func(t *testing.T, got, before *appsv1.Deployment) {
				if got.ResourceVersion != before.ResourceVersion {
					t.Errorf("rv %s, want unchanged %s", got.ResourceVersion, before.ResourceVersion)
				}
			},
		},
		{
			name: "label change keeps generation",
			fn:   func(d *appsv1.Deployment) { d.Labels["tier"] = "web" },
			want: func(t *testing.T, got, before *appsv1.Deployment) {
				if got.ResourceVersion == before.ResourceVersion || got.Generation != before.Generation || got.Labels["tier"] != "web" {
					t.Errorf("rv %s gen %d labels %v: want new rv, gen %d, tier=web", got.ResourceVersion, got.Generation, got.Labels, before.Generation)
				}
			},
		},
		{
			name: "spec change bumps generation, status carried over",
			fn:   func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(3)); d.Status.Replicas = 99 },
			want: func(t *testing.T, got, before *appsv1.Deployment) {
				if got.Generation != before.Generation+1 || *got.Spec.Replicas != 3 || got.Status.Replicas != 5 {
					t.Errorf("gen %d replicas %d status.replicas %d: want %d, 3, 5", got.Generation, *got.Spec.Replicas, got.Status.Replicas, before.Generation+1)
				}
			},
		},
		{
			// As upstream's built-in status strategies: metadata may
			// change through /status (strategies put back what their
			// resource protects), spec may not.
			name: "status update keeps spec, takes metadata",
			sub:  StatusSub,
			fn: func(d *appsv1.Deployment) {
				d.Spec.Replicas = ptr(int32(7))
				d.Labels = map[string]string{"other": "x"}
				d.Annotations = map[string]string{"note": "y"}
				d.Generation = 99
				d.Status.ReadyReplicas = 4
			},
			want: func(t *testing.T, got, before *appsv1.Deployment) {
				if *got.Spec.Replicas != 2 || got.Status.ReadyReplicas != 4 || got.Generation != before.Generation {
					t.Errorf("replicas %d ready %d gen %d: want 2, 4, %d", *got.Spec.Replicas, got.Status.ReadyReplicas, got.Generation, before.Generation)
				}
				if got.Labels["other"] != "x" || got.Annotations["note"] != "y" {
					t.Errorf("labels %v annotations %v: want the ones written through /status", got.Labels, got.Annotations)
				}
			},
		},
		{
			name:     "stale resourceVersion",
			fn:       func(d *appsv1.Deployment) { d.ResourceVersion = "1"; d.Spec.Replicas = ptr(int32(4)) },
			wantCode: 409,
		},
		{
			name:     "uid is immutable",
			fn:       func(d *appsv1.Deployment) { d.UID = types.UID("other") },
			wantCode: 422,
		},
		{
			name: "creationTimestamp and generation from client are ignored",
			fn: func(d *appsv1.Deployment) {
				d.CreationTimestamp = metav1.Unix(5, 0)
				d.Generation = 42
			},
			want: func(t *testing.T, got, before *appsv1.Deployment) {
				if !got.CreationTimestamp.Equal(&before.CreationTimestamp) || got.Generation != before.Generation || got.ResourceVersion != before.ResourceVersion {
					t.Errorf("got %v gen %d rv %s, want unchanged", got.CreationTimestamp, got.Generation, got.ResourceVersion)
				}
			},
		},
		{
			name:     "deletionTimestamp cannot be set",
			fn:       func(d *appsv1.Deployment) { now := metav1.Now(); d.DeletionTimestamp = &now },
			wantCode: 422,
		},
		{
			name:     "validation",
			fn:       func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(-3)) },
			wantCode: 422,
		},
		{
			name: "binding takes the result as is",
			sub:  Binding,
			fn:   func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(8)); d.Status.Replicas = 1 },
			want: func(t *testing.T, got, before *appsv1.Deployment) {
				if *got.Spec.Replicas != 8 || got.Status.Replicas != 1 {
					t.Errorf("replicas %d status %d: want 8, 1", *got.Spec.Replicas, got.Status.Replicas)
				}
			},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := fresh(t, "d"+string(rune('a'+i)))
			fn := func(_ context.Context, cur runtime.Object) (runtime.Object, error) {
				d := cur.(*appsv1.Deployment)
				tc.fn(d)
				return d, nil
			}
			got, created, err := deploys.Update(e.ctx, "ns1", before.Name, tc.sub, fn, metav1.UpdateOptions{})
			wantCode(t, err, tc.wantCode)
			if err != nil {
				return
			}
			if created {
				t.Errorf("created = true for an existing object")
			}
			if tc.want != nil {
				tc.want(t, got.(*appsv1.Deployment), before)
			}
			stored, err := deploys.Get(e.ctx, "ns1", before.Name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, stored); diff != "" {
				t.Errorf("returned object differs from stored (-returned +stored):\n%s", diff)
			}
		})
	}

	t.Run("absent: 404 unless create on update", func(t *testing.T) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "absent"}}
		_, _, err := cms.Update(e.ctx, "ns1", "absent", Main, replace(cm), metav1.UpdateOptions{})
		wantCode(t, err, 404)

		got, created, err := cms.UpdateOrCreate(e.ctx, "ns1", "absent", replace(cm), metav1.UpdateOptions{})
		if err != nil || !created || mustMeta(t, got).UID == "" {
			t.Fatalf("UpdateOrCreate of absent configmap: created %v, err %v; want created with uid", created, err)
		}

		ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "svc"}}
		got, created, err = eps.Update(e.ctx, "ns1", "svc", Main, replace(ep), metav1.UpdateOptions{})
		if err != nil || !created {
			t.Fatalf("PUT of absent endpoints: created %v, err %v; want created", created, err)
		}
		if m := mustMeta(t, got); m.UID == "" || m.Namespace != "ns1" {
			t.Errorf("uid %q namespace %q: want set, ns1", m.UID, m.Namespace)
		}
	})

	t.Run("dry run writes nothing", func(t *testing.T) {
		before := fresh(t, "dry")
		got, _, err := deploys.Update(e.ctx, "ns1", "dry", Main, mutate(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(9)) }),
			metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatal(err)
		}
		if *got.(*appsv1.Deployment).Spec.Replicas != 9 {
			t.Errorf("dry-run result replicas %d, want 9", *got.(*appsv1.Deployment).Spec.Replicas)
		}
		stored, err := deploys.Get(e.ctx, "ns1", "dry")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, stored); diff != "" {
			t.Errorf("dry run changed the stored object (-before +after):\n%s", diff)
		}
	})
}

func TestConcurrentUpdatesAllApply(t *testing.T) {
	e := newTestEnv(t)
	cms := e.store(configMapsResource(), e.namespaces)
	if _, err := cms.Create(e.ctx, "ns1", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "counter"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	errs := make(chan error, writers)
	for i := 0; i < writers; i++ {
		go func() {
			_, _, err := cms.Update(e.ctx, "ns1", "counter", Main, mutate(func(c *corev1.ConfigMap) {
				if c.Data == nil {
					c.Data = map[string]string{}
				}
				c.Data["n"] += "x"
			}), metav1.UpdateOptions{})
			errs <- err
		}()
	}
	for i := 0; i < writers; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, err := cms.Get(e.ctx, "ns1", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.(*corev1.ConfigMap).Data["n"]); n != writers {
		t.Errorf("counter = %d, want %d: an update was lost", n, writers)
	}
}
