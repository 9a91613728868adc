package metricsapi

import "github.com/skiff-dev/skiff/internal/discovery"

// Group is what discovery must advertise for this API: pass it to
// discovery.New, and route /apis/metrics.k8s.io/v1beta1/<resource paths>
// to the API (the group's own documents are discovery's).
func Group() discovery.ExtraGroup {
	verbs := []string{"get", "list"}
	return discovery.ExtraGroup{
		GroupVersion: GroupVersion,
		Resources: []discovery.ExtraResource{
			{Name: "nodes", Kind: "NodeMetrics", Verbs: verbs},
			{Name: "pods", Kind: "PodMetrics", Namespaced: true, Verbs: verbs},
		},
	}
}
