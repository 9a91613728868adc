// Package stats is the node agent's resource-usage provider: it computes
// the kubelet summary (/stats/summary, a wire-compatible subset of
// upstream's stats/v1alpha1 Summary) and the quick node numbers eviction
// and node pressure conditions use.
//
// Inputs: the node's proc files (stat for CPU time and boot time, meminfo,
// vmstat, loadavg, sys/kernel/pid_max), statfs of the data dir, and the
// runtime's sandboxes and container stats (CRI ListContainerStats). Output:
// Summary values and NodeUsage; ServeHTTP writes the Summary as JSON. It
// writes nothing on the node and never talks to the API server.
//
// CPU rates (usageNanoCores) are not read but computed from successive
// readings of cumulative counters, so the Provider keeps the previous
// reading of the node and of every container (forgotten once the runtime no
// longer lists it). Run takes a reading every SampleInterval so that the
// first Summary a client asks for already has a rate; a new container's
// first rate is its average since creation. Node memory: workingSetBytes is
// MemTotal - MemAvailable (what the kernel could not reclaim, the closest
// host-wide analogue of a cgroup's working set), usageBytes MemTotal -
// MemFree, rssBytes AnonPages. The image filesystem is reported as the
// node filesystem, since containerd's state lives under the data dir.
// Known gaps: pod ephemeral storage counts only writable layers, not logs
// nor emptyDir volumes; no network, accelerator or volume stats.
//
// # Usage
//
//	p := stats.New(stats.Config{NodeName: name, Runtime: rt, RootFS: dataDir})
//	go p.Run(ctx)                      // samples every SampleInterval
//	mux.Handle("/stats/summary", p)    // the kubelet server authorizes
//	u, err := p.NodeUsage(ctx)         // eviction, pressure conditions
package stats
