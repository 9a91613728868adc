package nodestatus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/nodeaddr"
)

// Defaults of Config.
const (
	DefaultKubeletPort    = 10250
	DefaultMaxPods        = 110
	DefaultLeaseDuration  = 40 * time.Second
	DefaultStatusInterval = 10 * time.Second // upstream's nodeStatusUpdateFrequency
	DefaultReportInterval = 5 * time.Minute  // upstream's nodeStatusReportFrequency
)

// Pressure says which resources the node is short of. The eviction
// manager computes it; the reporter turns it into the MemoryPressure,
// DiskPressure and PIDPressure conditions.
type Pressure struct {
	Memory, Disk, PID bool
}

// Runtime is what the reporter needs of the container runtime: whether it
// answers (and its version), and its images.
type Runtime interface {
	Version(ctx context.Context) (name, version string, err error)
	ListImages(ctx context.Context) ([]cri.Image, error)
}

var (
	_ Runtime = (*cri.Client)(nil)
	_ Runtime = (*cri.Fake)(nil)
)

// Config configures a Reporter. Client, NodeName, Runtime and RootDir are
// required.
type Config struct {
	Client   kubernetes.Interface
	NodeName string
	// NodeIP is the node's InternalIP; "" means DetectNodeIP.
	NodeIP string
	// KubeletPort is published as the kubelet endpoint; 0 means
	// DefaultKubeletPort.
	KubeletPort int32
	// Version is the kubelet version published as nodeInfo.kubeletVersion
	// (and kubeProxyVersion); "" means the API server's version (its
	// gitVersion, asked once in Run).
	Version string
	// Labels are added to the well-known hostname, os and arch labels at
	// registration, and restored on a node that exists.
	Labels map[string]string
	// Taints are the node's taints when Run creates it; an existing node
	// keeps its own.
	Taints []corev1.Taint
	// Runtime is asked for its version (is it up?) and images.
	Runtime Runtime
	// Usage tells the pressure conditions; nil means never under pressure.
	// An error keeps the conditions as they were.
	Usage func(ctx context.Context) (Pressure, error)
	// RootDir is the agent's root; the file system holding it is the
	// node's ephemeral storage.
	RootDir string
	// MaxPods is the pods capacity; 0 means DefaultMaxPods.
	MaxPods int
	// Reserved is held back from allocatable, as well as Held's.
	Reserved corev1.ResourceList
	// Held returns what the hard eviction thresholds hold back from
	// allocatable for the node's memory and storage capacities (see
	// eviction.Held); nil means memory 100Mi and ephemeral storage 5%,
	// the eviction manager's defaults.
	Held func(memoryBytes, storageBytes uint64) corev1.ResourceList
	// Recorder gets the node's condition events; nil means none.
	Recorder record.EventRecorder
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LeaseDuration is the Lease's leaseDurationSeconds (whole seconds);
	// 0 means DefaultLeaseDuration.
	LeaseDuration time.Duration
	// RenewInterval is how often the Lease is renewed; 0 means a quarter
	// of LeaseDuration (upstream's 10 s).
	RenewInterval time.Duration
	// StatusInterval is how often the status is computed and compared with
	// the node's; 0 means DefaultStatusInterval.
	StatusInterval time.Duration
	// ReportInterval is the longest time without posting an unchanged
	// status; 0 means DefaultReportInterval.
	ReportInterval time.Duration
}

// Reporter registers a node and keeps its Lease and status current. Create
// it with New; Run it once. SetNetworkReady, PodCIDR and Registered are
// safe to call from any goroutine, before or during Run.
type Reporter struct {
	cfg     Config
	log     *slog.Logger
	machine machine

	kick       chan struct{} // buffered 1: run a status sync now
	registered chan struct{} // closed once the node exists
	regOnce    sync.Once

	mu             sync.Mutex
	networkReady   bool      // guarded by mu
	networkMessage string    // guarded by mu
	nodeUID        types.UID // guarded by mu; of the node as last registered

	// Owned by Run's status loop.
	lastReport time.Time // when the status was last posted
	pressure   Pressure  // last Usage answer
}

// New checks cfg, fills its defaults and reads the machine's facts (CPU,
// memory, storage of RootDir, IDs, OS). It does not talk to the API server.
func New(cfg Config) (*Reporter, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("nodestatus: no client")
	case cfg.NodeName == "":
		return nil, errors.New("nodestatus: no node name")
	case cfg.Runtime == nil:
		return nil, errors.New("nodestatus: no runtime")
	case cfg.RootDir == "":
		return nil, errors.New("nodestatus: no root dir")
	}
	if cfg.NodeIP == "" {
		ip, err := nodeaddr.DetectNodeIP()
		if err != nil {
			return nil, fmt.Errorf("nodestatus: %w", err)
		}
		cfg.NodeIP = ip
	}
	if cfg.KubeletPort == 0 {
		cfg.KubeletPort = DefaultKubeletPort
	}
	if cfg.MaxPods == 0 {
		cfg.MaxPods = DefaultMaxPods
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.RenewInterval == 0 {
		cfg.RenewInterval = cfg.LeaseDuration / 4
	}
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = DefaultStatusInterval
	}
	if cfg.ReportInterval == 0 {
		cfg.ReportInterval = DefaultReportInterval
	}
	m, err := readMachine(hostFiles, cfg.RootDir)
	if err != nil {
		return nil, fmt.Errorf("nodestatus: %w", err)
	}
	return &Reporter{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "nodestatus", "node", cfg.NodeName),
		machine:    m,
		kick:       make(chan struct{}, 1),
		registered: make(chan struct{}),
	}, nil
}

