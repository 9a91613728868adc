package framework

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestPodRequestsFastPath checks that the direct sum for pods without
// init containers or pod-level resources agrees with the shared helper.
func TestPodRequestsFastPath(t *testing.T) {
	rl := func(kv ...string) v1.ResourceList {
		out := v1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			out[v1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return out
	}
	container := func(req v1.ResourceList) v1.Container {
		return v1.Container{Name: "c", Resources: v1.ResourceRequirements{Requests: req}}
	}
	tests := []struct {
		name string
		spec v1.PodSpec
	}{
		{"no containers", v1.PodSpec{}},
		{"no requests", v1.PodSpec{Containers: []v1.Container{container(nil)}}},
		{"cpu and memory", v1.PodSpec{Containers: []v1.Container{container(rl("cpu", "100m", "memory", "64Mi"))}}},
		{"explicit zero", v1.PodSpec{Containers: []v1.Container{container(rl("cpu", "0", "memory", "0"))}}},
		{"cpu only, two containers", v1.PodSpec{Containers: []v1.Container{
			container(rl("cpu", "250m")), container(rl("memory", "1Gi", "ephemeral-storage", "2Gi")),
		}}},
		{"extended and hugepages", v1.PodSpec{Containers: []v1.Container{
			container(rl("cpu", "1", "example.com/gpu", "2", "hugepages-2Mi", "4Mi", "pods", "1")),
		}}},
		{"overhead", v1.PodSpec{
			Containers: []v1.Container{container(rl("cpu", "100m"))},
			Overhead:   rl("cpu", "50m", "memory", "10Mi"),
		}},
		{"overhead with cpu only", v1.PodSpec{
			Containers: []v1.Container{container(nil)},
			Overhead:   rl("cpu", "50m"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{Spec: tt.spec}
			req, nz := PodRequests(pod)
			wantReq, wantNZ := podRequestsGeneral(pod)
			if !equalResource(req, wantReq) {
				t.Errorf("requests = %+v, want %+v", req, wantReq)
			}
			if !equalResource(nz, wantNZ) {
				t.Errorf("non-zero requests = %+v, want %+v", nz, wantNZ)
			}
		})
	}
}

func equalResource(a, b Resource) bool {
	if a.MilliCPU != b.MilliCPU || a.Memory != b.Memory || a.EphemeralStorage != b.EphemeralStorage ||
		a.AllowedPodNumber != b.AllowedPodNumber || len(a.Scalar) != len(b.Scalar) {
		return false
	}
	for k, v := range a.Scalar {
		if b.Scalar[k] != v {
			return false
		}
	}
	return true
}
