package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/internal/auth"
)

// Operation is the kind of write being admitted.
type Operation string

// Operations, as upstream's admission.Operation names them.
const (
	Create  Operation = "CREATE"
	Update  Operation = "UPDATE"
	Delete  Operation = "DELETE"
	Connect Operation = "CONNECT"
)

// Request describes one write for the admission chain. The API server
// builds it after decoding; mutating plugins may change Object in place.
// A Request is used by one goroutine at a time.
type Request struct {
	Operation   Operation
	User        auth.User
	Namespace   string
	Name        string
	Resource    schema.GroupVersionResource
	Subresource string
	// Kind is the object's kind: the resource's, also for its
	// subresources (Pod for pods/status), as upstream's request kind.
	Kind schema.GroupVersionKind
	// Options are the write's options (*metav1.CreateOptions or
	// *metav1.UpdateOptions), as admission webhooks receive them; nil
	// when unknown.
	Options runtime.Object
	// Object is the new object (typed, e.g. *corev1.Pod); mutating plugins
	// change it in place. Nil for DELETE and for CONNECT.
	Object runtime.Object
	// OldObject is the stored object for UPDATE and DELETE (nil otherwise
	// or when the caller does not have it). Plugins never change it.
	OldObject runtime.Object
	// DryRun requests have no side effects: ResourceQuota checks but does
	// not charge usage.
	DryRun bool

	// Warnings are appended by plugins (PodSecurity's warn level and its
	// checks of workload templates); the API server returns each as a
	// `Warning: 299 - "<text>"` header, as upstream does.
	Warnings []string
	// AuditAnnotations are set by plugins (PodSecurity's audit level) for
	// the audit log; nil until a plugin sets one.
	AuditAnnotations map[string]string
}

// AddWarning appends a warning for the client.
func (r *Request) AddWarning(msg string) { r.Warnings = append(r.Warnings, msg) }

// AddAuditAnnotation records key=value for the audit event of the request.
func (r *Request) AddAuditAnnotation(key, value string) {
	if r.AuditAnnotations == nil {
		r.AuditAnnotations = map[string]string{}
	}
	r.AuditAnnotations[key] = value
}

// Plugin is an admission plugin; it is a Mutator, a Validator or both.
type Plugin interface {
	// Name is upstream's plugin name, e.g. "ServiceAccount".
	Name() string
}

// Mutator changes r.Object (defaults). It returns nil to admit, and is
// called for every request: it ignores the ones it does not handle.
type Mutator interface {
	Plugin
	Admit(ctx context.Context, r *Request) error
}

// Validator refuses requests without changing them. It returns nil to
// admit, and is called for every request.
type Validator interface {
	Plugin
	Validate(ctx context.Context, r *Request) error
}

// DeleteValidator is a plugin that also admits deletes: ValidateDelete
// gets a Request with Operation Delete, OldObject the stored object and a
// nil Object. Only plugins that implement it see deletes (upstream's
// admission webhooks do; the built-in plugins here have nothing to check
// on a delete).
type DeleteValidator interface {
	Plugin
	ValidateDelete(ctx context.Context, r *Request) error
}

// ConnectAdmitter is a plugin that admits CONNECT requests (pods/exec,
// pods/attach, pods/portforward, nodes/proxy), whose Object is the
// connect options (a PodExecOptions, PodAttachOptions,
// PodPortForwardOptions or NodeProxyOptions). Plugins opt in, as
// upstream's declare Handles(Connect): the webhooks and the policies do;
// the built-in plugins, which judge objects, do not.
type ConnectAdmitter interface {
	Plugin
	AdmitConnect(ctx context.Context, r *Request) error
}

// Chain runs admission plugins: every Mutator in order, then every
// Validator in order (a plugin that is both runs in both phases); deletes
// go to the DeleteValidators. It is immutable and safe for concurrent use.
type Chain struct {
	plugins          []Plugin
	mutators         []Mutator
	validators       []Validator
	deleteValidators []DeleteValidator
	connectAdmitters []ConnectAdmitter
	names            []string
}

