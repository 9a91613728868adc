package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"sigs.k8s.io/yaml"

	"github.com/skiff-dev/skiff/internal/registry"
)

// fieldManagers are the managedFields trackers of one resource, for the
// main resource and for /status. Nil when server-side apply is off.
type fieldManagers struct {
	main, status *managedfields.FieldManager
}

func (f *fieldManagers) forSub(sub registry.Subresource) *managedfields.FieldManager {
	if f == nil {
		return nil
	}
	if sub == registry.StatusSub {
		return f.status
	}
	if sub == registry.Main {
		return f.main
	}
	return nil
}

// strategyDefaulter applies a resource's defaults to merge results.
type strategyDefaulter struct{ res *registry.Resource }

func (d strategyDefaulter) Default(obj runtime.Object) {
	if reflect.TypeOf(obj) == reflect.TypeOf(d.res.Strategy.New()) {
		d.res.Strategy.Default(obj)
	}
}

func (s *Server) newFieldManagers(tc managedfields.TypeConverter, res *registry.Resource) (*fieldManagers, error) {
	gvk := res.GroupVersionKind()
	main, err := managedfields.NewDefaultFieldManager(tc, s.scheme, strategyDefaulter{res}, s.scheme, gvk, gvk.GroupVersion(), "", nil)
	if err != nil {
		return nil, fmt.Errorf("field manager of %s: %w", res.GVR, err)
	}
	fm := &fieldManagers{main: main}
	if res.Status {
		if fm.status, err = managedfields.NewDefaultFieldManager(tc, s.scheme, strategyDefaulter{res}, s.scheme, gvk, gvk.GroupVersion(), "status", nil); err != nil {
			return nil, fmt.Errorf("status field manager of %s: %w", res.GVR, err)
		}
	}
	return fm, nil
}

// managerName is the field manager of a non-apply write: the explicit
// fieldManager, else the User-Agent's product name, as upstream does.
func managerName(r *http.Request, explicit string) string {
	if explicit != "" {
		return explicit
	}
	name, _, _ := strings.Cut(r.UserAgent(), "/")
	if len(name) > 128 {
		name = name[:128]
	}
	return name
}

// trackUpdate records a non-apply write in managedFields. It never fails
// the write.
func trackUpdate(fm *managedfields.FieldManager, live, obj runtime.Object, manager string, res *registry.Resource) runtime.Object {
	if fm == nil {
		return obj
	}
	if live == nil {
		live = res.Strategy.New()
	}
	out := fm.UpdateNoErrors(live, obj, manager)
	if typed, err := toTyped(out, res); err == nil {
		return typed
	}
	return obj
}

// toTyped returns obj as the resource's Go type.
func toTyped(obj runtime.Object, res *registry.Resource) (runtime.Object, error) {
	want := res.Strategy.New()
	if reflect.TypeOf(obj) == reflect.TypeOf(want) {
		return obj, nil
	}
	u, ok := obj.(runtime.Unstructured)
	if !ok {
		return nil, fmt.Errorf("unexpected object type %T", obj)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), want); err != nil {
		return nil, fmt.Errorf("converting applied object: %w", err)
	}
	return want, nil
}

// apply handles PATCH with application/apply-patch+yaml (server-side
// apply). The patch is merged into the current object by the field
// manager inside Store.Update; applying to an absent object creates it.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store, sub registry.Subresource, fm *managedfields.FieldManager, opts metav1.PatchOptions, rd *render, body []byte) {
	res := st.Resource
	gvk := res.GroupVersionKind()
	data, err := yaml.YAMLToJSON(body)
	if err != nil {
		s.fail(w, r, apierrors.NewBadRequest(fmt.Sprintf("error decoding YAML: %v", err)))
		return
	}
	applied := &unstructured.Unstructured{}
	if err := applied.UnmarshalJSON(data); err != nil {
		s.fail(w, r, apierrors.NewBadRequest(fmt.Sprintf("error decoding apply configuration: %v", err)))
		return
	}
	if applied.GetAPIVersion() != gvk.GroupVersion().String() || applied.GetKind() != gvk.Kind {
		s.fail(w, r, apierrors.NewBadRequest(fmt.Sprintf("the apply configuration's apiVersion/kind (%s, %s) does not match the expected %s, %s",
			applied.GetAPIVersion(), applied.GetKind(), gvk.GroupVersion(), gvk.Kind)))
		return
	}
	if applied.GetName() != "" && applied.GetName() != ri.name {
		s.fail(w, r, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", applied.GetName(), ri.name)))
		return
	}
	force := opts.Force != nil && *opts.Force
	merge := func(live runtime.Object) (runtime.Object, error) {
		out, err := fm.Apply(live, applied.DeepCopy(), opts.FieldManager, force)
		if err != nil {
			if apierrors.IsConflict(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
				return nil, err
			}
			return nil, apierrors.NewBadRequest(err.Error())
		}
		obj, err := toTyped(out, res)
		if err != nil {
			return nil, err
		}
		if err := checkName(obj, ri.name); err != nil {
			return nil, err
		}
		if err := ensureNamespace(obj, ri.namespace, res.Namespaced); err != nil {
			return nil, err
		}
		return obj, nil
	}
	emptyLive := func() runtime.Object {
		live := res.Strategy.New()
		m, _ := meta.Accessor(live)
		m.SetName(ri.name)
		m.SetNamespace(ri.namespace)
		live.GetObjectKind().SetGroupVersionKind(gvk)
		return live
	}
	uopts := metav1.UpdateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager}
	for attempt := 0; ; attempt++ {
		out, created, err := st.Update(r.Context(), ri.namespace, ri.name, sub, func(_ context.Context, current runtime.Object) (runtime.Object, error) {
			if current == nil {
				return merge(emptyLive())
			}
			return merge(current)
		}, uopts)
		if apierrors.IsNotFound(err) && sub == registry.Main && attempt < 3 {
			// Apply creates what does not exist.
			obj, mErr := merge(emptyLive())
			if mErr != nil {
				s.fail(w, r, mErr)
				return
			}
			out, err = st.Create(r.Context(), ri.namespace, obj, metav1.CreateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager})
			if apierrors.IsAlreadyExists(err) {
				continue // created meanwhile: apply to it
			}
			created = true
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		code := http.StatusOK
		if created {
			code = http.StatusCreated
		}
		s.writeObject(w, code, rd, out)
		return
	}
}
