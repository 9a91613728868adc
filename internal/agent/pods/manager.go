package pods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	nodelisters "k8s.io/client-go/listers/node/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/agent/podstatus"
	"github.com/skiff-dev/skiff/internal/cachetrim"
	"github.com/skiff-dev/skiff/internal/hostports"
)

// The CRI labels the agent sets on every sandbox and container it creates;
// the pod UID label is how it finds a pod's objects again after a restart.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
	// annotationGrace records the pod's termination grace period (seconds)
	// on containers, for killing them once the pod object is gone.
	annotationGrace = "io.kubernetes.pod.terminationGracePeriod"
	// annotationImage records the image the container was created for, to
	// notice a pod's image update.
	annotationImage = "io.kubernetes.container.image"
)

// VolumeManager makes a pod's volumes and environment (internal/agent/volumes).
type VolumeManager interface {
	// Setup makes every volume of pod present and returns volume name →
	// host path. Idempotent; called on every sync of a running pod.
	Setup(ctx context.Context, pod *v1.Pod) (map[string]string, error)
	// Mounts returns c's volume mounts, given Setup's paths.
	Mounts(pod *v1.Pod, c *v1.Container, paths map[string]string) ([]cri.Mount, error)
	// Env returns c's environment; pod has status.podIP and hostIP filled.
	Env(ctx context.Context, pod *v1.Pod, c *v1.Container) ([]cri.EnvVar, error)
	// Teardown removes every volume of the pod with that UID.
	Teardown(ctx context.Context, uid types.UID) error
}

// Prober runs containers' probes and lifecycle hooks (internal/agent/prober).
// Container IDs are the runtime's, without "containerd://".
type Prober interface {
	// Start starts c's probes; idempotent per containerID.
	Start(pod *v1.Pod, c *v1.Container, containerID string, startedAt time.Time)
	// Stop stops the probes of a container; StopPod those of a whole pod.
	Stop(containerID string)
	StopPod(uid types.UID)
	Ready(containerID string) bool
	Started(containerID string) bool
	// Liveness reports whether the liveness (or startup) probe decided the
	// container must be restarted.
	Liveness(containerID string) (failed bool, message string)
	// RunHook runs a postStart or preStop handler and waits for it.
	RunHook(ctx context.Context, pod *v1.Pod, c *v1.Container, containerID string, h *v1.LifecycleHandler) error
}

// ImagePuller makes a container's image present (internal/agent/pull).
type ImagePuller interface {
	// Ensure returns the image's reference; its error may be a *pull.Error
	// whose Reason becomes the container's waiting reason.
	Ensure(ctx context.Context, pod *v1.Pod, c *v1.Container) (imageRef string, err error)
}

// StatusComputer turns what a sync observed into a pod status
// (podstatus.Compute).
type StatusComputer interface {
	Compute(pod *v1.Pod, obs podstatus.Observed, probes podstatus.Probes, now time.Time) v1.PodStatus
}

// StatusWriter writes pod statuses to the API server (podstatus.Writer):
// Set writes only changes, asynchronously, with retries; Forget drops what
// it holds for a pod that is gone.
type StatusWriter interface {
	Set(pod *v1.Pod, st v1.PodStatus)
	Forget(uid types.UID)
}

