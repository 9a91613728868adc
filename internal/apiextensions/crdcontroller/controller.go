package crdcontroller

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/typed/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/client/informers/externalversions"
	crdinformers "k8s.io/apiextensions-apiserver/pkg/client/informers/externalversions/apiextensions/v1"
	crdlisters "k8s.io/apiextensions-apiserver/pkg/client/listers/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/transport"

	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// Name is the controller's name in logs and work queues.
const Name = "crd-controller"

// Run runs the controller until ctx is done, talking to the API server
// through cfg (as the admin; JSON, since CRDs and custom resources have no
// protobuf encoding in skiff). It returns nil on cancellation.
//
// onChange, when not nil, is called (from the informer's goroutine, so it
// must not block) after every CRD event: the API server serves what CRDs
// define, so components that follow what is served (APIService
// registration) learn of changes without a CRD informer of their own.
func Run(ctx context.Context, cfg *rest.Config, log *slog.Logger, onChange func()) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	jsonCfg := rest.CopyConfig(cfg)
	jsonCfg.ContentType = "application/json"
	jsonCfg.AcceptContentTypes = "application/json"
	cs, err := clientset.NewForConfig(jsonCfg)
	if err != nil {
		return fmt.Errorf("crd controller: building the CRD client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(jsonCfg)
	if err != nil {
		return fmt.Errorf("crd controller: building the dynamic client: %w", err)
	}
	factory := externalversions.NewSharedInformerFactory(cs, 0)
	crds := factory.Apiextensions().V1().CustomResourceDefinitions()
	c := newController(cs.ApiextensionsV1().CustomResourceDefinitions(), dyn,
		servedByList(cs.Discovery().RESTClient()), crds, log)
	if onChange != nil {
		if _, err := crds.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { onChange() },
			UpdateFunc: func(any, any) { onChange() },
			DeleteFunc: func(any) { onChange() },
		}); err != nil {
			return fmt.Errorf("crd controller: %w", err)
		}
	}
	factory.StartWithContext(ctx)
	defer factory.Shutdown()
	return c.run(ctx)
}

// servedFunc reports whether the API server serves gvr (a list of it is
// not 404).
type servedFunc func(ctx context.Context, gvr schema.GroupVersionResource) (bool, error)

// servedByList asks the API server for one item of the resource: GET
// /apis/<group>/<version>/<plural>?limit=1 (all namespaces for a
// namespaced resource).
func servedByList(client rest.Interface) servedFunc {
	return func(ctx context.Context, gvr schema.GroupVersionResource) (bool, error) {
		err := client.Get().AbsPath("/apis", gvr.Group, gvr.Version, gvr.Resource).Param("limit", "1").Do(ctx).Error()
		switch {
		case err == nil:
			return true, nil
		case apierrors.IsNotFound(err):
			return false, nil
		default:
			return false, fmt.Errorf("listing %s: %w", gvr, err)
		}
	}
}

// controller holds two reconcile loops over one CRD informer: names (names
// and Established; one worker, since name acceptance must see its own
// writes in order) and cleanup (the finalizer), so that a long cleanup never
// holds back a new CRD.
type controller struct {
	crds    apiextensionsclient.CustomResourceDefinitionInterface
	dynamic dynamic.Interface
	served  servedFunc
	lister  crdlisters.CustomResourceDefinitionLister
	synced  cache.InformerSynced
	written *writeCache
	probing *probeStarts
	names   *reconcile.Loop
	cleanup *reconcile.Loop
	log     *slog.Logger
	now     func() time.Time
}

func newController(crds apiextensionsclient.CustomResourceDefinitionInterface, dyn dynamic.Interface, served servedFunc,
	inf crdinformers.CustomResourceDefinitionInformer, log *slog.Logger) *controller {
	c := &controller{
		crds:    crds,
		dynamic: dyn,
		served:  served,
		lister:  inf.Lister(),
		synced:  inf.Informer().HasSynced,
		written: &writeCache{m: map[string]*apiextensionsv1.CustomResourceDefinition{}},
		probing: &probeStarts{m: map[string]probeStart{}},
		log:     log.With("controller", Name),
		now:     time.Now,
	}
	c.names = reconcile.New(Name+"-names", c.syncNames, log)
	c.cleanup = reconcile.New(Name+"-cleanup", c.syncCleanup, log)
	for _, loop := range []*reconcile.Loop{c.names, c.cleanup} {
		if _, err := inf.Informer().AddEventHandler(loop.Handler()); err != nil {
			c.log.Info("cannot add event handler", "err", err)
		}
	}
	return c
}

// run waits for the informer and runs both loops until ctx is done.
func (c *controller) run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.names.Run(ctx, 1, c.synced) })
	g.Go(func() error { return c.cleanup.Run(ctx, 2, c.synced) })
	return g.Wait()
}

// get returns the CRD named name: the informer's copy, or the one this
// controller last wrote when the informer has not caught up with it yet.
// The result is shared: copy before changing it.
func (c *controller) get(name string) (*apiextensionsv1.CustomResourceDefinition, error) {
	crd, err := c.lister.Get(name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			c.written.forget(name)
		}
		return nil, err
	}
	return c.written.freshest(crd), nil
}

