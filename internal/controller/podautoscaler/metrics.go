package podautoscaler

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

// PodMetric is one pod's usage, summed over its containers, measured over
// [Timestamp-Window, Timestamp].
type PodMetric struct {
	Usage     corev1.ResourceList
	Timestamp time.Time
	Window    time.Duration
}

// MetricsSource reports the usage of the pods of namespace matching
// selector, by pod name. Pods it has no sample for are absent. It is called
// concurrently by the controller's workers.
type MetricsSource interface {
	PodMetrics(ctx context.Context, namespace string, selector labels.Selector) (map[string]PodMetric, error)
}

// ResourceMetricsClient reads PodMetrics from the metrics.k8s.io/v1beta1
// API (metrics-server or the node agent's equivalent).
type ResourceMetricsClient struct {
	Client metricsclient.Interface
}

var _ MetricsSource = ResourceMetricsClient{}

// NewMetricsClient returns a MetricsSource reading metrics.k8s.io through
// cfg. Building it does not contact the server; when the API is not served
// every PodMetrics call fails.
func NewMetricsClient(cfg *rest.Config) (ResourceMetricsClient, error) {
	c, err := metricsclient.NewForConfig(cfg)
	if err != nil {
		return ResourceMetricsClient{}, fmt.Errorf("building metrics client: %w", err)
	}
	return ResourceMetricsClient{Client: c}, nil
}

// PodMetrics lists PodMetrics of namespace matching selector.
func (m ResourceMetricsClient) PodMetrics(ctx context.Context, namespace string, selector labels.Selector) (map[string]PodMetric, error) {
	list, err := m.Client.MetricsV1beta1().PodMetricses(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, fmt.Errorf("unable to fetch metrics from resource metrics API: %w", err)
	}
	out := make(map[string]PodMetric, len(list.Items))
	for _, pm := range list.Items {
		usage := corev1.ResourceList{}
		for _, c := range pm.Containers {
			for name, q := range c.Usage {
				sum := usage[name]
				sum.Add(q)
				usage[name] = sum
			}
		}
		out[pm.Name] = PodMetric{Usage: usage, Timestamp: pm.Timestamp.Time, Window: pm.Window.Duration}
	}
	return out, nil
}