// Config configures a Manager.
type Config struct {
	// Client reads the pods bound to NodeName and deletes them once they
	// have terminated. Required.
	Client   kubernetes.Interface
	NodeName string
	// NodeIP is the pods' hostIP (and the podIP of host-network pods).
	NodeIP  string
	Runtime cri.Runtime
	// Volumes, Prober and Images may be nil: no volumes (environment from
	// literal values only), no probes or hooks (every container started
	// and ready), images pulled through Runtime when absent.
	Volumes VolumeManager
	Prober  Prober
	Images  ImagePuller
	// Status and Writer compute and write pod status. Required.
	Status StatusComputer
	Writer StatusWriter
	// Recorder records events; nil drops them.
	Recorder record.EventRecorder
	// RootDir is the agent's root: pods under RootDir/pods, logs under
	// RootDir/logs. Required.
	RootDir string
	// ClusterDNS are the cluster DNS servers; empty makes dnsPolicy
	// ClusterFirst behave as Default.
	ClusterDNS    []string
	ClusterDomain string // "" means "cluster.local"
	// ResolvConf is the node's resolv.conf for dnsPolicy Default; ""
	// means /etc/resolv.conf.
	ResolvConf string
	// HostsFile is the node's hosts file, read for host-network pods with
	// hostAliases; "" means /etc/hosts.
	HostsFile string
	// ForgetNeighbor, when set, is called with every new pod sandbox's IP
	// before its containers start, to drop the node's neighbor entry for
	// an address an earlier pod had (cni.ForgetNeighbor on the bridge).
	// Its errors are logged, not fatal.
	ForgetNeighbor func(ip netip.Addr) error
	// RelistPeriod is how often the runtime is listed to detect exits;
	// 0 means one second.
	RelistPeriod time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Manager runs the pods bound to one node: one worker per pod at a time,
// triggered by pod events, Resync (prober changes), back-off timers and a
// relist of the runtime. Create it with New and start it with Run.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	queue *keyQueue

	mu   sync.Mutex
	pods map[types.UID]*podState // guarded by mu

	statusMu   sync.Mutex
	statuses   map[string]cri.Container // guarded by statusMu; container ID → full status
	sandboxIPs map[string]string        // guarded by statusMu; sandbox ID → IP

	seenMu sync.Mutex
	seen   map[types.UID]map[string]string // guarded by seenMu; pod → object ID → state at the last look
	// relisted is set once a relist has filled seen: from then on a pod
	// missing from seen and never synced has nothing in the runtime.
	relisted atomic.Bool

	// runtimeClasses reads the RuntimeClass informer's cache; Run sets it
	// before any sync starts (nil until then).
	runtimeClasses nodelisters.RuntimeClassLister
}

// podState is what the manager holds for one pod UID. pod and gone are
// guarded by Manager.mu; the rest is used only by the pod's worker (the
// queue runs one at a time per UID).
type podState struct {
	uid  types.UID
	pod  *v1.Pod // newest from the informer (nil for an unknown UID); read-only
	gone bool    // deleted from the API or no longer bound here
	// evict, guarded by Manager.mu, is set by Evict; evicted is closed
	// once the sync stopped the pod for it.
	evict   *podstatus.Observed
	evicted chan struct{}
	// finished, guarded by Manager.mu, says a sync found the pod terminal.
	finished bool
	// admitted, guarded by Manager.mu, says the node took the pod (see
	// admit); a refused pod is terminal from its first sync.
	admitted bool

	backoff   map[string]*backoff // container name →
	probing   map[string]bool     // container IDs with probes started
	firstSeen time.Time
	terminal  *podstatus.Observed // Phase/Reason/Message the sync decided, nil while not
	hosts     []byte              // etc-hosts content last written
	failures  int                 // consecutive failed syncs
	observed  bool                // a sync has looked at the runtime for this pod
}

// New checks cfg and returns a Manager; call Run to start it.
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("pods: Config.Client is required")
	case cfg.NodeName == "":
		return nil, errors.New("pods: Config.NodeName is required")
	case cfg.Runtime == nil:
		return nil, errors.New("pods: Config.Runtime is required")
	case cfg.Status == nil || cfg.Writer == nil:
		return nil, errors.New("pods: Config.Status and Config.Writer are required")
	case cfg.RootDir == "":
		return nil, errors.New("pods: Config.RootDir is required")
	}
	if cfg.Volumes == nil {
		cfg.Volumes = noVolumes{}
	}
	if cfg.Prober == nil {
		cfg.Prober = noProber{}
	}
	if cfg.Images == nil {
		cfg.Images = runtimePuller{rt: cfg.Runtime}
	}
	if cfg.Recorder == nil {
		cfg.Recorder = noEvents{}
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.HostsFile == "" {
		cfg.HostsFile = "/etc/hosts"
	}
	if cfg.RelistPeriod <= 0 {
		cfg.RelistPeriod = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "pods"),
		pods:       map[types.UID]*podState{},
		statuses:   map[string]cri.Container{},
		sandboxIPs: map[string]string{},
		seen:       map[types.UID]map[string]string{},
	}
	m.queue = newKeyQueue(m.work)
	return m, nil
}

