package policy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	admissionregistrationv1listers "k8s.io/client-go/listers/admissionregistration/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"

	"github.com/skiff-dev/skiff/internal/admission"
)

// PluginName is upstream's name of the plugin.
const PluginName = "ValidatingAdmissionPolicy"

// Config is everything the plugin reads, from the caller's informer
// factory (the caller starts it).
type Config struct {
	Policies   admissionregistrationv1listers.ValidatingAdmissionPolicyLister
	Bindings   admissionregistrationv1listers.ValidatingAdmissionPolicyBindingLister
	Namespaces corev1listers.NamespaceLister // namespaceSelector and namespaceObject
	Client     kubernetes.Interface          // namespace cache misses (may be nil)
	Params     ParamSource                   // nil: policies with paramKind fail per failurePolicy
	Logger     *slog.Logger
}

// plugin is the admission plugin New returns. Safe for concurrent use.
type plugin struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	policies map[string]*compiledPolicy  // by name, the last version seen; guarded by mu
	bindings map[string]*compiledBinding // by name, the last version seen; guarded by mu
}

var (
	_ admission.Validator       = (*plugin)(nil)
	_ admission.DeleteValidator = (*plugin)(nil)
	_ admission.ConnectAdmitter = (*plugin)(nil)
)

// New returns the ValidatingAdmissionPolicy plugin: a Validator and a
// DeleteValidator. A nil Policies or Bindings lister means no policies.
func New(cfg Config) admission.Validator {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &plugin{
		cfg:      cfg,
		log:      log.With("plugin", PluginName),
		policies: map[string]*compiledPolicy{},
		bindings: map[string]*compiledBinding{},
	}
}

func (p *plugin) Name() string { return PluginName }

// Validate admits a create or update (connects go through AdmitConnect).
func (p *plugin) Validate(ctx context.Context, r *admission.Request) error { return p.dispatch(ctx, r) }

// ValidateDelete admits a delete: object is null and oldObject the
// stored object.
func (p *plugin) ValidateDelete(ctx context.Context, r *admission.Request) error {
	return p.dispatch(ctx, r)
}

// AdmitConnect admits a connect (exec, attach, port-forward, proxy):
// object is the connect options (admission.ConnectAdmitter).
func (p *plugin) AdmitConnect(ctx context.Context, r *admission.Request) error {
	return p.dispatch(ctx, r)
}

// compiledBinding is one version of a binding with its matchResources
// parsed. Immutable.
type compiledBinding struct {
	b        *admissionregistrationv1.ValidatingAdmissionPolicyBinding // from the cache: read-only
	match    *matchSpec                                                // nil: no matchResources
	matchErr error
}

// hook is a policy with the bindings naming it (in name order).
type hook struct {
	policy   *compiledPolicy
	bindings []*compiledBinding
}

// hooks returns the policies with at least one binding, in name order,
// each with its bindings in name order; bindings naming a policy that
// does not exist are skipped. Compiled policies and bindings are reused
// while their uid and resourceVersion are unchanged.
func (p *plugin) hooks(bindings []*admissionregistrationv1.ValidatingAdmissionPolicyBinding) ([]hook, error) {
	slices.SortFunc(bindings, func(a, b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) int {
		return cmp.Or(strings.Compare(a.Spec.PolicyName, b.Spec.PolicyName), strings.Compare(a.Name, b.Name))
	})
	var out []hook
	for i := 0; i < len(bindings); {
		name := bindings[i].Spec.PolicyName
		j := i
		for j < len(bindings) && bindings[j].Spec.PolicyName == name {
			j++
		}
		group := bindings[i:j]
		i = j
		pol, err := p.cfg.Policies.Get(name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading policy %q: %w", name, err)
		}
		h := hook{policy: p.compiledPolicy(pol)}
		for _, b := range group {
			h.bindings = append(h.bindings, p.compiledBinding(b))
		}
		out = append(out, h)
	}
	p.prune(len(out), len(bindings))
	return out, nil
}