// SetNetworkReady records whether the pod network is configured (the CNI
// config is written): the node is Ready only once it is. msg says why not
// when !ok ("" for upstream's "cni plugin not initialized"). A change is
// posted at once.
func (r *Reporter) SetNetworkReady(ok bool, msg string) {
	r.mu.Lock()
	changed := r.networkReady != ok || r.networkMessage != msg
	r.networkReady, r.networkMessage = ok, msg
	r.mu.Unlock()
	if changed {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// Registered is closed once Run has registered the node (created it, or
// found and reconciled it).
func (r *Reporter) Registered() <-chan struct{} { return r.registered }

// Run registers the node, retrying until it succeeds, then renews the
// node's Lease every RenewInterval and syncs the node's status
// every StatusInterval (at once after SetNetworkReady changes it), posting
// it only when it changed or ReportInterval passed. A node deleted
// meanwhile is registered again. It blocks until ctx is done and returns
// nil then; errors on the way are logged and retried.
func (r *Reporter) Run(ctx context.Context) error {
	if err := r.waitRegistered(ctx); err != nil {
		return nil // ctx is done
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.runLease(ctx) })
	r.runStatus(ctx)
	wg.Wait()
	return nil
}

// waitRegistered asks the server's version if needed and registers the
// node, retrying with back-off; it errs only when ctx is done.
func (r *Reporter) waitRegistered(ctx context.Context) error {
	b := newBackoff(200*time.Millisecond, 7*time.Second)
	for {
		err := r.register(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.log.Info("registering node failed; retrying", "err", err)
		if err := b.wait(ctx); err != nil {
			return err
		}
	}
}

// labels returns the labels the reporter owns on the node.
func (r *Reporter) labels() map[string]string {
	l := map[string]string{
		corev1.LabelHostname:      r.cfg.NodeName,
		corev1.LabelOSStable:      runtime.GOOS,
		corev1.LabelArchStable:    runtime.GOARCH,
		"beta.kubernetes.io/os":   runtime.GOOS,
		"beta.kubernetes.io/arch": runtime.GOARCH,
	}
	maps.Copy(l, r.cfg.Labels)
	return l
}

// register creates the node with its labels, taints and status; if it
// exists, it restores the labels the reporter owns and keeps the rest
// (spec: pod CIDR, taints, unschedulable). Idempotent.
func (r *Reporter) register(ctx context.Context) error {
	if r.cfg.Version == "" {
		v, err := r.cfg.Client.Discovery().ServerVersion()
		if err != nil {
			return fmt.Errorf("asking the API server's version: %w", err)
		}
		r.cfg.Version = v.GitVersion
	}
	nodes := r.cfg.Client.CoreV1().Nodes()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: r.cfg.NodeName, Labels: r.labels()},
		Spec:       corev1.NodeSpec{Taints: append([]corev1.Taint(nil), r.cfg.Taints...)},
	}
	// As upstream's admission does: no pods before the node says Ready.
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}
	if !hasTaint(node.Spec.Taints, notReady) {
		node.Spec.Taints = append(node.Spec.Taints, notReady)
	}
	o := r.observe(ctx)
	events := setStatus(node, o)
	created, err := nodes.Create(ctx, node, metav1.CreateOptions{})
	if err == nil {
		r.log.Info("registered node", "ip", r.cfg.NodeIP)
		r.lastReport = o.now
		r.registeredAs(created.UID)
		r.record(events)
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating node %s: %w", r.cfg.NodeName, err)
	}
	existing, err := nodes.Get(ctx, r.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("getting node %s: %w", r.cfg.NodeName, err)
	}
	want := r.labels()
	patch := map[string]string{}
	for k, v := range want {
		if have, ok := existing.Labels[k]; !ok || have != v {
			patch[k] = v
		}
	}
	if len(patch) > 0 {
		body, err := jsonLabelsPatch(patch)
		if err != nil {
			return err
		}
		existing, err = nodes.Patch(ctx, r.cfg.NodeName, types.MergePatchType, body, metav1.PatchOptions{})
		if err != nil {
			return fmt.Errorf("patching the labels of node %s: %w", r.cfg.NodeName, err)
		}
	}
	r.log.Info("node already registered", "ip", r.cfg.NodeIP)
	r.registeredAs(existing.UID)
	return nil
}

func (r *Reporter) registeredAs(uid types.UID) {
	r.mu.Lock()
	r.nodeUID = uid
	r.mu.Unlock()
	r.regOnce.Do(func() { close(r.registered) })
}

func hasTaint(taints []corev1.Taint, t corev1.Taint) bool {
	for _, have := range taints {
		if have.Key == t.Key && have.Effect == t.Effect {
			return true
		}
	}
	return false
}

