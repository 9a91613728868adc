package proxy

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/knftables"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata/")

// TestRulesGolden builds the table for one service shape per case and
// compares the fake's dump (real nft syntax) with testdata/<case>.nft.
func TestRulesGolden(t *testing.T) {
	cases := []struct {
		name   string
		svcs   []*corev1.Service
		slices []*discoveryv1.EndpointSlice
		cfg    func(*Config) // changes testConfig, if set
	}{
		{
			name: "clusterip",
			svcs: []*corev1.Service{service("shop", "web", "10.96.0.10")},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:r", "10.42.1.7@node-b:r", "10.42.1.8@node-b:n"),
				slice("shop", "web", "web-2", 8080, "10.42.2.9@node-c:r"),
			},
		},
		{
			// Without a pod CIDR, hairpin traffic is marked in endpoint
			// chains: nat-postrouting cannot tell same-bridge traffic.
			name: "clusterip-no-pod-cidr",
			svcs: []*corev1.Service{service("shop", "web", "10.96.0.10")},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:r", "10.42.1.7@node-b:r"),
			},
			cfg: func(c *Config) { c.PodCIDR = "" },
		},
		{
			name: "one-endpoint",
			svcs: []*corev1.Service{service("shop", "web", "10.96.0.10")},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "web", "web-1", 8080, "10.42.1.7@node-b:r"),
			},
		},
		{
			name: "no-endpoints",
			svcs: []*corev1.Service{service("shop", "web", "10.96.0.10", nodePort(30080))},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:n"),
			},
		},
		{
			name: "terminating-only",
			svcs: []*corev1.Service{service("shop", "web", "10.96.0.10")},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:t", "10.42.1.7@node-b:n"),
			},
		},
		{
			name: "ready-beats-terminating",
			svcs: []*corev1.Service{service("shop", "web", "10.96.0.10")},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:t", "10.42.1.7@node-b:r"),
			},
		},
		{
			name: "nodeport",
			svcs: []*corev1.Service{service("shop", "web", "10.96.0.10", nodePort(30080))},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:r", "10.42.1.7@node-b:r"),
			},
		},
		{
			name: "loadbalancer-local",
			svcs: []*corev1.Service{service("shop", "web", "10.96.0.10", loadBalancer(30080, "192.168.1.10", "192.168.1.11"), externalLocal)},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:r", "10.42.1.7@node-b:r"),
			},
		},
		{
			name: "externallocal-no-local-endpoints",
			svcs: []*corev1.Service{service("shop", "web", "10.96.0.10", nodePort(30080), externalLocal)},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "web", "web-1", 8080, "10.42.1.7@node-b:r"),
			},
		},
		{
			name: "internallocal",
			svcs: []*corev1.Service{
				service("shop", "web", "10.96.0.10", internalLocal),
				service("shop", "api", "10.96.0.11", internalLocal),
			},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:r", "10.42.1.7@node-b:r"),
				slice("shop", "api", "api-1", 8080, "10.42.1.8@node-b:r"),
			},
		},
		{
			name: "affinity",
			svcs: []*corev1.Service{service("shop", "web", "10.96.0.10", affinity(600))},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:r", "10.42.1.7@node-b:r"),
			},
		},
		{
			name: "multiport-udp",
			svcs: []*corev1.Service{service("kube-system", "dns", "10.96.0.10", addPort("dns", corev1.ProtocolUDP, 53))},
			slices: []*discoveryv1.EndpointSlice{
				slice("kube-system", "dns", "dns-1", 8080, "10.42.0.5@node-a:r"),
				sliceFor("kube-system", "dns", "dns-2", "dns", corev1.ProtocolUDP, 5353, "10.42.0.5@node-a:r"),
			},
		},
		{
			name: "loadbalancer-source-ranges",
			svcs: []*corev1.Service{service("shop", "web", "10.96.0.10", loadBalancer(30080, "192.168.1.10"), sourceRanges("10.0.0.0/8", "192.168.7.1/24"))},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "web", "web-1", 8080, "10.42.0.5@node-a:r"),
			},
		},
		{
			name: "ignored",
			svcs: []*corev1.Service{
				service("shop", "headless", "None"),
				service("shop", "ext", "", func(s *corev1.Service) {
					s.Spec.Type = corev1.ServiceTypeExternalName
					s.Spec.ExternalName = "example.com"
				}),
			},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "headless", "headless-1", 8080, "10.42.0.5@node-a:r"),
			},
		},
		{
			name: "externalips-and-lb-conflict",
			svcs: []*corev1.Service{
				service("shop", "a", "10.96.0.10", loadBalancer(30080, "192.168.1.10")),
				service("shop", "b", "10.96.0.11", loadBalancer(30081, "192.168.1.10")),
				service("shop", "c", "10.96.0.12", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.4"} }),
			},
			slices: []*discoveryv1.EndpointSlice{
				slice("shop", "a", "a-1", 8080, "10.42.0.5@node-a:r"),
				slice("shop", "b", "b-1", 8080, "10.42.0.6@node-a:r"),
				slice("shop", "c", "c-1", 8080, "10.42.0.7@node-a:r"),
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := knftables.NewFake(knftables.InetFamily, TableName)
			cfg := testConfig(fake)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if _, err := FullSync(context.Background(), cfg, tc.svcs, tc.slices); err != nil {
				t.Fatalf("FullSync: %v", err)
			}
			got := serviceDump(fake)
			path := filepath.Join("testdata", tc.name+".nft")
			if *rewrite {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run with -rewrite to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("table of %s differs from %s (-want +got; -rewrite to accept):\n%s", tc.name, path, diff)
			}
		})
	}
}

// TestBaseGolden pins the fixed part of the table (testdata/base.nft).
func TestBaseGolden(t *testing.T) {
	for _, tc := range []struct {
		name    string
		nodeIPs []string
	}{
		{"base", []string{"192.168.1.10"}},
		{"base-no-node-ips", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := knftables.NewFake(knftables.InetFamily, TableName)
			cfg := testConfig(fake)
			cfg.NodeIPs = tc.nodeIPs
			if _, err := FullSync(context.Background(), cfg, nil, nil); err != nil {
				t.Fatalf("FullSync: %v", err)
			}
			got := fake.Dump()
			path := filepath.Join("testdata", tc.name+".nft")
			if *rewrite {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run with -rewrite to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("base table differs from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}
