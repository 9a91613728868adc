package registry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/etcd/etcdtest"
	"github.com/skiff-dev/skiff/internal/storage"
)

// Test resources: small strategies over real k8s.io/api types, defined
// here so the store is tested independently of package builtin.

func configMapsResource() *Resource {
	return &Resource{
		GVR:        schema.GroupVersionResource{Version: "v1", Resource: "configmaps"},
		Kind:       "ConfigMap",
		ListKind:   "ConfigMapList",
		Namespaced: true,
		Strategy: Define(Typed[*corev1.ConfigMap, *corev1.ConfigMapList]{
			New:     func() *corev1.ConfigMap { return &corev1.ConfigMap{} },
			NewList: func() *corev1.ConfigMapList { return &corev1.ConfigMapList{} },
			Validate: func(cm *corev1.ConfigMap) field.ErrorList {
				var errs field.ErrorList
				for k := range cm.Data {
					for _, msg := range validation.IsConfigMapKey(k) {
						errs = append(errs, field.Invalid(field.NewPath("data").Key(k), k, msg))
					}
				}
				return errs
			},
		}),
	}
}

func endpointsResource() *Resource {
	return &Resource{
		GVR:        schema.GroupVersionResource{Version: "v1", Resource: "endpoints"},
		Kind:       "Endpoints",
		ListKind:   "EndpointsList",
		Namespaced: true,
		Strategy: Define(Typed[*corev1.Endpoints, *corev1.EndpointsList]{
			New:     func() *corev1.Endpoints { return &corev1.Endpoints{} },
			NewList: func() *corev1.EndpointsList { return &corev1.EndpointsList{} },
		}),
	}
}

func podsResource() *Resource {
	return &Resource{
		GVR:        schema.GroupVersionResource{Version: "v1", Resource: "pods"},
		Kind:       "Pod",
		ListKind:   "PodList",
		Namespaced: true,
		Status:     true,
		Strategy: Define(Typed[*corev1.Pod, *corev1.PodList]{
			New:     func() *corev1.Pod { return &corev1.Pod{} },
			NewList: func() *corev1.PodList { return &corev1.PodList{} },
			PrepareForCreate: func(p *corev1.Pod) {
				p.Status = corev1.PodStatus{Phase: corev1.PodPending}
			},
			Validate: func(p *corev1.Pod) field.ErrorList {
				if len(p.Spec.Containers) == 0 {
					return field.ErrorList{field.Required(field.NewPath("spec", "containers"), "")}
				}
				return nil
			},
			Fields: map[string]func(*corev1.Pod) string{
				"spec.nodeName": func(p *corev1.Pod) string { return p.Spec.NodeName },
			},
			GracefulDeletion: func(p *corev1.Pod, requested *int64) (int64, bool) {
				if p.Spec.NodeName == "" {
					return 0, false
				}
				if p.Spec.TerminationGracePeriodSeconds != nil {
					return *p.Spec.TerminationGracePeriodSeconds, true
				}
				return 30, true
			},
		}),
	}
}

func deploymentsResource() *Resource {
	return &Resource{
		GVR:        schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		Kind:       "Deployment",
		ListKind:   "DeploymentList",
		Namespaced: true,
		Status:     true,
		Strategy: Define(Typed[*appsv1.Deployment, *appsv1.DeploymentList]{
			New:     func() *appsv1.Deployment { return &appsv1.Deployment{} },
			NewList: func() *appsv1.DeploymentList { return &appsv1.DeploymentList{} },
			PrepareForCreate: func(d *appsv1.Deployment) {
				d.Status = appsv1.DeploymentStatus{}
			},
			Default: func(d *appsv1.Deployment) {
				if d.Spec.Replicas == nil {
					one := int32(1)
					d.Spec.Replicas = &one
				}
			},
			Validate: func(d *appsv1.Deployment) field.ErrorList {
				if d.Spec.Replicas != nil && *d.Spec.Replicas < 0 {
					return field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), *d.Spec.Replicas, "must be greater than or equal to 0")}
				}
				return nil
			},
		}),
	}
}

