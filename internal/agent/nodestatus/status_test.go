package nodestatus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

var (
	t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = t0.Add(10 * time.Second)
)

func testObservation(now time.Time) *observation {
	return &observation{
		now: now,
		machine: machine{
			cpus: 2, memoryBytes: 4 << 30, storageBytes: 100 << 30,
			machineID: "mid", systemUUID: "uuid", bootID: "boot",
			kernelVersion: "6.1.0", osImage: "Debian GNU/Linux 12 (bookworm)", osName: "linux", arch: "amd64",
		},
		nodeName: "n1", nodeIP: "192.0.2.10", kubeletPort: 10250, maxPods: 110,
		kubeletVersion: "v1.33.0+skiff-0.1.0",
		runtimeName:    "containerd", runtimeVersion: "1.6.20~ds1",
		networkReady: true,
		images:       []cri.Image{},
	}
}

type condSummary struct {
	Type                 corev1.NodeConditionType
	Status               corev1.ConditionStatus
	Reason, Message      string
	Heartbeat, Transited time.Time
}

func summarize(conds []corev1.NodeCondition) []condSummary {
	var out []condSummary
	for _, c := range conds {
		out = append(out, condSummary{c.Type, c.Status, c.Reason, c.Message, c.LastHeartbeatTime.UTC(), c.LastTransitionTime.UTC()})
	}
	return out
}

