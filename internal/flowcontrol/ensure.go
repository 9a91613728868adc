package flowcontrol

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	flowcontrollisters "k8s.io/client-go/listers/flowcontrol/v1"
)

// producerFieldManager is the field manager of the ensurer's writes
// (upstream's).
const producerFieldManager = "api-priority-and-fairness-config-producer-v1"

// object is a FlowSchema or a PriorityLevelConfiguration pointer.
type object interface {
	metav1.Object
	runtime.Object
}

// ops is what the ensurer needs of one kind: reads from the informer cache,
// writes (and a direct read) through the API server, and the kind's spec
// comparison.
type ops[T object] struct {
	kind   string
	get    func(name string) (T, error) // from the cache: never mutate
	list   func() ([]T, error)          // from the cache: never mutate
	fetch  func(ctx context.Context, name string) (T, error)
	create func(ctx context.Context, obj T) error
	update func(ctx context.Context, obj T) error
	delete func(ctx context.Context, name string) error
	copy   func(T) T
	// specEqual reports whether have's spec is the bootstrap object
	// want's, as far as the ensurer cares.
	specEqual func(want, have T) bool
	// withSpec returns a copy of into with from's spec.
	withSpec func(into, from T) T
}

func flowSchemaOps(client kubernetes.Interface, lister flowcontrollisters.FlowSchemaLister) ops[*flowcontrolv1.FlowSchema] {
	api := client.FlowcontrolV1().FlowSchemas()
	return ops[*flowcontrolv1.FlowSchema]{
		kind: "FlowSchema",
		get:  lister.Get,
		list: func() ([]*flowcontrolv1.FlowSchema, error) { return lister.List(labels.Everything()) },
		fetch: func(ctx context.Context, name string) (*flowcontrolv1.FlowSchema, error) {
			return api.Get(ctx, name, metav1.GetOptions{})
		},
		create: func(ctx context.Context, fs *flowcontrolv1.FlowSchema) error {
			_, err := api.Create(ctx, fs, metav1.CreateOptions{FieldManager: producerFieldManager})
			return err
		},
		update: func(ctx context.Context, fs *flowcontrolv1.FlowSchema) error {
			_, err := api.Update(ctx, fs, metav1.UpdateOptions{FieldManager: producerFieldManager})
			return err
		},
		delete: func(ctx context.Context, name string) error { return api.Delete(ctx, name, metav1.DeleteOptions{}) },
		copy:   (*flowcontrolv1.FlowSchema).DeepCopy,
		specEqual: func(want, have *flowcontrolv1.FlowSchema) bool {
			return equality.Semantic.DeepEqual(want.Spec, have.Spec)
		},
		withSpec: func(into, from *flowcontrolv1.FlowSchema) *flowcontrolv1.FlowSchema {
			out := into.DeepCopy()
			out.Spec = *from.Spec.DeepCopy()
			return out
		},
	}
}

func priorityLevelOps(client kubernetes.Interface, lister flowcontrollisters.PriorityLevelConfigurationLister) ops[*flowcontrolv1.PriorityLevelConfiguration] {
	api := client.FlowcontrolV1().PriorityLevelConfigurations()
	return ops[*flowcontrolv1.PriorityLevelConfiguration]{
		kind: "PriorityLevelConfiguration",
		get:  lister.Get,
		list: func() ([]*flowcontrolv1.PriorityLevelConfiguration, error) { return lister.List(labels.Everything()) },
		fetch: func(ctx context.Context, name string) (*flowcontrolv1.PriorityLevelConfiguration, error) {
			return api.Get(ctx, name, metav1.GetOptions{})
		},
		create: func(ctx context.Context, pl *flowcontrolv1.PriorityLevelConfiguration) error {
			_, err := api.Create(ctx, pl, metav1.CreateOptions{FieldManager: producerFieldManager})
			return err
		},
		update: func(ctx context.Context, pl *flowcontrolv1.PriorityLevelConfiguration) error {
			_, err := api.Update(ctx, pl, metav1.UpdateOptions{FieldManager: producerFieldManager})
			return err
		},
		delete:    func(ctx context.Context, name string) error { return api.Delete(ctx, name, metav1.DeleteOptions{}) },
		copy:      (*flowcontrolv1.PriorityLevelConfiguration).DeepCopy,
		specEqual: priorityLevelSpecEqual,
		withSpec: func(into, from *flowcontrolv1.PriorityLevelConfiguration) *flowcontrolv1.PriorityLevelConfiguration {
			out := into.DeepCopy()
			out.Spec = *from.Spec.DeepCopy()
			return out
		},
	}
}

// priorityLevelSpecEqual compares specs as upstream does: the values of
// spec.exempt of the "exempt" level are the administrator's to change, so
// only their presence counts.
func priorityLevelSpecEqual(want, have *flowcontrolv1.PriorityLevelConfiguration) bool {
	want = want.DeepCopy()
	if want.Name == flowcontrolv1.PriorityLevelConfigurationNameExempt {
		if have.Spec.Exempt == nil {
			return false
		}
		want.Spec.Exempt.NominalConcurrencyShares = have.Spec.Exempt.NominalConcurrencyShares
		want.Spec.Exempt.LendablePercent = have.Spec.Exempt.LendablePercent
	}
	return equality.Semantic.DeepEqual(want.Spec, have.Spec)
}