// groupCRDs returns every CRD of group (freshest copies).
func (c *controller) groupCRDs(group string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	all, err := c.lister.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing CRDs: %w", err)
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, crd := range all {
		if crd.Spec.Group == group {
			out = append(out, c.written.freshest(crd))
		}
	}
	return out, nil
}

// requeueGroup queues the names of every other CRD of name's group (name
// is "<plural>.<group>"): a name it released or took may change theirs.
func (c *controller) requeueGroup(name string) {
	_, group, ok := strings.Cut(name, ".")
	if !ok {
		return
	}
	all, err := c.lister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, crd := range all {
		if crd.Spec.Group == group && crd.Name != name {
			c.names.Enqueue(crd.Name)
		}
	}
}

// updateStatus writes crd's status and remembers the result.
func (c *controller) updateStatus(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition) (*apiextensionsv1.CustomResourceDefinition, error) {
	out, err := c.crds.UpdateStatus(ctx, crd, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating status of CRD %s: %w", crd.Name, err)
	}
	c.written.put(out)
	return out, nil
}

// syncNames accepts crd's names and then establishes it. Level-triggered
// and idempotent: it writes only what differs.
func (c *controller) syncNames(ctx context.Context, name string) (time.Duration, error) {
	crd, err := c.get(name)
	if apierrors.IsNotFound(err) {
		// Its names are free now.
		c.probing.done(name)
		c.requeueGroup(name)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting CRD %s: %w", name, err)
	}

	if !namesEqual(crd.Spec.Names, crd.Status.AcceptedNames) {
		group, err := c.groupCRDs(crd.Spec.Group)
		if err != nil {
			return 0, err
		}
		names, accepted, established := acceptNames(crd, group)
		if !namesEqual(names, crd.Status.AcceptedNames) || !conditionEquivalent(accepted, findCondition(crd, apiextensionsv1.NamesAccepted)) {
			upd := crd.DeepCopy()
			upd.Status.AcceptedNames = names
			now := c.now()
			setCondition(upd, accepted, now)
			setCondition(upd, established, now)
			if _, err := c.updateStatus(ctx, upd); err != nil {
				if apierrors.IsNotFound(err) {
					return 0, nil
				}
				return 0, err // a conflict: retried, and the event queues it too
			}
			c.log.Info("names", "crd", name, "namesAccepted", accepted.Status, "reason", accepted.Reason)
			c.requeueGroup(name)
			return 0, nil
		}
	}
	return c.establish(ctx, crd)
}

// establish sets Established=True once the names are accepted and the API
// server serves the resource; until it does, it asks again after a short
// back-off growing with the time since it first asked.
func (c *controller) establish(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition) (time.Duration, error) {
	accepted := findCondition(crd, apiextensionsv1.NamesAccepted)
	if accepted == nil || accepted.Status != apiextensionsv1.ConditionTrue || conditionTrue(crd, apiextensionsv1.Established) {
		return 0, nil
	}
	cond := apiextensionsv1.CustomResourceDefinitionCondition{
		Type:    apiextensionsv1.Established,
		Status:  apiextensionsv1.ConditionTrue,
		Reason:  "InitialNamesAccepted",
		Message: "the initial names have been accepted",
	}
	if invalidCABundle(crd) {
		cond = apiextensionsv1.CustomResourceDefinitionCondition{
			Type:    apiextensionsv1.Established,
			Status:  apiextensionsv1.ConditionFalse,
			Reason:  "InvalidCABundle",
			Message: "The conversion webhook CABundle is invalid",
		}
	} else if gvr, ok := servedGVR(crd); ok {
		served, err := c.served(ctx, gvr)
		if err != nil {
			return 0, err
		}
		if !served {
			return establishBackoff(c.now().Sub(c.probing.since(crd, c.now()))), nil
		}
	}
	c.probing.done(crd.Name)
	if conditionEquivalent(cond, findCondition(crd, apiextensionsv1.Established)) {
		return 0, nil
	}
	upd := crd.DeepCopy()
	setCondition(upd, cond, c.now())
	if _, err := c.updateStatus(ctx, upd); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		return 0, err
	}
	c.log.Info("established", "crd", crd.Name, "status", cond.Status, "reason", cond.Reason)
	return 0, nil
}

// establishBackoff is the wait before asking the API server again whether
// it serves a CRD, first asked about waited ago: 10 ms at first, growing
// by an eighth of the wait, to at most 1 s.
func establishBackoff(waited time.Duration) time.Duration {
	return min(max(waited/8, 10*time.Millisecond), time.Second)
}

// invalidCABundle reports whether crd's conversion webhook has a CA bundle
// that does not parse (upstream does not establish such a CRD).
func invalidCABundle(crd *apiextensionsv1.CustomResourceDefinition) bool {
	conv := crd.Spec.Conversion
	if conv == nil || conv.Webhook == nil || conv.Webhook.ClientConfig == nil {
		return false
	}
	_, err := transport.TLSConfigFor(&transport.Config{TLS: transport.TLSConfig{CAData: conv.Webhook.ClientConfig.CABundle}})
	return err != nil
}