func TestSetStatusConditions(t *testing.T) {
	t.Parallel()
	memOK := condSummary{corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", t1, t1}
	diskOK := condSummary{corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", t1, t1}
	pidOK := condSummary{corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available", t1, t1}
	ready := condSummary{corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", t1, t1}
	netMsg := "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"

	tests := []struct {
		name       string
		old        []corev1.NodeCondition
		change     func(*observation)
		want       []condSummary
		wantEvents []string
	}{
		{
			name:       "fresh node, all well",
			want:       []condSummary{memOK, diskOK, pidOK, ready},
			wantEvents: []string{"NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID", "NodeReady"},
		},
		{
			name:   "network not ready",
			change: func(o *observation) { o.networkReady = false },
			want: []condSummary{memOK, diskOK, pidOK,
				{corev1.NodeReady, corev1.ConditionFalse, "KubeletNotReady", netMsg, t1, t1}},
			wantEvents: []string{"NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID", "NodeNotReady"},
		},
		{
			name:   "runtime down and network not ready",
			change: func(o *observation) { o.networkReady = false; o.runtimeErr = errors.New("dial") },
			want: []condSummary{memOK, diskOK, pidOK,
				{corev1.NodeReady, corev1.ConditionFalse, "KubeletNotReady", "[container runtime is down, " + netMsg + "]", t1, t1}},
			wantEvents: []string{"NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID", "NodeNotReady"},
		},
		{
			name: "unchanged keeps transition times and order, others kept",
			old: []corev1.NodeCondition{
				{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(t0), LastTransitionTime: metav1.NewTime(t0)},
				{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "RouteCreated", LastHeartbeatTime: metav1.NewTime(t0), LastTransitionTime: metav1.NewTime(t0)},
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: metav1.NewTime(t0), LastTransitionTime: metav1.NewTime(t0)},
			},
			want: []condSummary{
				{corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", t1, t0},
				{corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "RouteCreated", "", t0, t0},
				{corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", t1, t0},
				diskOK, pidOK,
			},
			wantEvents: []string{"NodeHasNoDiskPressure", "NodeHasSufficientPID"},
		},
		{
			name: "pressure and a node coming back from Unknown",
			old: []corev1.NodeCondition{
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(t0)},
				{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(t0)},
				{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(t0)},
				{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown", LastTransitionTime: metav1.NewTime(t0)},
			},
			change: func(o *observation) { o.pressure = Pressure{Memory: true, Disk: true, PID: true} },
			want: []condSummary{
				{corev1.NodeMemoryPressure, corev1.ConditionTrue, "KubeletHasInsufficientMemory", "kubelet has insufficient memory available", t1, t1},
				{corev1.NodeDiskPressure, corev1.ConditionTrue, "KubeletHasDiskPressure", "kubelet has disk pressure", t1, t1},
				{corev1.NodePIDPressure, corev1.ConditionTrue, "KubeletHasInsufficientPID", "kubelet has insufficient PID available", t1, t1},
				ready,
			},
			wantEvents: []string{"NodeHasInsufficientMemory", "NodeHasDiskPressure", "NodeHasInsufficientPID", "NodeReady"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := testObservation(t1)
			if tt.change != nil {
				tt.change(o)
			}
			node := &corev1.Node{Status: corev1.NodeStatus{Conditions: tt.old}}
			events := setStatus(node, o)
			if diff := cmp.Diff(tt.want, summarize(node.Status.Conditions)); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantEvents, events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetStatusResourcesAndInfo(t *testing.T) {
	t.Parallel()
	o := testObservation(t1)
	o.reserved = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	o.held = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("100Mi"), corev1.ResourceEphemeralStorage: resource.MustParse("10Gi")}
	node := &corev1.Node{}
	setStatus(node, o)

	quantities := func(l corev1.ResourceList) map[corev1.ResourceName]string {
		out := map[corev1.ResourceName]string{}
		for k, v := range l {
			out[k] = v.String()
		}
		return out
	}
	wantCapacity := map[corev1.ResourceName]string{"cpu": "2", "memory": "4Gi", "ephemeral-storage": "100Gi", "pods": "110"}
	if diff := cmp.Diff(wantCapacity, quantities(node.Status.Capacity)); diff != "" {
		t.Errorf("capacity (-want +got):\n%s", diff)
	}
	wantAllocatable := map[corev1.ResourceName]string{"cpu": "1500m", "memory": "2972Mi", "ephemeral-storage": "90Gi", "pods": "110"}
	if diff := cmp.Diff(wantAllocatable, quantities(node.Status.Allocatable)); diff != "" {
		t.Errorf("allocatable (-want +got):\n%s", diff)
	}
	wantAddresses := []corev1.NodeAddress{{Type: "InternalIP", Address: "192.0.2.10"}, {Type: "Hostname", Address: "n1"}}
	if diff := cmp.Diff(wantAddresses, node.Status.Addresses); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	wantInfo := corev1.NodeSystemInfo{
		MachineID: "mid", SystemUUID: "uuid", BootID: "boot", KernelVersion: "6.1.0",
		OSImage: "Debian GNU/Linux 12 (bookworm)", ContainerRuntimeVersion: "containerd://1.6.20~ds1",
		KubeletVersion: "v1.33.0+skiff-0.1.0", KubeProxyVersion: "v1.33.0+skiff-0.1.0",
		OperatingSystem: "linux", Architecture: "amd64",
	}
	if diff := cmp.Diff(wantInfo, node.Status.NodeInfo); diff != "" {
		t.Errorf("nodeInfo (-want +got):\n%s", diff)
	}
	if got := node.Status.DaemonEndpoints.KubeletEndpoint.Port; got != 10250 {
		t.Errorf("kubelet port = %d, want 10250", got)
	}

	// An extended resource advertised on the node (patched into its
	// status by someone else) survives the next status, with its capacity
	// as allocatable; a measured resource the patch changed does not.
	node.Status.Capacity["example.com/dongle"] = resource.MustParse("4")
	node.Status.Capacity[corev1.ResourceCPU] = resource.MustParse("64")
	node.Status.Allocatable["example.com/dongle"] = resource.MustParse("1")
	setStatus(node, o)
	wantCapacity["example.com/dongle"] = "4"
	if diff := cmp.Diff(wantCapacity, quantities(node.Status.Capacity)); diff != "" {
		t.Errorf("capacity with an extended resource (-want +got):\n%s", diff)
	}
	wantAllocatable["example.com/dongle"] = "4"
	if diff := cmp.Diff(wantAllocatable, quantities(node.Status.Allocatable)); diff != "" {
		t.Errorf("allocatable with an extended resource (-want +got):\n%s", diff)
	}

	// A runtime that is down keeps the runtime version and images known.
	node.Status.Images = []corev1.ContainerImage{{Names: []string{"a"}, SizeBytes: 1}}
	down := testObservation(t1)
	down.runtimeErr, down.runtimeName, down.runtimeVersion, down.images = errors.New("down"), "", "", nil
	setStatus(node, down)
	if got := node.Status.NodeInfo.ContainerRuntimeVersion; got != "containerd://1.6.20~ds1" {
		t.Errorf("runtime version with the runtime down = %q, want the last known", got)
	}
	if diff := cmp.Diff([]corev1.ContainerImage{{Names: []string{"a"}, SizeBytes: 1}}, node.Status.Images); diff != "" {
		t.Errorf("images with the runtime down (-want +got):\n%s", diff)
	}
}

func TestNodeImages(t *testing.T) {
	t.Parallel()
	var many []cri.Image
	for i := range 60 {
		many = append(many, cri.Image{ID: fmt.Sprintf("sha256:%02d", i), RepoTags: []string{fmt.Sprintf("img%02d:1", i)}, Size: uint64(i)})
	}
	tests := []struct {
		name   string
		images []cri.Image
		want   func() []corev1.ContainerImage
	}{
		{
			name: "names are digests then tags, at most five; nameless left out; largest first",
			images: []cri.Image{
				{ID: "sha256:small", RepoTags: []string{"small:1"}, Size: 10},
				{ID: "sha256:none", Size: 1000},
				{ID: "sha256:big", RepoDigests: []string{"big@sha256:1"}, RepoTags: []string{"big:1", "big:2", "big:3", "big:4", "big:5"}, Size: 100},
			},
			want: func() []corev1.ContainerImage {
				return []corev1.ContainerImage{
					{Names: []string{"big@sha256:1", "big:1", "big:2", "big:3", "big:4"}, SizeBytes: 100},
					{Names: []string{"small:1"}, SizeBytes: 10},
				}
			},
		},
		{
			name:   "the 50 largest",
			images: many,
			want: func() []corev1.ContainerImage {
				var out []corev1.ContainerImage
				for i := 59; i >= 10; i-- {
					out = append(out, corev1.ContainerImage{Names: []string{fmt.Sprintf("img%02d:1", i)}, SizeBytes: int64(i)})
				}
				return out
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want(), nodeImages(tt.images)); diff != "" {
				t.Errorf("nodeImages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStatusChanged(t *testing.T) {
	t.Parallel()
	base := func() *corev1.Node {
		n := &corev1.Node{}
		setStatus(n, testObservation(t0))
		return n
	}
	tests := []struct {
		name   string
		change func(*observation)
		want   bool
	}{
		{"same but a later heartbeat", func(*observation) {}, false},
		{"network down", func(o *observation) { o.networkReady = false }, true},
		{"memory pressure", func(o *observation) { o.pressure.Memory = true }, true},
		{"new image", func(o *observation) { o.images = []cri.Image{{ID: "x", RepoTags: []string{"x:1"}}} }, true},
		{"runtime upgraded", func(o *observation) { o.runtimeVersion = "1.7.0" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			old := base()
			updated := old.DeepCopy()
			o := testObservation(t1)
			tt.change(o)
			setStatus(updated, o)
			if got := statusChanged(&old.Status, &updated.Status); got != tt.want {
				t.Errorf("statusChanged = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReadMachine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := machineFiles{
		meminfo:     write("meminfo", "MemFree:  1 kB\nMemTotal:       8029856 kB\n"),
		machineID:   write("machine-id", "abc\n"),
		productUUID: filepath.Join(dir, "absent"),
		bootID:      write("boot_id", "b-1\n"),
		osRelease:   write("os-release", "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
		osrelease:   write("osrelease", "6.1.0-18-amd64\n"),
	}
	m, err := readMachine(files, filepath.Join(dir, "not", "yet", "there"))
	if err != nil {
		t.Fatalf("readMachine: %v", err)
	}
	if m.storageBytes <= 0 || m.cpus <= 0 {
		t.Errorf("storage %d, cpus %d: want both > 0", m.storageBytes, m.cpus)
	}
	m.storageBytes, m.cpus, m.osName, m.arch = 0, 0, "", ""
	want := machine{memoryBytes: 8029856 * 1024, machineID: "abc", bootID: "b-1",
		kernelVersion: "6.1.0-18-amd64", osImage: "Debian GNU/Linux 12 (bookworm)"}
	if diff := cmp.Diff(want, m, cmp.AllowUnexported(machine{})); diff != "" {
		t.Errorf("machine (-want +got):\n%s", diff)
	}

	files.meminfo = write("meminfo-bad", "MemFree: 1 kB\n")
	if _, err := readMachine(files, dir); err == nil {
		t.Errorf("readMachine without MemTotal: nil error")
	}
}