// Resync asks for a sync of the pod with uid (for example when its probe
// results change). Safe for concurrent use, also before Run.
func (m *Manager) Resync(uid types.UID) { m.queue.Add(uid) }

// ActivePods returns the pods bound here that are not terminal (Succeeded
// or Failed in the API, or decided so by a sync) and not gone from the API;
// pods being deleted are included until they are gone. The pods are the
// informer's: callers must not modify them. Safe for concurrent use.
func (m *Manager) ActivePods() []*v1.Pod {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*v1.Pod
	for _, ps := range m.pods {
		if ps.pod == nil || ps.gone || ps.evict != nil || ps.finished {
			continue
		}
		if p := ps.pod.Status.Phase; p == v1.PodSucceeded || p == v1.PodFailed {
			continue
		}
		out = append(out, ps.pod)
	}
	return out
}

// Evict makes pod terminal: its sync stops its containers (preStop hooks
// and grace period as for a deletion) and reports phase Failed with reason
// and message; it records an event with them. Evict waits until the
// containers are stopped or ctx is done. Safe for concurrent use.
func (m *Manager) Evict(ctx context.Context, pod *v1.Pod, reason, message string) error {
	m.mu.Lock()
	ps, ok := m.pods[pod.UID]
	if !ok || ps.pod == nil || ps.gone {
		m.mu.Unlock()
		return fmt.Errorf("pods: evicting %s/%s: not running here", pod.Namespace, pod.Name)
	}
	if ps.evict == nil {
		ps.evict = &podstatus.Observed{Phase: v1.PodFailed, Reason: reason, Message: message}
		ps.evicted = make(chan struct{})
		m.cfg.Recorder.Eventf(ps.pod, v1.EventTypeWarning, reason, "%s", message)
	}
	done := ps.evicted
	m.mu.Unlock()
	m.queue.Add(pod.UID)
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pods: evicting %s/%s: %w", pod.Namespace, pod.Name, ctx.Err())
	}
}

// Run watches the pods bound to the node (and the RuntimeClasses, for
// their sandboxes' runtime handlers) and keeps them converged until ctx
// is done. It never stops containers because ctx ends: stopping the agent
// leaves the pods running, and the next Run adopts them. Containers and
// sandboxes of pods not bound here are removed once the pod informer has
// synced. It returns nil on cancellation.
func (m *Manager) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(m.cfg.Client, 0,
		cachetrim.Option(),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", m.cfg.NodeName).String()
		}))
	inf := factory.Core().V1().Pods().Informer()
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pod, ok := obj.(*v1.Pod); ok {
				m.setPod(pod)
			}
		},
		UpdateFunc: func(old, obj any) {
			oldPod, ok1 := old.(*v1.Pod)
			pod, ok2 := obj.(*v1.Pod)
			if ok1 && ok2 && podChanged(oldPod, pod) {
				m.setPod(pod)
			} else if ok2 {
				m.storePod(pod)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*v1.Pod); ok {
				m.podGone(pod)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("pods: adding pod event handler: %w", err)
	}
	// RuntimeClasses are cluster-wide: their informer cannot share the
	// pods' node field selector.
	rcInf := informers.NewSharedInformerFactoryWithOptions(m.cfg.Client, 0, cachetrim.Option()).Node().V1().RuntimeClasses()
	rcReg, err := rcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if rc, ok := obj.(*nodev1.RuntimeClass); ok {
				m.runtimeClassAdded(rc)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("pods: adding runtime class event handler: %w", err)
	}
	m.runtimeClasses = rcInf.Lister()
	go inf.RunWithContext(ctx)
	go rcInf.Informer().RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), reg.HasSynced, rcReg.HasSynced) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("pods: pod and runtime class informers did not sync")
	}
	m.log.Debug("pod and runtime class informers synced")
	// The first relist, before any sync, enqueues every pod the runtime
	// knows: running ones are adopted, those of pods not bound here
	// removed.
	m.relist(ctx)
	m.queue.Start(ctx)
	t := time.NewTicker(m.cfg.RelistPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			m.queue.Wait()
			return nil
		case <-t.C:
			m.relist(ctx)
		}
	}
}

