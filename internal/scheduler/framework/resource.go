package framework

import (
	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
)

// Default requests used for scoring pods that request nothing, so that
// spreading still sees them (upstream: 100m cpu, 200Mi memory).
const (
	DefaultMilliCPURequest int64 = 100
	DefaultMemoryRequest   int64 = 200 * 1024 * 1024
)

// Resource is a compact sum of resource quantities: cpu in millicores,
// the rest in their base units. Scalar holds extended resources and
// hugepages; it is nil when empty.
type Resource struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	AllowedPodNumber int64
	Scalar           map[v1.ResourceName]int64
}

// NewResource sums a ResourceList.
func NewResource(rl v1.ResourceList) Resource {
	var r Resource
	r.Add(rl)
	return r
}

// Add adds every quantity of rl.
func (r *Resource) Add(rl v1.ResourceList) {
	for name, q := range rl {
		switch name {
		case v1.ResourceCPU:
			r.MilliCPU += q.MilliValue()
		case v1.ResourceMemory:
			r.Memory += q.Value()
		case v1.ResourceEphemeralStorage:
			r.EphemeralStorage += q.Value()
		case v1.ResourcePods:
			r.AllowedPodNumber += q.Value()
		default:
			if IsScalarResource(name) {
				r.AddScalar(name, q.Value())
			}
		}
	}
}

// AddScalar adds n of an extended resource.
func (r *Resource) AddScalar(name v1.ResourceName, n int64) {
	if r.Scalar == nil {
		r.Scalar = make(map[v1.ResourceName]int64, 1)
	}
	r.Scalar[name] += n
}

// Plus adds o into r.
func (r *Resource) Plus(o *Resource) {
	r.MilliCPU += o.MilliCPU
	r.Memory += o.Memory
	r.EphemeralStorage += o.EphemeralStorage
	r.AllowedPodNumber += o.AllowedPodNumber
	for k, v := range o.Scalar {
		r.AddScalar(k, v)
	}
}

// Minus subtracts o from r.
func (r *Resource) Minus(o *Resource) {
	r.MilliCPU -= o.MilliCPU
	r.Memory -= o.Memory
	r.EphemeralStorage -= o.EphemeralStorage
	r.AllowedPodNumber -= o.AllowedPodNumber
	for k, v := range o.Scalar {
		r.AddScalar(k, -v)
	}
}

// Clone returns a deep copy.
func (r Resource) Clone() Resource {
	out := r
	if r.Scalar != nil {
		out.Scalar = make(map[v1.ResourceName]int64, len(r.Scalar))
		for k, v := range r.Scalar {
			out.Scalar[k] = v
		}
	}
	return out
}

// Get returns the quantity of one resource in the units Resource keeps.
func (r *Resource) Get(name v1.ResourceName) int64 {
	switch name {
	case v1.ResourceCPU:
		return r.MilliCPU
	case v1.ResourceMemory:
		return r.Memory
	case v1.ResourceEphemeralStorage:
		return r.EphemeralStorage
	case v1.ResourcePods:
		return r.AllowedPodNumber
	}
	return r.Scalar[name]
}

// IsScalarResource reports whether name is an extended resource, a
// hugepages size or an attachable-volumes count: anything a node
// advertises besides cpu, memory, ephemeral-storage and pods.
func IsScalarResource(name v1.ResourceName) bool {
	switch name {
	case v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage, v1.ResourcePods:
		return false
	}
	return true
}

// PodRequests returns what a pod asks for (containers, init containers,
// pod-level resources and overhead, as upstream computes it) and the same
// with the scoring defaults filled in for containers without cpu or
// memory requests.
func PodRequests(pod *v1.Pod) (req, nonZero Resource) {
	if len(pod.Spec.InitContainers) == 0 && pod.Spec.Resources == nil {
		// The common pod: the sum of its containers' requests (plus
		// overhead), without the helper's intermediate ResourceLists.
		// The scheduler computes this for every pod it sees, twice.
		for i := range pod.Spec.Containers {
			rl := pod.Spec.Containers[i].Resources.Requests
			req.Add(rl)
			if q, ok := rl[v1.ResourceCPU]; ok {
				nonZero.MilliCPU += q.MilliValue()
			} else {
				nonZero.MilliCPU += DefaultMilliCPURequest
			}
			if q, ok := rl[v1.ResourceMemory]; ok {
				nonZero.Memory += q.Value()
			} else {
				nonZero.Memory += DefaultMemoryRequest
			}
		}
		if oh := pod.Spec.Overhead; oh != nil {
			req.Add(oh)
			cpu, mem := oh[v1.ResourceCPU], oh[v1.ResourceMemory]
			nonZero.MilliCPU += cpu.MilliValue()
			nonZero.Memory += mem.Value()
		}
		return req, nonZero
	}
	return podRequestsGeneral(pod)
}

// podRequestsGeneral is PodRequests for pods with init containers or
// pod-level resources, through the shared helper.
func podRequestsGeneral(pod *v1.Pod) (req, nonZero Resource) {
	req = NewResource(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
	nz := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{
		NonMissingContainerRequests: nonMissingRequests(),
	})
	nonZero = Resource{
		MilliCPU: nz.Cpu().MilliValue(),
		Memory:   nz.Memory().Value(),
	}
	return req, nonZero
}

func nonMissingRequests() v1.ResourceList {
	return v1.ResourceList{
		v1.ResourceCPU:    *resourceQuantity(DefaultMilliCPURequest, true),
		v1.ResourceMemory: *resourceQuantity(DefaultMemoryRequest, false),
	}
}
