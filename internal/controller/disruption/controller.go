package disruption

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
	"github.com/skiff-dev/skiff/internal/nsindex"
)

// Mapper resolves a controller's kind to its resource.
type Mapper interface {
	RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error)
}

// Controller is the PodDisruptionBudget status controller.
type Controller struct {
	// Scales and Mapper, when both set, find the scale of pods'
	// controllers other than ReplicaSets, Deployments, StatefulSets and
	// ReplicationControllers. Set them before Run.
	Scales scale.ScalesGetter
	Mapper Mapper

	client      kubernetes.Interface
	pdbs        policylisters.PodDisruptionBudgetLister
	pdbIndex    cache.Indexer // the budgets' cache, listed by namespace (pdbsOf)
	pods        corelisters.PodLister
	rss         appslisters.ReplicaSetLister
	deployments appslisters.DeploymentLister
	sets        appslisters.StatefulSetLister
	rcs         corelisters.ReplicationControllerLister
	synced      []cache.InformerSynced
	recorder    record.EventRecorder
	now         func() time.Time
	loop        *reconcile.Loop
}

// New returns the controller with its informers registered on
// deps.Informers.
func New(deps controller.Deps) *Controller {
	logger := deps.Log()
	f := deps.Informers
	pdbInformer := f.Policy().V1().PodDisruptionBudgets()
	podInformer := f.Core().V1().Pods()
	rsInformer := f.Apps().V1().ReplicaSets()
	dInformer := f.Apps().V1().Deployments()
	ssInformer := f.Apps().V1().StatefulSets()
	rcInformer := f.Core().V1().ReplicationControllers()
	c := &Controller{
		client:      deps.Client,
		pdbs:        pdbInformer.Lister(),
		pdbIndex:    pdbInformer.Informer().GetIndexer(),
		pods:        podInformer.Lister(),
		rss:         rsInformer.Lister(),
		deployments: dInformer.Lister(),
		sets:        ssInformer.Lister(),
		rcs:         rcInformer.Lister(),
		recorder:    deps.Recorder,
		now:         deps.Clock(),
		synced: []cache.InformerSynced{
			pdbInformer.Informer().HasSynced, podInformer.Informer().HasSynced,
			rsInformer.Informer().HasSynced, dInformer.Informer().HasSynced,
			ssInformer.Informer().HasSynced, rcInformer.Informer().HasSynced,
		},
	}
	c.loop = reconcile.New("disruption", c.sync, logger)
	pdbInformer.Informer().AddEventHandler(c.loop.Handler())
	podInformer.Informer().AddEventHandler(c.loop.HandlerFor(c.pdbsOf))
	return c
}

// NewForConfig returns New(deps) with a scale client and a discovery
// RESTMapper built from cfg, for pods controlled by other kinds.
func NewForConfig(deps controller.Deps, cfg *rest.Config) (*Controller, error) {
	c := New(deps)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(deps.Client.Discovery()))
	scales, err := scale.NewForConfig(rest.CopyConfig(cfg), mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(deps.Client.Discovery()))
	if err != nil {
		return nil, fmt.Errorf("building scale client: %w", err)
	}
	c.Scales, c.Mapper = scales, mapper
	return c, nil
}

// pdbsOf returns the keys of the PDBs selecting a pod.
func (c *Controller) pdbsOf(obj any) []string {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	var keys []string
	for _, pdb := range nsindex.List[*policyv1.PodDisruptionBudget](c.pdbIndex, pod.Namespace) {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		keys = append(keys, pdb.Namespace+"/"+pdb.Name)
	}
	return keys
}

// Run keeps PDB statuses until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced...)
}

func (c *Controller) event(obj *policyv1.PodDisruptionBudget, typ, reason, msg string) {
	if c.recorder != nil {
		c.recorder.Event(obj, typ, reason, msg)
	}
}

func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cached, err := c.pdbs.PodDisruptionBudgets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	now := c.now()
	pdb := cached.DeepCopy()
	recheck, syncErr := c.compute(ctx, pdb, now)
	if syncErr != nil {
		setFailSafe(pdb, syncErr, now)
	}
	if !equality.Semantic.DeepEqual(cached.Status, pdb.Status) {
		if _, err := c.client.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
			return 0, fmt.Errorf("updating status of PDB %s: %w", key, err)
		}
	}
	if syncErr != nil {
		return 0, fmt.Errorf("computing status of PDB %s: %w", key, syncErr)
	}
	if !recheck.IsZero() {
		return max(recheck.Sub(now), time.Second), nil
	}
	return 0, nil
}

