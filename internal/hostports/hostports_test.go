package hostports

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
)

func TestOf(t *testing.T) {
	always := v1.ContainerRestartPolicyAlways
	pod := &v1.Pod{Spec: v1.PodSpec{
		InitContainers: []v1.Container{
			{Name: "once", Ports: []v1.ContainerPort{{ContainerPort: 1, HostPort: 7001}}},
			{Name: "sidecar", RestartPolicy: &always, Ports: []v1.ContainerPort{{ContainerPort: 2, HostPort: 7002, Protocol: v1.ProtocolUDP}}},
		},
		Containers: []v1.Container{{Name: "app", Ports: []v1.ContainerPort{
			{ContainerPort: 80},
			{ContainerPort: 80, HostPort: 8080},
			{ContainerPort: 443, HostPort: 8443, HostIP: "127.0.0.1", Protocol: v1.ProtocolTCP},
		}}},
	}}
	want := []HostPort{{"0.0.0.0", v1.ProtocolTCP, 8080}, {"127.0.0.1", v1.ProtocolTCP, 8443}, {"0.0.0.0", v1.ProtocolUDP, 7002}}
	if diff := cmp.Diff(want, Of(pod)); diff != "" {
		t.Errorf("Of (-want +got):\n%s", diff)
	}
}

func TestConflicts(t *testing.T) {
	tcp := func(ip string, port int32) HostPort { return HostPort{IP: ip, Protocol: v1.ProtocolTCP, Port: port} }
	for _, tt := range []struct {
		a, b HostPort
		want bool
	}{
		{tcp("0.0.0.0", 80), tcp("0.0.0.0", 80), true},
		{tcp("0.0.0.0", 80), tcp("10.0.0.1", 80), true},
		{tcp("10.0.0.2", 80), tcp("10.0.0.1", 80), false},
		{tcp("10.0.0.1", 80), tcp("10.0.0.1", 80), true},
		{tcp("0.0.0.0", 80), tcp("0.0.0.0", 81), false},
		{tcp("0.0.0.0", 80), HostPort{IP: "0.0.0.0", Protocol: v1.ProtocolUDP, Port: 80}, false},
	} {
		if got := tt.a.Conflicts(tt.b); got != tt.want {
			t.Errorf("%+v.Conflicts(%+v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := Collide([]HostPort{tt.b}, []HostPort{tcp("1.1.1.1", 1), tt.a}); got != tt.want {
			t.Errorf("Collide(%+v, …%+v) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}
