package nodestatus

import (
	"cmp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// Upstream's limits on the images a node lists.
const (
	maxImages         = 50 // nodeStatusMaxImages
	maxNamesPerImage  = 5  // maxNamesPerImageInNodeStatus
	defaultNetworkMsg = "Network plugin returns error: cni plugin not initialized"
)

// Condition reasons and messages, as upstream's kubelet writes them.
const (
	reasonReady    = "KubeletReady"
	messageReady   = "kubelet is posting ready status"
	reasonNotReady = "KubeletNotReady"
)

// pressureCondition describes one pressure condition: its reasons and
// messages when False (sufficient) and True (under pressure), and the
// events recorded on entering each.
type pressureCondition struct {
	typ                       corev1.NodeConditionType
	okReason, okMessage       string
	badReason, badMessage     string
	okEventReason, badEventRe string
}

var pressureConditions = []pressureCondition{
	{corev1.NodeMemoryPressure,
		"KubeletHasSufficientMemory", "kubelet has sufficient memory available",
		"KubeletHasInsufficientMemory", "kubelet has insufficient memory available",
		"NodeHasSufficientMemory", "NodeHasInsufficientMemory"},
	{corev1.NodeDiskPressure,
		"KubeletHasNoDiskPressure", "kubelet has no disk pressure",
		"KubeletHasDiskPressure", "kubelet has disk pressure",
		"NodeHasNoDiskPressure", "NodeHasDiskPressure"},
	{corev1.NodePIDPressure,
		"KubeletHasSufficientPID", "kubelet has sufficient PID available",
		"KubeletHasInsufficientPID", "kubelet has insufficient PID available",
		"NodeHasSufficientPID", "NodeHasInsufficientPID"},
}

// observation is everything one status computation uses: the machine, the
// runtime's and the network's health, pressure and images. Building the
// status from it is pure.
type observation struct {
	now         time.Time
	machine     machine
	nodeName    string
	nodeIP      string
	kubeletPort int32
	maxPods     int
	reserved    corev1.ResourceList
	held        corev1.ResourceList // by hard eviction thresholds

	kubeletVersion string
	// runtimeErr is set when the runtime did not answer; runtimeName and
	// runtimeVersion are then "" and the node keeps what it had.
	runtimeErr                  error
	runtimeName, runtimeVersion string
	networkReady                bool
	networkMessage              string
	pressure                    Pressure
	// images is nil when they could not be listed: the node keeps its list.
	images []cri.Image
}

// ready reports whether the node is ready and, if not, why (upstream's
// aggregated message: one error as is, several as "[a, b]").
func (o *observation) ready() (bool, string) {
	var errs []string
	if o.runtimeErr != nil {
		errs = append(errs, "container runtime is down")
	}
	if !o.networkReady {
		msg := o.networkMessage
		if msg == "" {
			msg = defaultNetworkMsg
		}
		errs = append(errs, "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:"+msg)
	}
	switch len(errs) {
	case 0:
		return true, ""
	case 1:
		return false, errs[0]
	}
	return false, "[" + strings.Join(errs, ", ") + "]"
}

// setStatus writes the status o describes into node (a copy the caller
// owns), keeping the fields it does not own (other conditions,
// volumesInUse, …) and the transition times of conditions whose status
// did not change. Every condition it owns gets heartbeat o.now. It returns
// the reasons of the events upstream records for the conditions that
// changed status (all of them on a node that had none).
func setStatus(node *corev1.Node, o *observation) []string {
	st := &node.Status
	var events []string

	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(o.machine.cpus, resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(o.machine.memoryBytes, resource.BinarySI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(o.machine.storageBytes, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(o.maxPods), resource.DecimalSI),
	}
	// Extended resources someone advertised on the node (a device plugin,
	// or an administrator patching the status, as Kubernetes' "advertise
	// extended resources" task does) are kept: the agent owns only the
	// four it measures. Their allocatable is their capacity, as upstream.
	for name, q := range st.Capacity {
		if _, ours := capacity[name]; !ours {
			capacity[name] = q.DeepCopy()
		}
	}
	held := o.held
	allocatable := corev1.ResourceList{}
	for name, c := range capacity {
		a := c.DeepCopy()
		if q, ok := o.reserved[name]; ok {
			a.Sub(q)
		}
		if q, ok := held[name]; ok {
			a.Sub(q)
		}
		if a.Sign() < 0 {
			a = *resource.NewQuantity(0, c.Format)
		}
		allocatable[name] = a
	}
	st.Capacity = capacity
	st.Allocatable = allocatable

	st.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: o.nodeIP},
		{Type: corev1.NodeHostName, Address: o.nodeName},
	}
	st.DaemonEndpoints.KubeletEndpoint.Port = o.kubeletPort

	info := &st.NodeInfo
	info.MachineID = o.machine.machineID
	info.SystemUUID = o.machine.systemUUID
	info.BootID = o.machine.bootID
	info.KernelVersion = o.machine.kernelVersion
	info.OSImage = o.machine.osImage
	info.OperatingSystem = o.machine.osName
	info.Architecture = o.machine.arch
	info.KubeletVersion = o.kubeletVersion
	info.KubeProxyVersion = o.kubeletVersion // as upstream since 1.31.1
	if o.runtimeErr == nil {
		info.ContainerRuntimeVersion = o.runtimeName + "://" + o.runtimeVersion
	}
	if o.images != nil {
		st.Images = nodeImages(o.images)
	}

	heartbeat := metav1.NewTime(o.now)
	set := func(c corev1.NodeCondition) (changed bool) {
		c.LastHeartbeatTime = heartbeat
		c.LastTransitionTime = heartbeat
		for i := range st.Conditions {
			if st.Conditions[i].Type != c.Type {
				continue
			}
			if st.Conditions[i].Status == c.Status {
				c.LastTransitionTime = st.Conditions[i].LastTransitionTime
			}
			changed = st.Conditions[i].Status != c.Status
			st.Conditions[i] = c
			return changed
		}
		st.Conditions = append(st.Conditions, c)
		return true
	}
	for _, pc := range pressureConditions {
		under := false
		switch pc.typ {
		case corev1.NodeMemoryPressure:
			under = o.pressure.Memory
		case corev1.NodeDiskPressure:
			under = o.pressure.Disk
		case corev1.NodePIDPressure:
			under = o.pressure.PID
		}
		c := corev1.NodeCondition{Type: pc.typ, Status: corev1.ConditionFalse, Reason: pc.okReason, Message: pc.okMessage}
		event := pc.okEventReason
		if under {
			c = corev1.NodeCondition{Type: pc.typ, Status: corev1.ConditionTrue, Reason: pc.badReason, Message: pc.badMessage}
			event = pc.badEventRe
		}
		if set(c) {
			events = append(events, event)
		}
	}
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: reasonReady, Message: messageReady}
	event := "NodeReady"
	if ok, msg := o.ready(); !ok {
		ready = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: reasonNotReady, Message: msg}
		event = "NodeNotReady"
	}
	if set(ready) {
		events = append(events, event)
	}
	return events
}

