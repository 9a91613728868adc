package stats

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// resourceMetrics describes upstream kubelet's /metrics/resource series
// (what metrics-server and Prometheus scrape), with their label names.
var (
	nodeCPUDesc = prometheus.NewDesc("node_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the node in core-seconds", nil, nil)
	nodeMemoryDesc = prometheus.NewDesc("node_memory_working_set_bytes",
		"[STABLE] Current working set of the node in bytes", nil, nil)
	podCPUDesc = prometheus.NewDesc("pod_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the pod in core-seconds", []string{"namespace", "pod"}, nil)
	podMemoryDesc = prometheus.NewDesc("pod_memory_working_set_bytes",
		"[STABLE] Current working set of the pod in bytes", []string{"namespace", "pod"}, nil)
	containerCPUDesc = prometheus.NewDesc("container_cpu_usage_seconds_total",
		"[STABLE] Cumulative cpu time consumed by the container in core-seconds", []string{"container", "namespace", "pod"}, nil)
	containerMemoryDesc = prometheus.NewDesc("container_memory_working_set_bytes",
		"[STABLE] Current working set of the container in bytes", []string{"container", "namespace", "pod"}, nil)
	containerStartDesc = prometheus.NewDesc("container_start_time_seconds",
		"[STABLE] Start time of the container since unix epoch in seconds", []string{"container", "namespace", "pod"}, nil)
	scrapeErrorDesc = prometheus.NewDesc("resource_scrape_error",
		"[STABLE] 1 if there was an error while getting container metrics, 0 otherwise", nil, nil)
)

// scrapeTimeout bounds one collection of the resource metrics.
const scrapeTimeout = 10 * time.Second

// ResourceCollector is a Prometheus collector of the node's, its pods' and
// their containers' CPU and memory usage, as upstream kubelet serves at
// /metrics/resource: each scrape reads a fresh Summary, and samples carry
// the time they were measured at. A failed read yields
// resource_scrape_error 1 and no usage.
func (p *Provider) ResourceCollector() prometheus.Collector { return resourceCollector{p} }

type resourceCollector struct{ p *Provider }

func (c resourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{nodeCPUDesc, nodeMemoryDesc, podCPUDesc, podMemoryDesc,
		containerCPUDesc, containerMemoryDesc, containerStartDesc, scrapeErrorDesc} {
		ch <- d
	}
}

func (c resourceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	s, err := c.p.Summary(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, 0)
	emitCPU(ch, nodeCPUDesc, s.Node.CPU)
	emitMemory(ch, nodeMemoryDesc, s.Node.Memory)
	for _, pod := range s.Pods {
		ns, name := pod.PodRef.Namespace, pod.PodRef.Name
		emitCPU(ch, podCPUDesc, pod.CPU, ns, name)
		emitMemory(ch, podMemoryDesc, pod.Memory, ns, name)
		for _, ctr := range pod.Containers {
			emitCPU(ch, containerCPUDesc, ctr.CPU, ctr.Name, ns, name)
			emitMemory(ch, containerMemoryDesc, ctr.Memory, ctr.Name, ns, name)
			if !ctr.StartTime.IsZero() {
				ch <- prometheus.MustNewConstMetric(containerStartDesc, prometheus.GaugeValue,
					float64(ctr.StartTime.UnixNano())/1e9, ctr.Name, ns, name)
			}
		}
	}
}

func emitCPU(ch chan<- prometheus.Metric, d *prometheus.Desc, cpu *CPUStats, labels ...string) {
	if cpu == nil || cpu.UsageCoreNanoSeconds == nil {
		return
	}
	m := prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(*cpu.UsageCoreNanoSeconds)/1e9, labels...)
	ch <- prometheus.NewMetricWithTimestamp(cpu.Time.Time, m)
}

func emitMemory(ch chan<- prometheus.Metric, d *prometheus.Desc, mem *MemoryStats, labels ...string) {
	if mem == nil || mem.WorkingSetBytes == nil {
		return
	}
	m := prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(*mem.WorkingSetBytes), labels...)
	ch <- prometheus.NewMetricWithTimestamp(mem.Time.Time, m)
}
