package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	schedlisters "k8s.io/client-go/listers/scheduling/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/cachetrim"
	"github.com/skiff-dev/skiff/internal/lazyclient"
	schedcache "github.com/skiff-dev/skiff/internal/scheduler/cache"
	"github.com/skiff-dev/skiff/internal/scheduler/framework"
	"github.com/skiff-dev/skiff/internal/scheduler/plugins"
	"github.com/skiff-dev/skiff/internal/scheduler/queue"
)

// Client rate limits used when the rest config sets none.
const (
	defaultQPS   = 5000
	defaultBurst = 10000
)

// DefaultSchedulerName is the schedulerName pods get by default.
const DefaultSchedulerName = v1.DefaultSchedulerName

// Config configures Run.
type Config struct {
	// RestConfig reaches the API server (required).
	RestConfig *rest.Config
	// Logger; nil discards.
	Logger *slog.Logger
	// SchedulerName: pods naming another scheduler are left alone;
	// "" means default-scheduler.
	SchedulerName string
	// PercentageOfNodesToScore: see framework.Options (0: adaptive).
	PercentageOfNodesToScore int32
	// LeaderElection runs the scheduler only while holding the Lease
	// kube-system/<SchedulerName>.
	LeaderElection bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NewInformers, when set, gives each run (each leader term) its
	// informer factory (in the server: a scope of the process's shared
	// informers, see internal/informerhub); its Shutdown at the run's end
	// must detach the run's handlers. Nil: a factory of its own on
	// RestConfig.
	NewInformers func() informers.SharedInformerFactory
}

// Run schedules pods until ctx is done. It returns nil on cancellation,
// an error if it cannot start or loses its leader lease.
func Run(ctx context.Context, cfg Config) error {
	if cfg.RestConfig == nil {
		return errors.New("scheduler: no rest config")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SchedulerName == "" {
		cfg.SchedulerName = DefaultSchedulerName
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	rc := rest.CopyConfig(cfg.RestConfig)
	if rc.UserAgent == "" {
		rc.UserAgent = "skiff-scheduler"
	}
	if rc.QPS == 0 && rc.RateLimiter == nil {
		// client-go's default (5 QPS) would cap binding at a few pods a
		// second; every bind is one request.
		rc.QPS, rc.Burst = defaultQPS, defaultBurst
	}
	client, err := lazyclient.New(rc)
	if err != nil {
		return fmt.Errorf("scheduler: building client: %w", err)
	}
	if cfg.LeaderElection {
		return runWithLeaderElection(ctx, cfg, client)
	}
	return run(ctx, cfg, client)
}

// Scheduler is one running scheduler (the state behind Run).
type Scheduler struct {
	cfg      Config
	log      *slog.Logger
	client   kubernetes.Interface
	recorder record.EventRecorder
	cache    *schedcache.Cache
	queue    *queue.Queue
	fw       *framework.Framework
	snap     *framework.Snapshot

	podLister corelisters.PodLister
	nsLister  corelisters.NamespaceLister
	pcLister  schedlisters.PriorityClassLister
	pdbLister policylisters.PodDisruptionBudgetLister
	// For the default spreading of pods that belong to a service or a
	// workload (see defaultSpreadSelector): the caches, listed by
	// namespace.
	svcIndex, rcIndex, rsIndex, ssIndex cache.Indexer

	nominated *nominator

	// For the volume step of binding (bindVolumes), read from the bind
	// goroutines.
	nodeLister    corelisters.NodeLister
	volumeListers plugins.VolumeListers
	volumes       plugins.VolumeBinding
	// claimsChanged is notified on every claim added or updated.
	claimsChanged signal

	binds sync.WaitGroup
}

func run(ctx context.Context, cfg Config, client kubernetes.Interface) error {
	var factory informers.SharedInformerFactory
	if cfg.NewInformers != nil {
		factory = cfg.NewInformers()
	} else {
		factory = informers.NewSharedInformerFactoryWithOptions(client, 0, cachetrim.Option())
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()

	s := &Scheduler{
		cfg:       cfg,
		log:       cfg.Logger,
		client:    client,
		recorder:  broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: cfg.SchedulerName}),
		queue:     queue.New(cfg.Now),
		snap:      &framework.Snapshot{},
		nominated: newNominator(),
		podLister: factory.Core().V1().Pods().Lister(),
		nsLister:  factory.Core().V1().Namespaces().Lister(),
		pcLister:  factory.Scheduling().V1().PriorityClasses().Lister(),
		pdbLister: factory.Policy().V1().PodDisruptionBudgets().Lister(),
		svcIndex:  factory.Core().V1().Services().Informer().GetIndexer(),
		rcIndex:   factory.Core().V1().ReplicationControllers().Informer().GetIndexer(),
		rsIndex:   factory.Apps().V1().ReplicaSets().Informer().GetIndexer(),
		ssIndex:   factory.Apps().V1().StatefulSets().Informer().GetIndexer(),
	}
	s.cache = schedcache.New(s.priority)
	s.snap.NamespaceLabels = s.namespaceLabels
	vl := plugins.VolumeListers{
		Claims:  factory.Core().V1().PersistentVolumeClaims().Lister(),
		Volumes: factory.Core().V1().PersistentVolumes().Lister(),
		Classes: factory.Storage().V1().StorageClasses().Lister(),
	}
	s.nodeLister = factory.Core().V1().Nodes().Lister()
	s.volumeListers = vl
	s.volumes = plugins.NewVolumeBinding(vl)
	ps, weights := plugins.DefaultWith(vl)
	s.fw = framework.New(ps, weights, framework.Options{
		PercentageOfNodesToScore: cfg.PercentageOfNodesToScore,
		Rand:                     rand.New(rand.NewPCG(uint64(cfg.Now().UnixNano()), 0)),
	})
	if err := s.registerHandlers(factory); err != nil {
		return err
	}
	factory.StartWithContext(ctx)
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("scheduler: syncing %v informer failed", typ)
		}
	}
	s.log.Info("scheduler started", "schedulerName", cfg.SchedulerName)

	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.queue.Run(qctx)
	for {
		qp, err := s.queue.Pop(ctx)
		if err != nil {
			break
		}
		s.scheduleOne(ctx, qp)
	}
	s.binds.Wait()
	return nil
}