// compute fills pdb.Status (pdb is a copy) and returns when it must be
// recomputed because a disruptedPods entry expires.
func (c *Controller) compute(ctx context.Context, pdb *policyv1.PodDisruptionBudget, now time.Time) (time.Time, error) {
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		c.event(pdb, corev1.EventTypeWarning, "NoPods", fmt.Sprintf("Failed to get pods: %v", err))
		return time.Time{}, fmt.Errorf("parsing selector: %w", err)
	}
	pods, err := c.pods.Pods(pdb.Namespace).List(sel)
	if err != nil {
		return time.Time{}, fmt.Errorf("listing pods: %w", err)
	}
	if len(pods) == 0 {
		c.event(pdb, corev1.EventTypeNormal, "NoPods", "No matching pods found")
	}
	exp, err := expectedPods(pdb, pods, func(ref *metav1.OwnerReference, ns string) (types.UID, int32, bool, error) {
		return c.scaleOf(ctx, ref, ns)
	})
	if err != nil {
		var nc noControllersError
		if errors.As(err, &nc) {
			c.event(pdb, corev1.EventTypeWarning, "NoControllers", err.Error())
		}
		c.event(pdb, corev1.EventTypeWarning, "CalculateExpectedPodCountFailed", fmt.Sprintf("Failed to calculate the number of expected pods: %v", err))
		return time.Time{}, err
	}
	if len(exp.unmanaged) > 0 {
		c.event(pdb, corev1.EventTypeWarning, "UnmanagedPods", fmt.Sprintf("Pods selected by this PodDisruptionBudget (selector: %v) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.", sel))
	}
	disrupted, expired, recheck := disruptedPods(pdb, pods, now)
	for _, pod := range expired {
		if c.recorder != nil {
			c.recorder.Eventf(pod, corev1.EventTypeWarning, "NotDeleted", "Pod was expected by PDB %s/%s to be deleted but it wasn't", pdb.Namespace, pdb.Name)
		}
	}
	setStatus(pdb, currentHealthy(pods, disrupted, now), exp, disrupted, now)
	return recheck, nil
}

// scaleOf finds the controller ref points to and its desired replicas. A
// ReplicaSet owned by a Deployment stands for the Deployment.
func (c *Controller) scaleOf(ctx context.Context, ref *metav1.OwnerReference, ns string) (types.UID, int32, bool, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return "", 0, false, fmt.Errorf("parsing controller API version: %w", err)
	}
	replicas := func(p *int32) int32 {
		if p == nil {
			return 1
		}
		return *p
	}
	switch {
	case gv.Group == "apps" && ref.Kind == "ReplicaSet":
		rs, err := c.rss.ReplicaSets(ns).Get(ref.Name)
		if apierrors.IsNotFound(err) || (err == nil && rs.UID != ref.UID) {
			return "", 0, false, nil
		}
		if err != nil {
			return "", 0, false, err
		}
		if owner := metav1.GetControllerOf(rs); owner != nil && owner.Kind == "Deployment" && strings.HasPrefix(owner.APIVersion, "apps/") {
			d, err := c.deployments.Deployments(ns).Get(owner.Name)
			if apierrors.IsNotFound(err) || (err == nil && d.UID != owner.UID) {
				return "", 0, false, nil
			}
			if err != nil {
				return "", 0, false, err
			}
			return d.UID, replicas(d.Spec.Replicas), true, nil
		}
		return rs.UID, replicas(rs.Spec.Replicas), true, nil
	case gv.Group == "apps" && ref.Kind == "StatefulSet":
		ss, err := c.sets.StatefulSets(ns).Get(ref.Name)
		if apierrors.IsNotFound(err) || (err == nil && ss.UID != ref.UID) {
			return "", 0, false, nil
		}
		if err != nil {
			return "", 0, false, err
		}
		return ss.UID, replicas(ss.Spec.Replicas), true, nil
	case gv.Group == "" && ref.Kind == "ReplicationController":
		rc, err := c.rcs.ReplicationControllers(ns).Get(ref.Name)
		if apierrors.IsNotFound(err) || (err == nil && rc.UID != ref.UID) {
			return "", 0, false, nil
		}
		if err != nil {
			return "", 0, false, err
		}
		return rc.UID, replicas(rc.Spec.Replicas), true, nil
	}
	if c.Scales == nil || c.Mapper == nil {
		return "", 0, false, nil
	}
	mapping, err := c.Mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, gv.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return "", 0, false, nil
		}
		return "", 0, false, fmt.Errorf("resolving %s: %w", ref.Kind, err)
	}
	sc, err := c.Scales.Scales(ns).Get(ctx, mapping.Resource.GroupResource(), ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("getting scale of %s %s: %w", ref.Kind, ref.Name, err)
	}
	if sc.UID != ref.UID {
		return "", 0, false, nil
	}
	return sc.UID, sc.Spec.Replicas, true, nil
}
