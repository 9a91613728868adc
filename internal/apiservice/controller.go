package apiservice

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/helper"

	"github.com/skiff-dev/skiff/internal/controller/reconcile"
	"github.com/skiff-dev/skiff/internal/svcendpoints"
)

// Name is the component's name in logs and the work queue.
const Name = "apiservice-controller"

// AutomanagedLabel marks the APIServices this package registers; its value
// is "onstart" for built-in group versions and "true" for the others.
const AutomanagedLabel = "kube-aggregator.kubernetes.io/automanaged"

var (
	apiServicesGVR = apiregistrationv1.SchemeGroupVersion.WithResource("apiservices")
)

// registerKey is the work-queue key of the registration pass; no
// APIService name starts with a colon.
const registerKey = ":register"

const (
	// recheckRemote is how often an APIService naming a service is
	// checked again (upstream's availability controller: 30s).
	recheckRemote = 30 * time.Second
	// recheckUnavailable is sooner: an extension server that is starting
	// becomes available within seconds.
	recheckUnavailable = 5 * time.Second
	// crdSettle delays registration after a CRD changes (ServedChanged),
	// so that the API server serves (or stops serving) its versions first.
	crdSettle = 200 * time.Millisecond
)

// Config is what the controller reads and writes through.
type Config struct {
	// Dynamic writes APIServices.
	Dynamic dynamic.Interface
	// Served returns the group versions the API server serves itself (not
	// those of extension servers): the server's discovery handler's
	// LocalGroupVersions. Discovery through the API would list an extension
	// server's group until the aggregator drops it, and registration would
	// then make a local APIService for it.
	Served func() []schema.GroupVersion
	// Core reads the services and endpoint slices of remote APIServices.
	Core kubernetes.Interface
	// APIServices is the informer of APIServices (shared with the
	// aggregator); the caller starts it.
	APIServices informers.GenericInformer
	// Logger; nil discards.
	Logger *slog.Logger
}

// Controller keeps the APIServices (see package doc).
type Controller struct {
	cfg    Config
	log    *slog.Logger
	lister cache.GenericLister
	synced []cache.InformerSynced
	loop   *reconcile.Loop
	now    func() time.Time
}

// New returns the controller; Run runs it.
func New(cfg Config) *Controller {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{cfg: cfg, log: log.With("component", Name), now: time.Now}
	apis := cfg.APIServices
	c.lister = apis.Lister()
	c.synced = []cache.InformerSynced{apis.Informer().HasSynced}
	c.loop = reconcile.New(Name, c.sync, log)
	if _, err := apis.Informer().AddEventHandler(c.loop.Handler()); err != nil {
		c.log.Info("cannot add event handler", "err", err)
	}
	return c
}

// ServedChanged asks for a registration pass shortly: what the API server
// serves may have changed (a CRD was created, changed or deleted). It does
// not block.
func (c *Controller) ServedChanged() { c.loop.EnqueueAfter(registerKey, crdSettle) }

// Run registers and keeps the APIServices until ctx ends. It returns nil
// then, and an error only if its caches never sync.
func (c *Controller) Run(ctx context.Context) error {
	c.loop.Enqueue(registerKey)
	return c.loop.Run(ctx, 1, c.synced...)
}

func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	if key == registerKey {
		return 0, c.register(ctx)
	}
	return c.syncStatus(ctx, key)
}

// priority is an APIService's groupPriorityMinimum and versionPriority.
type priority struct{ group, version int32 }

// builtinPriorities are upstream kube-apiserver's priorities of the group
// versions skiff serves (controlplane's DefaultGenericAPIServicePriorities
// with kube-apiserver's additions).
var builtinPriorities = map[schema.GroupVersion]priority{
	{Group: "", Version: "v1"}:                             {18000, 1},
	{Group: "apps", Version: "v1"}:                         {17800, 15},
	{Group: "events.k8s.io", Version: "v1"}:                {17750, 15},
	{Group: "authentication.k8s.io", Version: "v1"}:        {17700, 15},
	{Group: "authorization.k8s.io", Version: "v1"}:         {17600, 15},
	{Group: "autoscaling", Version: "v1"}:                  {17500, 15},
	{Group: "autoscaling", Version: "v2"}:                  {17500, 30},
	{Group: "batch", Version: "v1"}:                        {17400, 15},
	{Group: "certificates.k8s.io", Version: "v1"}:          {17300, 15},
	{Group: "networking.k8s.io", Version: "v1"}:            {17200, 15},
	{Group: "policy", Version: "v1"}:                       {17100, 15},
	{Group: "rbac.authorization.k8s.io", Version: "v1"}:    {17000, 15},
	{Group: "storage.k8s.io", Version: "v1"}:               {16800, 15},
	{Group: "apiextensions.k8s.io", Version: "v1"}:         {16700, 15},
	{Group: "admissionregistration.k8s.io", Version: "v1"}: {16700, 15},
	{Group: "scheduling.k8s.io", Version: "v1"}:            {16600, 15},
	{Group: "coordination.k8s.io", Version: "v1"}:          {16500, 15},
	{Group: "node.k8s.io", Version: "v1"}:                  {16300, 15},
	{Group: "discovery.k8s.io", Version: "v1"}:             {16200, 15},
	{Group: "flowcontrol.apiserver.k8s.io", Version: "v1"}: {16100, 21},
	{Group: "apiregistration.k8s.io", Version: "v1"}:       {18000, 15},
}