func (s *Scheduler) namespaceLabels(ns string) labels.Set {
	n, err := s.nsLister.Get(ns)
	if err != nil {
		return nil
	}
	return n.Labels
}

// Well-known priority classes every cluster has.
const (
	systemClusterCritical = 2000000000
	systemNodeCritical    = 2000001000
)

// priority resolves a pod's priority: spec.priority (set by admission
// upstream), else its PriorityClass, else the global default class, else 0.
func (s *Scheduler) priority(pod *v1.Pod) int32 {
	if pod.Spec.Priority != nil {
		return *pod.Spec.Priority
	}
	if name := pod.Spec.PriorityClassName; name != "" {
		if pc, err := s.pcLister.Get(name); err == nil {
			return pc.Value
		}
		switch name {
		case "system-cluster-critical":
			return systemClusterCritical
		case "system-node-critical":
			return systemNodeCritical
		}
		return 0
	}
	pcs, err := s.pcLister.List(labels.Everything())
	if err != nil {
		return 0
	}
	for _, pc := range pcs {
		if pc.GlobalDefault {
			return pc.Value
		}
	}
	return 0
}

// responsible reports whether pod is an unbound pod of this scheduler.
func (s *Scheduler) responsible(pod *v1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.Spec.SchedulerName == s.cfg.SchedulerName &&
		pod.DeletionTimestamp == nil && !terminal(pod)
}

func terminal(pod *v1.Pod) bool {
	return pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed
}

// inCache reports whether a pod occupies its node.
func inCache(pod *v1.Pod) bool { return pod.Spec.NodeName != "" && !terminal(pod) }