// podChanged reports whether an update matters to the sync: not a status
// write of our own, but a new spec, metadata (the downward API reads it),
// deletion, or a phase someone else set.
func podChanged(old, pod *v1.Pod) bool {
	return !equality.Semantic.DeepEqual(old.Spec, pod.Spec) ||
		!old.DeletionTimestamp.Equal(pod.DeletionTimestamp) ||
		!maps.Equal(old.Labels, pod.Labels) || !maps.Equal(old.Annotations, pod.Annotations) ||
		old.Status.Phase != pod.Status.Phase
}

// setPod records the newest version of a pod and enqueues it.
func (m *Manager) setPod(pod *v1.Pod) {
	m.storePod(pod)
	m.queue.Add(pod.UID)
}

// storePod records the newest version of a pod without a sync.
func (m *Manager) storePod(pod *v1.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := m.stateLocked(pod.UID)
	ps.pod = pod
	ps.gone = pod.Spec.NodeName != m.cfg.NodeName
}

// podGone records that a pod left the API (or this node) and enqueues it,
// so that its worker kills and cleans it up.
func (m *Manager) podGone(pod *v1.Pod) {
	m.mu.Lock()
	ps := m.stateLocked(pod.UID)
	ps.pod, ps.gone = pod, true
	m.mu.Unlock()
	m.queue.Add(pod.UID)
}

func (m *Manager) stateLocked(uid types.UID) *podState {
	ps, ok := m.pods[uid]
	if !ok {
		ps = &podState{uid: uid, backoff: map[string]*backoff{}, probing: map[string]bool{}}
		m.pods[uid] = ps
	}
	return ps
}

// state returns the pod's state (creating an empty one for an unknown UID)
// and its newest pod object and gone flag.
func (m *Manager) state(uid types.UID) (*podState, *v1.Pod, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := m.stateLocked(uid)
	return ps, ps.pod, ps.gone
}

// stopped records that a sync found the pod terminal and stopped its
// containers, releasing a waiting Evict.
func (m *Manager) stopped(ps *podState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps.finished = true
	if ps.evicted != nil {
		select {
		case <-ps.evicted:
		default:
			close(ps.evicted)
		}
	}
}

// Upstream's kubelet rejection of a pod whose host ports are taken.
const (
	reasonNodePorts  = "NodePorts"
	messageNodePorts = "Pod was rejected: Predicate NodePorts failed"
)

// admit decides once whether the node takes pod, as upstream's kubelet
// admits a pod before it runs anything of it: a pod bound straight to the
// node (its creator set spec.nodeName, so no scheduler checked it) is
// refused when a host port it asks for is held by another pod the node
// took and still runs. A pod that already has sandboxes (adopted after an
// agent restart) was taken before. The check and the mark are one step
// under Manager.mu, so two pods asking for one port are not both taken.
func (m *Manager) admit(ps *podState, pod *v1.Pod, adopted bool) (ok bool, reason, message string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ps.admitted || adopted {
		ps.admitted = true
		return true, "", ""
	}
	if want := hostports.Of(pod); len(want) > 0 {
		for _, o := range m.pods {
			if o == ps || !o.admitted || o.pod == nil || o.gone || o.evict != nil || o.finished {
				continue
			}
			if p := o.pod.Status.Phase; p == v1.PodSucceeded || p == v1.PodFailed {
				continue
			}
			if hostports.Collide(want, hostports.Of(o.pod)) {
				return false, reasonNodePorts, messageNodePorts
			}
		}
	}
	ps.admitted = true
	return true, "", ""
}

// forget drops a pod that has been cleaned up after leaving the API.
func (m *Manager) forget(uid types.UID) {
	m.mu.Lock()
	delete(m.pods, uid)
	m.mu.Unlock()
	m.seenMu.Lock()
	delete(m.seen, uid)
	m.seenMu.Unlock()
}

