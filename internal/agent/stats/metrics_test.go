package stats

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// TestResourceCollector: the /metrics/resource series are the Summary's
// cumulative CPU (seconds), working sets and start times, labelled as
// upstream's kubelet labels them.
func TestResourceCollector(t *testing.T) {
	ctx := context.Background()
	proc := newFakeProc(t)
	proc.setBusy(1000)
	clk := &clock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	rt := cri.NewFake("busybox")
	rt.Now = clk.Now
	p := New(Config{NodeName: "node-a", Runtime: rt, RootFS: t.TempDir(), ProcRoot: proc.root, Now: clk.Now})
	labels := map[string]string{labelPodName: "web", labelPodNamespace: "ns", labelPodUID: "uid-web"}
	cfg := cri.SandboxConfig{Name: "web", Namespace: "ns", UID: "uid-web", Labels: labels}
	sb, err := rt.RunSandbox(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, err := rt.CreateContainer(ctx, sb, cfg, cri.ContainerConfig{Name: "main", Image: "busybox", Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := rt.SetContainerStats(id, 3e9, 10<<20, 11<<20, 4096); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p.ResourceCollector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			got[key] = v
			if f.GetName() != "resource_scrape_error" && f.GetName() != "container_start_time_seconds" && m.GetTimestampMs() != clk.Now().UnixMilli() {
				t.Errorf("%s: timestamp %d, want the reading's %d", key, m.GetTimestampMs(), clk.Now().UnixMilli())
			}
		}
	}
	want := map[string]float64{
		"resource_scrape_error":                                                  0,
		"node_cpu_usage_seconds_total":                                           10, // 1000 jiffies
		"node_memory_working_set_bytes":                                          (memTotalKB - memAvailKB) * 1024,
		"pod_cpu_usage_seconds_total namespace=ns pod=web":                       3,
		"pod_memory_working_set_bytes namespace=ns pod=web":                      10 << 20,
		"container_cpu_usage_seconds_total container=main namespace=ns pod=web":  3,
		"container_memory_working_set_bytes container=main namespace=ns pod=web": 10 << 20,
		"container_start_time_seconds container=main namespace=ns pod=web":       float64(clk.Now().Add(-10 * time.Second).Unix()),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}
