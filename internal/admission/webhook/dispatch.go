package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	sigsjson "sigs.k8s.io/json"

	"github.com/skiff-dev/skiff/internal/admission"
)

// Audit annotation key prefixes, as upstream's.
const (
	mutationAnnotationPrefix           = "mutation.webhook.admission.k8s.io/"
	mutationFailedOpenAnnotationPrefix = "failed-open." + mutationAnnotationPrefix
	validatingFailedOpenPrefix         = "failed-open.validating.webhook.admission.k8s.io/"
)

// dispatcher is what both plugins share: the configuration, the compiled
// hooks and the HTTP clients.
type dispatcher struct {
	cfg      Config
	log      *slog.Logger
	hooks    hookCache
	clients  clientCache
	resolver resolver
}

func newDispatcher(cfg Config, name string) *dispatcher {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &dispatcher{
		cfg:      cfg,
		log:      log.With("plugin", name),
		resolver: resolver{services: cfg.Services, slices: cfg.Slices},
	}
}

func (d *dispatcher) matcher(r *admission.Request) *matcher {
	return &matcher{r: r, namespaces: d.cfg.Namespaces, client: d.cfg.Client, log: d.log}
}

// call sends h the review of a and returns its checked answer. Errors:
// a dry-run refusal (*apierrors.StatusError) or a *callError. It only
// reads a, so calls may run in parallel once a is prepared.
func (d *dispatcher) call(ctx context.Context, h *hook, a *attributes, mutating bool) (*response, error) {
	if a.r.DryRun {
		switch h.sideEffects {
		case admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.SideEffectClassNoneOnDryRun:
		case "":
			return nil, &callError{webhook: h.name, reason: errors.New("Webhook SideEffects is nil")}
		default:
			return nil, dryRunUnsupported(h.name)
		}
	}
	version, err := reviewVersion(h.versions)
	if err != nil {
		return nil, &callError{webhook: h.name, reason: fmt.Errorf("could not create admission objects: %w", err)}
	}
	uid := uuid.NewUUID()
	body, err := buildReview(version, uid, a)
	if err != nil {
		return nil, &callError{webhook: h.name, reason: fmt.Errorf("could not create admission objects: %w", err)}
	}
	t, err := d.resolver.resolve(&h.clientConfig)
	if err != nil {
		return nil, &callError{webhook: h.name, reason: fmt.Errorf("failed to call webhook: %w", err)}
	}
	client, err := d.clients.get(h.clientConfig.CABundle, t.serverName)
	if err != nil {
		return nil, &callError{webhook: h.name, reason: fmt.Errorf("could not get REST client: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	data, err := post(ctx, client, t, body)
	if err != nil {
		return nil, &callError{webhook: h.name, reason: fmt.Errorf("failed to call webhook: %w", err)}
	}
	resp, err := parseResponse(version, uid, data, mutating)
	if err != nil {
		return nil, &callError{webhook: h.name, reason: fmt.Errorf("received invalid webhook response: %w", err)}
	}
	return resp, nil
}

// record adds a response's warnings and audit annotations to r.
func record(r *admission.Request, h *hook, resp *response) {
	if resp == nil {
		return
	}
	for _, w := range resp.Warnings {
		r.AddWarning(w)
	}
	for k, v := range resp.AuditAnnotations {
		r.AddAuditAnnotation(h.name+"/"+k, v)
	}
}

// failure turns a failed call into the request's verdict: nil when h
// fails open (the failure is logged and annotated under failedOpenKey),
// a 504 when the request's own context is done, else upstream's 500.
// Other errors are returned as they are.
func (d *dispatcher) failure(ctx context.Context, r *admission.Request, h *hook, err error, failedOpenKey string) error {
	var ce *callError
	if !errors.As(err, &ce) {
		return err
	}
	if !h.failOpen {
		return apierrors.NewInternalError(err)
	}
	d.log.Info("failed calling webhook, failing open", "webhook", h.name, "err", err)
	r.AddAuditAnnotation(failedOpenKey, h.name)
	if ctx.Err() != nil {
		return apierrors.NewTimeoutError("request did not complete within requested timeout", 0)
	}
	return nil
}

// mutatingPlugin is MutatingAdmissionWebhook.
type mutatingPlugin struct{ d *dispatcher }

var (
	_ admission.Mutator         = (*mutatingPlugin)(nil)
	_ admission.DeleteValidator = (*mutatingPlugin)(nil)
)

// NewMutating returns the MutatingAdmissionWebhook plugin over cfg. It is
// safe for concurrent use.
func NewMutating(cfg Config) admission.Mutator {
	return &mutatingPlugin{d: newDispatcher(cfg, MutatingPluginName)}
}

func (p *mutatingPlugin) Name() string { return MutatingPluginName }

// ValidateDelete calls the mutating webhooks that match a delete, as
// upstream does: they may refuse it; there is no object to patch.
func (p *mutatingPlugin) ValidateDelete(ctx context.Context, r *admission.Request) error {
	return p.Admit(ctx, r)
}

// AdmitConnect calls the mutating webhooks whose rules name CONNECT, on
// the connect options (admission.ConnectAdmitter).
func (p *mutatingPlugin) AdmitConnect(ctx context.Context, r *admission.Request) error {
	return p.Admit(ctx, r)
}

// Admit calls the matching mutating webhooks in order and applies their
// patches to r.Object in place; then, once, the IfNeeded webhooks called
// before a later webhook changed the object. The first refusal stops it.
func (p *mutatingPlugin) Admit(ctx context.Context, r *admission.Request) error {
	if p.d.cfg.Mutating == nil || exempt(r) {
		return nil
	}
	hooks, err := p.d.hooks.mutatingHooks(p.d.cfg.Mutating)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if len(hooks) == 0 {
		return nil
	}
	m := p.d.matcher(r)
	previously := map[string]bool{} // IfNeeded webhooks called since the last change
	reinvoke := map[string]bool{}   // webhooks to call again in round 1
	for round := 0; round < 2; round++ {
		if round == 1 && len(reinvoke) == 0 {
			break
		}
		for i, h := range hooks {
			if round == 1 && !reinvoke[h.uid] {
				continue
			}
			ok, serr := m.matches(ctx, h)
			if serr != nil {
				return serr
			}
			if !ok {
				continue
			}
			changed, err := p.callOne(ctx, h, m.attributes(), round, i)
			if changed {
				for uid := range previously {
					reinvoke[uid] = true
				}
				clear(previously)
				m.objectChanged()
			}
			if h.reinvoke && round == 0 {
				previously[h.uid] = true
			}
			if err != nil {
				key := fmt.Sprintf("%sround_%d_index_%d", mutationFailedOpenAnnotationPrefix, round, i)
				if err := p.d.failure(ctx, r, h, err, key); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// mutationAnnotation is upstream's value of the mutation audit annotation.
type mutationAnnotation struct {
	Configuration string `json:"configuration"`
	Webhook       string `json:"webhook"`
	Mutated       bool   `json:"mutated"`
}

// callOne calls one mutating webhook and applies its patch; it reports
// whether the object changed.
func (p *mutatingPlugin) callOne(ctx context.Context, h *hook, a *attributes, round, idx int) (changed bool, err error) {
	r := a.r
	defer func() {
		v, _ := json.Marshal(mutationAnnotation{Configuration: h.config, Webhook: h.name, Mutated: changed})
		r.AddAuditAnnotation(fmt.Sprintf("%sround_%d_index_%d", mutationAnnotationPrefix, round, idx), string(v))
	}()
	if err := a.prepare(); err != nil {
		return false, &callError{webhook: h.name, reason: fmt.Errorf("could not create admission objects: %w", err)}
	}
	resp, err := p.d.call(ctx, h, a, true)
	if err != nil {
		return false, err
	}
	record(r, h, resp)
	if !resp.Allowed {
		return false, denied(h.name, resp.Result)
	}
	if len(resp.Patch) == 0 {
		return false, nil
	}
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		return false, apierrors.NewInternalError(fmt.Errorf("decoding the patch of webhook %q: %w", h.name, err))
	}
	if len(patch) == 0 {
		return false, nil
	}
	if r.Object == nil {
		return false, apierrors.NewBadRequest(fmt.Sprintf("admission webhook %q attempted to modify the object, which is not supported for this operation", h.name))
	}
	if resp.PatchType != string(admissionv1.PatchTypeJSONPatch) {
		return false, &callError{webhook: h.name, reason: fmt.Errorf("unsupported patch type %q", resp.PatchType)}
	}
	patched, err := patch.Apply(a.obj)
	if err != nil {
		return false, apierrors.NewInternalError(fmt.Errorf("applying the patch of webhook %q: %w", h.name, err))
	}
	changed, err = replaceObject(r.Object, patched)
	if err != nil {
		return false, apierrors.NewInternalError(fmt.Errorf("decoding the object patched by webhook %q: %w", h.name, err))
	}
	if changed {
		a.obj = nil // encode again for the next webhook
	}
	return changed, nil
}

// replaceObject decodes data into a new object of obj's Go type and, when
// it differs from obj, copies it into obj in place (obj keeps its own
// apiVersion and kind). It reports whether obj changed.
func replaceObject(obj runtime.Object, data []byte) (bool, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		var content map[string]any
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, &content); err != nil {
			return false, err
		}
		if content == nil {
			return false, errors.New("the patched object is not a JSON object")
		}
		if equality.Semantic.DeepEqual(u.Object, content) {
			return false, nil
		}
		u.Object = content
		return true, nil
	}
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return false, fmt.Errorf("cannot patch an object of type %T", obj)
	}
	fresh := reflect.New(v.Elem().Type())
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, fresh.Interface()); err != nil {
		return false, err
	}
	newObj := fresh.Interface().(runtime.Object)
	newObj.GetObjectKind().SetGroupVersionKind(obj.GetObjectKind().GroupVersionKind())
	if equality.Semantic.DeepEqual(obj, newObj) {
		return false, nil
	}
	v.Elem().Set(fresh.Elem())
	return true, nil
}

// validatingPlugin is ValidatingAdmissionWebhook.
type validatingPlugin struct{ d *dispatcher }

var (
	_ admission.Validator       = (*validatingPlugin)(nil)
	_ admission.DeleteValidator = (*validatingPlugin)(nil)
)

// NewValidating returns the ValidatingAdmissionWebhook plugin over cfg.
// It is safe for concurrent use.
func NewValidating(cfg Config) admission.Validator {
	return &validatingPlugin{d: newDispatcher(cfg, ValidatingPluginName)}
}

func (p *validatingPlugin) Name() string { return ValidatingPluginName }

// ValidateDelete calls the validating webhooks that match a delete.
func (p *validatingPlugin) ValidateDelete(ctx context.Context, r *admission.Request) error {
	return p.Validate(ctx, r)
}

// AdmitConnect calls the validating webhooks whose rules name CONNECT, on
// the connect options (admission.ConnectAdmitter).
func (p *validatingPlugin) AdmitConnect(ctx context.Context, r *admission.Request) error {
	return p.Validate(ctx, r)
}

// Validate calls the matching validating webhooks in parallel. Their
// warnings and audit annotations are recorded in webhook order; the
// verdict is the first refusal in webhook order.
func (p *validatingPlugin) Validate(ctx context.Context, r *admission.Request) error {
	if p.d.cfg.Validating == nil || exempt(r) {
		return nil
	}
	hooks, err := p.d.hooks.validatingHooks(p.d.cfg.Validating)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if len(hooks) == 0 {
		return nil
	}
	m := p.d.matcher(r)
	var relevant []int
	for i, h := range hooks {
		ok, serr := m.matches(ctx, h)
		if serr != nil {
			return serr
		}
		if ok {
			relevant = append(relevant, i)
		}
	}
	if len(relevant) == 0 {
		return nil
	}
	if ctx.Err() != nil {
		return apierrors.NewTimeoutError("request did not complete within requested timeout", 0)
	}
	a := m.attributes()
	if err := a.prepare(); err != nil {
		return apierrors.NewInternalError(fmt.Errorf("encoding the admission request: %w", err))
	}
	type result struct {
		resp *response
		err  error
	}
	results := make([]result, len(relevant))
	var wg sync.WaitGroup
	for j, i := range relevant {
		wg.Go(func() {
			resp, err := p.d.call(ctx, hooks[i], a, false)
			if err == nil && !resp.Allowed {
				err = denied(hooks[i].name, resp.Result)
			}
			results[j] = result{resp: resp, err: err}
		})
	}
	wg.Wait()
	var first error
	for j, i := range relevant {
		h, res := hooks[i], results[j]
		record(r, h, res.resp)
		if res.err == nil {
			continue
		}
		// As upstream, the index is among the webhooks called.
		key := fmt.Sprintf("%sround_0_index_%d", validatingFailedOpenPrefix, j)
		err := p.d.failure(ctx, r, h, res.err, key)
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		} else {
			p.d.log.Debug("webhook also refused the request", "webhook", h.name, "err", err)
		}
	}
	return first
}