func namespacesResource() *Resource {
	return &Resource{
		GVR:      schema.GroupVersionResource{Version: "v1", Resource: "namespaces"},
		Kind:     "Namespace",
		ListKind: "NamespaceList",
		Status:   true,
		Strategy: Define(Typed[*corev1.Namespace, *corev1.NamespaceList]{
			New:     func() *corev1.Namespace { return &corev1.Namespace{} },
			NewList: func() *corev1.NamespaceList { return &corev1.NamespaceList{} },
			PrepareForCreate: func(ns *corev1.Namespace) {
				ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
				ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
			},
			ValidateName: NameIsDNSLabel,
		}),
	}
}

// testEnv is one embedded etcd with a namespaces Store, and helpers to
// put further resources on it.
type testEnv struct {
	t          *testing.T
	ctx        context.Context
	client     *clientv3.Client
	scheme     *runtime.Scheme
	now        time.Time
	namespaces *Store
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := appsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	e := &testEnv{
		t:      t,
		ctx:    t.Context(),
		client: etcdtest.Start(t),
		scheme: scheme,
		now:    time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC),
	}
	e.namespaces = e.store(namespacesResource(), nil)
	for _, ns := range []string{"default", "kube-system", "kube-public", "ns1"} {
		if _, err := e.namespaces.Create(e.ctx, "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating namespace %s: %v", ns, err)
		}
	}
	return e
}

// store builds the Store of res on its own storage.
func (e *testEnv) store(res *Resource, namespaces NamespaceLookup) *Store {
	e.t.Helper()
	st, err := storage.New(e.ctx, storage.Config{
		Client:      e.client,
		Prefix:      "/registry/" + res.GVR.Group + "/" + res.GVR.Resource + "/",
		Resource:    res.GroupResource(),
		Codec:       storage.ProtobufCodec(e.scheme, res.GVR.GroupVersion()),
		NewFunc:     res.Strategy.New,
		NewListFunc: res.Strategy.NewList,
		Attrs:       res.Strategy.Attrs,
	})
	if err != nil {
		e.t.Fatalf("creating storage for %s: %v", res.GroupResource(), err)
	}
	return NewStore(res, st, StoreOptions{
		Namespaces: namespaces,
		Now:        func() time.Time { return e.now },
	})
}

// statusOf returns the apimachinery status of err (zero when it is not
// one).
func statusOf(err error) metav1.Status {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return se.Status()
	}
	return metav1.Status{}
}

// wantCode fails unless err is an API error with code (0 means no error).
func wantCode(t *testing.T, err error, code int32) {
	t.Helper()
	if code == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want HTTP %d", code)
	}
	if got := statusOf(err).Code; got != code {
		t.Fatalf("got HTTP %d (%v), want %d", got, err, code)
	}
}

// causeFields lists the field of each cause of a 422.
func causeFields(err error) []string {
	st := statusOf(err)
	if st.Details == nil {
		return nil
	}
	var out []string
	for _, c := range st.Details.Causes {
		out = append(out, c.Field)
	}
	return out
}

// mustMeta returns obj's metadata.
func mustMeta(t *testing.T, obj runtime.Object) *metav1.ObjectMeta {
	t.Helper()
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return &o.ObjectMeta
	case *corev1.Pod:
		return &o.ObjectMeta
	case *corev1.Namespace:
		return &o.ObjectMeta
	case *corev1.Endpoints:
		return &o.ObjectMeta
	case *appsv1.Deployment:
		return &o.ObjectMeta
	}
	t.Fatalf("unexpected type %T", obj)
	return nil
}

// replace is an UpdateFunc that stores obj as sent (a PUT).
func replace(obj runtime.Object) UpdateFunc {
	return func(context.Context, runtime.Object) (runtime.Object, error) {
		return obj.DeepCopyObject(), nil
	}
}

// mutate is an UpdateFunc that edits the current object (a patch).
func mutate[T runtime.Object](f func(T)) UpdateFunc {
	return func(_ context.Context, cur runtime.Object) (runtime.Object, error) {
		o := cur.(T)
		f(o)
		return o, nil
	}
}

func hasPrefix(s, p string) bool { return strings.HasPrefix(s, p) }