func (s *Scheduler) registerHandlers(factory informers.SharedInformerFactory) error {
	// Register the listers' informers so they start with the factory.
	factory.Core().V1().Namespaces().Informer()
	factory.Scheduling().V1().PriorityClasses().Informer()

	_, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			pod, ok := obj.(*v1.Pod)
			if !ok {
				return
			}
			s.podChanged(nil, pod)
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*v1.Pod)
			pod, ok2 := newObj.(*v1.Pod)
			if ok1 && ok2 {
				s.podChanged(old, pod)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			pod, ok := obj.(*v1.Pod)
			if !ok {
				return
			}
			s.queue.Delete(pod.UID)
			s.nominated.set(pod, "")
			if inCache(pod) {
				s.cache.RemovePod(pod)
				s.queue.MoveOnEvent(podDeletePlugins())
			}
		},
	})
	if err != nil {
		return fmt.Errorf("scheduler: adding pod handler: %w", err)
	}
	_, err = factory.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if node, ok := obj.(*v1.Node); ok {
				s.cache.AddNode(node)
				s.queue.MoveOnEvent(nil)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*v1.Node)
			node, ok2 := newObj.(*v1.Node)
			if !ok1 || !ok2 {
				return
			}
			s.cache.UpdateNode(node)
			if nodeSchedulingChanged(old, node) {
				s.queue.MoveOnEvent(nil)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if node, ok := obj.(*v1.Node); ok {
				s.cache.RemoveNode(node)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("scheduler: adding node handler: %w", err)
	}
	// A claim bound, a volume created or changed, a class created: pods
	// VolumeBinding rejected may fit now. Deletions cannot help them.
	volumeChanged := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.queue.MoveOnEvent(volumePlugins()) },
		UpdateFunc: func(any, any) { s.queue.MoveOnEvent(volumePlugins()) },
	}
	for what, inf := range map[string]cache.SharedIndexInformer{
		"persistentvolumeclaim": factory.Core().V1().PersistentVolumeClaims().Informer(),
		"persistentvolume":      factory.Core().V1().PersistentVolumes().Informer(),
		"storageclass":          factory.Storage().V1().StorageClasses().Informer(),
	} {
		if _, err := inf.AddEventHandler(volumeChanged); err != nil {
			return fmt.Errorf("scheduler: adding %s handler: %w", what, err)
		}
	}
	// Binds waiting for their claims (waitClaimsBound) look again.
	_, err = factory.Core().V1().PersistentVolumeClaims().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.claimsChanged.notify() },
		UpdateFunc: func(any, any) { s.claimsChanged.notify() },
		DeleteFunc: func(any) { s.claimsChanged.notify() },
	})
	if err != nil {
		return fmt.Errorf("scheduler: adding claim wait handler: %w", err)
	}
	return nil
}

// volumePlugins are the plugins whose rejections a claim, volume or
// class event may undo.
func volumePlugins() []string { return []string{plugins.VolumeBindingName} }

// podDeletePlugins are the plugins whose rejections a pod leaving a node
// may undo.
func podDeletePlugins() []string {
	return []string{plugins.NodeResourcesFitName, plugins.NodePortsName, plugins.InterPodAffinityName, plugins.PodTopologySpreadName}
}

// podAddPlugins are the plugins whose rejections a pod arriving on a
// node (or changing labels) may undo.
func podAddPlugins() []string {
	return []string{plugins.InterPodAffinityName, plugins.PodTopologySpreadName}
}

func (s *Scheduler) podChanged(old, pod *v1.Pod) {
	wasIn := old != nil && inCache(old)
	isIn := inCache(pod)
	switch {
	case isIn:
		s.queue.Delete(pod.UID)
		s.nominated.set(pod, "")
		s.cache.UpdatePod(pod)
		if !wasIn || !equalLabelMaps(old.Labels, pod.Labels) {
			s.queue.MoveOnEvent(podAddPlugins())
		}
	case wasIn:
		// Finished: it no longer holds its node's resources.
		s.cache.RemovePod(pod)
		s.queue.MoveOnEvent(podDeletePlugins())
	case s.responsible(pod):
		s.nominated.set(pod, pod.Status.NominatedNodeName)
		if s.cache.IsAssumed(pod.UID) {
			return // bind in flight; the bound update will follow
		}
		s.queue.Add(pod, s.priority(pod))
	default:
		s.queue.Delete(pod.UID)
		s.nominated.set(pod, "")
	}
}

func equalLabelMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// nodeSchedulingChanged reports whether a node update may make a pod
// fit (heartbeats that only touch conditions and times do not).
func nodeSchedulingChanged(old, node *v1.Node) bool {
	if old.Spec.Unschedulable != node.Spec.Unschedulable || !equalLabelMaps(old.Labels, node.Labels) {
		return true
	}
	if len(old.Spec.Taints) != len(node.Spec.Taints) {
		return true
	}
	for i := range old.Spec.Taints {
		if !old.Spec.Taints[i].MatchTaint(&node.Spec.Taints[i]) || old.Spec.Taints[i].Value != node.Spec.Taints[i].Value {
			return true
		}
	}
	if len(old.Status.Allocatable) != len(node.Status.Allocatable) {
		return true
	}
	for k, q := range old.Status.Allocatable {
		if nq, ok := node.Status.Allocatable[k]; !ok || !q.Equal(nq) {
			return true
		}
	}
	return len(old.Status.Images) != len(node.Status.Images)
}