// observe gathers one observation: it asks the runtime, the network state
// and Usage. Failures are part of the observation, not errors.
func (r *Reporter) observe(ctx context.Context) *observation {
	o := &observation{
		now:            r.cfg.Now(),
		machine:        r.machine,
		nodeName:       r.cfg.NodeName,
		nodeIP:         r.cfg.NodeIP,
		kubeletPort:    r.cfg.KubeletPort,
		maxPods:        r.cfg.MaxPods,
		reserved:       r.cfg.Reserved,
		held:           r.held(),
		kubeletVersion: r.cfg.Version,
	}
	o.runtimeName, o.runtimeVersion, o.runtimeErr = r.cfg.Runtime.Version(ctx)
	if o.runtimeErr != nil {
		r.log.Debug("container runtime is down", "err", o.runtimeErr)
	} else if imgs, err := r.cfg.Runtime.ListImages(ctx); err != nil {
		r.log.Debug("listing images failed", "err", err)
	} else {
		o.images = append([]cri.Image{}, imgs...) // non-nil: listed
	}
	if r.cfg.Usage != nil {
		if p, err := r.cfg.Usage(ctx); err != nil {
			r.log.Debug("reading node pressure failed", "err", err)
		} else {
			r.pressure = p
		}
	}
	o.pressure = r.pressure
	r.mu.Lock()
	o.networkReady, o.networkMessage = r.networkReady, r.networkMessage
	r.mu.Unlock()
	return o
}

// runStatus syncs the status every StatusInterval and on kicks until ctx
// is done.
func (r *Reporter) runStatus(ctx context.Context) {
	t := time.NewTicker(r.cfg.StatusInterval)
	defer t.Stop()
	for {
		if err := r.syncStatus(ctx); err != nil && ctx.Err() == nil {
			r.log.Info("updating node status failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
	}
}

// statusRetries bounds the attempts of one sync (upstream's
// nodeStatusUpdateRetry).
const statusRetries = 5

// syncStatus computes the node's status and posts it if it changed or was
// last posted ReportInterval ago. The first read comes from the API
// server's cache (resourceVersion 0), as upstream's; a conflict re-reads
// from etcd and recomputes. A missing node is registered again.
func (r *Reporter) syncStatus(ctx context.Context) error {
	o := r.observe(ctx)
	nodes := r.cfg.Client.CoreV1().Nodes()
	var err error
	for attempt := range statusRetries {
		opts := metav1.GetOptions{}
		if attempt == 0 {
			opts.ResourceVersion = "0"
		}
		var node *corev1.Node
		node, err = nodes.Get(ctx, r.cfg.NodeName, opts)
		if apierrors.IsNotFound(err) {
			r.log.Info("node is gone; registering it again")
			return r.register(ctx)
		}
		if err != nil {
			return fmt.Errorf("getting node %s: %w", r.cfg.NodeName, err)
		}
		if node.UID != r.currentUID() {
			r.registeredAs(node.UID)
		}
		updated := node.DeepCopy()
		events := setStatus(updated, o)
		if !statusChanged(&node.Status, &updated.Status) && o.now.Sub(r.lastReport) < r.cfg.ReportInterval {
			return nil
		}
		_, err = nodes.UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("updating the status of node %s: %w", r.cfg.NodeName, err)
		}
		r.lastReport = o.now
		r.record(events)
		return nil
	}
	return fmt.Errorf("updating the status of node %s: %d conflicts: %w", r.cfg.NodeName, statusRetries, err)
}

func (r *Reporter) currentUID() types.UID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodeUID
}

// record records the node events with the given reasons, as upstream's
// kubelet does ("Node n status is now: NodeReady").
func (r *Reporter) record(reasons []string) {
	if r.cfg.Recorder == nil {
		return
	}
	ref := &corev1.ObjectReference{Kind: "Node", Name: r.cfg.NodeName, UID: types.UID(r.cfg.NodeName)}
	for _, reason := range reasons {
		r.cfg.Recorder.Eventf(ref, corev1.EventTypeNormal, reason, "Node %s status is now: %s", r.cfg.NodeName, reason)
	}
}

// backoff is a doubling delay with a ceiling.
type backoff struct {
	next, initial, max time.Duration
}

func newBackoff(initial, max time.Duration) *backoff {
	return &backoff{next: initial, initial: initial, max: max}
}

// wait sleeps the current delay (or until ctx is done) and doubles it.
func (b *backoff) wait(ctx context.Context) error {
	t := time.NewTimer(b.next)
	defer t.Stop()
	b.next = min(2*b.next, b.max)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (b *backoff) reset() { b.next = b.initial }

// held returns what hard eviction holds back from allocatable.
func (r *Reporter) held() corev1.ResourceList {
	if r.cfg.Held != nil {
		return r.cfg.Held(uint64(r.machine.memoryBytes), uint64(r.machine.storageBytes))
	}
	return corev1.ResourceList{
		corev1.ResourceMemory:           resource.MustParse("100Mi"),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(r.machine.storageBytes*5/100, resource.BinarySI),
	}
}