// servedGVR returns the resource through which crd's objects are read: its
// storage version when that is served, else its first served version (all
// versions share one storage). ok is false when no version is served.
func servedGVR(crd *apiextensionsv1.CustomResourceDefinition) (schema.GroupVersionResource, bool) {
	version := ""
	for _, v := range crd.Spec.Versions {
		if v.Served && (version == "" || v.Storage) {
			version = v.Name
		}
	}
	if version == "" {
		return schema.GroupVersionResource{}, false
	}
	return schema.GroupVersionResource{Group: crd.Spec.Group, Version: version, Resource: crd.Spec.Names.Plural}, true
}

// namesEqual compares two name sets (nil and empty lists alike).
func namesEqual(a, b apiextensionsv1.CustomResourceDefinitionNames) bool {
	return a.Plural == b.Plural && a.Singular == b.Singular && a.Kind == b.Kind && a.ListKind == b.ListKind &&
		slices.Equal(a.ShortNames, b.ShortNames) && slices.Equal(a.Categories, b.Categories)
}

// --- Conditions -------------------------------------------------------------

// findCondition returns crd's condition of type t, or nil.
func findCondition(crd *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType) *apiextensionsv1.CustomResourceDefinitionCondition {
	for i := range crd.Status.Conditions {
		if crd.Status.Conditions[i].Type == t {
			return &crd.Status.Conditions[i]
		}
	}
	return nil
}

// conditionTrue reports whether crd has condition t with status True.
func conditionTrue(crd *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType) bool {
	c := findCondition(crd, t)
	return c != nil && c.Status == apiextensionsv1.ConditionTrue
}

// conditionEquivalent reports whether have (maybe nil) says what want
// says: type, status, reason and message (times aside).
func conditionEquivalent(want apiextensionsv1.CustomResourceDefinitionCondition, have *apiextensionsv1.CustomResourceDefinitionCondition) bool {
	return have != nil && have.Type == want.Type && have.Status == want.Status && have.Reason == want.Reason && have.Message == want.Message
}

// setCondition adds or replaces crd's condition of c's type, as upstream's
// SetCRDCondition: the transition time moves only when the status changes.
// It reports whether anything but times changed.
func setCondition(crd *apiextensionsv1.CustomResourceDefinition, c apiextensionsv1.CustomResourceDefinitionCondition, now time.Time) bool {
	c.LastTransitionTime = metav1.NewTime(now)
	old := findCondition(crd, c.Type)
	if old == nil {
		crd.Status.Conditions = append(crd.Status.Conditions, c)
		return true
	}
	changed := !conditionEquivalent(c, old)
	if old.Status == c.Status && !old.LastTransitionTime.IsZero() {
		c.LastTransitionTime = old.LastTransitionTime
	}
	c.ObservedGeneration = old.ObservedGeneration
	*old = c
	return changed
}

// probeStarts remembers when the controller first asked whether a CRD is
// served, for the back-off between questions.
type probeStarts struct {
	mu sync.Mutex
	m  map[string]probeStart // by CRD name; guarded by mu
}

type probeStart struct {
	uid   types.UID
	first time.Time
}

// since returns when crd was first probed, recording now if it was not.
func (p *probeStarts) since(crd *apiextensionsv1.CustomResourceDefinition, now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.m[crd.Name]
	if !ok || s.uid != crd.UID {
		s = probeStart{uid: crd.UID, first: now}
		p.m[crd.Name] = s
	}
	return s.first
}

// done forgets the CRD named name.
func (p *probeStarts) done(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, name)
}

// --- Own writes ---------------------------------------------------------------

// writeCache remembers the CRDs this controller wrote until the informer
// has caught up with them, so that name acceptance sees its own last
// decision (upstream uses a mutation cache for the same reason).
type writeCache struct {
	mu sync.Mutex
	m  map[string]*apiextensionsv1.CustomResourceDefinition // guarded by mu
}

func (w *writeCache) put(crd *apiextensionsv1.CustomResourceDefinition) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.m[crd.Name] = crd
}

func (w *writeCache) forget(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, name)
}

// freshest returns cached, or the written copy when it is newer (a higher
// resourceVersion of the same object); a written copy the cache has caught
// up with is dropped.
func (w *writeCache) freshest(cached *apiextensionsv1.CustomResourceDefinition) *apiextensionsv1.CustomResourceDefinition {
	w.mu.Lock()
	defer w.mu.Unlock()
	mine, ok := w.m[cached.Name]
	if !ok {
		return cached
	}
	cachedRV, err1 := strconv.ParseUint(cached.ResourceVersion, 10, 64)
	mineRV, err2 := strconv.ParseUint(mine.ResourceVersion, 10, 64)
	if err1 != nil || err2 != nil || mine.UID != cached.UID || cachedRV >= mineRV {
		delete(w.m, cached.Name)
		return cached
	}
	return mine
}