// ensure brings the cluster's configuration objects in line with the
// bootstrap configuration, in upstream's order: the suggested priority
// levels and flow schemas, the mandatory ones, then the removal of objects
// that carry autoupdate-spec=true but are no longer part of the bootstrap
// configuration. It stops at the first error. Idempotent: it writes only
// what differs.
func (c *controller) ensure(ctx context.Context) error {
	pls, fss := priorityLevelOps(c.client, c.plLister), flowSchemaOps(c.client, c.fsLister)
	if err := ensureAll(ctx, pls, c.boot.suggestedPLs, false); err != nil {
		return fmt.Errorf("ensuring suggested configuration: %w", err)
	}
	if err := ensureAll(ctx, fss, c.boot.suggestedFSs, false); err != nil {
		return fmt.Errorf("ensuring suggested configuration: %w", err)
	}
	if err := ensureAll(ctx, pls, c.boot.mandatoryPLs, true); err != nil {
		return fmt.Errorf("ensuring mandatory configuration: %w", err)
	}
	if err := ensureAll(ctx, fss, c.boot.mandatoryFSs, true); err != nil {
		return fmt.Errorf("ensuring mandatory configuration: %w", err)
	}
	if err := removeUnwanted(ctx, fss, slices.Concat(c.boot.mandatoryFSs, c.boot.suggestedFSs)); err != nil {
		return fmt.Errorf("removing obsolete configuration: %w", err)
	}
	if err := removeUnwanted(ctx, pls, slices.Concat(c.boot.mandatoryPLs, c.boot.suggestedPLs)); err != nil {
		return fmt.Errorf("removing obsolete configuration: %w", err)
	}
	return nil
}

func ensureAll[T object](ctx context.Context, o ops[T], boots []T, mandatory bool) error {
	for _, boot := range boots {
		if err := ensureOne(ctx, o, boot, mandatory); err != nil {
			return err
		}
	}
	return nil
}

// ensureOne creates the bootstrap object boot when it is missing (always,
// mandatory or suggested, as upstream) and otherwise revises it: see
// revise. A conflict on the update is returned, so the caller retries.
func ensureOne[T object](ctx context.Context, o ops[T], boot T, mandatory bool) error {
	name := boot.GetName()
	cur, err := o.get(name)
	if apierrors.IsNotFound(err) {
		err = o.create(ctx, o.copy(boot))
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %q: %w", o.kind, name, err)
		}
		// Created since the cache was filled: read it from the server.
		cur, err = o.fetch(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("reading %s %q: %w", o.kind, name, err)
	}
	revised, ok := revise(o, cur, boot, mandatory)
	if !ok {
		return nil
	}
	if err := o.update(ctx, revised); err != nil {
		return fmt.Errorf("updating %s %q: %w", o.kind, name, err)
	}
	return nil
}

// revise returns the update cur needs, on a copy, and whether it needs one.
// A mandatory object always has its spec kept equal to boot's and the
// annotation set to "true". A suggested object has its spec kept when its
// annotation parses as true, or, with no parseable annotation, while it has
// never been changed (generation 1); the annotation is then set to what was
// decided. cur is never modified.
func revise[T object](o ops[T], cur, boot T, mandatory bool) (T, bool) {
	autoUpdate := mandatory || wantsAutoUpdate(cur)
	fixAnnotation := !annotationIs(cur, autoUpdate)
	fixSpec := autoUpdate && !o.specEqual(boot, cur)
	if !fixAnnotation && !fixSpec {
		var zero T
		return zero, false
	}
	var out T
	if fixSpec {
		out = o.withSpec(cur, boot)
	} else {
		out = o.copy(cur)
	}
	if fixAnnotation {
		ann := out.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[flowcontrolv1.AutoUpdateAnnotationKey] = strconv.FormatBool(autoUpdate)
		out.SetAnnotations(ann)
	}
	return out, true
}

// wantsAutoUpdate reads the autoupdate annotation of a suggested object;
// without a boolean value, only an object never changed is kept up to date.
func wantsAutoUpdate(obj metav1.Object) bool {
	if v, err := strconv.ParseBool(obj.GetAnnotations()[flowcontrolv1.AutoUpdateAnnotationKey]); err == nil {
		return v
	}
	return obj.GetGeneration() == 1
}

// annotationIs reports whether the autoupdate annotation parses as want.
func annotationIs(obj metav1.Object, want bool) bool {
	v, ok := obj.GetAnnotations()[flowcontrolv1.AutoUpdateAnnotationKey]
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err == nil && b == want
}

// removeUnwanted deletes the objects annotated autoupdate-spec=true whose
// names are not in boots: configuration an earlier version bootstrapped.
// Objects without the annotation (the administrator's own) or with another
// value are left alone.
func removeUnwanted[T object](ctx context.Context, o ops[T], boots []T) error {
	wanted := make(map[string]bool, len(boots))
	for _, b := range boots {
		wanted[b.GetName()] = true
	}
	cur, err := o.list()
	if err != nil {
		return fmt.Errorf("listing %s objects: %w", o.kind, err)
	}
	var errs []error
	for _, obj := range cur {
		name := obj.GetName()
		if wanted[name] || !annotationIs(obj, true) {
			continue
		}
		if err := o.delete(ctx, name); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting %s %q: %w", o.kind, name, err))
		}
	}
	return errors.Join(errs...)
}
