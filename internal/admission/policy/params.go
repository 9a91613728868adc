package policy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
)

// ParamSource finds parameter objects (as unstructured) of a paramKind.
// The objects returned may be shared (from a cache): callers never change
// them. Implementations are safe for concurrent use.
type ParamSource interface {
	// Get returns the object; an error for which apierrors.IsNotFound
	// holds when there is none. namespace is "" for a cluster-scoped kind.
	Get(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, error)
	// List returns the objects of namespace ("" for a cluster-scoped
	// kind) that sel selects.
	List(ctx context.Context, gvk schema.GroupVersionKind, namespace string, sel labels.Selector) ([]*unstructured.Unstructured, error)
}

// ParamScoper is an optional ability of a ParamSource (NewDynamicParams's
// has it): whether a kind is namespaced. With it, params are found with
// upstream's rules (a namespaced kind's paramRef.namespace or else the
// request's namespace, an error for a cluster-scoped request; no
// paramRef.namespace for a cluster-scoped kind). Without it, the kind is
// taken as namespaced when paramRef.namespace or the request's namespace
// is set, cluster-scoped otherwise. An error for which meta.IsNoMatchError
// holds is upstream's configuration error of the policy.
type ParamScoper interface {
	Namespaced(ctx context.Context, gvk schema.GroupVersionKind) (bool, error)
}

// errParamNotFoundDeny is upstream's error for a binding with
// parameterNotFoundAction Deny that finds no params.
var errParamNotFoundDeny = errors.New("no params found for policy binding with `Deny` parameterNotFoundAction")

// paramError is an error of collecting params: of the binding, or (when
// policy is set) of the policy's paramKind.
type paramError struct {
	err    error
	policy bool
}

// collectParams returns the params c is evaluated with for binding b, as
// upstream's CollectParams: [null] without paramKind or paramRef; the
// object named (none when it does not exist) or every object selected;
// an error when none is found and parameterNotFoundAction is Deny.
func (s *requestState) collectParams(ctx context.Context, c *compiledPolicy, b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) ([]ref.Val, *paramError) {
	pr := b.Spec.ParamRef
	if c.paramGVK == nil || pr == nil {
		return []ref.Val{types.NullValue}, nil
	}
	src := s.p.cfg.Params
	if src == nil {
		return nil, &paramError{err: fmt.Errorf("paramKind kind `%v` not known", c.paramKind.String())}
	}
	gvk := *c.paramGVK
	namespaced := pr.Namespace != "" || s.r.Namespace != ""
	if sc, ok := src.(ParamScoper); ok {
		var err error
		if namespaced, err = sc.Namespaced(ctx, gvk); err != nil {
			if meta.IsNoMatchError(err) {
				return nil, &paramError{err: fmt.Errorf("failed to find resource referenced by paramKind: '%v'", gvk), policy: true}
			}
			return nil, &paramError{err: err}
		}
	}
	ns := ""
	if namespaced {
		ns = pr.Namespace
		if ns == "" {
			ns = s.r.Namespace
		}
		if ns == "" {
			return nil, &paramError{err: errors.New("cannot use namespaced paramRef in policy binding that matches cluster-scoped resources")}
		}
	} else if pr.Namespace != "" {
		return nil, &paramError{err: errors.New("paramRef.namespace must not be provided for a cluster-scoped `paramKind`")}
	}

	var objs []*unstructured.Unstructured
	switch {
	case pr.Name != "":
		if pr.Selector != nil {
			return nil, &paramError{err: errors.New("paramRef.name and paramRef.selector are mutually exclusive")}
		}
		u, err := src.Get(ctx, gvk, ns, pr.Name)
		switch {
		case err == nil:
			objs = []*unstructured.Unstructured{u}
		case apierrors.IsNotFound(err):
		default:
			return nil, &paramError{err: err}
		}
	case pr.Selector != nil:
		sel, err := metav1.LabelSelectorAsSelector(pr.Selector)
		if err != nil {
			return nil, &paramError{err: err}
		}
		if objs, err = src.List(ctx, gvk, ns, sel); err != nil {
			return nil, &paramError{err: err}
		}
	default:
		return nil, &paramError{err: errors.New("one of name or selector must be provided")}
	}
	if len(objs) == 0 {
		if pr.ParameterNotFoundAction != nil && *pr.ParameterNotFoundAction == admissionregistrationv1.DenyAction {
			return nil, &paramError{err: errParamNotFoundDeny}
		}
		return nil, nil
	}
	vals := make([]ref.Val, len(objs))
	for i, u := range objs {
		vals[i] = paramValue(u, c.paramKind)
	}
	return vals, nil
}