// otherPriority is the priority of a served group version upstream has no
// entry for: a custom resource's (upstream's CRD registration uses it) or
// metrics.k8s.io.
var otherPriority = priority{1000, 100}

// desired is the local APIService of gv.
func desired(gv schema.GroupVersion) *apiregistrationv1.APIService {
	p, builtin := builtinPriorities[gv]
	label := "onstart"
	if !builtin {
		p, label = otherPriority, "true"
	}
	return &apiregistrationv1.APIService{
		TypeMeta: metav1.TypeMeta{APIVersion: apiregistrationv1.SchemeGroupVersion.String(), Kind: "APIService"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   gv.Version + "." + gv.Group,
			Labels: map[string]string{AutomanagedLabel: label},
		},
		Spec: apiregistrationv1.APIServiceSpec{
			Group:                gv.Group,
			Version:              gv.Version,
			GroupPriorityMinimum: p.group,
			VersionPriority:      p.version,
		},
	}
}

// register creates, updates and deletes the local automanaged APIServices
// so that there is one per group version the API server serves.
func (c *Controller) register(ctx context.Context) error {
	served := map[string]schema.GroupVersion{}
	for _, gv := range c.cfg.Served() {
		served[gv.Version+"."+gv.Group] = gv
	}
	existing := map[string]*apiregistrationv1.APIService{}
	objs, err := c.lister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing APIServices: %w", err)
	}
	for _, o := range objs {
		a, err := fromObject(o)
		if err != nil {
			return err
		}
		existing[a.Name] = a
	}
	var errs []error
	for name, gv := range served {
		want := desired(gv)
		have, ok := existing[name]
		switch {
		case !ok:
			if err := c.create(ctx, want); err != nil {
				errs = append(errs, err)
			}
		case have.Spec.Service != nil || have.Labels[AutomanagedLabel] == "":
			// The administrator's.
		case have.Spec.GroupPriorityMinimum != want.Spec.GroupPriorityMinimum ||
			have.Spec.VersionPriority != want.Spec.VersionPriority ||
			have.Labels[AutomanagedLabel] != want.Labels[AutomanagedLabel]:
			upd := have.DeepCopy()
			upd.Spec.GroupPriorityMinimum, upd.Spec.VersionPriority = want.Spec.GroupPriorityMinimum, want.Spec.VersionPriority
			upd.Labels[AutomanagedLabel] = want.Labels[AutomanagedLabel]
			if err := c.update(ctx, upd); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for name, have := range existing {
		if _, ok := served[name]; ok || have.Spec.Service != nil || have.Labels[AutomanagedLabel] == "" {
			continue
		}
		err := c.cfg.Dynamic.Resource(apiServicesGVR).Delete(ctx, name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &have.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("deleting APIService %s: %w", name, err))
			continue
		}
		c.log.Info("deleted APIService no longer served", "apiservice", name)
	}
	if len(errs) > 0 {
		return fmt.Errorf("registering APIServices: %v", errs)
	}
	return nil
}

func (c *Controller) create(ctx context.Context, a *apiregistrationv1.APIService) error {
	u, err := toUnstructured(a)
	if err != nil {
		return err
	}
	_, err = c.cfg.Dynamic.Resource(apiServicesGVR).Create(ctx, u, metav1.CreateOptions{FieldManager: Name})
	if apierrors.IsAlreadyExists(err) {
		return nil // the informer brings it; the next pass looks again
	}
	if err != nil {
		return fmt.Errorf("creating APIService %s: %w", a.Name, err)
	}
	c.log.Debug("registered APIService", "apiservice", a.Name)
	return nil
}

func (c *Controller) update(ctx context.Context, a *apiregistrationv1.APIService) error {
	u, err := toUnstructured(a)
	if err != nil {
		return err
	}
	_, err = c.cfg.Dynamic.Resource(apiServicesGVR).Update(ctx, u, metav1.UpdateOptions{FieldManager: Name})
	if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		return fmt.Errorf("updating APIService %s: %w", a.Name, err)
	}
	return nil
}

