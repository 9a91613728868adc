package eviction

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/agent/nodestatus"
)

// Defaults of Config.
const (
	DefaultInterval                 = 10 * time.Second // upstream's monitoring interval
	DefaultPressureTransitionPeriod = 5 * time.Minute
)

// Reason is the reason of evicted pods and of pods refused by Admit.
const Reason = "Evicted"

// Signal names a node resource the manager watches, as upstream's eviction
// signals.
type Signal string

// Signals.
const (
	MemoryAvailable  Signal = "memory.available"
	NodeFSAvailable  Signal = "nodefs.available"
	NodeFSInodesFree Signal = "nodefs.inodesFree"
	ImageFSAvailable Signal = "imagefs.available"
	// PIDAvailable has no default threshold, as upstream's.
	PIDAvailable Signal = "pid.available"
)

// Usage is the node's usage at one time. A signal whose capacity is 0 is
// unknown and never crosses its threshold.
type Usage struct {
	// MemoryAvailableBytes is capacity minus the node's working set.
	MemoryAvailableBytes, MemoryCapacityBytes   uint64
	NodeFSAvailableBytes, NodeFSCapacityBytes   uint64
	NodeFSInodesFree, NodeFSInodes              uint64
	ImageFSAvailableBytes, ImageFSCapacityBytes uint64
	// PIDsAvailable is the pid limit minus the running processes.
	PIDsAvailable, PIDCapacity uint64
}

// available returns the signal's available amount and capacity.
func (u Usage) available(s Signal) (available, capacity uint64) {
	switch s {
	case MemoryAvailable:
		return u.MemoryAvailableBytes, u.MemoryCapacityBytes
	case NodeFSAvailable:
		return u.NodeFSAvailableBytes, u.NodeFSCapacityBytes
	case NodeFSInodesFree:
		return u.NodeFSInodesFree, u.NodeFSInodes
	case ImageFSAvailable:
		return u.ImageFSAvailableBytes, u.ImageFSCapacityBytes
	case PIDAvailable:
		return u.PIDsAvailable, u.PIDCapacity
	}
	return 0, 0
}

// PodUsage is one pod's usage.
type PodUsage struct {
	// MemoryWorkingSetBytes is the pod's memory working set.
	MemoryWorkingSetBytes uint64
	// EphemeralStorageBytes is the pod's containers' writable layers and
	// logs plus its disk-backed emptyDir volumes.
	EphemeralStorageBytes uint64
}

// Threshold is a hard eviction threshold: the signal is crossed when its
// available amount is below Quantity, or below Percentage percent of its
// capacity when Quantity is 0.
type Threshold struct {
	Signal     Signal
	Quantity   uint64
	Percentage float64
}

// DefaultThresholds returns skiff's hard eviction thresholds:
// memory.available<100Mi and nodefs.inodesFree<5% as upstream's kubelet,
// but nodefs.available<5% and imagefs.available<5% where upstream's are
// 10% and 15%. A small cluster often shares a large, well-filled disk
// (a laptop, a CI machine): upstream's 15% would taint such a node with
// disk pressure and refuse every pod while gigabytes are free. k3s makes
// the same choice. Config.Thresholds (the agent's --eviction-hard)
// restores upstream's.
func DefaultThresholds() []Threshold {
	return []Threshold{
		{Signal: MemoryAvailable, Quantity: 100 << 20},
		{Signal: NodeFSAvailable, Percentage: 5},
		{Signal: NodeFSInodesFree, Percentage: 5},
		{Signal: ImageFSAvailable, Percentage: 5},
	}
}

// ParseThresholds parses hard eviction thresholds in the syntax of
// upstream's --eviction-hard: comma-separated signal<quantity or
// signal<percent%, for example "memory.available<200Mi,nodefs.available<10%".
// Signals it does not name have no threshold; "" gives none at all.
func ParseThresholds(s string) ([]Threshold, error) {
	out := []Threshold{}
	seen := map[Signal]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "<")
		if !ok {
			return nil, fmt.Errorf("eviction threshold %q: want signal<quantity or signal<percent%%", part)
		}
		sig := Signal(strings.TrimSpace(name))
		switch sig {
		case MemoryAvailable, NodeFSAvailable, NodeFSInodesFree, ImageFSAvailable, PIDAvailable:
		default:
			return nil, fmt.Errorf("eviction threshold %q: unknown signal %q (want memory.available, nodefs.available, nodefs.inodesFree, imagefs.available or pid.available)", part, sig)
		}
		if seen[sig] {
			return nil, fmt.Errorf("eviction threshold %q: signal %s given twice", part, sig)
		}
		seen[sig] = true
		value = strings.TrimSpace(value)
		t := Threshold{Signal: sig}
		if pct, isPct := strings.CutSuffix(value, "%"); isPct {
			f, err := strconv.ParseFloat(pct, 64)
			if err != nil || f < 0 || f > 100 {
				return nil, fmt.Errorf("eviction threshold %q: percentage must be between 0%% and 100%%", part)
			}
			t.Percentage = f
		} else {
			q, err := resource.ParseQuantity(value)
			if err != nil || q.Sign() < 0 {
				return nil, fmt.Errorf("eviction threshold %q: %q is not a quantity", part, value)
			}
			t.Quantity = uint64(q.Value())
		}
		out = append(out, t)
	}
	return out, nil
}

