package metricsapi

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestKubeletFetcher(t *testing.T) {
	t.Parallel()
	want := nodeSummary("node-a", u64(250e6), 1<<30)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stats/summary" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(want)
	}))
	t.Cleanup(srv.Close)
	host, portStr, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	nodes := map[string]*corev1.Node{
		"node-a": {ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "node-a.invalid"}, {Type: corev1.NodeInternalIP, Address: host}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
		}},
		"no-address": {ObjectMeta: metav1.ObjectMeta{Name: "no-address"}},
	}
	f := &KubeletFetcher{
		Client: srv.Client(),
		Node: func(_ context.Context, name string) (*corev1.Node, error) {
			if n, ok := nodes[name]; ok {
				return n, nil
			}
			return nil, context.DeadlineExceeded
		},
	}
	got, err := f.Summary(context.Background(), "node-a")
	if err != nil {
		t.Fatalf("Summary(node-a): %v", err)
	}
	if got.Node.NodeName != "node-a" || *got.Node.CPU.UsageNanoCores != 250e6 || *got.Node.Memory.WorkingSetBytes != 1<<30 {
		t.Errorf("Summary(node-a) = %+v", got.Node)
	}
	for _, name := range []string{"no-address", "absent"} {
		if _, err := f.Summary(context.Background(), name); err == nil {
			t.Errorf("Summary(%s): no error", name)
		}
	}
	if hp, err := KubeletHostPort(&corev1.Node{Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "h"}}}}); err != nil || hp != "h:10250" {
		t.Errorf("KubeletHostPort(hostname only) = %q, %v; want h:10250", hp, err)
	}
}