// syncStatus sets the Available condition of the APIService name.
func (c *Controller) syncStatus(ctx context.Context, name string) (time.Duration, error) {
	obj, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		// A local one of a served group version comes back.
		c.loop.Enqueue(registerKey)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	a, err := fromObject(obj)
	if err != nil {
		return 0, err
	}
	var cond apiregistrationv1.APIServiceCondition
	var requeue time.Duration
	if a.Spec.Service == nil {
		cond = condition(apiregistrationv1.ConditionTrue, "Local", "Local APIServices are always available")
	} else {
		cond, err = c.remoteCondition(ctx, a)
		if err != nil {
			return 0, err
		}
		requeue = recheckRemote
		if cond.Status != apiregistrationv1.ConditionTrue {
			requeue = recheckUnavailable
		}
	}
	if current := helper.GetAPIServiceConditionByType(a, apiregistrationv1.Available); current != nil &&
		current.Status == cond.Status && current.Reason == cond.Reason && current.Message == cond.Message {
		return requeue, nil
	} else if current != nil && current.Status == cond.Status {
		cond.LastTransitionTime = current.LastTransitionTime
	} else {
		cond.LastTransitionTime = metav1.NewTime(c.now())
	}
	upd := a.DeepCopy()
	helper.SetAPIServiceCondition(upd, cond)
	u, err := toUnstructured(upd)
	if err != nil {
		return 0, err
	}
	_, err = c.cfg.Dynamic.Resource(apiServicesGVR).UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: Name})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return 0, nil // the informer brings the newer state
	}
	if err != nil {
		return 0, fmt.Errorf("updating the status of APIService %s: %w", name, err)
	}
	return requeue, nil
}

// remoteCondition is the Available condition of an APIService naming a
// service, with upstream's reasons: ServiceNotFound, ServicePortError,
// MissingEndpoints, FailedDiscoveryCheck, or Passed.
func (c *Controller) remoteCondition(ctx context.Context, a *apiregistrationv1.APIService) (apiregistrationv1.APIServiceCondition, error) {
	svc := a.Spec.Service
	s, err := c.cfg.Core.CoreV1().Services(svc.Namespace).Get(ctx, svc.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return condition(apiregistrationv1.ConditionFalse, "ServiceNotFound",
			fmt.Sprintf("service/%s in %q is not present", svc.Name, svc.Namespace)), nil
	}
	if err != nil {
		return apiregistrationv1.APIServiceCondition{}, fmt.Errorf("reading service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	port := int32(443)
	if svc.Port != nil {
		port = *svc.Port
	}
	portName, found := svcendpoints.PortName(s, port)
	if !found && s.Spec.Type != "ExternalName" {
		return condition(apiregistrationv1.ConditionFalse, "ServicePortError",
			fmt.Sprintf("service/%s in %q is not listening on port %d", svc.Name, svc.Namespace, port)), nil
	}
	if s.Spec.Type != "ExternalName" {
		ready, err := c.hasReadyEndpoint(ctx, svc.Namespace, svc.Name, portName)
		if err != nil {
			return apiregistrationv1.APIServiceCondition{}, err
		}
		if !ready {
			return condition(apiregistrationv1.ConditionFalse, "MissingEndpoints",
				fmt.Sprintf("endpoints for service/%s in %q have no addresses with port name %q", svc.Name, svc.Namespace, portName)), nil
		}
	}
	// The API server proxies the group version there: its discovery
	// document answering through the proxy is the check upstream makes.
	gv := a.Spec.Group + "/" + a.Spec.Version
	if _, err := c.cfg.Core.Discovery().RESTClient().Get().AbsPath("/apis", a.Spec.Group, a.Spec.Version).DoRaw(ctx); err != nil {
		return condition(apiregistrationv1.ConditionFalse, "FailedDiscoveryCheck",
			fmt.Sprintf("failing or missing response from the extension server of %s: %v", gv, err)), nil
	}
	return condition(apiregistrationv1.ConditionTrue, "Passed", "all checks passed"), nil
}

// hasReadyEndpoint reports whether the service's endpoint slices have a
// ready endpoint with the named port.
func (c *Controller) hasReadyEndpoint(ctx context.Context, namespace, service, portName string) (bool, error) {
	slices, err := c.cfg.Core.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + service,
	})
	if err != nil {
		return false, fmt.Errorf("listing endpoint slices of service %s/%s: %w", namespace, service, err)
	}
	return len(svcendpoints.ReadyInList(slices, portName)) > 0, nil
}

func condition(status apiregistrationv1.ConditionStatus, reason, message string) apiregistrationv1.APIServiceCondition {
	return apiregistrationv1.APIServiceCondition{Type: apiregistrationv1.Available, Status: status, Reason: reason, Message: message}
}

func fromObject(obj runtime.Object) (*apiregistrationv1.APIService, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("reading APIService: unexpected %T", obj)
	}
	a := &apiregistrationv1.APIService{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, a); err != nil {
		return nil, fmt.Errorf("reading APIService %s: %w", u.GetName(), err)
	}
	return a, nil
}

func toUnstructured(a *apiregistrationv1.APIService) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(a)
	if err != nil {
		return nil, fmt.Errorf("encoding APIService %s: %w", a.Name, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(apiregistrationv1.SchemeGroupVersion.String())
	u.SetKind("APIService")
	return u, nil
}
