package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/internal/admission"
	"github.com/skiff-dev/skiff/internal/auth"
	"github.com/skiff-dev/skiff/internal/registry"
)

// Admitter is the admission chain (*admission.Chain): Mutate runs the
// mutating plugins, Validate the validating ones, ValidateDelete the ones
// that admit deletes.
type Admitter interface {
	Mutate(ctx context.Context, r *admission.Request) error
	Validate(ctx context.Context, r *admission.Request) error
	ValidateDelete(ctx context.Context, r *admission.Request) error
	AdmitConnect(ctx context.Context, r *admission.Request) error
}

// admitConnect admits a CONNECT request (exec, attach, port-forward,
// node proxy) with its options as the object, as upstream admits a
// connect before it proxies: the plugins that handle CONNECT (webhooks,
// policies) see e.g. a v1 PodExecOptions. It writes the refusal and
// returns false when the request may not go on.
func (s *Server) admitConnect(w http.ResponseWriter, r *http.Request, ri *requestInfo, opts runtime.Object) bool {
	if s.cfg.Admission == nil {
		return true
	}
	gvks, _, err := s.cfg.Scheme.ObjectKinds(opts)
	if err != nil || len(gvks) == 0 {
		s.writeError(w, apierrors.NewInternalError(fmt.Errorf("kind of %T: %w", opts, err)))
		return false
	}
	kind := corev1.SchemeGroupVersion.WithKind(gvks[0].Kind)
	opts.GetObjectKind().SetGroupVersionKind(kind)
	u, _ := auth.UserFrom(r.Context())
	req := &admission.Request{
		Operation:   admission.Connect,
		User:        u,
		Namespace:   ri.namespace,
		Name:        ri.name,
		Resource:    schema.GroupVersionResource{Version: "v1", Resource: ri.resource},
		Subresource: ri.subresource,
		Kind:        kind,
		Object:      opts,
	}
	if err := s.cfg.Admission.AdmitConnect(r.Context(), req); err != nil {
		s.writeError(w, err)
		return false
	}
	addWarnings(w, req.Warnings)
	return true
}

// admits reports whether a request goes through admission: writes of
// objects through the main resource and the status, scale, approval and
// ephemeralcontainers subresources, and deletes (each object of a
// deletecollection). Bindings and tokens are not admitted; the connect
// subresources are, by admitConnect.
func admits(ri *requestInfo) bool {
	switch ri.verb {
	case "create", "update", "patch":
	case "delete", "deletecollection":
		return ri.subresource == ""
	default:
		return false
	}
	switch ri.subresource {
	case "", "status", "scale", "approval", "ephemeralcontainers":
		return true
	}
	return false
}

// withAdmission returns r with the admission of this request in its
// context, for the store to call (see registry.Admission).
func (s *Server) withAdmission(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) *http.Request {
	if s.cfg.Admission == nil || !admits(ri) {
		return r
	}
	u, _ := auth.UserFrom(r.Context())
	ra := &requestAdmission{
		chain: s.cfg.Admission, w: w, user: u, ri: ri, st: st,
		dryRun: slices.Contains(r.URL.Query()["dryRun"], metav1.DryRunAll),
	}
	// Webhooks receive the write's options: CreateOptions for a create,
	// UpdateOptions for an update or a patch (as upstream converts a
	// PatchOptions); a bad query fails the request later, not here.
	switch ri.verb {
	case "delete", "deletecollection":
		// Options from the query; a body's DeleteOptions are the
		// handler's to read.
		opts := &metav1.DeleteOptions{}
		_ = s.decodeQuery(r, opts)
		opts.TypeMeta = metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "DeleteOptions"}
		ra.deleteOpts = opts
	case "create":
		opts := &metav1.CreateOptions{}
		_ = s.decodeQuery(r, opts)
		opts.TypeMeta = metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "CreateOptions"}
		ra.createOpts = opts
	default:
		opts := &metav1.UpdateOptions{}
		_ = s.decodeQuery(r, opts)
		opts.TypeMeta = metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "UpdateOptions"}
		ra.updateOpts = opts
		ra.createOpts = &metav1.CreateOptions{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "CreateOptions"},
			DryRun: opts.DryRun, FieldManager: opts.FieldManager, FieldValidation: opts.FieldValidation}
	}
	return r.WithContext(registry.WithAdmission(r.Context(), ra))
}

// requestAdmission is one request's registry.Admission.
type requestAdmission struct {
	chain  Admitter
	w      http.ResponseWriter
	user   auth.User
	ri     *requestInfo
	st     *registry.Store
	dryRun bool
	// createOpts and updateOpts are the write's options, by operation
	// (an update or patch of an absent object creates it).
	createOpts *metav1.CreateOptions
	updateOpts *metav1.UpdateOptions
	deleteOpts *metav1.DeleteOptions

	mu     sync.Mutex
	warned map[string]bool // warnings already sent (a retried write warns again)
}

func (a *requestAdmission) request(obj, old runtime.Object) *admission.Request {
	op := admission.Update
	if old == nil {
		op = admission.Create
	}
	name := a.ri.name
	if name == "" {
		if m, err := meta.Accessor(obj); err == nil {
			name = m.GetName()
		}
	}
	// The object is the resource's, also through a subresource (a scale
	// write is admitted as the changed parent), so the kind is too.
	kind := a.st.Resource.GroupVersionKind()
	var opts runtime.Object
	if op == admission.Create && a.createOpts != nil {
		opts = a.createOpts
	} else if op == admission.Update && a.updateOpts != nil {
		opts = a.updateOpts
	}
	return &admission.Request{
		Operation:   op,
		User:        a.user,
		Namespace:   a.ri.namespace,
		Name:        name,
		Resource:    a.st.Resource.GVR,
		Subresource: a.ri.subresource,
		Kind:        kind,
		Options:     opts,
		Object:      obj,
		OldObject:   old,
		DryRun:      a.dryRun,
	}
}

func (a *requestAdmission) Mutate(ctx context.Context, obj, old runtime.Object) error {
	req := a.request(obj, old)
	err := a.chain.Mutate(ctx, req)
	a.warn(req.Warnings)
	return err
}

// ValidateDelete admits the delete of old, the stored object.
func (a *requestAdmission) ValidateDelete(ctx context.Context, old runtime.Object) error {
	req := a.request(nil, old)
	req.Operation, req.Object = admission.Delete, nil
	req.Options = nil
	if a.deleteOpts != nil {
		req.Options = a.deleteOpts
	}
	if m, err := meta.Accessor(old); err == nil {
		req.Name = m.GetName()
	}
	err := a.chain.ValidateDelete(ctx, req)
	a.warn(req.Warnings)
	return err
}

func (a *requestAdmission) Validate(ctx context.Context, obj, old runtime.Object) error {
	req := a.request(obj, old)
	err := a.chain.Validate(ctx, req)
	a.warn(req.Warnings)
	return err
}

// warn adds each new warning as a Warning header; the handler writes the
// response only after the store returns, so the headers go out with it.
func (a *requestAdmission) warn(warnings []string) {
	if len(warnings) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.warned == nil {
		a.warned = map[string]bool{}
	}
	for _, msg := range warnings {
		if !a.warned[msg] {
			a.warned[msg] = true
			addWarnings(a.w, []string{msg})
		}
	}
}