// nodeImages returns the images as the node lists them: the largest
// maxImages, each named by its digests then its tags (at most
// maxNamesPerImage names), largest first; images without a name are left
// out. Deterministic, so that an unchanged image set is an unchanged
// status.
func nodeImages(images []cri.Image) []corev1.ContainerImage {
	sorted := slices.Clone(images)
	slices.SortFunc(sorted, func(a, b cri.Image) int {
		return cmp.Or(cmp.Compare(b.Size, a.Size), strings.Compare(a.ID, b.ID))
	})
	out := []corev1.ContainerImage{}
	for _, img := range sorted {
		if len(out) == maxImages {
			break
		}
		names := append(slices.Clone(img.RepoDigests), img.RepoTags...)
		if len(names) == 0 {
			continue
		}
		if len(names) > maxNamesPerImage {
			names = names[:maxNamesPerImage]
		}
		out = append(out, corev1.ContainerImage{Names: names, SizeBytes: int64(img.Size)})
	}
	return out
}

// statusChanged reports whether new differs from old in anything but the
// conditions' heartbeat times (upstream's nodeStatusHasChanged).
func statusChanged(old, new *corev1.NodeStatus) bool {
	if len(old.Conditions) != len(new.Conditions) {
		return true
	}
	for i := range old.Conditions {
		o, n := old.Conditions[i], new.Conditions[i]
		o.LastHeartbeatTime, n.LastHeartbeatTime = metav1.Time{}, metav1.Time{}
		if !equality.Semantic.DeepEqual(o, n) {
			return true
		}
	}
	o, n := *old, *new
	o.Conditions, n.Conditions = nil, nil
	return !equality.Semantic.DeepEqual(o, n)
}
