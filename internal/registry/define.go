package registry

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Define erases a typed strategy into a Strategy.
func Define[T runtime.Object, L runtime.Object](t Typed[T, L]) Strategy {
	if t.New == nil || t.NewList == nil {
		panic("registry.Define: New and NewList are required")
	}
	return &typedStrategy[T, L]{t: t}
}

type typedStrategy[T runtime.Object, L runtime.Object] struct {
	t Typed[T, L]
}

var _ Strategy = (*typedStrategy[runtime.Object, runtime.Object])(nil)

func (s *typedStrategy[T, L]) New() runtime.Object     { return s.t.New() }
func (s *typedStrategy[T, L]) NewList() runtime.Object { return s.t.NewList() }

func (s *typedStrategy[T, L]) PrepareForCreate(_ context.Context, obj runtime.Object) {
	if s.t.PrepareForCreate != nil {
		s.t.PrepareForCreate(obj.(T))
	}
}

func (s *typedStrategy[T, L]) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	if s.t.PrepareForUpdate != nil {
		s.t.PrepareForUpdate(obj.(T), old.(T))
	}
}

func (s *typedStrategy[T, L]) PrepareForStatusUpdate(_ context.Context, obj, old runtime.Object) {
	if s.t.PrepareForStatusUpdate != nil {
		s.t.PrepareForStatusUpdate(obj.(T), old.(T))
	}
}

func (s *typedStrategy[T, L]) Default(obj runtime.Object) {
	if s.t.Default != nil {
		s.t.Default(obj.(T))
	}
}

func (s *typedStrategy[T, L]) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	if s.t.Validate != nil {
		return s.t.Validate(obj.(T))
	}
	return nil
}

func (s *typedStrategy[T, L]) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	if s.t.ValidateUpdate != nil {
		return s.t.ValidateUpdate(obj.(T), old.(T))
	}
	if s.t.Validate != nil {
		return s.t.Validate(obj.(T))
	}
	return nil
}

func (s *typedStrategy[T, L]) ValidateStatusUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	if s.t.ValidateStatusUpdate != nil {
		return s.t.ValidateStatusUpdate(obj.(T), old.(T))
	}
	return nil
}

func (s *typedStrategy[T, L]) ValidateName(name string, prefix bool) []string {
	if s.t.ValidateName != nil {
		return s.t.ValidateName(name, prefix)
	}
	return NameIsDNSSubdomain(name, prefix)
}

func (s *typedStrategy[T, L]) Attrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	accessor, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("reading attributes: %w", err)
	}
	fs := fields.Set{
		"metadata.name":      accessor.GetName(),
		"metadata.namespace": accessor.GetNamespace(),
	}
	if len(s.t.Fields) > 0 {
		typed, ok := obj.(T)
		if !ok {
			return nil, nil, fmt.Errorf("reading attributes: unexpected type %T", obj)
		}
		for k, f := range s.t.Fields {
			fs[k] = f(typed)
		}
	}
	return labels.Set(accessor.GetLabels()), fs, nil
}

func (s *typedStrategy[T, L]) FieldLabels() []string {
	out := []string{"metadata.name", "metadata.namespace"}
	for k := range s.t.Fields {
		out = append(out, k)
	}
	return out
}

func (s *typedStrategy[T, L]) Table() *Table {
	if s.t.Table == nil {
		return nil
	}
	row := s.t.Table.Row
	t := &Table{
		Columns: s.t.Table.Columns,
		Row:     func(obj runtime.Object) []any { return row(obj.(T)) },
	}
	if less := s.t.Table.Less; less != nil {
		t.Less = func(a, b runtime.Object) bool { return less(a.(T), b.(T)) }
	}
	return t
}

func (s *typedStrategy[T, L]) GracefulDeletion(obj runtime.Object, requested *int64) (int64, bool) {
	if s.t.GracefulDeletion != nil {
		return s.t.GracefulDeletion(obj.(T), requested)
	}
	return 0, false
}
