package dns

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// The cluster DNS Service, as upstream names it.
const (
	ServiceNamespace = "kube-system"
	ServiceName      = "kube-dns"
	// managedBy marks the EndpointSlice as ours, so that the EndpointSlice
	// controller (which manages only its own) leaves it alone.
	managedBy = "skiff-dns"
)

// EnsureService creates kube-system/kube-dns with clusterIP (53/UDP "dns"
// and 53/TCP "dns-tcp", label k8s-app=kube-dns) unless it exists. It has
// no selector: its endpoints are written by EnsureEndpoints.
func EnsureService(ctx context.Context, client kubernetes.Interface, clusterIP string) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: ServiceName, Namespace: ServiceNamespace,
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
		},
		Spec: corev1.ServiceSpec{
			ClusterIP: clusterIP,
			Ports: []corev1.ServicePort{
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(53)},
			},
		},
	}
	_, err := client.CoreV1().Services(ServiceNamespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("dns: creating the %s service: %w", ServiceName, err)
	}
	return nil
}

// EnsureEndpoints points kube-dns at ip:port (UDP and TCP) with an
// EndpointSlice of its own, creating or updating it.
func EnsureEndpoints(ctx context.Context, client kubernetes.Interface, ip string, port int32) error {
	ready := true
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	dnsName, tcpName := "dns", "dns-tcp"
	want := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: ServiceName + "-" + managedBy, Namespace: ServiceNamespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: ServiceName,
				discoveryv1.LabelManagedBy:   managedBy,
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports: []discoveryv1.EndpointPort{
			{Name: &dnsName, Protocol: &udp, Port: &port},
			{Name: &tcpName, Protocol: &tcp, Port: &port},
		},
	}
	slices := client.DiscoveryV1().EndpointSlices(ServiceNamespace)
	cur, err := slices.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := slices.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("dns: creating the %s endpoint slice: %w", ServiceName, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("dns: reading the %s endpoint slice: %w", ServiceName, err)
	}
	cur = cur.DeepCopy()
	cur.Labels, cur.Endpoints, cur.Ports = want.Labels, want.Endpoints, want.Ports
	if _, err := slices.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("dns: updating the %s endpoint slice: %w", ServiceName, err)
	}
	return nil
}