// paramValue is a param as CEL sees it, with apiVersion and kind (the
// paramKind's when it carries none).
func paramValue(u *unstructured.Unstructured, pk *admissionregistrationv1.ParamKind) ref.Val {
	m := u.Object
	if _, ok := m["kind"]; !ok {
		c := make(map[string]any, len(m)+2)
		for k, v := range m {
			c[k] = v
		}
		c["apiVersion"], c["kind"] = pk.APIVersion, pk.Kind
		m = c
	}
	return types.DefaultTypeAdapter.NativeToValue(m)
}

// syncTimeout bounds the wait for a param informer's first list.
const syncTimeout = 10 * time.Second

// resetInterval is the least time between two discovery refreshes on
// kinds that are not found.
const resetInterval = time.Second

// dynamicParams is NewDynamicParams's ParamSource.
type dynamicParams struct {
	ctx    context.Context // stops the informers
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper

	mu        sync.Mutex
	informers map[schema.GroupVersionResource]informers.GenericInformer // guarded by mu
	lastReset time.Time                                                 // guarded by mu
}

var (
	_ ParamSource = (*dynamicParams)(nil)
	_ ParamScoper = (*dynamicParams)(nil)
)

// NewDynamicParams returns a ParamSource over a dynamic client and a
// discovery-based RESTMapper (refreshed, at most once a second, when a
// kind is not found), caching one informer per paramKind it is asked for:
// started on first use, stopped when ctx ends. Get and List wait for the
// informer's first list (bounded by their ctx and 10s); Get falls back to
// a live read on a cache miss, as upstream does, so that a param created
// just before the request is found. Informers of kinds no longer used are
// kept until ctx ends.
func NewDynamicParams(ctx context.Context, dyn dynamic.Interface, disc discovery.DiscoveryInterface) ParamSource {
	return &dynamicParams{
		ctx:       ctx,
		dyn:       dyn,
		mapper:    restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
		informers: map[schema.GroupVersionResource]informers.GenericInformer{},
	}
}

func (d *dynamicParams) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil && meta.IsNoMatchError(err) {
		d.mu.Lock()
		reset := time.Since(d.lastReset) >= resetInterval
		if reset {
			d.lastReset = time.Now()
		}
		d.mu.Unlock()
		if reset {
			d.mapper.Reset()
			m, err = d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("mapping %v: %w", gvk, err)
	}
	return m, nil
}

func (d *dynamicParams) Namespaced(_ context.Context, gvk schema.GroupVersionKind) (bool, error) {
	m, err := d.mapping(gvk)
	if err != nil {
		return false, err
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// informer returns gvk's synced informer, starting it on first use.
func (d *dynamicParams) informer(ctx context.Context, gvk schema.GroupVersionKind) (informers.GenericInformer, *meta.RESTMapping, error) {
	m, err := d.mapping(gvk)
	if err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	inf, ok := d.informers[m.Resource]
	if !ok {
		inf = dynamicinformer.NewFilteredDynamicInformer(d.dyn, m.Resource, metav1.NamespaceAll, 0,
			cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}, nil)
		d.informers[m.Resource] = inf
		go inf.Informer().RunWithContext(d.ctx)
	}
	d.mu.Unlock()
	if inf.Informer().HasSynced() {
		return inf, m, nil
	}
	wctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	err = wait.PollUntilContextCancel(wctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
		return inf.Informer().HasSynced(), nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("paramKind kind `%v` not yet synced to use for admission", gvk)
	}
	return inf, m, nil
}

func (d *dynamicParams) Get(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, error) {
	inf, m, err := d.informer(ctx, gvk)
	if err != nil {
		return nil, err
	}
	var obj any
	if namespace != "" {
		obj, err = inf.Lister().ByNamespace(namespace).Get(name)
	} else {
		obj, err = inf.Lister().Get(name)
	}
	if apierrors.IsNotFound(err) {
		var res dynamic.ResourceInterface = d.dyn.Resource(m.Resource)
		if namespace != "" {
			res = d.dyn.Resource(m.Resource).Namespace(namespace)
		}
		return res.Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("reading param %s/%s: %w", namespace, name, err)
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("reading param %s/%s: unexpected type %T", namespace, name, obj)
	}
	return u, nil
}

func (d *dynamicParams) List(ctx context.Context, gvk schema.GroupVersionKind, namespace string, sel labels.Selector) ([]*unstructured.Unstructured, error) {
	inf, _, err := d.informer(ctx, gvk)
	if err != nil {
		return nil, err
	}
	var objs []any
	if namespace != "" {
		list, lerr := inf.Lister().ByNamespace(namespace).List(sel)
		for _, o := range list {
			objs = append(objs, o)
		}
		err = lerr
	} else {
		list, lerr := inf.Lister().List(sel)
		for _, o := range list {
			objs = append(objs, o)
		}
		err = lerr
	}
	if err != nil {
		return nil, fmt.Errorf("listing params of %v: %w", gvk, err)
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	return out, nil
}
