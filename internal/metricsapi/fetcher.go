package metricsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/internal/agent/stats"
)

// DefaultKubeletPort is used when a node does not publish
// status.daemonEndpoints.kubeletEndpoint.port.
const DefaultKubeletPort = 10250

// KubeletFetcher is the SummaryFetcher that asks each node's agent: GET
// https://<address>:<port>/stats/summary, the address being the node's
// InternalIP (else its Hostname) and the port the one it publishes.
type KubeletFetcher struct {
	// Client carries the TLS configuration: a client certificate from the
	// cluster CA, and how to trust the agents' self-signed serving
	// certificates.
	Client *http.Client
	// Node looks a node up (the server's cache).
	Node func(ctx context.Context, name string) (*corev1.Node, error)
}

var _ SummaryFetcher = (*KubeletFetcher)(nil)

// Summary implements SummaryFetcher.
func (f *KubeletFetcher) Summary(ctx context.Context, nodeName string) (*stats.Summary, error) {
	node, err := f.Node(ctx, nodeName)
	if err != nil {
		return nil, fmt.Errorf("looking up node %q: %w", nodeName, err)
	}
	hostPort, err := KubeletHostPort(node)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+hostPort+"/stats/summary", nil)
	if err != nil {
		return nil, fmt.Errorf("fetching summary of node %q: %w", nodeName, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching summary of node %q: %w", nodeName, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("fetching summary of node %q: %s: %s", nodeName, resp.Status, msg)
	}
	var s stats.Summary
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding summary of node %q: %w", nodeName, err)
	}
	return &s, nil
}

// KubeletHostPort returns "host:port" of node's agent API.
func KubeletHostPort(node *corev1.Node) (string, error) {
	var host string
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeHostName} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" && host == "" {
				host = a.Address
			}
		}
	}
	if host == "" {
		return "", fmt.Errorf("node %q publishes no InternalIP or Hostname address", node.Name)
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = DefaultKubeletPort
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}
