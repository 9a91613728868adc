package stats

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// fakeProc is a proc root in a temp dir with a settable busy CPU time.
type fakeProc struct {
	t    *testing.T
	root string
}

const (
	bootUnix   = 1_700_000_000
	memTotalKB = 4 << 20 // 4 GiB
	memFreeKB  = 1 << 20
	memAvailKB = 3 << 20
	anonKB     = 512 << 10
)

func newFakeProc(t *testing.T) *fakeProc {
	t.Helper()
	p := &fakeProc{t: t, root: t.TempDir()}
	p.write("meminfo", fmt.Sprintf("MemTotal:       %d kB\nMemFree:        %d kB\nMemAvailable:   %d kB\nBuffers:  1 kB\nAnonPages:  %d kB\n",
		memTotalKB, memFreeKB, memAvailKB, anonKB))
	p.write("vmstat", "nr_free_pages 1\npgfault 1000\npgmajfault 7\n")
	p.write("loadavg", "0.43 0.64 1.55 2/95 18943\n")
	p.write("sys/kernel/pid_max", "32768\n")
	p.setBusy(0)
	return p
}

func (p *fakeProc) write(name, content string) {
	p.t.Helper()
	path := filepath.Join(p.root, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// setBusy writes a /proc/stat whose busy jiffies add up to busy, spread
// over user, nice, system, irq, softirq and steal, with idle and iowait
// that must not count.
func (p *fakeProc) setBusy(busy uint64) {
	p.t.Helper()
	user, nice, system, irq, softirq := busy/2, busy/10, busy/5, busy/20, busy/20
	steal := busy - user - nice - system - irq - softirq
	p.write("stat", fmt.Sprintf("cpu  %d %d %d 99999 555 %d %d %d 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2 3\nbtime %d\nprocesses 10\n",
		user, nice, system, irq, softirq, steal, bootUnix))
}

// clock is a settable clock shared by the Provider and the Fake runtime.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func u64(v uint64) *uint64 { return &v }

func TestParseStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		wantBusy uint64
		wantBoot int64
		wantErr  bool
	}{
		{name: "full", in: "cpu  10 20 30 1000 2000 40 50 60 70 80\nbtime 42\n", wantBusy: 210 * 1e7, wantBoot: 42},
		{name: "no steal", in: "cpu  10 20 30 1000 2000 40 50\n", wantBusy: 150 * 1e7},
		{name: "no cpu line", in: "intr 1\n", wantErr: true},
		{name: "short cpu line", in: "cpu 1 2 3\n", wantErr: true},
		{name: "garbage", in: "cpu  a b c d e f g h\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStat error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.busyNanos != tt.wantBusy {
				t.Errorf("busyNanos = %d, want %d", got.busyNanos, tt.wantBusy)
			}
			if tt.wantBoot != 0 && got.boot.Unix() != tt.wantBoot {
				t.Errorf("boot = %v, want unix %d", got.boot, tt.wantBoot)
			}
		})
	}
}

