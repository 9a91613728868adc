package proxy

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"

	"github.com/skiff-dev/skiff/internal/svcendpoints"
)

// SyntheticServices returns n ClusterIP services in namespace "bench"
// (svc-0 …, cluster IPs from 10.96.0.1 up, port 80 named "http") and, for
// each, an EndpointSlice with m ready endpoints on port 8080 (pod IPs
// from 10.42.0.1 up, alternating between nodes "node-a" and "node-b").
// They feed FullSync and are valid objects to create through the API.
func SyntheticServices(n, m int) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	svcs := make([]*corev1.Service, 0, n)
	slices := make([]*discoveryv1.EndpointSlice, 0, n)
	ipAt := func(base [4]byte, i int) string {
		v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
		v += uint32(i)
		return fmt.Sprintf("%d.%d.%d.%d", v>>24, v>>16&0xff, v>>8&0xff, v&0xff)
	}
	pod := 0
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		ip := ipAt([4]byte{10, 96, 0, 1}, i)
		svcs = append(svcs, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name},
			Spec: corev1.ServiceSpec{
				Type:       corev1.ServiceTypeClusterIP,
				ClusterIP:  ip,
				ClusterIPs: []string{ip},
				Selector:   map[string]string{"app": name},
				Ports:      []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
			},
		})
		es := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: "bench", Name: name + "-x",
				Labels: map[string]string{discoveryv1.LabelServiceName: name},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](8080)}},
		}
		for j := range m {
			nodeName := "node-a"
			if j%2 == 1 {
				nodeName = "node-b"
			}
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{ipAt([4]byte{10, 42, 0, 1}, pod)},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				NodeName:   ptr.To(nodeName),
			})
			pod++
		}
		slices = append(slices, es)
	}
	return svcs, slices
}

// FullSync builds the rules for services and slices as Run does for
// cfg (Client is not used; NFT nil means the real nftables) and applies
// them as one full rebuild of the table — the benchmark hook for "rules
// of N services from scratch". It returns what was applied.
func FullSync(ctx context.Context, cfg Config, services []*corev1.Service, slices []*discoveryv1.EndpointSlice) (SyncResult, error) {
	start := time.Now()
	n, err := newNode(cfg)
	if err != nil {
		return SyncResult{}, err
	}
	nft := cfg.NFT
	if nft == nil {
		if nft, err = knftables.New(knftables.InetFamily, TableName); err != nil {
			return SyncResult{}, fmt.Errorf("proxy: opening nftables: %w", err)
		}
	}
	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	for _, es := range slices {
		if keys, _ := svcendpoints.ServiceKey(es); len(keys) == 1 {
			bySvc[keys[0]] = append(bySvc[keys[0]], es)
		}
	}
	desired := map[string]*serviceRules{}
	for _, svc := range services {
		key := svc.Namespace + "/" + svc.Name
		if ports := servicePorts(svc, bySvc[key], n); len(ports) > 0 {
			desired[key] = buildService(ports, n)
		}
	}
	a := newApplier(nft, n)
	if err := a.full(ctx, desired); err != nil {
		return SyncResult{}, err
	}
	return SyncResult{Full: true, Services: sortedKeys(desired), Operations: a.ops, Duration: time.Since(start)}, nil
}

// Cleanup deletes the proxy's table, if there is one; nft nil means the
// real nftables. Run leaves the table in place when it stops (traffic
// keeps flowing across restarts); Cleanup is for uninstalling a node and
// for tests. Routes of RouteProtocol are not touched.
func Cleanup(ctx context.Context, nft knftables.Interface) error {
	if nft == nil {
		var err error
		if nft, err = knftables.New(knftables.InetFamily, TableName); err != nil {
			return fmt.Errorf("proxy: opening nftables: %w", err)
		}
	}
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("proxy: deleting table %s: %w", TableName, err)
	}
	return nil
}
