// Package kubeletclient lets the API server reach the kubelet of a node: it
// resolves a node name to the kubelet's HTTPS endpoint and makes plain
// requests (logs, stats) and HTTP/1.1 upgrade dials (exec, attach,
// port-forward) with the API server's kubelet client certificate.
//
// Inputs: the Node objects returned by Config.Nodes (status.addresses and
// status.daemonEndpoints.kubeletEndpoint.port); nothing else.
//
// Outputs: connections and requests to kubelets. It writes nothing to the
// API and keeps no state beyond its idle connection pool.
//
// It must never decide what a request means (which container, which
// options): callers build the kubelet path and query, as upstream's
// "connection info getter" does.
//
// # Usage
//
//	kc := kubeletclient.New(kubeletclient.Config{Nodes: lookup, ClientCert: cert})
//	resp, err := kc.Get(ctx, "node-1", "/containerLogs/default/web/app", url.Values{"follow": {"true"}})
//	...
//	u, err := kc.URL(ctx, "node-1", "/exec/default/web/app", q)
//	conn, resp, err := kc.Upgrade(ctx, http.MethodPost, u, header) // conn != nil only on 101
package kubeletclient