// work is the queue's function: one sync, then its retry or requeue.
func (m *Manager) work(ctx context.Context, uid types.UID) {
	ps, _, _ := m.state(uid)
	start := time.Now()
	after, err := m.syncPod(ctx, uid)
	switch {
	case err != nil && ctx.Err() != nil:
		return // shutting down
	case err != nil:
		ps.failures++
		retry := min(200*time.Millisecond<<min(ps.failures-1, 10), 30*time.Second)
		m.log.Info("pod sync failed; retrying", "uid", uid, "retryIn", retry, "err", err)
		m.queue.AddAfter(uid, retry)
		return
	}
	ps.failures = 0
	if after > 0 {
		m.queue.AddAfter(uid, after)
	}
	m.log.Debug("pod synced", "uid", uid, "elapsed", time.Since(start))
}

// relist lists every sandbox and container once and enqueues the pods
// whose objects changed since the last look (new, changed state or gone).
func (m *Manager) relist(ctx context.Context) {
	sbs, err := m.cfg.Runtime.ListSandboxes(ctx, nil)
	if err != nil {
		m.log.Info("relist failed", "err", err)
		return
	}
	ctrs, err := m.cfg.Runtime.ListContainers(ctx, cri.ContainerFilter{})
	if err != nil {
		m.log.Info("relist failed", "err", err)
		return
	}
	cur := map[types.UID]map[string]string{}
	add := func(labels map[string]string, id, state string) {
		uid := types.UID(labels[LabelPodUID])
		if uid == "" {
			return // not ours
		}
		if cur[uid] == nil {
			cur[uid] = map[string]string{}
		}
		cur[uid][id] = state
	}
	for _, sb := range sbs {
		add(sb.Labels, sb.ID, string(sb.State))
	}
	for _, c := range ctrs {
		add(c.Labels, c.ID, string(c.State))
	}
	live := map[string]bool{}
	for _, objs := range cur {
		for id := range objs {
			live[id] = true
		}
	}
	var changed []types.UID
	m.seenMu.Lock()
	for uid, objs := range cur {
		if !maps.Equal(objs, m.seen[uid]) {
			changed = append(changed, uid)
		}
	}
	for uid := range m.seen {
		if _, ok := cur[uid]; !ok {
			changed = append(changed, uid)
		}
	}
	m.seen = cur
	m.seenMu.Unlock()
	m.relisted.Store(true)
	// Forget cached statuses of removed containers.
	m.statusMu.Lock()
	for id := range m.statuses {
		if !live[id] {
			delete(m.statuses, id)
		}
	}
	for id := range m.sandboxIPs {
		if !live[id] {
			delete(m.sandboxIPs, id)
		}
	}
	m.statusMu.Unlock()
	for _, uid := range changed {
		m.queue.Add(uid)
	}
}

// unseen reports whether the last relist found nothing of the pod.
func (m *Manager) unseen(uid types.UID) bool {
	m.seenMu.Lock()
	defer m.seenMu.Unlock()
	_, ok := m.seen[uid]
	return !ok && m.relisted.Load()
}

// noteSeen records what a sync observed of a pod, so that the next relist
// does not enqueue it for changes it has already acted on.
func (m *Manager) noteSeen(uid types.UID, rt *podRuntime) {
	objs := map[string]string{}
	for _, sb := range rt.sandboxes {
		objs[sb.ID] = string(sb.State)
	}
	for _, cs := range rt.containers {
		for _, c := range cs {
			objs[c.ID] = string(c.State)
		}
	}
	m.seenMu.Lock()
	defer m.seenMu.Unlock()
	if len(objs) == 0 {
		delete(m.seen, uid)
		return
	}
	m.seen[uid] = objs
}

// podDir is ROOT/pods/<uid>.
func (m *Manager) podDir(uid types.UID) string {
	return filepath.Join(m.cfg.RootDir, "pods", string(uid))
}

// logDir is ROOT/logs/<namespace>_<name>_<uid>.
func (m *Manager) logDir(namespace, name string, uid types.UID) string {
	return filepath.Join(m.cfg.RootDir, "logs", namespace+"_"+name+"_"+string(uid))
}