func TestCPURate(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	type reading struct {
		after time.Duration
		cum   uint64
		want  *uint64
	}
	tests := []struct {
		name     string
		seed     time.Time
		readings []reading
	}{
		{
			name: "rate after the second reading",
			readings: []reading{
				{0, 1e9, nil},
				{10 * time.Second, 6e9, u64(5e8)},
				{20 * time.Second, 16e9, u64(1e9)},
			},
		},
		{
			name: "too close keeps the last rate and base",
			readings: []reading{
				{0, 0, nil},
				{100 * time.Millisecond, 1e9, nil},
				{2 * time.Second, 2e9, u64(1e9)},
				{2100 * time.Millisecond, 9e9, u64(1e9)},
				{4 * time.Second, 4e9, u64(1e9)},
			},
		},
		{
			name: "seeded with the start",
			seed: t0.Add(-10 * time.Second),
			readings: []reading{
				{0, 5e9, u64(5e8)},
			},
		},
		{
			name: "counter reset and stale reading",
			readings: []reading{
				{0, 5e9, nil},
				{5 * time.Second, 1e9, nil},
				{3 * time.Second, 9e9, nil},
				{10 * time.Second, 6e9, u64(1e9)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r cpuRate
			r.seed(tt.seed)
			for i, rd := range tt.readings {
				got := r.observe(t0.Add(rd.after), rd.cum)
				if diff := cmp.Diff(rd.want, got); diff != "" {
					t.Errorf("reading %d: rate (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	proc := newFakeProc(t)
	clk := &clock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	t0 := clk.Now()
	rt := cri.NewFake("busybox")
	rt.Now = clk.Now
	p := New(Config{NodeName: "node-a", Runtime: rt, RootFS: t.TempDir(), ProcRoot: proc.root, Now: clk.Now})

	podLabels := func(name, uid string) map[string]string {
		return map[string]string{labelPodName: name, labelPodNamespace: "ns", labelPodUID: uid}
	}
	// Pod web: a running sandbox with main (attempt 0 exited, attempt 1
	// running) and a running side container.
	web := cri.SandboxConfig{Name: "web", Namespace: "ns", UID: "uid-web", Labels: podLabels("web", "uid-web")}
	webSB, err := rt.RunSandbox(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	start := func(sb string, cfg cri.SandboxConfig, name string, attempt uint32) string {
		t.Helper()
		id, err := rt.CreateContainer(ctx, sb, cfg, cri.ContainerConfig{Name: name, Attempt: attempt, Image: "busybox", Labels: cfg.Labels})
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	main0 := start(webSB, web, "main", 0)
	rt.Exit(main0, 1, "")
	main1 := start(webSB, web, "main", 1)
	side := start(webSB, web, "side", 0)
	// Pod gone: its sandbox is stopped, so it is not listed.
	gone := cri.SandboxConfig{Name: "gone", Namespace: "ns", UID: "uid-gone", Labels: podLabels("gone", "uid-gone")}
	goneSB, err := rt.RunSandbox(ctx, gone)
	if err != nil {
		t.Fatal(err)
	}
	start(goneSB, gone, "main", 0)
	if err := rt.StopSandbox(ctx, goneSB); err != nil {
		t.Fatal(err)
	}
	// Pod idle: ready, no containers yet.
	idle := cri.SandboxConfig{Name: "idle", Namespace: "ns", UID: "uid-idle", Labels: podLabels("idle", "uid-idle")}
	if _, err := rt.RunSandbox(ctx, idle); err != nil {
		t.Fatal(err)
	}

	seed := func(id string, cpu, ws uint64) {
		t.Helper()
		if err := rt.SetContainerStats(id, cpu, ws, ws+100, 4096); err != nil {
			t.Fatal(err)
		}
	}
	boot := metav1.NewTime(time.Unix(bootUnix, 0))
	mem := func(now time.Time) *MemoryStats {
		return &MemoryStats{
			Time:            metav1.NewTime(now),
			AvailableBytes:  u64(memAvailKB * 1024),
			UsageBytes:      u64((memTotalKB - memFreeKB) * 1024),
			WorkingSetBytes: u64((memTotalKB - memAvailKB) * 1024),
			RSSBytes:        u64(anonKB * 1024),
			PageFaults:      u64(1000),
			MajorPageFaults: u64(7),
		}
	}
	ctr := func(name string, now time.Time, cum uint64, rate *uint64, ws uint64) ContainerStats {
		tm := metav1.NewTime(now)
		return ContainerStats{
			Name:      name,
			StartTime: metav1.NewTime(t0),
			CPU:       &CPUStats{Time: tm, UsageNanoCores: rate, UsageCoreNanoSeconds: u64(cum)},
			Memory:    &MemoryStats{Time: tm, WorkingSetBytes: u64(ws), UsageBytes: u64(ws + 100)},
			Rootfs:    &FsStats{Time: tm, UsedBytes: u64(4096)},
		}
	}
	idleStats := PodStats{PodRef: PodReference{Name: "idle", Namespace: "ns", UID: "uid-idle"}, StartTime: metav1.NewTime(t0), Containers: []ContainerStats{}}
	webStats := func(now time.Time, cum, rate *uint64, ws uint64, ctrs ...ContainerStats) PodStats {
		tm := metav1.NewTime(now)
		ps := PodStats{
			PodRef: PodReference{Name: "web", Namespace: "ns", UID: "uid-web"}, StartTime: metav1.NewTime(t0),
			Containers: ctrs,
			CPU:        &CPUStats{Time: tm, UsageNanoCores: rate, UsageCoreNanoSeconds: cum},
			Memory:     &MemoryStats{Time: tm, WorkingSetBytes: u64(ws), UsageBytes: u64(ws + 200)},
			// capacity and available come from the node fs; checked apart.
			EphemeralStorage: &FsStats{Time: tm, UsedBytes: u64(8192)},
		}
		return ps
	}

	steps := []struct {
		name    string
		advance time.Duration
		busy    uint64 // node busy jiffies
		setup   func()
		want    func(now time.Time) Summary
	}{
		{
			name: "first reading: no node rate; containers seeded with their start",
			// Containers were created at t0; their first reading is 10 s
			// later, so they have an average since creation.
			advance: 10 * time.Second,
			busy:    1000,
			setup: func() {
				seed(main1, 2e9, 10<<20)
				seed(side, 1e9, 5<<20)
			},
			want: func(now time.Time) Summary {
				return Summary{
					Node: NodeStats{NodeName: "node-a", StartTime: boot,
						CPU:    &CPUStats{Time: metav1.NewTime(now), UsageCoreNanoSeconds: u64(1000 * 1e7)},
						Memory: mem(now)},
					Pods: []PodStats{
						idleStats,
						webStats(now, u64(3e9), u64(3e8), 15<<20,
							ctr("main", now, 2e9, u64(2e8), 10<<20), ctr("side", now, 1e9, u64(1e8), 5<<20)),
					},
				}
			},
		},
		{
			name:    "second reading: rates over the interval",
			advance: 10 * time.Second,
			busy:    1500, // 5 s busy in 10 s: half a core
			setup: func() {
				seed(main1, 12e9, 11<<20) // one core
				seed(side, 1e9, 5<<20)    // idle
			},
			want: func(now time.Time) Summary {
				return Summary{
					Node: NodeStats{NodeName: "node-a", StartTime: boot,
						CPU:    &CPUStats{Time: metav1.NewTime(now), UsageNanoCores: u64(5e8), UsageCoreNanoSeconds: u64(1500 * 1e7)},
						Memory: mem(now)},
					Pods: []PodStats{
						idleStats,
						webStats(now, u64(13e9), u64(1e9), 16<<20,
							ctr("main", now, 12e9, u64(1e9), 11<<20), ctr("side", now, 1e9, u64(0), 5<<20)),
					},
				}
			},
		},
		{
			name:    "a new container without a rate leaves the pod's rate unknown",
			advance: 500 * time.Millisecond,
			busy:    1500,
			setup: func() {
				rt.Exit(side, 0, "")
				// Created now: no interval yet.
				side2 := start(webSB, web, "side", 1)
				seed(side2, 1e6, 1<<20)
			},
			want: func(now time.Time) Summary {
				s := ctr("side", now, 1e6, nil, 1<<20)
				s.StartTime = metav1.NewTime(now)
				return Summary{
					Node: NodeStats{NodeName: "node-a", StartTime: boot,
						CPU:    &CPUStats{Time: metav1.NewTime(now), UsageNanoCores: u64(5e8), UsageCoreNanoSeconds: u64(1500 * 1e7)},
						Memory: mem(now)},
					Pods: []PodStats{
						idleStats,
						webStats(now, u64(12e9+1e6), nil, 12<<20, ctr("main", now, 12e9, u64(1e9), 11<<20), s),
					},
				}
			},
		},
	}
	for _, step := range steps {
		clk.Advance(step.advance)
		proc.setBusy(step.busy)
		step.setup()
		got, err := p.Summary(ctx)
		if err != nil {
			t.Fatalf("%s: Summary: %v", step.name, err)
		}
		// The filesystems are real: check they are there, then drop them.
		if got.Node.Fs == nil || got.Node.Fs.CapacityBytes == nil || *got.Node.Fs.CapacityBytes == 0 ||
			got.Node.Runtime == nil || got.Node.Runtime.ImageFs == nil {
			t.Errorf("%s: node fs = %+v, runtime = %+v; want the temp dir's filesystem", step.name, got.Node.Fs, got.Node.Runtime)
		}
		if got.Node.Rlimit == nil || *got.Node.Rlimit.MaxPID != 32768 || *got.Node.Rlimit.NumOfRunningProcesses != 95 {
			t.Errorf("%s: rlimit = %+v, want maxpid 32768, curproc 95", step.name, got.Node.Rlimit)
		}
		got.Node.Fs, got.Node.Runtime, got.Node.Rlimit = nil, nil, nil
		for i := range got.Pods {
			if es := got.Pods[i].EphemeralStorage; es != nil {
				if es.CapacityBytes == nil || es.AvailableBytes == nil {
					t.Errorf("%s: pod %s ephemeral storage = %+v, want capacity and available", step.name, got.Pods[i].PodRef.Name, es)
				}
				es.CapacityBytes, es.AvailableBytes = nil, nil
			}
		}
		if diff := cmp.Diff(step.want(clk.Now()), *got); diff != "" {
			t.Errorf("%s: Summary (-want +got):\n%s", step.name, diff)
		}
	}

	// Removed containers are forgotten.
	if err := rt.RemoveSandbox(ctx, webSB); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Summary(ctx); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	n := len(p.containers)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("after removing the pod the Provider still tracks %d containers", n)
	}
}

func TestNodeUsage(t *testing.T) {
	t.Parallel()
	proc := newFakeProc(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	p := New(Config{NodeName: "n", ProcRoot: proc.root, RootFS: t.TempDir(), Now: func() time.Time { return now }})
	got, err := p.NodeUsage(context.Background())
	if err != nil {
		t.Fatalf("NodeUsage: %v", err)
	}
	if got.NodeFSCapacityBytes == 0 || got.NodeFSAvailableBytes == 0 || got.NodeFSInodes == 0 {
		t.Errorf("NodeUsage fs = %+v, want the temp dir's filesystem", got)
	}
	got.NodeFSCapacityBytes, got.NodeFSAvailableBytes, got.NodeFSInodes, got.NodeFSInodesFree = 0, 0, 0, 0
	want := NodeUsage{
		Time:                  now,
		MemoryCapacityBytes:   memTotalKB * 1024,
		MemoryAvailableBytes:  memAvailKB * 1024,
		MemoryWorkingSetBytes: (memTotalKB - memAvailKB) * 1024,
		MaxPID:                32768,
		Processes:             95,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NodeUsage (-want +got):\n%s", diff)
	}

	// A missing proc is an error, not zeros.
	bad := New(Config{ProcRoot: t.TempDir()})
	if _, err := bad.NodeUsage(context.Background()); err == nil {
		t.Errorf("NodeUsage without meminfo: no error")
	}
	if _, err := bad.Summary(context.Background()); err == nil {
		t.Errorf("Summary without proc files: no error")
	}
}

// TestServeHTTP checks the JSON names of the wire format against
// upstream's, on the real /proc when it is there.
func TestServeHTTP(t *testing.T) {
	t.Parallel()
	proc := newFakeProc(t)
	p := New(Config{NodeName: "n", ProcRoot: proc.root, Runtime: cri.NewFake()})
	srv := httptest.NewServer(p)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/stats/summary")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /stats/summary: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var raw struct {
		Node map[string]any `json:"node"`
		Pods []any          `json:"pods"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if raw.Pods == nil {
		t.Errorf("pods = null, want []")
	}
	node := raw.Node
	for _, k := range []string{"nodeName", "startTime", "cpu", "memory", "rlimit"} {
		if _, ok := node[k]; !ok {
			t.Errorf("node has no %q: %v", k, node)
		}
	}
	if mem, _ := node["memory"].(map[string]any); mem["workingSetBytes"] == nil || mem["availableBytes"] == nil {
		t.Errorf("node memory = %v, want workingSetBytes and availableBytes", mem)
	}

	if _, err := os.Stat("/proc/stat"); err != nil {
		return
	}
	real := New(Config{NodeName: "n", RootFS: "/"})
	s, err := real.Summary(context.Background())
	if err != nil {
		t.Fatalf("Summary on the real /proc: %v", err)
	}
	if *s.Node.CPU.UsageCoreNanoSeconds == 0 || *s.Node.Memory.WorkingSetBytes == 0 || *s.Node.Fs.CapacityBytes == 0 {
		t.Errorf("Summary on the real /proc = %+v, want non-zero CPU, memory and fs", s.Node)
	}
}
