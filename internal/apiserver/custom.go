package apiserver

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"

	"github.com/skiff-dev/skiff/internal/registry"
)

// customRoutes are the stores of custom resources (objects of
// *unstructured.Unstructured) served besides the built-in ones. A value is
// never modified once published.
type customRoutes struct {
	stores        map[schema.GroupVersion]map[string]*registry.Store
	fieldManagers map[*registry.Store]*fieldManagers
}

// SetCustomStores replaces the stores of custom resources the server
// serves besides those of Config.Stores, which win a conflict. A store
// passed again (the same pointer) keeps its managedFields trackers. The
// objects of every store must be *unstructured.Unstructured, and its
// Resource must be marked Unstructured.
func (s *Server) SetCustomStores(stores []*registry.Store) error {
	s.customMu.Lock()
	defer s.customMu.Unlock()
	old := s.custom.Load()
	next := &customRoutes{
		stores:        map[schema.GroupVersion]map[string]*registry.Store{},
		fieldManagers: map[*registry.Store]*fieldManagers{},
	}
	for _, st := range stores {
		if st == nil || st.Resource == nil || st.Resource.Strategy == nil || !st.Resource.Unstructured {
			return fmt.Errorf("apiserver: custom store without an unstructured Resource and Strategy")
		}
		if err := route(next.stores, st); err != nil {
			return err
		}
		if s.cfg.TypeConverter == nil {
			continue
		}
		if old != nil && old.fieldManagers[st] != nil {
			next.fieldManagers[st] = old.fieldManagers[st]
			continue
		}
		fm, err := s.newCustomFieldManagers(st.Resource)
		if err != nil {
			return err
		}
		next.fieldManagers[st] = fm
	}
	s.custom.Store(next)
	return nil
}

// route adds st to routes, by group/version and resource name.
func route(routes map[schema.GroupVersion]map[string]*registry.Store, st *registry.Store) error {
	gv := st.Resource.GVR.GroupVersion()
	m := routes[gv]
	if m == nil {
		m = map[string]*registry.Store{}
		routes[gv] = m
	}
	name := st.Resource.GVR.Resource
	if _, dup := m[name]; dup {
		return fmt.Errorf("apiserver: resource %s served twice", st.Resource.GVR)
	}
	m[name] = st
	return nil
}

// lookup returns the store serving resource in gv, or nil.
func (s *Server) lookup(gv schema.GroupVersion, resource string) *registry.Store {
	if st := s.resources[gv][resource]; st != nil {
		return st
	}
	if c := s.custom.Load(); c != nil {
		return c.stores[gv][resource]
	}
	return nil
}

// fieldManagersOf returns st's managedFields trackers (nil without
// server-side apply).
func (s *Server) fieldManagersOf(st *registry.Store) *fieldManagers {
	if fm := s.fieldManagers[st]; fm != nil {
		return fm
	}
	if c := s.custom.Load(); c != nil {
		return c.fieldManagers[st]
	}
	return nil
}

// newCustomFieldManagers builds the managedFields trackers of a custom
// resource: the resource's TypeConverter when it has one, else one that
// deduces the structure from the objects (maps merge key by key, lists
// are atomic), and a converter that only changes apiVersion, as custom
// resources have no Go types.
func (s *Server) newCustomFieldManagers(res *registry.Resource) (*fieldManagers, error) {
	tc := res.TypeConverter
	if tc == nil {
		tc = managedfields.NewDeducedTypeConverter()
	}
	gvk := res.GroupVersionKind()
	conv := unstructuredConverter{}
	def := customDefaulter{res}
	main, err := managedfields.NewDefaultFieldManager(tc, conv, def, conv, gvk, gvk.GroupVersion(), "", nil)
	if err != nil {
		return nil, fmt.Errorf("field manager of %s: %w", res.GVR, err)
	}
	fm := &fieldManagers{main: main, create: main, created: newCreateFields()}
	if res.Status {
		if fm.status, err = managedfields.NewDefaultFieldManager(tc, conv, def, conv, gvk, gvk.GroupVersion(), "status", nil); err != nil {
			return nil, fmt.Errorf("status field manager of %s: %w", res.GVR, err)
		}
	}
	return fm, nil
}

// customDefaulter applies a custom resource's defaults to merge results.
type customDefaulter struct{ res *registry.Resource }

func (d customDefaulter) Default(obj runtime.Object) {
	if _, ok := obj.(*unstructured.Unstructured); ok {
		d.res.Strategy.Default(obj)
	}
}

// unstructuredConverter converts custom resources between versions of
// one group by setting apiVersion (conversion strategy None), and creates
// empty ones. It is the field manager's converter and creater.
type unstructuredConverter struct{}

func (unstructuredConverter) Convert(in, out, _ any) error {
	src, ok := in.(*unstructured.Unstructured)
	dst, ok2 := out.(*unstructured.Unstructured)
	if !ok || !ok2 {
		return fmt.Errorf("converting %T to %T: only custom resources", in, out)
	}
	dst.Object = runtime.DeepCopyJSON(src.Object)
	return nil
}

func (unstructuredConverter) ConvertToVersion(in runtime.Object, target runtime.GroupVersioner) (runtime.Object, error) {
	u, ok := in.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("converting %T: only custom resources", in)
	}
	gvk := u.GroupVersionKind()
	want, ok := target.KindForGroupVersionKinds([]schema.GroupVersionKind{gvk})
	if !ok {
		return nil, fmt.Errorf("%s cannot be converted to %v", gvk, target)
	}
	out := u.DeepCopy()
	out.SetGroupVersionKind(want)
	return out, nil
}

func (unstructuredConverter) ConvertFieldLabel(_ schema.GroupVersionKind, label, value string) (string, string, error) {
	return label, value, nil
}

func (unstructuredConverter) New(gvk schema.GroupVersionKind) (runtime.Object, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, nil
}