func (p *plugin) compiledPolicy(pol *admissionregistrationv1.ValidatingAdmissionPolicy) *compiledPolicy {
	p.mu.Lock()
	c, ok := p.policies[pol.Name]
	p.mu.Unlock()
	if ok && c.uid == pol.UID && c.resourceVersion == pol.ResourceVersion && pol.ResourceVersion != "" {
		return c
	}
	c = compilePolicy(pol)
	p.mu.Lock()
	p.policies[pol.Name] = c
	p.mu.Unlock()
	return c
}

func (p *plugin) compiledBinding(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) *compiledBinding {
	p.mu.Lock()
	c, ok := p.bindings[b.Name]
	p.mu.Unlock()
	if ok && c.b.UID == b.UID && c.b.ResourceVersion == b.ResourceVersion && b.ResourceVersion != "" {
		return c
	}
	c = &compiledBinding{b: b}
	if b.Spec.MatchResources != nil {
		c.match, c.matchErr = newMatchSpec(b.Spec.MatchResources)
	}
	p.mu.Lock()
	p.bindings[b.Name] = c
	p.mu.Unlock()
	return c
}

// prune drops the compiled policies and bindings when the caches hold
// many more than the current ones (deleted objects), so that they stay
// bounded; they are recompiled on the next requests.
func (p *plugin) prune(policies, bindings int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.policies) > 2*policies+16 {
		p.policies = map[string]*compiledPolicy{}
	}
	if len(p.bindings) > 2*bindings+16 {
		p.bindings = map[string]*compiledBinding{}
	}
}

// denial is one reason to refuse the request.
type denial struct {
	policy, binding string // binding "" for the policy's own configuration errors
	message         string
	reason          metav1.StatusReason
}

// validationFailure is one entry of upstream's
// validation.policy.admission.k8s.io/validation_failure audit annotation.
type validationFailure struct {
	Message           string                                     `json:"message"`
	Policy            string                                     `json:"policy"`
	Binding           string                                     `json:"binding"`
	ExpressionIndex   int                                        `json:"expressionIndex"`
	ValidationActions []admissionregistrationv1.ValidationAction `json:"validationActions"`
}

const (
	validationFailureKey  = "validation.policy.admission.k8s.io/validation_failure"
	maxValidationFailures = 50
)