// NewChain returns a chain of plugins in the given order. A plugin that is
// neither a Mutator nor a Validator is ignored.
func NewChain(plugins ...Plugin) *Chain {
	c := &Chain{}
	for _, p := range plugins {
		if p == nil {
			continue
		}
		m, isM := p.(Mutator)
		v, isV := p.(Validator)
		d, isD := p.(DeleteValidator)
		ca, isC := p.(ConnectAdmitter)
		if isM {
			c.mutators = append(c.mutators, m)
		}
		if isV {
			c.validators = append(c.validators, v)
		}
		if isD {
			c.deleteValidators = append(c.deleteValidators, d)
		}
		if isC {
			c.connectAdmitters = append(c.connectAdmitters, ca)
		}
		if isM || isV || isD || isC {
			c.names = append(c.names, p.Name())
			c.plugins = append(c.plugins, p)
		}
	}
	return c
}

// Without returns a chain of c's plugins except those named.
func (c *Chain) Without(names ...string) *Chain {
	var keep []Plugin
	for _, p := range c.plugins {
		if !slices.Contains(names, p.Name()) {
			keep = append(keep, p)
		}
	}
	return NewChain(keep...)
}

// Names lists the chain's plugins in order.
func (c *Chain) Names() []string { return append([]string(nil), c.names...) }

// Admit runs the mutating phase and then the validating phase on r and
// returns the first refusal. A nil error admits the request (r.Object may
// have been changed; r.Warnings may hold warnings). The error is always a
// *apierrors.StatusError: a plugin's own StatusError as it is, anything
// else as a 500 naming the plugin. A nil Chain admits everything.
func (c *Chain) Admit(ctx context.Context, r *Request) error {
	if err := c.Mutate(ctx, r); err != nil {
		return err
	}
	return c.Validate(ctx, r)
}

// Mutate runs only the mutating phase. With Validate it lets the caller
// run the registry's own validation in between, which is upstream's order
// (mutating admission, then the strategy's defaulting and validation,
// then validating admission, then storage), so that ResourceQuota charges
// only objects the registry accepted. Errors are as for Admit.
func (c *Chain) Mutate(ctx context.Context, r *Request) error {
	if c == nil {
		return nil
	}
	for _, m := range c.mutators {
		if err := m.Admit(ctx, r); err != nil {
			return asStatus(m.Name(), err)
		}
	}
	return nil
}

// Validate runs only the validating phase; see Mutate.
func (c *Chain) Validate(ctx context.Context, r *Request) error {
	if c == nil {
		return nil
	}
	for _, v := range c.validators {
		if err := v.Validate(ctx, r); err != nil {
			return asStatus(v.Name(), err)
		}
	}
	return nil
}

// ValidateDelete admits a delete (r.Operation Delete) through the
// DeleteValidators in order; errors are as for Admit.
func (c *Chain) ValidateDelete(ctx context.Context, r *Request) error {
	if c == nil {
		return nil
	}
	for _, v := range c.deleteValidators {
		if err := v.ValidateDelete(ctx, r); err != nil {
			return asStatus(v.Name(), err)
		}
	}
	return nil
}

// AdmitConnect admits a CONNECT request (r.Operation Connect) through
// the ConnectAdmitters in chain order; errors are as for Admit.
func (c *Chain) AdmitConnect(ctx context.Context, r *Request) error {
	if c == nil {
		return nil
	}
	for _, a := range c.connectAdmitters {
		if err := a.AdmitConnect(ctx, r); err != nil {
			return asStatus(a.Name(), err)
		}
	}
	return nil
}

func asStatus(plugin string, err error) error {
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		return se
	}
	return apierrors.NewInternalError(fmt.Errorf("admission plugin %q failed: %w", plugin, err))
}

// forbidden builds upstream's admission refusal: 403 with the message
// `<resource> "<name>" is forbidden: <err>`.
func forbidden(r *Request, err error) *apierrors.StatusError {
	return apierrors.NewForbidden(r.Resource.GroupResource(), requestName(r), err)
}

// requestName is the name upstream's admission.NewForbidden shows: the
// request's name, else the new object's name or generateName.
func requestName(r *Request) string {
	if r.Name != "" {
		return r.Name
	}
	obj := r.Object
	if obj == nil {
		obj = r.OldObject
	}
	if obj == nil {
		return ""
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	if m.GetName() != "" {
		return m.GetName()
	}
	return m.GetGenerateName()
}

// is reports whether r targets group/resource (any version) with the
// given subresource.
func (r *Request) is(group, resource, sub string) bool {
	return r.Resource.Group == group && r.Resource.Resource == resource && r.Subresource == sub
}
