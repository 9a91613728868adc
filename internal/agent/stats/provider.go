package stats

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/meminfo"
)

// SampleInterval is how often Run samples CPU counters, so that a Summary
// always has a rate over at most about this window.
const SampleInterval = 10 * time.Second

// Labels the agent sets on every sandbox and container (see the agent's
// conventions); used when a container's sandbox is gone from the list.
const (
	labelPodName      = "io.kubernetes.pod.name"
	labelPodNamespace = "io.kubernetes.pod.namespace"
	labelPodUID       = "io.kubernetes.pod.uid"
)

// Runtime is what the Provider needs from the container runtime;
// *cri.Client and *cri.Fake implement it.
type Runtime interface {
	ListSandboxes(ctx context.Context, labels map[string]string) ([]cri.Sandbox, error)
	ListContainerStats(ctx context.Context) ([]cri.ContainerStats, error)
}

var (
	_ Runtime = (*cri.Client)(nil)
	_ Runtime = (*cri.Fake)(nil)
)

// Config configures a Provider.
type Config struct {
	// NodeName is reported as the summary's node name.
	NodeName string
	// Runtime lists sandboxes and container stats; nil reports no pods.
	Runtime Runtime
	// RootFS is a path on the node filesystem (the data dir); the image
	// filesystem is taken to be the same one, since containerd keeps its
	// state under the data dir.
	RootFS string
	// ProcRoot is where proc is mounted; "" means "/proc".
	ProcRoot string
	// Now is the clock for node readings; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Provider computes the node's resource usage summary. It is safe for
// concurrent use. New does not start sampling: Run does.
type Provider struct {
	cfg Config
	log *slog.Logger

	mu         sync.Mutex
	nodeRate   cpuRate             // guarded by mu
	containers map[string]*cpuRate // guarded by mu; by container ID
}

// New returns a Provider for cfg.
func New(cfg Config) *Provider {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Provider{cfg: cfg, log: cfg.Logger, containers: map[string]*cpuRate{}}
}

// Run samples the CPU counters of the node and its containers every
// SampleInterval, starting at once, until ctx is done; it then returns nil.
// Failed samples are logged and retried at the next tick.
func (p *Provider) Run(ctx context.Context) error {
	t := time.NewTicker(SampleInterval)
	defer t.Stop()
	for {
		if _, err := p.Summary(ctx); err != nil && ctx.Err() == nil {
			p.log.Debug("sampling usage failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Summary reads the node's and its running containers' usage now. CPU
// rates (usageNanoCores) are over the interval since the previous reading
// (at least MinRateWindow; Run keeps it at most about SampleInterval);
// before the first such interval they are nil. Node memory workingSetBytes
// is MemTotal - MemAvailable and usageBytes MemTotal - MemFree.
//
// A node reading that fails is an error; a runtime that fails leaves the
// pods out, logged, so the node's numbers are still served.
func (p *Provider) Summary(ctx context.Context) (*Summary, error) {
	node, err := p.nodeStats()
	if err != nil {
		return nil, err
	}
	out := &Summary{Node: node, Pods: []PodStats{}}
	if p.cfg.Runtime != nil {
		pods, err := p.podStats(ctx, node.Fs)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("stats: listing pods: %w", err)
			}
			p.log.Debug("listing pod usage failed", "err", err)
		}
		out.Pods = pods
	}
	return out, nil
}

func (p *Provider) nodeStats() (NodeStats, error) {
	stat, err := readProc(p.cfg.ProcRoot, "stat")
	if err != nil {
		return NodeStats{}, err
	}
	memData, err := readProc(p.cfg.ProcRoot, "meminfo")
	if err != nil {
		return NodeStats{}, err
	}
	now := p.cfg.Now()
	cpu, err := parseStat(stat)
	if err != nil {
		return NodeStats{}, err
	}
	mem, err := parseMeminfo(memData)
	if err != nil {
		return NodeStats{}, err
	}
	p.mu.Lock()
	rate := p.nodeRate.observe(now, cpu.busyNanos)
	p.mu.Unlock()

	t := metav1.NewTime(now)
	node := NodeStats{
		NodeName:  p.cfg.NodeName,
		StartTime: metav1.NewTime(cpu.boot),
		CPU:       &CPUStats{Time: t, UsageNanoCores: clone(rate), UsageCoreNanoSeconds: ptr(cpu.busyNanos)},
		Memory: &MemoryStats{
			Time:            t,
			AvailableBytes:  ptr(mem.available),
			UsageBytes:      ptr(mem.total - min(mem.free, mem.total)),
			WorkingSetBytes: ptr(mem.total - mem.available),
			RSSBytes:        ptr(mem.anon),
		},
	}
	if vm, err := readProc(p.cfg.ProcRoot, "vmstat"); err == nil {
		kv := meminfo.Parse(vm)
		if v, ok := kv["pgfault"]; ok {
			node.Memory.PageFaults = ptr(v)
		}
		if v, ok := kv["pgmajfault"]; ok {
			node.Memory.MajorPageFaults = ptr(v)
		}
	}
	if p.cfg.RootFS != "" {
		fs, err := statFS(p.cfg.RootFS)
		if err != nil {
			return NodeStats{}, err
		}
		node.Fs = fsStats(t, fs)
		node.Runtime = &RuntimeStats{ImageFs: fsStats(t, fs)}
	}
	if r := p.rlimit(t); r != nil {
		node.Rlimit = r
	}
	return node, nil
}

// rlimit reads pid_max and the thread count; nil when either is missing.
func (p *Provider) rlimit(t metav1.Time) *RlimitStats {
	la, err := readProc(p.cfg.ProcRoot, "loadavg")
	if err != nil {
		return nil
	}
	n, err := parseLoadavg(la)
	if err != nil {
		return nil
	}
	pm, err := readProc(p.cfg.ProcRoot, "sys/kernel/pid_max")
	if err != nil {
		return nil
	}
	var maxPID int64
	if _, err := fmt.Sscan(string(pm), &maxPID); err != nil {
		return nil
	}
	return &RlimitStats{Time: t, MaxPID: &maxPID, NumOfRunningProcesses: &n}
}

func fsStats(t metav1.Time, fs fsInfo) *FsStats {
	return &FsStats{
		Time:           t,
		AvailableBytes: ptr(fs.available),
		CapacityBytes:  ptr(fs.capacity),
		UsedBytes:      ptr(fs.used),
		InodesFree:     ptr(fs.inodesFree),
		Inodes:         ptr(fs.inodes),
		InodesUsed:     ptr(fs.inodes - min(fs.inodesFree, fs.inodes)),
	}
}

// podStats groups the running containers by pod. nodeFs (may be nil)
// gives the ephemeral storage's capacity.
func (p *Provider) podStats(ctx context.Context, nodeFs *FsStats) ([]PodStats, error) {
	sandboxes, err := p.cfg.Runtime.ListSandboxes(ctx, nil)
	if err != nil {
		return []PodStats{}, err
	}
	ctrs, err := p.cfg.Runtime.ListContainerStats(ctx)
	if err != nil {
		return []PodStats{}, err
	}

	// CPU rates of every container the runtime still has; forget the rest.
	rates := make(map[string]*uint64, len(ctrs))
	p.mu.Lock()
	seen := make(map[string]bool, len(ctrs))
	for _, c := range ctrs {
		seen[c.ID] = true
		if c.Timestamp.IsZero() {
			continue
		}
		r, ok := p.containers[c.ID]
		if !ok {
			r = &cpuRate{}
			r.seed(c.CreatedAt)
			p.containers[c.ID] = r
		}
		rates[c.ID] = clone(r.observe(c.Timestamp, c.CPUUsageCoreNanoSeconds))
	}
	for id := range p.containers {
		if !seen[id] {
			delete(p.containers, id)
		}
	}
	p.mu.Unlock()

	return groupPods(sandboxes, ctrs, rates, nodeFs), nil
}

// podKey identifies a pod across its sandboxes.
type podKey struct{ ns, name, uid string }

// groupPods builds the pods' stats: a pod is listed when it has a Ready
// sandbox; its containers are the running ones (by name, the highest
// attempt, ties to the newest); its CPU and memory are their sums, nil
// unless every container's is known. Pods are sorted by namespace and
// name, containers by name.
func groupPods(sandboxes []cri.Sandbox, ctrs []cri.ContainerStats, rates map[string]*uint64, nodeFs *FsStats) []PodStats {
	type pod struct {
		ref        PodReference
		start      time.Time
		ready      bool
		containers map[string]cri.ContainerStats // by name
	}
	pods := map[podKey]*pod{}
	bySandbox := map[string]podKey{}
	for _, sb := range sandboxes {
		k := podKey{sb.Namespace, sb.Name, sb.UID}
		bySandbox[sb.ID] = k
		pd, ok := pods[k]
		if !ok {
			pd = &pod{ref: PodReference{Name: sb.Name, Namespace: sb.Namespace, UID: sb.UID}, containers: map[string]cri.ContainerStats{}}
			pods[k] = pd
		}
		// The start is the current sandbox's: the newest Ready one.
		if sb.State == cri.SandboxReady && (!pd.ready || sb.CreatedAt.After(pd.start)) {
			pd.start, pd.ready = sb.CreatedAt, true
		} else if !pd.ready && sb.CreatedAt.After(pd.start) {
			pd.start = sb.CreatedAt
		}
	}
	for _, c := range ctrs {
		if c.Timestamp.IsZero() {
			continue // not running
		}
		k, ok := bySandbox[c.SandboxID]
		if !ok {
			k = podKey{c.Labels[labelPodNamespace], c.Labels[labelPodName], c.Labels[labelPodUID]}
		}
		pd, ok := pods[k]
		if !ok || !pd.ready {
			continue
		}
		if old, ok := pd.containers[c.Name]; ok && (old.Attempt > c.Attempt || old.Attempt == c.Attempt && !c.CreatedAt.After(old.CreatedAt)) {
			continue
		}
		pd.containers[c.Name] = c
	}

	out := []PodStats{}
	for _, pd := range pods {
		if !pd.ready {
			continue
		}
		ps := PodStats{PodRef: pd.ref, StartTime: metav1.NewTime(pd.start), Containers: []ContainerStats{}}
		var (
			latest              time.Time
			cpuCum, cpuRate     uint64
			ws, usage, writable uint64
			cpuKnown            = len(pd.containers) > 0
		)
		for _, name := range slices.Sorted(maps.Keys(pd.containers)) {
			c := pd.containers[name]
			t := metav1.NewTime(c.Timestamp)
			if c.Timestamp.After(latest) {
				latest = c.Timestamp
			}
			rate := rates[c.ID]
			if rate == nil {
				cpuKnown = false
			} else {
				cpuRate += *rate
			}
			cpuCum += c.CPUUsageCoreNanoSeconds
			ws += c.MemoryWorkingSetBytes
			usage += c.MemoryUsageBytes
			writable += c.WritableLayerUsedBytes
			ps.Containers = append(ps.Containers, ContainerStats{
				Name:      c.Name,
				StartTime: metav1.NewTime(c.CreatedAt),
				CPU:       &CPUStats{Time: t, UsageNanoCores: rate, UsageCoreNanoSeconds: ptr(c.CPUUsageCoreNanoSeconds)},
				Memory:    &MemoryStats{Time: t, WorkingSetBytes: ptr(c.MemoryWorkingSetBytes), UsageBytes: ptr(c.MemoryUsageBytes)},
				Rootfs:    &FsStats{Time: t, UsedBytes: ptr(c.WritableLayerUsedBytes)},
			})
		}
		if len(pd.containers) > 0 {
			t := metav1.NewTime(latest)
			ps.CPU = &CPUStats{Time: t, UsageCoreNanoSeconds: ptr(cpuCum)}
			if cpuKnown {
				ps.CPU.UsageNanoCores = ptr(cpuRate)
			}
			ps.Memory = &MemoryStats{Time: t, WorkingSetBytes: ptr(ws), UsageBytes: ptr(usage)}
			ps.EphemeralStorage = &FsStats{Time: t, UsedBytes: ptr(writable)}
			if nodeFs != nil {
				ps.EphemeralStorage.AvailableBytes = clone(nodeFs.AvailableBytes)
				ps.EphemeralStorage.CapacityBytes = clone(nodeFs.CapacityBytes)
			}
		}
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b PodStats) int {
		return cmp.Or(cmp.Compare(a.PodRef.Namespace, b.PodRef.Namespace), cmp.Compare(a.PodRef.Name, b.PodRef.Name), cmp.Compare(a.PodRef.UID, b.PodRef.UID))
	})
	return out
}

// NodeUsage is the node-level numbers eviction and pressure conditions
// need, read without asking the runtime.
type NodeUsage struct {
	Time time.Time
	// Memory: total, available (MemAvailable) and working set (total -
	// available).
	MemoryCapacityBytes, MemoryAvailableBytes, MemoryWorkingSetBytes uint64
	// NodeFS is the filesystem of Config.RootFS (zero without one); the
	// image filesystem is the same.
	NodeFSCapacityBytes, NodeFSAvailableBytes uint64
	NodeFSInodes, NodeFSInodesFree            uint64
	// MaxPID and Processes (threads) for pid.available; zero if unknown.
	MaxPID, Processes int64
}

// NodeUsage reads the node's memory, filesystem and process numbers now.
// It neither updates nor uses CPU rates and is cheap enough to call every
// few seconds.
func (p *Provider) NodeUsage(ctx context.Context) (NodeUsage, error) {
	if err := ctx.Err(); err != nil {
		return NodeUsage{}, err
	}
	memData, err := readProc(p.cfg.ProcRoot, "meminfo")
	if err != nil {
		return NodeUsage{}, err
	}
	mem, err := parseMeminfo(memData)
	if err != nil {
		return NodeUsage{}, err
	}
	now := p.cfg.Now()
	u := NodeUsage{
		Time:                  now,
		MemoryCapacityBytes:   mem.total,
		MemoryAvailableBytes:  mem.available,
		MemoryWorkingSetBytes: mem.total - mem.available,
	}
	if p.cfg.RootFS != "" {
		fs, err := statFS(p.cfg.RootFS)
		if err != nil {
			return NodeUsage{}, err
		}
		u.NodeFSCapacityBytes, u.NodeFSAvailableBytes = fs.capacity, fs.available
		u.NodeFSInodes, u.NodeFSInodesFree = fs.inodes, fs.inodesFree
	}
	if r := p.rlimit(metav1.NewTime(now)); r != nil {
		u.MaxPID, u.Processes = *r.MaxPID, *r.NumOfRunningProcesses
	}
	return u, nil
}

// ServeHTTP answers GET /stats/summary (and /stats/summary/) with the
// Summary as JSON; the caller mounts it and authorizes the request.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s, err := p.Summary(r.Context())
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		http.Error(w, fmt.Sprintf("reading usage: %v", err), http.StatusInternalServerError)
		return
	}
	b, err := json.Marshal(s)
	if err != nil {
		http.Error(w, fmt.Sprintf("encoding summary: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

func ptr[T any](v T) *T { return &v }

// clone copies *p so summaries never share pointers with the Provider.
func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
