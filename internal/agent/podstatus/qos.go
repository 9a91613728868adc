package podstatus

import (
	v1 "k8s.io/api/core/v1"
)

// QOSClass computes a pod's quality-of-service class from its cpu and
// memory requests and limits: BestEffort when none is set, Guaranteed
// when every container (or the pod-level resources, when set) limits both
// cpu and memory and the summed requests equal the summed limits, else
// Burstable. Ephemeral containers do not count. The API server sets
// status.qosClass at creation; Compute keeps that value and uses this only
// when it is missing.
func QOSClass(pod *v1.Pod) v1.PodQOSClass {
	requests, limits := v1.ResourceList{}, v1.ResourceList{}
	guaranteed := true
	add := func(sum v1.ResourceList, list v1.ResourceList) (cpu, mem bool) {
		for name, q := range list {
			if name != v1.ResourceCPU && name != v1.ResourceMemory {
				continue
			}
			if q.Sign() <= 0 {
				continue
			}
			total := q.DeepCopy()
			if have, ok := sum[name]; ok {
				total.Add(have)
			}
			sum[name] = total
			cpu = cpu || name == v1.ResourceCPU
			mem = mem || name == v1.ResourceMemory
		}
		return cpu, mem
	}
	if r := pod.Spec.Resources; r != nil {
		add(requests, r.Requests)
		if len(r.Limits) > 0 {
			if cpu, mem := add(limits, r.Limits); !cpu || !mem {
				guaranteed = false
			}
		}
	} else {
		for _, cs := range [][]v1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
			for i := range cs {
				add(requests, cs[i].Resources.Requests)
				if cpu, mem := add(limits, cs[i].Resources.Limits); !cpu || !mem {
					guaranteed = false
				}
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return v1.PodQOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
				break
			}
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}