// Held returns what the thresholds on memory.available and
// nodefs.available hold back from a node with the given memory and
// node file system capacities: upstream subtracts them from allocatable
// so that the scheduler does not fill a node up to eviction.
func Held(thresholds []Threshold, memoryCapacity, storageCapacity uint64) corev1.ResourceList {
	held := corev1.ResourceList{}
	for _, t := range thresholds {
		switch t.Signal {
		case MemoryAvailable:
			held[corev1.ResourceMemory] = *resource.NewQuantity(int64(t.limit(memoryCapacity)), resource.BinarySI)
		case NodeFSAvailable:
			held[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(t.limit(storageCapacity)), resource.BinarySI)
		}
	}
	return held
}

// Held returns what m's thresholds hold back from allocatable; see Held.
func (m *Manager) Held(memoryCapacity, storageCapacity uint64) corev1.ResourceList {
	return Held(m.cfg.Thresholds, memoryCapacity, storageCapacity)
}

// limit returns the amount below which t is crossed for capacity.
func (t Threshold) limit(capacity uint64) uint64 {
	if t.Quantity > 0 {
		return t.Quantity
	}
	return uint64(float64(capacity) * t.Percentage / 100)
}

// Config configures a Manager. Usage, Pods, PodUsage and Evict are
// required.
type Config struct {
	// Usage observes the node; see HostUsage.
	Usage func(ctx context.Context) (Usage, error)
	// Pods returns the pods the agent runs (not yet terminal). The
	// manager does not modify them.
	Pods func() []*corev1.Pod
	// PodUsage returns the usage of the pods by UID; a pod missing from
	// it ranks first, as upstream's.
	PodUsage func(ctx context.Context) (map[types.UID]PodUsage, error)
	// Evict kills the pod and marks it Failed with reason and message. An
	// error makes the manager try the next pod in rank.
	Evict func(ctx context.Context, pod *corev1.Pod, reason, message string) error
	// Thresholds; nil means DefaultThresholds().
	Thresholds []Threshold
	// Interval between observations; 0 means DefaultInterval.
	Interval time.Duration
	// PressureTransitionPeriod is how long a pressure condition stays after
	// its thresholds clear; 0 means DefaultPressureTransitionPeriod.
	PressureTransitionPeriod time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Manager is the eviction manager. Run it once; Pressure and Admit are safe
// to call from any goroutine at any time.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	lastMet map[Signal]time.Time // guarded by mu; when each signal was last crossed
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Manager, error) {
	if cfg.Usage == nil || cfg.Pods == nil || cfg.PodUsage == nil || cfg.Evict == nil {
		return nil, errors.New("eviction: Usage, Pods, PodUsage and Evict are required")
	}
	if cfg.Thresholds == nil {
		cfg.Thresholds = DefaultThresholds()
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.PressureTransitionPeriod == 0 {
		cfg.PressureTransitionPeriod = DefaultPressureTransitionPeriod
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{cfg: cfg, log: cfg.Logger.With("component", "eviction"), lastMet: map[Signal]time.Time{}}, nil
}

// Run calls Synchronize every Interval until ctx is done, logging its
// errors, and returns nil then.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		pod, err := m.Synchronize(ctx)
		if err != nil && ctx.Err() == nil {
			m.log.Info("eviction round failed", "err", err)
		}
		if pod != nil {
			m.log.Info("evicted pod", "pod", pod.Namespace+"/"+pod.Name)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// crossed is a threshold crossed now.
type crossed struct {
	threshold        Threshold
	available, limit uint64
}

// Synchronize observes the node once, records the thresholds crossed, and
// if one is crossed now evicts the first pod in rank for it that Evict
// accepts. It returns that pod (nil when none was evicted). Not safe to
// call concurrently with itself (Run calls it).
func (m *Manager) Synchronize(ctx context.Context) (*corev1.Pod, error) {
	u, err := m.cfg.Usage(ctx)
	if err != nil {
		return nil, fmt.Errorf("eviction: observing the node: %w", err)
	}
	now := m.cfg.Now()
	met := crossedThresholds(u, m.cfg.Thresholds)
	m.mu.Lock()
	for _, c := range met {
		m.lastMet[c.threshold.Signal] = now
	}
	m.mu.Unlock()
	if len(met) == 0 {
		return nil, nil
	}
	// Memory first, as upstream's byEvictionPriority.
	slices.SortStableFunc(met, func(a, b crossed) int {
		am, bm := a.threshold.Signal == MemoryAvailable, b.threshold.Signal == MemoryAvailable
		switch {
		case am && !bm:
			return -1
		case bm && !am:
			return 1
		}
		return 0
	})
	c := met[0]
	res := resourceOf(c.threshold.Signal)
	pods := evictable(m.cfg.Pods())
	if len(pods) == 0 {
		m.log.Info("node under pressure but no pod to evict", "signal", c.threshold.Signal)
		return nil, nil
	}
	stats, err := m.cfg.PodUsage(ctx)
	if err != nil {
		return nil, fmt.Errorf("eviction: reading pod usage: %w", err)
	}
	rankRes := res
	if res == "inodes" {
		rankRes = corev1.ResourceEphemeralStorage
	}
	var errs []error
	for _, pod := range Rank(pods, stats, rankRes) {
		msg := message(res, c, pod, stats, rankRes)
		if err := m.cfg.Evict(ctx, pod, Reason, msg); err != nil {
			errs = append(errs, fmt.Errorf("evicting pod %s/%s: %w", pod.Namespace, pod.Name, err))
			continue
		}
		return pod, nil
	}
	return nil, fmt.Errorf("eviction: no pod could be evicted: %w", errors.Join(errs...))
}

// crossedThresholds returns the thresholds u crosses, in order.
func crossedThresholds(u Usage, thresholds []Threshold) []crossed {
	var out []crossed
	for _, t := range thresholds {
		avail, capacity := u.available(t.Signal)
		if capacity == 0 {
			continue
		}
		if limit := t.limit(capacity); avail < limit {
			out = append(out, crossed{threshold: t, available: avail, limit: limit})
		}
	}
	return out
}

// resourceOf returns the resource upstream names in messages for s.
func resourceOf(s Signal) corev1.ResourceName {
	switch s {
	case MemoryAvailable:
		return corev1.ResourceMemory
	case NodeFSInodesFree:
		return "inodes"
	case PIDAvailable:
		return "pids"
	}
	return corev1.ResourceEphemeralStorage
}

// message is upstream's eviction message: the resource, the threshold and
// what is available, and what the pod used against its request.
func message(res corev1.ResourceName, c crossed, pod *corev1.Pod, stats map[types.UID]PodUsage, rankRes corev1.ResourceName) string {
	format := resource.BinarySI
	if res == "inodes" || res == "pids" {
		format = resource.DecimalSI
	}
	q := func(n uint64) string { return resource.NewQuantity(int64(n), format).String() }
	msg := fmt.Sprintf("The node was low on resource: %s. Threshold quantity: %s, available: %s. ", res, q(c.limit), q(c.available))
	if u, ok := stats[pod.UID]; ok && rankRes != "pids" {
		used := u.MemoryWorkingSetBytes
		if rankRes == corev1.ResourceEphemeralStorage {
			used = u.EphemeralStorageBytes
		}
		req := requestOf(pod, rankRes)
		msg += fmt.Sprintf("Pod was using %s, request is %s. ",
			resource.NewQuantity(int64(used), resource.BinarySI).String(), req.String())
	}
	return msg
}

// Pressure reports the node's pressure: a resource is under pressure when
// one of its thresholds was crossed within the last
// PressureTransitionPeriod. Memory is memory.available; disk the node and
// image file systems; PID pid.available (only with a threshold for it). Its signature fits
// nodestatus.Config.Usage; it never errs.
func (m *Manager) Pressure(context.Context) (nodestatus.Pressure, error) {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	recent := func(s Signal) bool {
		t, ok := m.lastMet[s]
		return ok && now.Sub(t) < m.cfg.PressureTransitionPeriod
	}
	return nodestatus.Pressure{
		Memory: recent(MemoryAvailable),
		Disk:   recent(NodeFSAvailable) || recent(NodeFSInodesFree) || recent(ImageFSAvailable),
		PID:    recent(PIDAvailable),
	}, nil
}

// Admit says whether the node should start pod now, as upstream's: under
// memory pressure only pods that are not BestEffort (or tolerate the
// memory-pressure taint) are admitted; under disk pressure none; critical
// pods always. A refusal carries reason Reason and upstream's message.
func (m *Manager) Admit(pod *corev1.Pod) (ok bool, reason, message string) {
	p, _ := m.Pressure(context.Background())
	var conds []corev1.NodeConditionType
	if p.Memory {
		conds = append(conds, corev1.NodeMemoryPressure)
	}
	if p.Disk {
		conds = append(conds, corev1.NodeDiskPressure)
	}
	if len(conds) == 0 || critical(pod) {
		return true, "", ""
	}
	if !p.Disk && (!bestEffort(pod) || toleratesMemoryPressure(pod)) {
		return true, "", ""
	}
	return false, Reason, fmt.Sprintf("The node had condition: %v. ", conds)
}

// toleratesMemoryPressure reports whether pod tolerates the NoSchedule
// memory-pressure taint (which has no value).
func toleratesMemoryPressure(pod *corev1.Pod) bool {
	for _, t := range pod.Spec.Tolerations {
		if t.Effect != "" && t.Effect != corev1.TaintEffectNoSchedule {
			continue
		}
		if t.Key == "" && t.Operator == corev1.TolerationOpExists {
			return true
		}
		if t.Key == corev1.TaintNodeMemoryPressure && (t.Operator == corev1.TolerationOpExists || t.Value == "") {
			return true
		}
	}
	return false
}
