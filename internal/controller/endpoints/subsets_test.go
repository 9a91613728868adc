package endpoints

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// testPod is a running pod in namespace ns on node n1 with one container
// whose ports are named by ports (name -> number).
func testPod(name, ip string, ready bool, ports map[string]int32) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "img"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
	for n, p := range ports {
		pod.Spec.Containers[0].Ports = append(pod.Spec.Containers[0].Ports, corev1.ContainerPort{Name: n, ContainerPort: p, Protocol: corev1.ProtocolTCP})
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	return pod
}

func addr(pod *corev1.Pod, hostname string) corev1.EndpointAddress {
	node := pod.Spec.NodeName
	return corev1.EndpointAddress{
		IP: pod.Status.PodIP, Hostname: hostname, NodeName: &node,
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
}

func TestDesiredSubsets(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc"},
		Spec: corev1.ServiceSpec{
			Selector:   map[string]string{"app": "web"},
			ClusterIP:  "10.0.0.1",
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("web")},
				{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9091)},
			},
		},
	}
	headless := svc.DeepCopy()
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	headless.Spec.Ports = nil
	publish := svc.DeepCopy()
	publish.Spec.PublishNotReadyAddresses = true

	a := testPod("a", "10.1.0.1", true, map[string]int32{"web": 8080})
	b := testPod("b", "10.1.0.2", false, map[string]int32{"web": 8080})
	c := testPod("c", "10.1.0.3", true, nil)
	d := testPod("d", "10.1.0.4", true, map[string]int32{"web": 8081})
	noIP := testPod("noip", "", true, nil)
	done := testPod("done", "10.1.0.5", true, nil)
	done.Status.Phase = corev1.PodSucceeded
	gone := testPod("gone", "10.1.0.6", true, map[string]int32{"web": 8080})
	gone.DeletionTimestamp = &metav1.Time{}
	v6 := testPod("v6", "fd00::1", true, map[string]int32{"web": 8080})
	named := testPod("named", "10.1.0.7", true, nil)
	named.Spec.Hostname, named.Spec.Subdomain = "h", "svc"

	http := func(p int32) corev1.EndpointPort {
		return corev1.EndpointPort{Name: "http", Port: p, Protocol: corev1.ProtocolTCP}
	}
	metrics := corev1.EndpointPort{Name: "metrics", Port: 9091, Protocol: corev1.ProtocolTCP}

	tests := []struct {
		name string
		svc  *corev1.Service
		pods []*corev1.Pod
		want []corev1.EndpointSubset
	}{
		{name: "no pods", svc: svc, want: []corev1.EndpointSubset{}},
		{
			name: "ready and not ready share a subset",
			svc:  svc,
			pods: []*corev1.Pod{b, a},
			want: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{addr(a, "")}, NotReadyAddresses: []corev1.EndpointAddress{addr(b, "")},
				Ports: []corev1.EndpointPort{http(8080), metrics},
			}},
		},
		{
			name: "named ports resolve per pod; pods lacking them are left out of that port",
			svc:  svc,
			pods: []*corev1.Pod{a, c, d},
			want: []corev1.EndpointSubset{
				{Addresses: []corev1.EndpointAddress{addr(a, "")}, Ports: []corev1.EndpointPort{http(8080), metrics}},
				{Addresses: []corev1.EndpointAddress{addr(d, "")}, Ports: []corev1.EndpointPort{http(8081), metrics}},
				{Addresses: []corev1.EndpointAddress{addr(c, "")}, Ports: []corev1.EndpointPort{metrics}},
			},
		},
		{
			name: "pods without an IP of the family, terminal or terminating are left out",
			svc:  svc,
			pods: []*corev1.Pod{noIP, done, gone, v6},
			want: []corev1.EndpointSubset{},
		},
		{
			name: "publishNotReadyAddresses makes everything ready, terminating too",
			svc:  publish,
			pods: []*corev1.Pod{b, gone},
			want: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{addr(b, ""), addr(gone, "")},
				Ports:     []corev1.EndpointPort{http(8080), metrics},
			}},
		},
		{
			name: "headless without ports lists addresses with hostnames",
			svc:  headless,
			pods: []*corev1.Pod{named, b},
			want: []corev1.EndpointSubset{{
				Addresses:         []corev1.EndpointAddress{addr(named, "h")},
				NotReadyAddresses: []corev1.EndpointAddress{addr(b, "")},
				Ports:             []corev1.EndpointPort{},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DesiredSubsets(tt.svc, tt.pods)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DesiredSubsets() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTruncateSubsets(t *testing.T) {
	addrs := func(prefix string, n int) []corev1.EndpointAddress {
		as := make([]corev1.EndpointAddress, n)
		for i := range as {
			as[i].IP = fmt.Sprintf("%s.%d.%d", prefix, i/250, i%250)
		}
		return as
	}
	type counts struct{ Ready, NotReady []int }
	tests := []struct {
		name      string
		subsets   []corev1.EndpointSubset
		want      counts
		truncated bool
	}{
		{
			name:    "at capacity",
			subsets: []corev1.EndpointSubset{{Addresses: addrs("10.0", 600), NotReadyAddresses: addrs("10.1", 400)}},
			want:    counts{Ready: []int{600}, NotReady: []int{400}},
		},
		{
			name:      "not-ready cut first",
			subsets:   []corev1.EndpointSubset{{Addresses: addrs("10.0", 900), NotReadyAddresses: addrs("10.1", 200)}},
			want:      counts{Ready: []int{900}, NotReady: []int{100}},
			truncated: true,
		},
		{
			name: "ready over capacity: spread by proportion, not-ready dropped",
			subsets: []corev1.EndpointSubset{
				{Addresses: addrs("10.0", 1500), NotReadyAddresses: addrs("10.1", 10)},
				{Addresses: addrs("10.2", 500)},
			},
			want:      counts{Ready: []int{750, 250}, NotReady: []int{0, 0}},
			truncated: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			truncated := truncateSubsets(tt.subsets)
			var got counts
			for _, s := range tt.subsets {
				got.Ready = append(got.Ready, len(s.Addresses))
				got.NotReady = append(got.NotReady, len(s.NotReadyAddresses))
			}
			if truncated != tt.truncated {
				t.Errorf("truncated = %v, want %v", truncated, tt.truncated)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sizes mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
