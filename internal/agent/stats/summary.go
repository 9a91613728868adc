package stats

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Summary is the kubelet summary API document served at /stats/summary:
// a wire-compatible subset of upstream's stats/v1alpha1 Summary (same JSON
// names and meaning). A nil pointer field means "not known", never zero.
type Summary struct {
	Node NodeStats  `json:"node"`
	Pods []PodStats `json:"pods"`
}

// NodeStats is the usage of the whole node.
type NodeStats struct {
	NodeName string `json:"nodeName"`
	// StartTime is when the node booted.
	StartTime metav1.Time   `json:"startTime"`
	CPU       *CPUStats     `json:"cpu,omitempty"`
	Memory    *MemoryStats  `json:"memory,omitempty"`
	Fs        *FsStats      `json:"fs,omitempty"`
	Runtime   *RuntimeStats `json:"runtime,omitempty"`
	Rlimit    *RlimitStats  `json:"rlimit,omitempty"`
}

// RuntimeStats is the container runtime's usage.
type RuntimeStats struct {
	// ImageFs is the filesystem holding images and writable layers.
	ImageFs *FsStats `json:"imageFs,omitempty"`
}

// RlimitStats counts processes against the node's limit.
type RlimitStats struct {
	Time metav1.Time `json:"time"`
	// MaxPID is kernel.pid_max; NumOfRunningProcesses counts threads.
	MaxPID                *int64 `json:"maxpid,omitempty"`
	NumOfRunningProcesses *int64 `json:"curproc,omitempty"`
}

// PodStats is the usage of one pod: the sums of its running containers.
type PodStats struct {
	PodRef PodReference `json:"podRef"`
	// StartTime is when the pod's current sandbox was created.
	StartTime  metav1.Time      `json:"startTime"`
	Containers []ContainerStats `json:"containers"`
	// CPU and Memory are nil unless every running container's are known.
	CPU    *CPUStats    `json:"cpu,omitempty"`
	Memory *MemoryStats `json:"memory,omitempty"`
	// EphemeralStorage counts the containers' writable layers (not logs
	// nor emptyDir volumes) on the node filesystem.
	EphemeralStorage *FsStats `json:"ephemeral-storage,omitempty"`
}

// PodReference names a pod.
type PodReference struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
}

// ContainerStats is the usage of one running container.
type ContainerStats struct {
	Name      string       `json:"name"`
	StartTime metav1.Time  `json:"startTime"`
	CPU       *CPUStats    `json:"cpu,omitempty"`
	Memory    *MemoryStats `json:"memory,omitempty"`
	// Rootfs is the container's writable layer.
	Rootfs *FsStats `json:"rootfs,omitempty"`
}

// CPUStats is CPU usage at Time.
type CPUStats struct {
	Time metav1.Time `json:"time"`
	// UsageNanoCores is the average rate over the last sampling window
	// (1e9 = one core busy); nil until two samples are known.
	UsageNanoCores *uint64 `json:"usageNanoCores,omitempty"`
	// UsageCoreNanoSeconds is the cumulative CPU time.
	UsageCoreNanoSeconds *uint64 `json:"usageCoreNanoSeconds,omitempty"`
}

// MemoryStats is memory usage at Time.
type MemoryStats struct {
	Time            metav1.Time `json:"time"`
	AvailableBytes  *uint64     `json:"availableBytes,omitempty"`
	UsageBytes      *uint64     `json:"usageBytes,omitempty"`
	WorkingSetBytes *uint64     `json:"workingSetBytes,omitempty"`
	RSSBytes        *uint64     `json:"rssBytes,omitempty"`
	PageFaults      *uint64     `json:"pageFaults,omitempty"`
	MajorPageFaults *uint64     `json:"majorPageFaults,omitempty"`
}

// FsStats is a filesystem's (or a consumer's share of it) usage at Time.
type FsStats struct {
	Time           metav1.Time `json:"time"`
	AvailableBytes *uint64     `json:"availableBytes,omitempty"`
	CapacityBytes  *uint64     `json:"capacityBytes,omitempty"`
	UsedBytes      *uint64     `json:"usedBytes,omitempty"`
	InodesFree     *uint64     `json:"inodesFree,omitempty"`
	Inodes         *uint64     `json:"inodes,omitempty"`
	InodesUsed     *uint64     `json:"inodesUsed,omitempty"`
}