// dispatch evaluates every policy with bindings that match r, as
// upstream's validating dispatcher.
func (p *plugin) dispatch(ctx context.Context, r *admission.Request) error {
	if p.cfg.Bindings == nil || p.cfg.Policies == nil || exempt(r) {
		return nil
	}
	bindings, err := p.cfg.Bindings.List(labels.Everything())
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("listing validating admission policy bindings: %w", err))
	}
	if len(bindings) == 0 {
		return nil
	}
	hooks, err := p.hooks(bindings)
	if err != nil {
		return apierrors.NewInternalError(err)
	}

	s := &requestState{p: p, r: r}
	var denials []denial
	var failures []validationFailure
	configError := func(c *compiledPolicy, binding string, err error) {
		if c.failOpen {
			p.log.Debug("ignoring a policy configuration error", "policy", c.name, "binding", binding, "err", err)
			return
		}
		prefix := "failed to configure policy: "
		if binding != "" {
			prefix = "failed to configure binding: "
		}
		denials = append(denials, denial{policy: c.name, binding: binding, message: prefix + err.Error()})
	}
	for _, h := range hooks {
		c := h.policy
		if c.skip {
			continue
		}
		if c.matchErr != nil {
			configError(c, "", c.matchErr)
			continue
		}
		matched, err := s.matches(ctx, c.match)
		if err != nil {
			configError(c, "", err)
			continue
		}
		if !matched {
			continue
		}
		annotations := map[string][]string{}
		var keys []string
		for _, cb := range h.bindings {
			b := cb.b
			if cb.matchErr != nil {
				configError(c, b.Name, cb.matchErr)
				continue
			}
			if cb.match != nil {
				matched, err := s.matches(ctx, cb.match)
				if err != nil {
					configError(c, b.Name, err)
					continue
				}
				if !matched {
					continue
				}
			}
			params, perr := s.collectParams(ctx, c, b)
			if perr != nil {
				if perr.policy {
					configError(c, "", perr.err)
				} else {
					configError(c, b.Name, perr.err)
				}
				continue
			}
			if len(params) == 0 {
				continue
			}
			if err := s.loadNamespace(ctx); err != nil {
				return err
			}
			for _, param := range params {
				decisions, audits := s.evaluate(ctx, c, param)
				for _, d := range decisions {
					if !d.deny {
						continue
					}
					for _, action := range b.Spec.ValidationActions {
						switch action {
						case admissionregistrationv1.Deny:
							denials = append(denials, denial{policy: c.name, binding: b.Name, message: d.message, reason: d.reason})
						case admissionregistrationv1.Audit:
							failures = append(failures, validationFailure{Message: d.message, Policy: b.Spec.PolicyName, Binding: b.Name,
								ExpressionIndex: d.index, ValidationActions: b.Spec.ValidationActions})
						case admissionregistrationv1.Warn:
							r.AddWarning(fmt.Sprintf("Validation failed for ValidatingAdmissionPolicy '%s' with binding '%s': %s", c.name, b.Name, d.message))
						}
					}
				}
				for _, a := range audits {
					if a.err != "" {
						denials = append(denials, denial{policy: c.name, binding: b.Name, message: a.err})
						continue
					}
					if _, ok := annotations[a.key]; !ok {
						keys = append(keys, a.key)
					}
					if !slices.Contains(annotations[a.key], a.value) {
						annotations[a.key] = append(annotations[a.key], a.value)
					}
				}
			}
		}
		for _, k := range keys {
			r.AddAuditAnnotation(c.name+"/"+k, strings.Join(annotations[k], ", "))
		}
	}
	if len(failures) > 0 {
		if len(failures) > maxValidationFailures {
			failures = failures[:maxValidationFailures]
		}
		if b, err := json.Marshal(failures); err == nil {
			r.AddAuditAnnotation(validationFailureKey, string(b))
		}
	}
	if len(denials) == 0 {
		return nil
	}
	return refusal(r, denials[0])
}

// refusal is upstream's error for a denial: `<resource> "<name>" is
// forbidden: ValidatingAdmissionPolicy '<policy>' with binding
// '<binding>' denied request: <message>`, with the validation's reason
// (Invalid by default) and its code (422; Unauthorized 401, Forbidden
// 403, RequestEntityTooLarge 413).
func refusal(r *admission.Request, d denial) *apierrors.StatusError {
	var msg string
	if d.binding != "" {
		msg = fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %s", d.policy, d.binding, d.message)
	} else {
		msg = fmt.Sprintf("ValidatingAdmissionPolicy '%s' denied request: %s", d.policy, d.message)
	}
	err := apierrors.NewForbidden(r.Resource.GroupResource(), requestName(r), errors.New(msg))
	reason := d.reason
	if reason == "" {
		reason = metav1.StatusReasonInvalid
	}
	err.ErrStatus.Reason = reason
	err.ErrStatus.Code = reasonToCode(reason)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Message: msg})
	return err
}

func reasonToCode(r metav1.StatusReason) int32 {
	switch r {
	case metav1.StatusReasonForbidden:
		return http.StatusForbidden
	case metav1.StatusReasonUnauthorized:
		return http.StatusUnauthorized
	case metav1.StatusReasonRequestEntityTooLarge:
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusUnprocessableEntity
}

// requestName is the name upstream's admission.NewForbidden shows: the
// request's, else the new object's name or generateName, else "Unknown".
func requestName(r *admission.Request) string {
	if r.Name != "" {
		return r.Name
	}
	if r.Object == nil {
		return "Unknown"
	}
	m, err := meta.Accessor(r.Object)
	if err != nil {
		return "Unknown/errorGettingName"
	}
	if m.GetName() != "" {
		return m.GetName()
	}
	if m.GetGenerateName() != "" {
		return m.GetGenerateName()
	}
	return "Unknown"
}
