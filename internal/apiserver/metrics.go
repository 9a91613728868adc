package apiserver

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, on a registry of their own.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_request_total",
			Help: "Counter of apiserver requests broken out for each verb, group, version, resource, subresource and HTTP response code.",
		}, []string{"verb", "group", "version", "resource", "subresource", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiserver_request_duration_seconds",
			Help:    "Response latency distribution in seconds for each verb, group, version, resource and subresource.",
			Buckets: []float64{0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60},
		}, []string{"verb", "group", "version", "resource", "subresource"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_current_inflight_requests",
			Help: "Number of requests currently being served, by kind (readOnly, mutating).",
		}, []string{"request_kind"}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.inflight,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// observe records one finished request.
func (m *metrics) observe(ri *requestInfo, code int, elapsed time.Duration) {
	verb, group, ver, res, sub := "", "", "", "", ""
	if ri != nil && ri.isResource {
		verb, group, ver, res, sub = metricVerb(ri.verb), ri.group, ri.version, ri.resource, ri.subresource
	} else if ri != nil {
		verb = metricVerb(ri.verb)
	}
	m.requests.WithLabelValues(verb, group, ver, res, sub, strconv.Itoa(code)).Inc()
	if verb != "WATCH" {
		m.duration.WithLabelValues(verb, group, ver, res, sub).Observe(elapsed.Seconds())
	}
}

// metricVerbs maps Kubernetes verbs to the upstream metric label values.
var metricVerbs = map[string]string{
	"get": "GET", "list": "LIST", "watch": "WATCH", "create": "POST", "update": "PUT",
	"patch": "PATCH", "delete": "DELETE", "deletecollection": "DELETECOLLECTION",
}

func metricVerb(v string) string {
	if m, ok := metricVerbs[v]; ok {
		return m
	}
	return strings.ToUpper(v)
}
