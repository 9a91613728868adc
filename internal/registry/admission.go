package registry

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
)

// Admission is the admission chain as a Store sees it: the API server
// puts one, built for the request at hand (who asks, which operation),
// in the context of a create or update with WithAdmission. The Store
// calls Mutate after its own defaulting and Validate after its own
// validation, as upstream orders them, on every attempt of the write (an
// update that races another writer is admitted again).
//
// obj is the object about to be stored; old is the stored one, nil for a
// create (including a create through update). Mutate may change obj;
// Validate must not. ValidateDelete admits the delete of old (the stored
// object), inside the delete's write as upstream's deleteValidation.
type Admission interface {
	Mutate(ctx context.Context, obj, old runtime.Object) error
	Validate(ctx context.Context, obj, old runtime.Object) error
	ValidateDelete(ctx context.Context, old runtime.Object) error
}

type admissionKey struct{}

// WithAdmission returns ctx carrying a for the writes made with it.
func WithAdmission(ctx context.Context, a Admission) context.Context {
	return context.WithValue(ctx, admissionKey{}, a)
}

func admissionFrom(ctx context.Context) Admission {
	a, _ := ctx.Value(admissionKey{}).(Admission)
	return a
}

// admitMutate runs the mutating admission of ctx, if any, prunes what it
// added where the resource prunes (custom resources), and defaults again
// (a projected token volume's defaultMode, say).
func (s *Store) admitMutate(ctx context.Context, o, old runtime.Object) error {
	a := admissionFrom(ctx)
	if a == nil {
		return nil
	}
	if err := a.Mutate(ctx, o, old); err != nil {
		return err
	}
	if s.Resource.Prune != nil {
		// A mutating webhook's additions are pruned like a request's,
		// silently, as upstream decodes the patched object.
		s.Resource.Prune(o)
	}
	s.Resource.Strategy.Default(o)
	return nil
}

// admitDelete runs the delete admission of ctx, if any, on the stored
// object.
func (s *Store) admitDelete(ctx context.Context, current runtime.Object) error {
	if a := admissionFrom(ctx); a != nil {
		return a.ValidateDelete(ctx, current)
	}
	return nil
}

// admitValidate runs the validating admission of ctx, if any.
func (s *Store) admitValidate(ctx context.Context, o, old runtime.Object) error {
	if a := admissionFrom(ctx); a != nil {
		return a.Validate(ctx, o, old)
	}
	return nil
}
