package webhook

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	admissionregistrationv1listers "k8s.io/client-go/listers/admissionregistration/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	discoveryv1listers "k8s.io/client-go/listers/discovery/v1"
)

// Plugin names, as upstream's.
const (
	MutatingPluginName   = "MutatingAdmissionWebhook"
	ValidatingPluginName = "ValidatingAdmissionWebhook"
)

// defaultTimeout is upstream's default timeoutSeconds (10).
const defaultTimeout = 10 * time.Second

// Config is what the plugins read, all from informers of the caller's
// factory (the caller starts it) plus, optionally, a client for cache
// misses. A nil configuration lister means no webhooks of that kind.
type Config struct {
	Validating admissionregistrationv1listers.ValidatingWebhookConfigurationLister
	Mutating   admissionregistrationv1listers.MutatingWebhookConfigurationLister
	Namespaces corev1listers.NamespaceLister          // namespaceSelector
	Services   corev1listers.ServiceLister            // service references
	Slices     discoveryv1listers.EndpointSliceLister // service → ready endpoint
	// Client, when not nil, reads a namespace the Namespaces cache does
	// not have yet (as upstream does); nil means a cache miss is NotFound.
	Client kubernetes.Interface
	Logger *slog.Logger
}

// hook is one webhook of a configuration, with its defaults applied and
// its selectors parsed. It is immutable once built.
type hook struct {
	config string // configuration name
	name   string
	uid    string // "<config>/<name>/<index>", unique in a snapshot

	rules        []admissionregistrationv1.RuleWithOperations
	nsSelector   labels.Selector
	objSelector  labels.Selector
	selectorErr  error                                   // a selector that does not parse (refuses matching requests)
	failOpen     bool                                    // failurePolicy Ignore
	sideEffects  admissionregistrationv1.SideEffectClass // "" when unset
	timeout      time.Duration
	versions     []string // admissionReviewVersions
	clientConfig admissionregistrationv1.WebhookClientConfig
	conditions   []*matchCondition // matchConditions, compiled; nil without

	reinvoke bool // mutating: reinvocationPolicy IfNeeded
}

// compileCommon fills a hook from the fields both webhook kinds share.
func compileCommon(config string, index int, name string, rules []admissionregistrationv1.RuleWithOperations,
	nsSel, objSel *metav1.LabelSelector, fp *admissionregistrationv1.FailurePolicyType,
	se *admissionregistrationv1.SideEffectClass, timeout *int32, versions []string,
	cc admissionregistrationv1.WebhookClientConfig, conditions []admissionregistrationv1.MatchCondition) *hook {
	h := &hook{
		config:       config,
		name:         name,
		uid:          fmt.Sprintf("%s/%s/%d", config, name, index),
		rules:        rules,
		failOpen:     fp != nil && *fp == admissionregistrationv1.Ignore,
		timeout:      defaultTimeout,
		versions:     versions,
		clientConfig: cc,
		conditions:   compileConditions(conditions),
	}
	if se != nil {
		h.sideEffects = *se
	}
	if timeout != nil && *timeout > 0 {
		h.timeout = time.Duration(*timeout) * time.Second
	}
	var err error
	if h.nsSelector, err = parseSelector(nsSel); err != nil {
		h.selectorErr = fmt.Errorf("parsing namespaceSelector of webhook %q: %w", name, err)
	}
	if h.objSelector, err = parseSelector(objSel); err != nil && h.selectorErr == nil {
		h.selectorErr = fmt.Errorf("parsing objectSelector of webhook %q: %w", name, err)
	}
	return h
}

// parseSelector is metav1.LabelSelectorAsSelector with upstream's default
// for an unset selector ({}: everything).
func parseSelector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return labels.Everything(), nil
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return labels.Nothing(), err
	}
	return sel, nil
}

