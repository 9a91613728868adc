package registry

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/skiff-dev/skiff/internal/storage"
)

const (
	// maxGenerateNameAttempts bounds the retries of a create whose
	// generated name is already taken (upstream uses the same 8).
	maxGenerateNameAttempts = 8
	// generatedSuffixLen is the number of random characters appended to
	// metadata.generateName.
	generatedSuffixLen = 5
	// maxGeneratedBaseLen keeps prefix+suffix within 63 characters.
	maxGeneratedBaseLen = 63 - generatedSuffixLen
)

// Create stores a new object in namespace (which must match the object's
// namespace when both are set). obj is not modified. With
// opts.DryRun ["All"] everything but the write happens and the result has
// no resourceVersion.
//
// Order, as upstream: namespace reconciliation and resourceVersion check
// (400), namespace lifecycle (404 / 403), system fields (uid,
// creationTimestamp, generated name, generation), Strategy.PrepareForCreate,
// Strategy.Default, metadata + Strategy.Validate (422), write (409
// AlreadyExists; a generated name is retried).
func (s *Store) Create(ctx context.Context, namespace string, obj runtime.Object, opts metav1.CreateOptions) (runtime.Object, error) {
	if obj == nil {
		return nil, apierrors.NewBadRequest("no object provided")
	}
	return s.CreateOwned(ctx, namespace, obj.DeepCopyObject(), opts)
}

// CreateOwned is Create for a caller that hands obj over (the API server
// with the object it decoded): obj may be modified and returned, and the
// caller must not use it afterwards. It spares Create's copy.
func (s *Store) CreateOwned(ctx context.Context, namespace string, obj runtime.Object, opts metav1.CreateOptions) (runtime.Object, error) {
	if obj == nil {
		return nil, apierrors.NewBadRequest("no object provided")
	}
	if errs := metav1validation.ValidateCreateOptions(&opts); len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "CreateOptions"}, "", errs)
	}
	in := obj
	m, err := accessor(in)
	if err != nil {
		return nil, err
	}
	if err := s.matchNamespace(namespace, m); err != nil {
		return nil, err
	}
	if m.GetResourceVersion() != "" {
		return nil, apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	guard, err := s.checkNamespaceActive(ctx, m, true)
	if err != nil {
		return nil, err
	}
	generate := m.GetName() == "" && m.GetGenerateName() != ""
	attempts := 1
	if generate {
		attempts = maxGenerateNameAttempts
	}
	dryRun := isDryRun(opts.DryRun)
	for i := 0; ; i++ {
		o := in
		if i < attempts-1 {
			o = in.DeepCopyObject()
		}
		out, err := s.createOnce(ctx, o, dryRun, guard)
		if errors.Is(err, storage.ErrGuardChanged) {
			// The namespace changed since the cache showed it active: decide
			// again on a consistent read, and write under that revision.
			if guard, err = s.checkNamespaceActive(ctx, m, false); err != nil {
				return nil, err
			}
			if o == in {
				o = in.DeepCopyObject()
			}
			out, err = s.createOnce(ctx, o, dryRun, guard)
		}
		if err == nil {
			return out, nil
		}
		if !apierrors.IsAlreadyExists(err) || !generate {
			return nil, err
		}
		if i == attempts-1 {
			// Upstream: a generated name that keeps colliding is a timeout
			// the client may retry.
			return nil, apierrors.NewServerTimeoutForKind(s.gvk.GroupKind(), "POST", 0)
		}
	}
}

// createOnce prepares o (owned by the caller) and writes it.
// guards, when not empty, must hold for the write (see NamespaceLookup).
func (s *Store) createOnce(ctx context.Context, o runtime.Object, dryRun bool, guards []storage.Guard) (runtime.Object, error) {
	if err := s.prepareCreate(ctx, o); err != nil {
		return nil, err
	}
	m, err := accessor(o)
	if err != nil {
		return nil, err
	}
	key, err := s.key(m.GetNamespace(), m.GetName())
	if err != nil {
		return nil, err
	}
	if dryRun {
		if _, err := s.allocate(ctx, o, nil, true); err != nil {
			return nil, err
		}
		// Report a taken name as the real create would.
		if _, err := s.Storage.Get(ctx, key); err == nil {
			return nil, apierrors.NewAlreadyExists(s.Resource.GroupResource(), m.GetName())
		} else if !apierrors.IsNotFound(err) {
			return nil, err
		}
		return o, nil
	}
	undo, err := s.allocate(ctx, o, nil, false)
	if err != nil {
		return nil, err
	}
	out, err := s.Storage.Create(ctx, key, o, guards...)
	if err != nil {
		undo()
		if apierrors.IsAlreadyExists(err) {
			return nil, s.alreadyExists(ctx, key, err)
		}
		return nil, err
	}
	s.log.DebugContext(ctx, "created", "namespace", m.GetNamespace(), "name", m.GetName())
	return s.output(out), nil
}

