package policy

import (
	"context"
	"fmt"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	admissionregistrationv1listers "k8s.io/client-go/listers/admissionregistration/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/admission"
	"github.com/skiff-dev/skiff/internal/auth"
)

var (
	deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	deploymentGVK  = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	configMapGVK   = schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
)

func indexer(t testing.TB, objs ...any) cache.Indexer {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, o := range objs {
		if err := idx.Add(o); err != nil {
			t.Fatalf("adding to the indexer: %v", err)
		}
	}
	return idx
}

// vap is a policy on deployments (CREATE, UPDATE) with upstream's
// defaults and the given validations (expressions).
func vap(name string, exprs ...string) *admissionregistrationv1.ValidatingAdmissionPolicy {
	p := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1", Generation: 1},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{},
				ObjectSelector:    &metav1.LabelSelector{},
				MatchPolicy:       ptr.To(admissionregistrationv1.Equivalent),
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
						Rule: admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"},
							Resources: []string{"deployments"}, Scope: ptr.To(admissionregistrationv1.AllScopes)},
					},
				}},
			},
		},
	}
	for _, e := range exprs {
		p.Spec.Validations = append(p.Spec.Validations, admissionregistrationv1.Validation{Expression: e})
	}
	return p
}

func withPolicy(p *admissionregistrationv1.ValidatingAdmissionPolicy, f func(*admissionregistrationv1.ValidatingAdmissionPolicySpec)) *admissionregistrationv1.ValidatingAdmissionPolicy {
	f(&p.Spec)
	return p
}

func vapb(name, policy string, actions ...admissionregistrationv1.ValidationAction) *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	if len(actions) == 0 {
		actions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}
	}
	return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1"},
		Spec:       admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: policy, ValidationActions: actions},
	}
}

func withBinding(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding, f func(*admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec)) *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	f(&b.Spec)
	return b
}

func namespace(name string, lbls map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
}

type fixture struct {
	policies []*admissionregistrationv1.ValidatingAdmissionPolicy
	bindings []*admissionregistrationv1.ValidatingAdmissionPolicyBinding
	params   ParamSource
}

func newTestPlugin(t testing.TB, f fixture) *plugin {
	t.Helper()
	var pols, binds []any
	for _, p := range f.policies {
		pols = append(pols, p)
	}
	for _, b := range f.bindings {
		binds = append(binds, b)
	}
	nss := []any{namespace("ns", map[string]string{"env": "prod"}), namespace("dev", map[string]string{"env": "dev"})}
	return New(Config{
		Policies:   admissionregistrationv1listers.NewValidatingAdmissionPolicyLister(indexer(t, pols...)),
		Bindings:   admissionregistrationv1listers.NewValidatingAdmissionPolicyBindingLister(indexer(t, binds...)),
		Namespaces: corev1listers.NewNamespaceLister(indexer(t, nss...)),
		Params:     f.params,
	}).(*plugin)
}

func deployment(name, ns string, replicas int32, lbls map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbls},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}}},
		},
	}
}

func createReq(obj *appsv1.Deployment) *admission.Request {
	return &admission.Request{
		Operation: admission.Create,
		User:      auth.User{Name: "alice", Groups: []string{"system:authenticated"}},
		Namespace: obj.Namespace,
		Name:      obj.Name,
		Resource:  deploymentsGVR,
		Kind:      deploymentGVK,
		Object:    obj,
	}
}

func updateReq(obj, old *appsv1.Deployment) *admission.Request {
	r := createReq(obj)
	r.Operation, r.OldObject = admission.Update, old
	return r
}

func deleteReq(old *appsv1.Deployment) *admission.Request {
	r := createReq(old)
	r.Operation, r.Object, r.OldObject = admission.Delete, nil, old
	return r
}

// fakeParams is a ParamSource and ParamScoper over a fixed set of
// objects, keyed by kind, namespace and name.
type fakeParams struct {
	objs       []*unstructured.Unstructured
	namespaced map[schema.GroupVersionKind]bool // kinds known; absent: no match
	err        error                            // returned by Get and List when set
}

func (f *fakeParams) Namespaced(_ context.Context, gvk schema.GroupVersionKind) (bool, error) {
	ns, ok := f.namespaced[gvk]
	if !ok {
		return false, fmt.Errorf("mapping %v: %w", gvk, &meta.NoKindMatchError{GroupKind: gvk.GroupKind(), SearchedVersions: []string{gvk.Version}})
	}
	return ns, nil
}

func (f *fakeParams) Get(_ context.Context, gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, error) {
	if f.err != nil {
		return nil, f.err
	}
	for _, o := range f.objs {
		if o.GroupVersionKind() == gvk && o.GetNamespace() == namespace && o.GetName() == name {
			return o, nil
		}
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: gvk.Kind}, name)
}

func (f *fakeParams) List(_ context.Context, gvk schema.GroupVersionKind, namespace string, sel labels.Selector) ([]*unstructured.Unstructured, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []*unstructured.Unstructured
	for _, o := range f.objs {
		if o.GroupVersionKind() == gvk && o.GetNamespace() == namespace && sel.Matches(labels.Set(o.GetLabels())) {
			out = append(out, o)
		}
	}
	return out, nil
}

func configMap(ns, name string, lbls map[string]string, data map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": data}}
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetLabels(lbls)
	return u
}