func compileMutating(c *admissionregistrationv1.MutatingWebhookConfiguration) []*hook {
	hooks := make([]*hook, 0, len(c.Webhooks))
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		h := compileCommon(c.Name, i, w.Name, w.Rules, w.NamespaceSelector, w.ObjectSelector, w.FailurePolicy,
			w.SideEffects, w.TimeoutSeconds, w.AdmissionReviewVersions, w.ClientConfig, w.MatchConditions)
		h.reinvoke = w.ReinvocationPolicy != nil && *w.ReinvocationPolicy == admissionregistrationv1.IfNeededReinvocationPolicy
		hooks = append(hooks, h)
	}
	return hooks
}

func compileValidating(c *admissionregistrationv1.ValidatingWebhookConfiguration) []*hook {
	hooks := make([]*hook, 0, len(c.Webhooks))
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		hooks = append(hooks, compileCommon(c.Name, i, w.Name, w.Rules, w.NamespaceSelector, w.ObjectSelector,
			w.FailurePolicy, w.SideEffects, w.TimeoutSeconds, w.AdmissionReviewVersions, w.ClientConfig, w.MatchConditions))
	}
	return hooks
}

// configID identifies one version of a configuration.
type configID struct {
	name            string
	uid             types.UID
	resourceVersion string
}

// hookCache memoizes the compiled hooks, so a write neither reparses
// selectors nor rebuilds the hook list while the configurations are
// unchanged. Configurations without a resourceVersion are always
// recompiled. Safe for concurrent use.
type hookCache struct {
	mu       sync.Mutex
	ids      []configID           // the last snapshot's configurations, by name; guarded by mu
	hooks    []*hook              // the last snapshot's hooks, never changed once built; guarded by mu
	byConfig map[configID][]*hook // each configuration's hooks in the last snapshot; guarded by mu
}

// snapshot returns the hooks of configs in upstream's order:
// configurations by name (configs is sorted in place), then their
// webhooks in order. The result must not be changed.
func snapshot[T metav1.Object](c *hookCache, configs []T, compile func(T) []*hook) []*hook {
	if len(configs) == 0 {
		return nil
	}
	slices.SortFunc(configs, func(a, b T) int { return strings.Compare(a.GetName(), b.GetName()) })
	c.mu.Lock()
	defer c.mu.Unlock()
	if unchangedLocked(c, configs) {
		return c.hooks
	}
	ids := make([]configID, len(configs))
	byConfig := make(map[configID][]*hook, len(configs))
	var hooks []*hook
	for i, cfg := range configs {
		id := configID{name: cfg.GetName(), uid: cfg.GetUID(), resourceVersion: cfg.GetResourceVersion()}
		ids[i] = id
		hs, ok := c.byConfig[id]
		if !ok || id.resourceVersion == "" {
			hs = compile(cfg)
		}
		byConfig[id] = hs
		hooks = append(hooks, hs...)
	}
	c.ids, c.hooks, c.byConfig = ids, hooks, byConfig
	return hooks
}

// unchangedLocked reports whether configs (sorted) are c's last
// snapshot. c.mu must be held.
func unchangedLocked[T metav1.Object](c *hookCache, configs []T) bool {
	if len(configs) != len(c.ids) {
		return false
	}
	for i, cfg := range configs {
		id := c.ids[i]
		if id.resourceVersion == "" || id.name != cfg.GetName() || id.uid != cfg.GetUID() || id.resourceVersion != cfg.GetResourceVersion() {
			return false
		}
	}
	return true
}

// mutatingHooks lists the mutating webhooks in upstream's order.
func (c *hookCache) mutatingHooks(l admissionregistrationv1listers.MutatingWebhookConfigurationLister) ([]*hook, error) {
	if l == nil {
		return nil, nil
	}
	configs, err := l.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing mutating webhook configurations: %w", err)
	}
	return snapshot(c, configs, compileMutating), nil
}

// validatingHooks lists the validating webhooks in upstream's order.
func (c *hookCache) validatingHooks(l admissionregistrationv1listers.ValidatingWebhookConfigurationLister) ([]*hook, error) {
	if l == nil {
		return nil, nil
	}
	configs, err := l.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing validating webhook configurations: %w", err)
	}
	return snapshot(c, configs, compileValidating), nil
}
