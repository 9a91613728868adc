package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"sigs.k8s.io/yaml"

	"github.com/skiff-dev/skiff/internal/registry"
)

// fieldManagers are the managedFields trackers of one resource, for the
// main resource and for /status. Nil when server-side apply is off.
type fieldManagers struct {
	main, status *managedfields.FieldManager
	// create is main for creates, whose objects (the decoded body and an
	// empty live object) belong to the request: it converts them without
	// copying (see sameVersionConverter). main copies, as upstream, for
	// live objects come from the watch cache.
	create *managedfields.FieldManager
	// created remembers what create records (see createFields).
	created *createFields
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
type strategyDefaulter struct {
	res *registry.Resource
	typ reflect.Type // of the resource's objects
}

func (d strategyDefaulter) Default(obj runtime.Object) {
	if reflect.TypeOf(obj) == d.typ {
		d.res.Strategy.Default(obj)
	}
}

// sameVersionConverter is the scheme, except that converting a typed
// object that already is of the target version returns it as is where the
// scheme would return a deep copy. An update by the field manager only
// reads what it converts, so for a create, whose objects are the
// request's own, the copies (two per create) buy nothing.
type sameVersionConverter struct{ *runtime.Scheme }

func (c sameVersionConverter) ConvertToVersion(in runtime.Object, target runtime.GroupVersioner) (runtime.Object, error) {
	if _, unstructured := in.(runtime.Unstructured); !unstructured {
		gvk := in.GetObjectKind().GroupVersionKind()
		if !gvk.Empty() {
			if want, ok := target.KindForGroupVersionKinds([]schema.GroupVersionKind{gvk}); ok && want == gvk {
				if kinds, _, err := c.ObjectKinds(in); err == nil && slices.Contains(kinds, gvk) {
					return in, nil
				}
			}
		}
	}
	return c.Scheme.ConvertToVersion(in, target)
}

func (s *Server) newFieldManagers(tc managedfields.TypeConverter, res *registry.Resource) (*fieldManagers, error) {
	gvk := res.GroupVersionKind()
	def := strategyDefaulter{res, reflect.TypeOf(res.Strategy.New())}
	main, err := managedfields.NewDefaultFieldManager(tc, s.scheme, def, s.scheme, gvk, gvk.GroupVersion(), "", nil)
	if err != nil {
		return nil, fmt.Errorf("field manager of %s: %w", res.GVR, err)
	}
	create, err := managedfields.NewDefaultFieldManager(tc, sameVersionConverter{s.scheme}, def, s.scheme, gvk, gvk.GroupVersion(), "", nil)
	if err != nil {
		return nil, fmt.Errorf("field manager of %s: %w", res.GVR, err)
	}
	fm := &fieldManagers{main: main, create: create, created: newCreateFields()}
	if res.Status {
		if fm.status, err = managedfields.NewDefaultFieldManager(tc, s.scheme, def, s.scheme, gvk, gvk.GroupVersion(), "status", nil); err != nil {
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
func (s *Server) trackUpdate(fm *managedfields.FieldManager, live, obj runtime.Object, manager string, res *registry.Resource) runtime.Object {
	if fm == nil {
		return obj
	}
	if live == nil {
		// The converter the field manager uses would set the kind on a
		// copy; set it here and spare the copy.
		live = res.Strategy.New()
		live.GetObjectKind().SetGroupVersionKind(res.GroupVersionKind())
	}
	out := fm.UpdateNoErrors(live, obj, manager)
	if typed, err := s.toTyped(out, res); err == nil {
		return typed
	}
	return obj
}

// trackCreate records a create in managedFields, as trackUpdate does with
// no live object, from memory when it can (see createFields).
func (s *Server) trackCreate(fms *fieldManagers, obj runtime.Object, manager string, res *registry.Resource) runtime.Object {
	if fms == nil || fms.create == nil {
		return obj
	}
	return fms.created.track(obj, manager, func() runtime.Object {
		return s.trackUpdate(fms.create, nil, obj, manager, res)
	})
}

// toTyped returns obj as the resource's Go type.
func (s *Server) toTyped(obj runtime.Object, res *registry.Resource) (runtime.Object, error) {
	typ, ok := s.objTypes[res]
	if !ok {
		typ = reflect.TypeOf(res.Strategy.New())
	}
	if reflect.TypeOf(obj) == typ {
		return obj, nil
	}
	want := res.Strategy.New()
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
	var warnings []string
	// Duplicate keys are what strict decoding finds in an apply
	// configuration besides unknown fields (upstream's message names the
	// line: `line 11: key "foo" already set in map`).
	if _, serr := yaml.YAMLToJSONStrict(body); serr != nil {
		switch fieldValidation(opts.FieldValidation) {
		case metav1.FieldValidationStrict:
			s.fail(w, r, apierrors.NewBadRequest(fmt.Sprintf("error strict decoding YAML: %v", serr)))
			return
		case metav1.FieldValidationWarn:
			warnings = append(warnings, serr.Error())
		}
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
	warnings, err = pruneUnknown(res, applied, opts.FieldValidation, warnings, fromApply)
	if err != nil {
		s.fail(w, r, err)
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
		obj, err := s.toTyped(out, res)
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
		addWarnings(w, warnings)
		s.writeObject(w, code, rd, out)
		return
	}
}
