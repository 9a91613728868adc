package eviction

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/agent/nodestatus"
)

const mi = 1 << 20

// pod builds a pod named name with one container requesting and limiting
// the given memory and ephemeral storage ("" for none) and a priority.
func pod(name string, priority int32, request, limit, storageRequest string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name)},
		Spec: corev1.PodSpec{
			Priority:   &priority,
			Containers: []corev1.Container{{Name: "c"}},
		},
	}
	res := &p.Spec.Containers[0].Resources
	if request != "" {
		res.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(request)}
	}
	if limit != "" {
		res.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limit)}
	}
	if storageRequest != "" {
		if res.Requests == nil {
			res.Requests = corev1.ResourceList{}
		}
		res.Requests[corev1.ResourceEphemeralStorage] = resource.MustParse(storageRequest)
	}
	return p
}

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func TestRank(t *testing.T) {
	t.Parallel()
	var (
		bestEffortSmall = pod("besteffort-small", 0, "", "", "")
		bestEffortBig   = pod("besteffort-big", 0, "", "", "")
		burstableOver   = pod("burstable-over", 0, "100Mi", "", "")
		burstableUnder  = pod("burstable-under", 0, "500Mi", "", "")
		guaranteed      = pod("guaranteed", 0, "200Mi", "200Mi", "")
		lowPriority     = pod("low-priority-over", -10, "100Mi", "", "")
		highPriority    = pod("high-priority-besteffort", 1000, "", "", "")
		noStats         = pod("no-stats", 0, "1Gi", "1Gi", "")
		diskHog         = pod("disk-hog", 0, "", "", "1Gi")
		diskSmall       = pod("disk-small", 0, "", "", "")
	)
	usage := map[types.UID]PodUsage{
		"besteffort-small":         {MemoryWorkingSetBytes: 10 * mi},
		"besteffort-big":           {MemoryWorkingSetBytes: 350 * mi},
		"burstable-over":           {MemoryWorkingSetBytes: 400 * mi}, // 300Mi over
		"burstable-under":          {MemoryWorkingSetBytes: 450 * mi},
		"guaranteed":               {MemoryWorkingSetBytes: 100 * mi},
		"low-priority-over":        {MemoryWorkingSetBytes: 101 * mi},
		"high-priority-besteffort": {MemoryWorkingSetBytes: 900 * mi},
		"disk-hog":                 {EphemeralStorageBytes: 3 << 30}, // 2Gi over
		"disk-small":               {EphemeralStorageBytes: 100 * mi},
	}
	tests := []struct {
		name string
		pods []*corev1.Pod
		res  corev1.ResourceName
		want []string
	}{
		{
			name: "QoS order falls out of usage above request",
			pods: []*corev1.Pod{guaranteed, burstableUnder, bestEffortSmall, burstableOver, bestEffortBig},
			res:  corev1.ResourceMemory,
			want: []string{"besteffort-big", "burstable-over", "besteffort-small", "burstable-under", "guaranteed"},
		},
		{
			name: "exceeding requests before priority, then lower priority first",
			pods: []*corev1.Pod{highPriority, guaranteed, lowPriority, bestEffortBig},
			res:  corev1.ResourceMemory,
			want: []string{"low-priority-over", "besteffort-big", "high-priority-besteffort", "guaranteed"},
		},
		{
			name: "pods without usage first",
			pods: []*corev1.Pod{bestEffortBig, noStats},
			res:  corev1.ResourceMemory,
			want: []string{"no-stats", "besteffort-big"},
		},
		{
			name: "disk by ephemeral storage above request",
			pods: []*corev1.Pod{diskSmall, diskHog, guaranteed},
			res:  corev1.ResourceEphemeralStorage,
			want: []string{"disk-hog", "disk-small", "guaranteed"},
		},
		{
			name: "empty",
			res:  corev1.ResourceMemory,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, names(Rank(tt.pods, usage, tt.res))); diff != "" {
				t.Errorf("Rank (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeNode drives a Manager: its usage, its pods and their usage, and the
// evictions it was asked for.
type fakeNode struct {
	usage    Usage
	pods     []*corev1.Pod
	podUsage map[types.UID]PodUsage
	refuse   map[string]bool // pod names whose eviction fails
	evicted  []string        // "name: message"
	now      time.Time
}

func (n *fakeNode) manager(t *testing.T) *Manager {
	t.Helper()
	m, err := New(Config{
		Usage:    func(context.Context) (Usage, error) { return n.usage, nil },
		Pods:     func() []*corev1.Pod { return n.pods },
		PodUsage: func(context.Context) (map[types.UID]PodUsage, error) { return n.podUsage, nil },
		Evict: func(_ context.Context, p *corev1.Pod, reason, msg string) error {
			if n.refuse[p.Name] {
				return errors.New("refused")
			}
			n.evicted = append(n.evicted, p.Name+": "+reason+": "+msg)
			return nil
		},
		Now:    func() time.Time { return n.now },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func healthy() Usage {
	return Usage{
		MemoryAvailableBytes: 2 << 30, MemoryCapacityBytes: 4 << 30,
		NodeFSAvailableBytes: 50 << 30, NodeFSCapacityBytes: 100 << 30,
		NodeFSInodesFree: 500000, NodeFSInodes: 1000000,
		ImageFSAvailableBytes: 50 << 30, ImageFSCapacityBytes: 100 << 30,
	}
}

func TestSynchronize(t *testing.T) {
	t.Parallel()
	static := pod("static", 0, "", "", "")
	static.Annotations = map[string]string{"kubernetes.io/config.source": "file"}
	critical := pod("critical", systemCriticalPriority, "", "", "")
	done := pod("done", 0, "", "", "")
	done.Status.Phase = corev1.PodSucceeded
	pods := []*corev1.Pod{static, critical, done, pod("guaranteed", 0, "200Mi", "200Mi", ""), pod("besteffort", 0, "", "", "")}
	podUsage := map[types.UID]PodUsage{
		"static": {MemoryWorkingSetBytes: 900 * mi, EphemeralStorageBytes: 9 << 30}, "critical": {MemoryWorkingSetBytes: 900 * mi},
		"done": {}, "guaranteed": {MemoryWorkingSetBytes: 150 * mi, EphemeralStorageBytes: 1 << 30},
		"besteffort": {MemoryWorkingSetBytes: 300 * mi, EphemeralStorageBytes: 10 * mi},
	}

	tests := []struct {
		name         string
		usage        func(*Usage)
		refuse       map[string]bool
		wantEvicted  []string
		wantErr      bool
		wantPressure nodestatus.Pressure
	}{
		{name: "healthy: nothing", usage: func(*Usage) {}},
		{
			name:  "memory below 100Mi evicts the BestEffort pod, not the critical ones",
			usage: func(u *Usage) { u.MemoryAvailableBytes = 50 * mi },
			wantEvicted: []string{"besteffort: Evicted: The node was low on resource: memory. " +
				"Threshold quantity: 100Mi, available: 50Mi. Pod was using 300Mi, request is 0. "},
			wantPressure: nodestatus.Pressure{Memory: true},
		},
		{
			name:   "a refused eviction goes to the next pod",
			usage:  func(u *Usage) { u.MemoryAvailableBytes = 50 * mi },
			refuse: map[string]bool{"besteffort": true},
			wantEvicted: []string{"guaranteed: Evicted: The node was low on resource: memory. " +
				"Threshold quantity: 100Mi, available: 50Mi. Pod was using 150Mi, request is 200Mi. "},
			wantPressure: nodestatus.Pressure{Memory: true},
		},
		{
			name:         "every eviction refused",
			usage:        func(u *Usage) { u.MemoryAvailableBytes = 50 * mi },
			refuse:       map[string]bool{"besteffort": true, "guaranteed": true},
			wantErr:      true,
			wantPressure: nodestatus.Pressure{Memory: true},
		},
		{
			name:  "nodefs below 5% ranks by ephemeral storage",
			usage: func(u *Usage) { u.NodeFSAvailableBytes = 4 << 30 },
			wantEvicted: []string{"guaranteed: Evicted: The node was low on resource: ephemeral-storage. " +
				"Threshold quantity: 5Gi, available: 4Gi. Pod was using 1Gi, request is 0. "},
			wantPressure: nodestatus.Pressure{Disk: true},
		},
		{
			name:         "inodes below 5%",
			usage:        func(u *Usage) { u.NodeFSInodesFree = 1000 },
			wantEvicted:  []string{"guaranteed: Evicted: The node was low on resource: inodes. Threshold quantity: 50k, available: 1k. Pod was using 1Gi, request is 0. "},
			wantPressure: nodestatus.Pressure{Disk: true},
		},
		{
			name:  "memory goes first when both are short",
			usage: func(u *Usage) { u.ImageFSAvailableBytes = 1 << 30; u.MemoryAvailableBytes = 50 * mi },
			wantEvicted: []string{"besteffort: Evicted: The node was low on resource: memory. " +
				"Threshold quantity: 100Mi, available: 50Mi. Pod was using 300Mi, request is 0. "},
			wantPressure: nodestatus.Pressure{Memory: true, Disk: true},
		},
		{
			name:  "unknown signals are not evaluated",
			usage: func(u *Usage) { *u = Usage{} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := &fakeNode{usage: healthy(), pods: pods, podUsage: podUsage, refuse: tt.refuse, now: time.Unix(1000, 0)}
			tt.usage(&n.usage)
			m := n.manager(t)
			got, err := m.Synchronize(context.Background())
			if (err != nil) != tt.wantErr {
				t.Errorf("Synchronize error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantEvicted, n.evicted); diff != "" {
				t.Errorf("evictions (-want +got):\n%s", diff)
			}
			if (got != nil) != (len(tt.wantEvicted) > 0) {
				t.Errorf("Synchronize returned pod %v, evictions %v", got, n.evicted)
			}
			p, _ := m.Pressure(context.Background())
			if diff := cmp.Diff(tt.wantPressure, p); diff != "" {
				t.Errorf("Pressure (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPressureTransition checks that pressure stays for the transition
// period after the threshold clears, and that nothing is evicted then.
func TestPressureTransition(t *testing.T) {
	t.Parallel()
	n := &fakeNode{usage: healthy(), pods: []*corev1.Pod{pod("p", 0, "", "", "")}, now: time.Unix(1000, 0)}
	m := n.manager(t)
	ctx := context.Background()
	steps := []struct {
		after     time.Duration
		available uint64
		want      bool
		evictions int
	}{
		{0, 1 << 30, false, 0},
		{10 * time.Second, 50 * mi, true, 1},
		{10 * time.Second, 1 << 30, true, 1},
		{4 * time.Minute, 1 << 30, true, 1},
		{time.Minute, 1 << 30, false, 1},
	}
	for i, s := range steps {
		n.now = n.now.Add(s.after)
		n.usage.MemoryAvailableBytes = s.available
		if _, err := m.Synchronize(ctx); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		p, _ := m.Pressure(ctx)
		if p.Memory != s.want || len(n.evicted) != s.evictions {
			t.Errorf("step %d: memory pressure %v with %d evictions, want %v with %d", i, p.Memory, len(n.evicted), s.want, s.evictions)
		}
	}
}

func TestAdmit(t *testing.T) {
	t.Parallel()
	bestEffort := pod("be", 0, "", "", "")
	burstable := pod("bu", 0, "10Mi", "", "")
	tolerating := pod("tol", 0, "", "", "")
	tolerating.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	critical := pod("crit", systemCriticalPriority+1, "", "", "")
	tests := []struct {
		name    string
		usage   func(*Usage)
		pod     *corev1.Pod
		wantOK  bool
		wantMsg string
	}{
		{"no pressure", func(*Usage) {}, bestEffort, true, ""},
		{"memory pressure refuses BestEffort", func(u *Usage) { u.MemoryAvailableBytes = 1 }, bestEffort, false, "The node had condition: [MemoryPressure]. "},
		{"memory pressure admits Burstable", func(u *Usage) { u.MemoryAvailableBytes = 1 }, burstable, true, ""},
		{"memory pressure admits a tolerating pod", func(u *Usage) { u.MemoryAvailableBytes = 1 }, tolerating, true, ""},
		{"disk pressure refuses all", func(u *Usage) { u.NodeFSAvailableBytes = 1 }, burstable, false, "The node had condition: [DiskPressure]. "},
		{"both", func(u *Usage) { u.NodeFSAvailableBytes = 1; u.MemoryAvailableBytes = 1 }, burstable, false, "The node had condition: [MemoryPressure DiskPressure]. "},
		{"critical always", func(u *Usage) { u.NodeFSAvailableBytes = 1 }, critical, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := &fakeNode{usage: healthy(), now: time.Unix(1000, 0)}
			tt.usage(&n.usage)
			m := n.manager(t)
			if _, err := m.Synchronize(context.Background()); err != nil {
				t.Fatal(err)
			}
			ok, reason, msg := m.Admit(tt.pod)
			if ok != tt.wantOK || msg != tt.wantMsg || (!ok && reason != "Evicted") {
				t.Errorf("Admit = %v, %q, %q; want %v, %q", ok, reason, msg, tt.wantOK, tt.wantMsg)
			}
		})
	}
}

func TestReadUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	meminfo := filepath.Join(dir, "meminfo")
	content := "MemTotal:       4194304 kB\nMemFree:         1048576 kB\nMemAvailable:    2000000 kB\nInactive(file):   524288 kB\n"
	if err := os.WriteFile(meminfo, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := readUsage(meminfo, filepath.Join(dir, "agent", "not-yet"), dir)
	if err != nil {
		t.Fatalf("readUsage: %v", err)
	}
	// working set = 4Gi - 1Gi - 512Mi = 2.5Gi; available = 1.5Gi.
	if u.MemoryCapacityBytes != 4<<30 || u.MemoryAvailableBytes != 1536*mi {
		t.Errorf("memory capacity %d available %d, want %d and %d", u.MemoryCapacityBytes, u.MemoryAvailableBytes, 4<<30, 1536*mi)
	}
	if u.NodeFSCapacityBytes == 0 || u.NodeFSAvailableBytes > u.NodeFSCapacityBytes || u.ImageFSCapacityBytes != u.NodeFSCapacityBytes {
		t.Errorf("file systems: %+v", u)
	}
	if _, err := HostUsage(dir, dir)(context.Background()); err != nil {
		t.Errorf("HostUsage on this machine: %v", err)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	n := &fakeNode{usage: healthy(), pods: []*corev1.Pod{pod("p", 0, "", "", "")}, now: time.Unix(1000, 0)}
	n.usage.MemoryAvailableBytes = 1
	evicted := make(chan string, 10)
	m, err := New(Config{
		Usage:    func(context.Context) (Usage, error) { return n.usage, nil },
		Pods:     func() []*corev1.Pod { return n.pods },
		PodUsage: func(context.Context) (map[types.UID]PodUsage, error) { return nil, nil },
		Evict: func(_ context.Context, p *corev1.Pod, _, _ string) error {
			evicted <- p.Name
			return nil
		},
		Interval: 10 * time.Millisecond,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	for range 2 { // one per interval, again while the pod is still listed
		select {
		case name := <-evicted:
			if name != "p" {
				t.Errorf("evicted %q, want p", name)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no eviction within 10s")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if _, err := New(Config{}); err == nil {
		t.Errorf("New without functions: nil error")
	}
}

func TestPIDPressure(t *testing.T) {
	t.Parallel()
	n := &fakeNode{
		usage: healthy(),
		pods:  []*corev1.Pod{pod("high", 100, "", "", ""), pod("low", -1, "", "", ""), pod("mid", 0, "", "", "")},
		now:   time.Unix(1000, 0),
	}
	n.usage.PIDCapacity, n.usage.PIDsAvailable = 32768, 100
	m := n.manager(t)
	ctx := context.Background()
	if _, err := m.Synchronize(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := m.Pressure(ctx); p.PID || len(n.evicted) != 0 {
		t.Errorf("without a pid threshold: pressure %+v, evictions %v", p, n.evicted)
	}

	m.cfg.Thresholds = append(DefaultThresholds(), Threshold{Signal: PIDAvailable, Percentage: 10})
	if _, err := m.Synchronize(ctx); err != nil {
		t.Fatal(err)
	}
	p, _ := m.Pressure(ctx)
	want := []string{"low: Evicted: The node was low on resource: pids. Threshold quantity: 3276, available: 100. "}
	if diff := cmp.Diff(want, n.evicted); diff != "" || !p.PID {
		t.Errorf("pid pressure %v; evictions (-want +got):\n%s", p.PID, diff)
	}
}

func TestParseThresholds(t *testing.T) {
	tests := []struct {
		in      string
		want    []Threshold
		wantErr string
	}{
		{in: "", want: []Threshold{}},
		{
			in:   "memory.available<100Mi,nodefs.available<5%,nodefs.inodesFree<5%,imagefs.available<5%",
			want: DefaultThresholds(),
		},
		{
			in:   " memory.available < 1Gi , imagefs.available<15% ",
			want: []Threshold{{Signal: MemoryAvailable, Quantity: 1 << 30}, {Signal: ImageFSAvailable, Percentage: 15}},
		},
		{in: "pid.available<10%", want: []Threshold{{Signal: PIDAvailable, Percentage: 10}}},
		{in: "memory.available=100Mi", wantErr: "want signal<quantity"},
		{in: "disk.available<5%", wantErr: `unknown signal "disk.available"`},
		{in: "nodefs.available<105%", wantErr: "between 0% and 100%"},
		{in: "nodefs.available<x%", wantErr: "between 0% and 100%"},
		{in: "memory.available<lots", wantErr: `"lots" is not a quantity`},
		{in: "memory.available<1Gi,memory.available<2Gi", wantErr: "given twice"},
	}
	for _, tt := range tests {
		got, err := ParseThresholds(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseThresholds(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseThresholds(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ParseThresholds(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestHeld(t *testing.T) {
	held := Held(DefaultThresholds(), 8<<30, 200<<30)
	if got := held[corev1.ResourceMemory]; got.Value() != 100<<20 {
		t.Errorf("memory held = %s, want 100Mi", got.String())
	}
	if got := held[corev1.ResourceEphemeralStorage]; got.Value() != 10<<30 {
		t.Errorf("ephemeral storage held = %s, want 10Gi (5%% of 200Gi)", got.String())
	}
	if held := Held([]Threshold{}, 8<<30, 200<<30); len(held) != 0 {
		t.Errorf("no thresholds hold back %v, want nothing", held)
	}
}

// A disk 86% full is under pressure with upstream's imagefs.available<15%
// but not with skiff's defaults: the case of the shared CI disks.
func TestDefaultsToleratesWellFilledDisk(t *testing.T) {
	u := Usage{
		MemoryAvailableBytes: 4 << 30, MemoryCapacityBytes: 8 << 30,
		NodeFSAvailableBytes: 14 << 30, NodeFSCapacityBytes: 100 << 30,
		NodeFSInodesFree: 1 << 20, NodeFSInodes: 2 << 20,
		ImageFSAvailableBytes: 14 << 30, ImageFSCapacityBytes: 100 << 30,
	}
	if got := crossedThresholds(u, DefaultThresholds()); len(got) != 0 {
		t.Errorf("defaults crossed %+v on a disk 86%% full", got)
	}
	upstream, err := ParseThresholds("memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%")
	if err != nil {
		t.Fatal(err)
	}
	if got := crossedThresholds(u, upstream); len(got) != 1 || got[0].threshold.Signal != ImageFSAvailable {
		t.Errorf("upstream's thresholds crossed %+v, want imagefs.available", got)
	}
}
