// Package metricsapi serves the resource metrics API, metrics.k8s.io/v1beta1
// (NodeMetrics and PodMetrics), from inside the API server, in place of
// upstream's metrics-server: `kubectl top` and the HPA controller read it.
//
// Inputs: the server's node and pod caches (Config.Nodes, Config.Pods, only
// read) and each node's usage summary, fetched from its agent's
// /stats/summary through a SummaryFetcher (KubeletFetcher over HTTPS in
// production). Output: HTTP responses only; it writes nothing and keeps no
// state beyond a short per-node cache.
//
// Node usage is the node's CPU rate and memory working set; pod usage is
// per container. A node or pod without complete usage (an agent not
// answering, a container started less than a second ago) is left out of
// lists and is a 404 on get, as with metrics-server. Summaries are cached
// per node for Config.CacheTTL (10 s, metrics-server's resolution) and
// concurrent requests share one fetch, so `kubectl top` and the HPA do not
// hammer the agents; nodes are fetched concurrently, each within
// Config.Timeout. Watch is not supported (405), nor the Table view
// (kubectl get falls back to its default columns).
//
// # Usage
//
//	api := metricsapi.New(metricsapi.Config{Nodes: ..., Pods: ..., Fetcher: &metricsapi.KubeletFetcher{...}})
//	disc := discovery.New(resources, metricsapi.Group())
//	mux.Handle("/apis/metrics.k8s.io/v1beta1/", api) // except the group-version document itself
package metricsapi