// alreadyExists says, as upstream does, when the object in the way is
// itself being deleted.
func (s *Store) alreadyExists(ctx context.Context, key string, err error) error {
	existing, gerr := s.Storage.Get(ctx, key)
	if gerr != nil {
		return err
	}
	em, aerr := accessor(existing)
	if aerr != nil || em.GetDeletionTimestamp() == nil {
		return err
	}
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		st := se.ErrStatus
		st.Message = "object is being deleted: " + st.Message
		return &apierrors.StatusError{ErrStatus: st}
	}
	return err
}

// prepareCreate fills the system fields of a new object and runs the
// strategy's create hooks, defaulting and validation, with the mutating
// admission of ctx after the defaults and its validating admission last.
// o must already carry the right namespace.
func (s *Store) prepareCreate(ctx context.Context, o runtime.Object) error {
	m, err := accessor(o)
	if err != nil {
		return err
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		base := m.GetGenerateName()
		if len(base) > maxGeneratedBaseLen {
			base = base[:maxGeneratedBaseLen]
		}
		m.SetName(base + utilrand.String(generatedSuffixLen))
	}
	m.SetUID(uuid.NewUUID())
	m.SetCreationTimestamp(s.truncNow())
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")
	m.SetResourceVersion("")
	if s.hasSpec {
		m.SetGeneration(1)
	} else {
		m.SetGeneration(0)
	}
	st := s.Resource.Strategy
	st.PrepareForCreate(ctx, o)
	st.Default(o)
	if err := s.admitMutate(ctx, o, nil); err != nil {
		return err
	}
	errs := s.validateMeta(m)
	errs = append(errs, st.Validate(ctx, o)...)
	if err := s.invalid(m.GetName(), errs); err != nil {
		return err
	}
	o.GetObjectKind().SetGroupVersionKind(s.gvk)
	return s.admitValidate(ctx, o, nil)
}

// checkNamespaceActive enforces the namespace lifecycle for a new object of
// a namespaced resource: its namespace must exist (404 naming the
// namespace) and not be terminating (403 with the NamespaceTerminating
// cause), as upstream's NamespaceLifecycle admission does.
func (s *Store) checkNamespaceActive(ctx context.Context, m metav1.Object, cached bool) ([]storage.Guard, error) {
	if !s.Resource.Namespaced || s.namespaces == nil || m.GetNamespace() == "" {
		return nil, nil
	}
	nsName := m.GetNamespace()
	ns, guard, err := s.namespaces.GetNamespace(ctx, nsName, cached)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, nsName)
		}
		return nil, apierrors.NewInternalError(fmt.Errorf("looking up namespace %q: %w", nsName, err))
	}
	if cached && (ns.Status.Phase == corev1.NamespaceTerminating || ns.DeletionTimestamp != nil) {
		// Refuse only on a consistent read.
		return s.checkNamespaceActive(ctx, m, false)
	}
	if ns.Status.Phase != corev1.NamespaceTerminating && ns.DeletionTimestamp == nil {
		return []storage.Guard{guard}, nil
	}
	name := m.GetName()
	if name == "" {
		name = m.GetGenerateName()
	}
	se := apierrors.NewForbidden(s.Resource.GroupResource(), name,
		fmt.Errorf("unable to create new content in namespace %s because it is being terminated", nsName))
	se.ErrStatus.Details.Causes = append(se.ErrStatus.Details.Causes, metav1.StatusCause{
		Type:    corev1.NamespaceTerminatingCause,
		Message: fmt.Sprintf("namespace %s is being terminated", nsName),
		Field:   "metadata.namespace",
	})
	return nil, se
}
